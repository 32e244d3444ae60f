"""``spritegen verify`` on damaged files: a FAIL line naming each problem, exit 1, never a crash.

Every case copies a real small file built by the project (the session fixtures of conftest.py),
damages the copy with h5py the way a tester did, runs the real command line in this process and
checks: exit status 1, no traceback, every line on stderr a ``FAIL`` line, the expected problems
named, and the file (and its folder) left exactly as they were.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import build_small

from spritegen.build import build
from spritegen.cli import main
from spritegen.spec import spec_from_mapping
from spritegen.verify import content_checksum, verify

Edit = Callable[[h5py.File], None]


@dataclass
class Damage:
    id: str
    edit: Edit
    expect: list[str]  # parts of the FAIL lines, each in some line
    base: str = "dataset_k2"  # the conftest fixture copied
    lines: int | None = None  # the exact number of FAIL lines, when it is known


def _set(path: str, index: object, value: float) -> Edit:
    def edit(f: h5py.File) -> None:
        f[path][index] = value

    return edit


def _spec(old: str, new: str) -> Edit:
    def edit(f: h5py.File) -> None:
        text = f.attrs["spec"]
        assert old in text
        f.attrs["spec"] = text.replace(old, new)

    return edit


def _rewrite(path: str, **layout) -> Edit:
    """Delete and recreate a dataset with the same values and another layout (or type)."""

    def edit(f: h5py.File) -> None:
        data = f[path][()]
        del f[path]
        f.create_dataset(path, data=data.astype(layout.pop("dtype", data.dtype)), **layout)

    return edit


def _to_group(path: str) -> Edit:
    def edit(f: h5py.File) -> None:
        del f[path]
        f.create_group(path)

    return edit


def _delete(path: str) -> Edit:
    def edit(f: h5py.File) -> None:
        del f[path]

    return edit


DAMAGE = [
    Damage(
        "factors-nan",
        _set("factors", np.s_[0:3], np.nan),
        ["/factors: 3 rows with NaN or infinite values", "(rows 0, 1, 2)", "content checksum"],
    ),
    Damage(
        "class-index-7",
        _set("factors", (0, 3), 7),
        ["/factors: 1 row with a 'shape' class index outside 0..2", "(row 0)"],
        base="dataset_k5",
    ),
    Damage(
        "spec-factors-4",
        _spec("factors: 5\n", "factors: 4\n"),
        [
            "attribute 'spec_sha256'",
            "the stored spec does not describe this file's data: it gives factors 4 "
            "(/factors has 5 columns)",
        ],
        base="dataset_k5",
    ),
    Damage(
        "spec-only-factors-3",
        lambda f: f.attrs.__setitem__("spec", "factors: 3\n"),
        ["factors 3 (/factors has 2 columns)", "n 1000000 (/factors has 1000 rows)"],
    ),
    Damage(
        "spec-image-size-32",
        _spec("image_size: 64", "image_size: 32"),
        ["images of shape (32, 32, 1) (/images holds (64, 64, 1))", "'image_shape'"],
    ),
    Damage(
        "images-contiguous",  # the pixels are intact: only the layout is named
        _rewrite("images"),
        ["1 image set not stored as the build stores them", "/images contiguous with no filter"],
        lines=1,
    ),
    Damage(
        "images-float",
        _rewrite("images", dtype=np.float32, chunks=(256, 64, 64, 1)),
        ["/images has shape (1000, 64, 64, 1) and type float32; expected", "uint8"],
    ),
    Damage(
        "factors-chunk-corrupt",
        lambda f: f["factors"].id.write_direct_chunk((0, 0), b"not deflate data"),
        ["/factors is unreadable", "content checksum cannot be recomputed"],
    ),
    Damage(
        "eval-factors-group",
        _to_group("eval/variance/factors"),
        [
            "/eval/variance/factors (factors of /eval/variance/images) is a group",
            "content checksum cannot be recomputed without /eval/variance/factors",
        ],
    ),
    Damage(
        "eval-factors-missing",
        _delete("eval/variance/factors"),
        ["/eval/variance/factors (factors of /eval/variance/images) is missing"],
    ),
    Damage(
        "eval-images-missing",
        _delete("eval/kim_mnih/eval/images"),
        ["/eval/kim_mnih/eval/images is missing: the stored spec plans 640 images there"],
    ),
    Damage(
        "eval-index-missing",
        _delete("eval/higgins/train/factor_index"),
        ["/eval/higgins/train/factor_index is missing: the stored spec plans 60 entries"],
    ),
]


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("damage", DAMAGE, ids=[d.id for d in DAMAGE])
def test_damaged_file_gets_a_fail_line_per_problem_and_exit_1(
    damage: Damage, request, tmp_path, capsys
):
    path = tmp_path / "data.h5"
    shutil.copy(request.getfixturevalue(damage.base), path)
    with h5py.File(path, "r+") as f:
        damage.edit(f)
    before = _snapshot(tmp_path)
    code, out, err = _run(["verify", str(path), "--sample", "16"], capsys)
    assert code == 1, err
    assert "Traceback" not in err and "error:" not in err
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("FAIL ") for line in lines), err
    for part in damage.expect:
        assert any(part in line for line in lines), (part, err)
    if damage.lines is not None:
        assert len(lines) == damage.lines, err
    assert f"{len(lines)} problem(s)" in out
    assert _snapshot(tmp_path) == before


def test_hdf5_structure_damaged_past_the_open_checks_is_a_fail_line(tmp_path, dataset_k2, capsys):
    """One byte of a group's symbol-table node inverted (the 8th ``SNOD`` node: the group of
    /eval/kim_mnih/train): ``open_dataset`` passes, and HDF5 fails later, when ``verify`` looks
    the group's members up. That was a RuntimeError traceback; it is a FAIL line, exit 1."""
    blob = bytearray(dataset_k2.read_bytes())
    at = -1
    for _ in range(8):
        at = blob.index(b"SNOD", at + 1)
    blob[at + 8] ^= 0xFF
    path = tmp_path / "data.h5"
    path.write_bytes(bytes(blob))
    before = _snapshot(tmp_path)
    code, out, err = _run(["verify", str(path), "--sample", "16"], capsys)
    assert code == 1, err
    assert "Traceback" not in err and "error:" not in err
    lines = err.strip().splitlines()
    assert all(line.startswith("FAIL ") for line in lines), err
    assert "HDF5 cannot read the file's structure (" in lines[-1], err
    assert lines[-1].endswith("the file is damaged; the checks after this point did not run")
    assert f"{len(lines)} problem(s)" in out
    assert _snapshot(tmp_path) == before


