"""The build's promises: deterministic bytes, resume after a kill, atomic and non-destructive."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import build_small

from spritegen.datafile import open_dataset, read_training_set
from spritegen.errors import DatasetError, SpecError
from spritegen.oracle import Oracle
from spritegen.verify import verify

SPRITEGEN = [sys.executable, "-m", "spritegen"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_bytes_for_any_number_of_workers(tmp_path):
    one = build_small(tmp_path, 6, n=700, workers=1, name="one.h5")
    two = build_small(tmp_path, 6, n=700, workers=2, name="two.h5")
    assert sha(one) == sha(two)
    other_seed = build_small(tmp_path, 6, n=700, seed=1, name="seed1.h5")
    assert sha(one) != sha(other_seed)


def test_file_holds_what_the_oracle_renders(dataset_k5):
    oracle = Oracle.from_file(dataset_k5)
    with open_dataset(dataset_k5) as f:
        rows = np.arange(0, 1500, 97)
        assert np.array_equal(oracle.render(f["factors"][rows]), f["images"][rows])
        votes = f["eval/kim_mnih/train/factors"][:32]
        assert np.array_equal(oracle.render(votes), f["eval/kim_mnih/train/images"][:32])
    assert oracle.observation_shape == (64, 64, 1)


def test_evaluation_sets_share_the_named_factor(dataset_k5):
    with open_dataset(dataset_k5) as f:
        L = f["eval/kim_mnih/train"].attrs["batch_size"]
        km = f["eval/kim_mnih/train/factors"][()].reshape(-1, L, 5)
        k = f["eval/kim_mnih/train/factor_index"][()]
        rows = np.arange(len(k))
        assert (km[rows, :, k] == km[rows, :1, k]).all()
        others = np.ones_like(km[:, 0, :], dtype=bool)
        others[rows, k] = False
        assert (km.std(axis=1)[others] > 0).all()  # every other factor varies within a vote
        a = f["eval/higgins/eval/factors_a"][()].reshape(-1, L, 5)
        b = f["eval/higgins/eval/factors_b"][()].reshape(-1, L, 5)
        k = f["eval/higgins/eval/factor_index"][()]
        rows = np.arange(len(k))
        assert (a[rows, :, k] == b[rows, :, k]).all()
        assert not (a[rows, 0, k] == a[rows, 1, k]).all()


def test_inactive_factors_are_constant_in_the_file(dataset_k2):
    images, factors = read_training_set(dataset_k2)
    assert factors.shape == (1000, 2) and images.shape == (1000, 64, 64, 1)
    area = images.astype(np.float64).sum(axis=(1, 2, 3)) / 255
    assert np.ptp(area) / area.mean() < 0.01  # same shape, scale, rotation everywhere
    with open_dataset(dataset_k2) as f:
        names = [s.decode() for s in f["metadata/inactive_factor_names"][()]]
        assert names == ["scale", "shape", "rotation", "hue", "rotation_y"]


def test_refuses_to_overwrite_a_finished_file(tmp_path):
    path = build_small(tmp_path, 1, n=300, name="x.h5")
    before = sha(path)
    result = subprocess.run(
        SPRITEGEN
        + [
            "build",
            "--factors",
            "1",
            "--n",
            "300",
            "--eval-preset",
            "tiny",
            "--out",
            str(path),
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert "Traceback" not in result.stderr
    assert sha(path) == before


@pytest.mark.slow
def test_resume_after_kill_gives_the_same_bytes(tmp_path):
    args = [
        "build",
        "--factors",
        "5",
        "--n",
        "40000",
        "--eval-preset",
        "none",
        "--workers",
        "1",
        "--quiet",
    ]
    reference = tmp_path / "ref.h5"
    subprocess.run(SPRITEGEN + args + ["--out", str(reference)], check=True)
    killed = tmp_path / "killed.h5"
    parts = tmp_path / "killed.h5.parts"
    proc = subprocess.Popen(SPRITEGEN + args + ["--out", str(killed)])
    deadline = time.time() + 60
    while time.time() < deadline and len(list(parts.glob("*.chunk"))) < 20:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(parts.glob("*.chunk")))
    assert 0 < done_before < 157  # killed mid-build
    assert not killed.exists() and not tmp_path.joinpath("killed.h5.partial").exists()
    subprocess.run(SPRITEGEN + args + ["--out", str(killed)], check=True)
    assert sha(killed) == sha(reference)
    assert not parts.exists()


def test_unfinished_build_of_another_spec_is_not_mixed_in(tmp_path):
    out = tmp_path / "d.h5"
    parts = tmp_path / "d.h5.parts"
    parts.mkdir()
    (parts / "manifest.json").write_text('{"spec": "something else"}')
    result = subprocess.run(
        SPRITEGEN
        + [
            "build",
            "--factors",
            "1",
            "--n",
            "100",
            "--out",
            str(out),
            "--eval-preset",
            "none",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "different spec" in result.stderr


def test_incomplete_and_foreign_files_are_rejected(tmp_path, dataset_k2):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["images"] = np.zeros((4, 64, 64, 3), np.uint8)
        f["labels"] = np.zeros((4, 6))
    with pytest.raises(DatasetError, match="not a spritegen dataset"):
        open_dataset(foreign)
    unfinished = tmp_path / "unfinished.h5"
    unfinished.write_bytes(dataset_k2.read_bytes())
    with h5py.File(unfinished, "r+") as f:
        f.attrs["complete"] = False
    with pytest.raises(DatasetError, match="did not complete"):
        open_dataset(unfinished)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(dataset_k2.read_bytes()[:5000])
    with pytest.raises(DatasetError, match="not an HDF5 file"):
        open_dataset(truncated)


def test_verify_passes_a_good_file_and_locates_a_corrupt_chunk(tmp_path, dataset_k2):
    assert verify(dataset_k2, sample=64).ok
    bad = tmp_path / "bad.h5"
    bad.write_bytes(dataset_k2.read_bytes())
    with h5py.File(bad, "r") as f:
        info = f["images"].id.get_chunk_info(2)  # rows 512..767
    data = bytearray(bad.read_bytes())
    middle = info.byte_offset + info.size // 2
    data[middle : middle + 16] = bytes(16)
    bad.write_bytes(bytes(data))
    report = verify(bad, sample=16)
    assert not report.ok
    assert any("/images rows 512..767" in p for p in report.problems)
    result = subprocess.run(SPRITEGEN + ["verify", str(bad)], capture_output=True, text=True)
    assert result.returncode == 1 and "rows 512..767" in result.stderr


def test_bad_spec_files_and_flags_get_one_clear_line(tmp_path):
    cases = {
        "factors: 8\n": "spec field 'factors': got 8; allowed: an integer in 1..7",
        "factors: 3\nrenderer: 4d\n": "allowed: 2d, 3d",
        "factors: 3\nimage_size: many\n": "spec field 'image_size'",
        "factors: 3\nstorage: {compression: lzma}\n": "allowed: gzip, none",
        "factors: 3\nfixed: {pos_x: 0.2}\n": "inactive factors only",
        "factors: 3\nevaluation: {preset: huge}\n": "allowed: full, quick, tiny, none",
        "factors: [\n": "not valid YAML",
        "- 1\n- 2\n": "must be a YAML mapping",
    }
    for text, message in cases.items():
        spec = tmp_path / "bad.yaml"
        spec.write_text(text)
        result = subprocess.run(
            SPRITEGEN + ["build", str(spec), "--out", str(tmp_path / "o.h5")],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 2, text
        assert message in result.stderr, (text, result.stderr)
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not list(tmp_path.glob("o.h5*"))
    result = subprocess.run(
        SPRITEGEN + ["build", "--factors", "3", "--workers", "0"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "--workers" in result.stderr
    result = subprocess.run(SPRITEGEN + ["build"], capture_output=True, text=True)
    assert result.returncode == 2 and "either a SPEC file or --factors" in result.stderr


def test_a_partial_evaluation_mapping_without_preset_warns_in_one_line(tmp_path):
    """The unset sizes come from 'full' (documented); the warning names them, the build goes on
    and the file is the one the same spec gives without the warning."""
    sizes = "variance: 20, kim_mnih_train: 3, kim_mnih_eval: 2, higgins_train: 3, higgins_eval: 2"
    sizes += ", random_train: 10, random_eval: 10"
    quiet = tmp_path / "quiet.yaml"
    quiet.write_text(f"factors: 2\nn: 40\nevaluation: {{batch_size: 64, {sizes}}}\n")
    noisy = tmp_path / "noisy.yaml"  # leaves batch_size out: it takes full's 64
    noisy.write_text(f"factors: 2\nn: 40\nevaluation: {{{sizes}}}\n")
    out = {}
    for spec in (quiet, noisy):
        out[spec.stem] = tmp_path / f"{spec.stem}.h5"
        result = subprocess.run(
            SPRITEGEN + ["build", str(spec), "--out", str(out[spec.stem]), "--quiet"],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        warning = [line for line in result.stderr.splitlines() if "warning" in line]
        if spec is quiet:
            assert warning == []
        else:
            assert warning == [
                "spritegen: warning: spec section 'evaluation' names no preset, so the sizes it "
                "leaves out take the 'full' preset's (batch_size 64); add 'preset: NAME' (full, "
                "quick, tiny, none) to choose which preset fills them"
            ]
    with open_dataset(out["quiet"]) as a, open_dataset(out["noisy"]) as b:
        assert a.attrs["content_sha256"] == b.attrs["content_sha256"]


def test_spec_files_in_the_repository_are_valid():
    from spritegen.spec import load_spec

    specs = sorted(Path(__file__).parent.parent.joinpath("specs").glob("factors*.yaml"))
    assert len(specs) >= 7
    for path in specs:
        spec = load_spec(path)
        assert spec.factors == int(path.stem.replace("factors", "")[0])


def test_spec_round_trips_through_its_stored_text(dataset_k5):
    from spritegen.spec import parse_spec_text

    with open_dataset(dataset_k5) as f:
        text = f.attrs["spec"]
    assert parse_spec_text(text).to_yaml() == text
    with pytest.raises(SpecError):
        parse_spec_text(text.replace("factors: 5", "factors: 0"))


def test_spritegen_never_loads_torch_or_benchmark():
    code = (
        "import sys, spritegen, spritegen.cli, spritegen.build, spritegen.oracle, "
        "spritegen.verify, spritegen.adapters; "
        "bad = [m for m in ('torch', 'benchmark') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# Makes `import torch` (and matplotlib) fail in the child, as on a data-only install.
_NO_BENCH_EXTRA = "import sys; sys.modules['torch'] = sys.modules['matplotlib'] = None; "


@pytest.mark.slow
def test_spritegen_cli_builds_and_verifies_without_torch(tmp_path):
    out = tmp_path / "k2.h5"
    for args in (
        ["build", "--factors", "2", "--n", "40", "--eval-preset", "tiny", "--out", str(out)],
        ["verify", str(out)],
        ["info", str(out)],
    ):
        code = _NO_BENCH_EXTRA + f"from spritegen.cli import main; main({args!r})"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_bench_without_torch_says_which_extra_to_install():
    code = _NO_BENCH_EXTRA + "from benchmark.cli import main; main(['models'])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "bench: error: torch is not installed; the benchmark needs the bench extra: "
        "pip install 'spritegen[bench]'"
    ]


@pytest.mark.ray
def test_build_on_ray_gives_the_same_bytes(tmp_path):
    pytest.importorskip("ray")
    import tempfile

    local = build_small(tmp_path, 3, n=600, name="local.h5")
    on_ray = tmp_path / "ray.h5"
    env = {**os.environ, "RAY_TMPDIR": tempfile.mkdtemp(prefix="ray", dir="/tmp")}
    result = subprocess.run(
        SPRITEGEN
        + [
            "build",
            "--factors",
            "3",
            "--n",
            "600",
            "--eval-preset",
            "tiny",
            "--executor",
            "ray",
            "--out",
            str(on_ray),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert sha(on_ray) == sha(local)
    result = subprocess.run(
        SPRITEGEN + ["build", "--factors", "3", "--address", "auto"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "--address is for --executor ray" in result.stderr