def test_nan_factors_are_reported_with_the_default_sample(tmp_path, dataset_k2, capsys):
    """The tester's case: the default --sample 256 draws the NaN rows, which once crashed."""
    path = tmp_path / "data.h5"
    shutil.copy(dataset_k2, path)
    with h5py.File(path, "r+") as f:
        f["factors"][0:3] = np.nan
    code, _out, err = _run(["verify", str(path)], capsys)
    assert code == 1 and "Traceback" not in err
    assert "/factors: 3 rows with NaN or infinite values" in err


# --- provenance: what a file says it was built from ------------------------------------------


def _forge_seed(seed: int) -> Edit:
    """A careful forgery: the spec's seed, its copy and the spec's hash all changed together."""

    def edit(f: h5py.File) -> None:
        _spec("seed: 0\n", f"seed: {seed}\n")(f)
        f.attrs["seed"] = seed
        f.attrs["spec_sha256"] = hashlib.sha256(f.attrs["spec"].encode()).hexdigest()

    return edit


def _tester_provenance(f: h5py.File) -> None:
    """The tester's edits: a made-up id, another seed in the spec and in its copy, a version."""
    f.attrs["dataset_id"] = "000000000000"
    _spec("seed: 0\n", "seed: 7\n")(f)
    f.attrs["seed"] = 99
    f.attrs["package_version"] = "9.9"


def _edit_factor_and_rehash(f: h5py.File) -> None:
    """A factor changed, and every checksum that covers it recomputed to match."""
    f["factors"][5, 0] = np.float32(0.5)
    f.attrs["content_sha256"] = digest = content_checksum(f)
    f.attrs["dataset_id"] = digest[:12]


PROVENANCE = [
    Damage(
        "tester-provenance",
        _tester_provenance,
        [
            "attribute 'dataset_id' is '000000000000', but the build derives it from "
            "content_sha256",
            "attribute 'spec_sha256'",
            "attribute 'seed' is 99, but the stored spec's seed is 7",
            "stored factors differ from those the stored spec plans from its seed (7): "
            "/factors (all 1,000 rows)",
        ],
    ),
    Damage(
        "forged-seed",
        _forge_seed(7),
        [
            "stored factors differ from those the stored spec plans from its seed (7)",
            "evaluation indices differ from those the stored spec plans",
        ],
        lines=2,
    ),
    Damage(
        "factor-edited-checksums-recomputed",
        _edit_factor_and_rehash,
        [
            "stored factors differ from those the stored spec plans from its seed (0): /factors "
            "row 5 (1 of 1,000 rows)"
        ],
    ),
    Damage(
        "dataset-id",
        lambda f: f.attrs.__setitem__("dataset_id", "0123456789ab"),
        ["attribute 'dataset_id' is '0123456789ab'"],
        lines=1,
    ),
    Damage(
        "num-images",
        lambda f: f.attrs.__setitem__("num_images", 5),
        ["attribute 'num_images' is 5, but the stored spec's n is 1000"],
        lines=1,
    ),
    Damage(
        "batch-size",
        lambda f: f["eval/higgins/train"].attrs.__setitem__("batch_size", 8),
        ["/eval/higgins/train attribute 'batch_size' is 8; the stored spec gives 16"],
        lines=1,
    ),
]


@pytest.mark.parametrize("damage", PROVENANCE, ids=[d.id for d in PROVENANCE])
def test_tampered_provenance_is_named(damage: Damage, request, tmp_path, capsys):
    test_damaged_file_gets_a_fail_line_per_problem_and_exit_1(damage, request, tmp_path, capsys)


# --- valid files verify OK ---------------------------------------------------------------------


@pytest.mark.parametrize("factors", [1, 3, 4, 6])
def test_fresh_2d_builds_verify_ok(factors, tmp_path):
    path = build_small(tmp_path, factors, n=300)
    report = verify(path, sample=16)
    assert report.problems == [] and report.chunks_checked == 28


def test_uncompressed_small_chunked_build_verifies_ok(tmp_path):
    """Other storage settings and image size: the layout check follows the stored spec."""
    spec = spec_from_mapping(
        {
            "factors": 4,
            "n": 70,
            "seed": 11,
            "image_size": 32,
            "fixed": {"rotation": 1.0},
            "storage": {"chunk_images": 32, "compression": "none"},
            "evaluation": {"preset": "tiny", "variance": 40, "random_train": 0},
        }
    )
    path = build(spec, tmp_path / "x.h5", workers=1, progress=False)
    report = verify(path, sample=8)
    assert report.problems == [] and report.images_rerendered > 0


def test_a_version_1_file_verifies_ok(tmp_path, dataset_k2):
    """A file as format version 1 wrote it: no i.i.d. sample sets, and a spec without their
    sizes (which now parse to the full preset's); they are not planned for it."""
    path = tmp_path / "v1.h5"
    shutil.copy(dataset_k2, path)
    with h5py.File(path, "r+") as f:
        del f["eval/random"], f["checksums/eval/random"]
        text = "".join(line for line in f.attrs["spec"].splitlines(True) if "random_" not in line)
        f.attrs["spec"] = text
        f.attrs["spec_sha256"] = hashlib.sha256(text.encode()).hexdigest()
        f.attrs["format_version"] = 1
        f.attrs["content_sha256"] = digest = content_checksum(f)
        f.attrs["dataset_id"] = digest[:12]
    report = verify(path, sample=8)
    assert report.problems == [] and report.chunks_checked > 0


def test_out_of_range_factor_values_are_named_and_the_other_rows_compared(tmp_path, dataset_k5):
    """A pos_x of 1.5 made the oracle refuse the whole sample ("sampled rows cannot be rendered
    (factor 'pos_x' must be in [0, 1], got 1.5 in row 3)"), so no stored image was compared."""
    path = tmp_path / "data.h5"
    shutil.copy(dataset_k5, path)
    with h5py.File(path, "r+") as f:
        n = len(f["factors"])
        f["factors"][3, 0] = 1.5  # pos_x
        f["factors"][9, 2] = -0.25  # scale
    report = verify(path, sample=n)  # every row of /factors is drawn
    factor_lines = [p for p in report.problems if p.startswith("/factors:")]
    assert factor_lines == [
        "/factors: 2 rows with a 'pos_x' value outside [0, 1] or a 'scale' value outside "
        "[0, 1], which no image is rendered from (rows 3, 9)"
    ], report.problems
    assert not any("cannot be rendered" in p or "images differ" in p for p in report.problems)
    # every other row was re-rendered, and matches its stored image
    assert report.images_rerendered == verify(dataset_k5, sample=n).images_rerendered - 2


@pytest.mark.parametrize("bad", [{"sample": -1}, {"sample": 2.5}, {"sample": True}, {"seed": -3}])
def test_verify_refuses_a_sample_or_seed_that_is_not_a_count(dataset_k2, bad):
    """``verify(sample=-1)`` failed deep in numpy ("negative dimensions are not allowed") and
    ``sample=True`` re-rendered one image per set; the command line already refused both."""
    ((name, value),) = bad.items()
    with pytest.raises(ValueError, match=f"verify: {name} must be an integer >= 0, got {value!r}"):
        verify(dataset_k2, **bad)


# --- probe of 2026-12-01: /metadata tables altered with h5py --------------------------------


def _table(name: str, data) -> Edit:
    def edit(f: h5py.File) -> None:
        del f[f"metadata/{name}"]
        f[f"metadata/{name}"] = data

    return edit


_TEXT = h5py.string_dtype()
METADATA = [
    Damage(
        "metadata-names",
        _table("factor_names", np.array(["foo", "bar"], dtype=_TEXT)),
        ["/metadata/factor_names is ['foo', 'bar']; the stored spec gives ['pos_x', 'pos_y']"],
        lines=1,
    ),
    Damage(
        "metadata-names-ints",
        _table("factor_names", np.array([1, 2])),
        ["/metadata/factor_names is [1, 2]; the stored spec gives ['pos_x', 'pos_y']"],
        lines=1,
    ),
    Damage(
        "metadata-names-twice",
        _table("factor_names", np.array(["pos_x", "pos_x"], dtype=_TEXT)),
        ["/metadata/factor_names is ['pos_x', 'pos_x']; the stored spec gives ['pos_x', 'pos_y']"],
        lines=1,
    ),
    Damage(
        "metadata-low-nan",
        _set("metadata/factor_low", 0, np.nan),
        ["/metadata/factor_low is [nan, 0.0]; the stored spec gives [0.0, 0.0]"],
        lines=1,
    ),
    Damage(
        "metadata-range-swapped",
        lambda f: (_set("metadata/factor_low", 0, 1.0)(f), _set("metadata/factor_high", 0, 0.0)(f)),
        [
            "/metadata/factor_low is [1.0, 0.0]; the stored spec gives [0.0, 0.0]",
            "/metadata/factor_high is [0.0, 1.0]; the stored spec gives [1.0, 1.0]",
        ],
        lines=2,
    ),
    Damage(
        "metadata-kinds",
        _table("factor_kinds", np.array(["weird", "continuous"], dtype=_TEXT)),
        ["/metadata/factor_kinds is ['weird', 'continuous']; the stored spec gives"],
        lines=1,
    ),
    Damage(
        "metadata-shape-classes",
        _table("class_names/shape", np.array(["a", "b", "c"], dtype=_TEXT)),
        ["/metadata/class_names/shape is ['a', 'b', 'c']; the stored spec gives ['square', "],
        lines=1,
    ),
    Damage(
        "metadata-inactive-values",
        _set("metadata/inactive_factor_values", 0, 0.9),
        ["/metadata/inactive_factor_values is [0.9, "],
        lines=1,
    ),
    Damage(
        "metadata-symmetry",
        _set("metadata/symmetry_radians", 0, 1.0),
        ["/metadata/symmetry_radians is [1.0, 3.14"],
        lines=1,
    ),
    Damage(
        "metadata-descriptions-missing",  # written by every build; not required on open
        _delete("metadata/factor_descriptions"),
        ["/metadata/factor_descriptions is missing; the stored spec gives"],
        lines=1,
    ),
    Damage(
        "metadata-extra",
        lambda f: f.create_dataset("metadata/notes", data=[1]),
        ["/metadata/notes is not a table the build writes"],
        lines=1,
    ),
]


@pytest.mark.parametrize("damage", METADATA, ids=[d.id for d in METADATA])
def test_altered_metadata_tables_are_named(damage: Damage, request, tmp_path, capsys):
    """Each /metadata table is derived from the stored spec; verify said OK for a file whose
    factor names, kinds or ranges were rewritten, while ``info`` and ``show`` printed them."""
    test_damaged_file_gets_a_fail_line_per_problem_and_exit_1(damage, request, tmp_path, capsys)
