"""Malformed inputs to `bench`: each gets one line on stderr naming what is wrong, exit status 2,
no traceback, and leaves every file as it was.

The inputs are real: tiny datasets built by spritegen and then damaged with h5py, run folders
written by `bench run` and then damaged, plugin packages installed as dist-info folders on the
path, representation modules written as files. `bench` runs in-process through its console entry
(``benchmark.cli.main``, the same ``run_cli`` the script uses), so an exception that escapes it
fails the test as a traceback would.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import shutil
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from cli_helpers import assert_one_clear_line, invoke, snapshot
from train_fixtures import make_tiny_dataset

from benchmark.cli import main

QUIET = ["--quiet", "--score-preset", "none", "--final-preset", "none"]
TINY_RUN = ["--batch-size", "16", "--latent-dim", "3", "--device", "cpu", "--epochs", "1"]


# --- fixtures: real data made by spritegen, damaged copies, a run folder -------------------


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """A tiny training set, one with tiny evaluation sets, and an unfinished run folder."""
    root = tmp_path_factory.mktemp("made")
    tiny = make_tiny_dataset(root / "tiny.h5", n=64, seed=2)
    scored = make_tiny_dataset(root / "scored.h5", n=64, seed=3, eval_preset="tiny")
    run = root / "run"
    code = main_status(
        ["run", "--model", "betavae", "--data", str(tiny), *TINY_RUN, *QUIET, "--out", str(run)]
    )
    assert code == 0
    (run / "summary.json").unlink()  # as if killed after its last checkpoint
    return {"tiny": tiny, "scored": scored, "run": run}


def main_status(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """The test's folder, also the current directory (so stray writes show in the snapshot)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def damaged(made, work: Path, how: Callable[[h5py.File], None], name: str = "data.h5") -> Path:
    path = work / name
    shutil.copy(made["tiny"], path)
    with h5py.File(path, "r+") as f:
        how(f)
    return path


def garble_compressed_chunk(f: h5py.File) -> None:
    dset = f["images"]
    mask, stored = dset.id.read_direct_chunk((0, 0, 0, 0))
    stored = bytearray(stored)
    stored[len(stored) // 2 : len(stored) // 2 + 16] = b"\xff" * 16
    dset.id.write_direct_chunk((0, 0, 0, 0), bytes(stored), filter_mask=mask)


def alter_one_pixel(f: h5py.File) -> None:
    """Change one byte of the raw rows and store the chunk validly compressed again."""
    dset = f["images"]
    mask, stored = dset.id.read_direct_chunk((0, 0, 0, 0))
    raw = bytearray(zlib.decompress(stored))
    raw[4096 * 3 + 100] ^= 0x01
    dset.id.write_direct_chunk((0, 0, 0, 0), zlib.compress(bytes(raw), 1), filter_mask=mask)


def run_args(data: Path | str, out: Path, model: str = "betavae") -> list[str]:
    return ["run", "--model", model, "--data", str(data), *TINY_RUN, *QUIET, "--out", str(out)]


# --- flags --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, fragments",
    [
        (["--beta", "inf"], ["beta: must be finite, got inf", "model 'betavae'"]),
        (["--beta", "-inf"], ["beta: must be finite"]),
        (["--param", "beta=.nan"], ["beta: must be finite, got nan"]),
        (["--beta-norm", "nan"], ["beta_norm: must be finite"]),
        (["--lr", "inf"], ["--lr", "finite"]),
        (["--param", "gamma=3"], ["gamma is not a parameter of model 'betavae'", "--beta"]),
        (["--gamma", "3"], ["--gamma is not a parameter of model 'betavae'"]),
        # every unknown flag is read as a model parameter: a mistyped option of bench run's own
        # was only "not a parameter of model ...; it accepts: --beta, --beta-norm"
        (["--stpes", "3"], ["it accepts: --beta, --beta-norm; did you mean --steps (an option"]),
        (["--latent", "3"], ["did you mean --latent-dim (an option of bench run)?"]),
        (["--bta", "3"], ["did you mean --beta (a parameter of the model)?"]),
        (["--param", "9lives=1"], ["--param '9lives=1'", "key=value"]),
        (["--latent-dim", "0"], ["--latent-dim", "positive integer"]),
        (["--batch-size", "-4"], ["--batch-size", "positive integer"]),
        (["--lr", "0"], ["--lr", "positive"]),
        # Adam's float32 step size overflowed inside the update, reported as the model's fault
        (["--lr", "1e38"], ["--lr", "at most 1e+30", "got 1e+38"]),
        (["--device", "tpu"], ["--device", "cpu"]),
        (["--amp"], ["--amp", "CUDA"]),
        (["--score-preset", "huge"], ["--score-preset", "quick"]),
        (["--param", "x=" + "[" * 1000], ["--param x", "nested more than 50 deep"]),
        (["--beta", "&a 1"], ["--beta", "anchors and aliases"]),
        (["--param", "beta={a: 1, a: 2}"], ["--param beta", "duplicate key 'a'"]),
        # torch.Generator.manual_seed takes an unsigned 64-bit seed: 2**64 was an overflow, exit 1
        (["--seed", str(2**64)], ["--seed", "0..18446744073709551615", str(2**64)]),
        (["--seed", "-1"], ["--seed", "0..18446744073709551615", "got -1"]),
    ],
)
def test_bad_run_flags(made, work, capsys, extra, fragments):
    args = run_args(made["tiny"], work / "out") + extra  # a repeated option: the last wins
    if "--amp" in extra and torch.cuda.is_available():
        pytest.skip("--amp is allowed with CUDA")
    assert_one_clear_line(capsys, work, args, *fragments)


@pytest.mark.parametrize("latent_dim", ["0", "-1"])
def test_bad_models_latent_dim(work, capsys, latent_dim):
    assert_one_clear_line(
        capsys, work, ["models", "--latent-dim", latent_dim], "'--latent-dim'", "x>=1"
    )


def test_unknown_model_names_the_installed_ones(made, work, capsys):
    assert_one_clear_line(
        capsys, work, run_args(made["tiny"], work / "o", model="nosuch"), "unknown model 'nosuch'"
    )


# --- data files ---------------------------------------------------------------------------


def test_corrupt_compressed_chunk_is_named(made, work, capsys):
    path = damaged(made, work, garble_compressed_chunk)
    assert_one_clear_line(
        capsys,
        work,
        run_args(path, work / "out"),
        str(path),
        "/images rows 0..63 (chunk 0)",
        "corrupt compressed data",
        "spritegen verify",
    )


def test_altered_chunk_fails_its_checksum(made, work, capsys):
    path = damaged(made, work, alter_one_pixel)
    assert_one_clear_line(
        capsys,
        work,
        run_args(path, work / "out"),
        "/images rows 0..63 (chunk 0) does not match its stored checksum",
        "spritegen verify",
    )


@pytest.mark.parametrize(
    "how, fragments",
    [
        (lambda f: f.__delitem__("checksums"), ["'/checksums/images' is missing", "rebuild"]),
        (lambda f: f.__delitem__("metadata"), ["'/metadata/", "is missing", "rebuild"]),
        (lambda f: f.attrs.__delitem__("content_sha256"), ["'content_sha256' is missing"]),
        (
            lambda f: f["factors"].__setitem__((0, 0), f["factors"][0, 0] + 0.25),
            ["factors", "changed since the build", "spritegen verify"],
        ),
        (
            lambda f: f["checksums/images"].__setitem__((0, 0), 0),
            ["changed since the build"],
        ),
    ],
    ids=["no-checksums", "no-metadata", "no-content-digest", "factors-altered", "table-altered"],
)
def test_unprotected_or_altered_files_are_refused(made, work, capsys, how, fragments):
    path = damaged(made, work, how)
    assert_one_clear_line(capsys, work, run_args(path, work / "out"), str(path), *fragments)


@pytest.mark.parametrize(
    "content, fragment",
    [(b"", "not an HDF5 file"), (b"factors: 2\n", "not an HDF5 file")],
    ids=["empty", "text"],
)
def test_data_that_is_not_hdf5(work, capsys, content, fragment):
    path = work / "x.h5"
    path.write_bytes(content)
    assert_one_clear_line(capsys, work, run_args(path, work / "out"), str(path), fragment)


def test_unknown_data_kind(work, capsys):
    assert_one_clear_line(
        capsys, work, run_args("mnist:x.npz", work / "o"), "unknown dataset kind 'mnist'"
    )


# --- run folders and checkpoints ----------------------------------------------------------


def copy_run(made, work: Path) -> Path:
    out = work / "run"
    shutil.copytree(made["run"], out)
    config = json.loads((out / "config.json").read_text())
    config["out"] = str(out)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return out


@pytest.mark.parametrize(
    "name, content, fragments",
    [
        ("config.json", "{not json", ["config.json is not valid JSON", "--force", "another --out"]),
        ("config.json", "[]", ["config.json holds a JSON list", "--force"]),
        ("summary.json", "{", ["summary.json is not valid JSON", "--force"]),
    ],
)
def test_unreadable_run_records(made, work, capsys, name, content, fragments):
    out = copy_run(made, work)
    (out / name).write_text(content)
    assert_one_clear_line(
        capsys,
        work,
        run_args(made["tiny"], out),
        f"--out {out} is not a readable run folder",
        *fragments,
    )


def test_out_that_is_not_a_run_folder(made, work, capsys):
    (work / "mine").mkdir()
    (work / "mine" / "notes.txt").write_text("mine")
    assert_one_clear_line(
        capsys, work, run_args(made["tiny"], work / "mine"), "not a run folder", "no config.json"
    )


def test_out_under_a_file(made, work, capsys):
    (work / "afile").write_text("x")
    assert_one_clear_line(
        capsys,
        work,
        run_args(made["tiny"], work / "afile" / "run"),
        "cannot create the run folder",
        "writable folder",
    )


def test_out_that_is_a_file(made, work, capsys):
    """`--out notes.txt` read "cannot create the run folder (Not a directory)", as if the disk
    or its permissions were at fault; the file is named for what it is, and left as it was."""
    (work / "notes.txt").write_text("mine")
    line = assert_one_clear_line(
        capsys,
        work,
        run_args(made["tiny"], work / "notes.txt"),
        "notes.txt' is a file, not a folder",
        "choose a new or empty folder",
    )
    assert "Not a directory" not in line
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    ("command", "what"),
    [("run", "run"), ("sweep", "sweep"), ("report", "report"), ("export", "export")],
)
def test_every_output_on_a_read_only_file_system_is_one_line(
    command, what, made, work, read_only, capsys
):
    """Each bench command that writes a folder, pointed into a read-only file system: one line
    naming the flag, the path and the system's reason, exit 2, nothing written anywhere."""
    root = Path(__file__).resolve().parents[1]
    records = root / "docs/results/runs/experiment2-k5-60-epochs"
    args = {
        "run": run_args(made["tiny"], Path("ro/new")),
        "sweep": ["sweep", str(root / "specs/sweep-tiny.yaml"), "--out", "ro/new"],
        "report": ["report", str(records), "--out", "ro/new"],
        "export": ["report", str(records), "--export", "ro/new"],
    }[command]
    flag = "--export" if command == "export" else "--out"
    assert_one_clear_line(
        capsys,
        work,
        args,
        f"{flag} 'ro/new': cannot create the {what} folder (Read-only file system); "
        "choose a writable folder",
    )
    assert list(read_only.iterdir()) == []


def test_out_through_a_missing_folder_is_checked_where_it_lands(made, work, capsys):
    """``sub/../mine`` is ``mine`` once ``sub`` is made, but while ``sub`` is missing nothing
    there can be looked at: the user's folder was taken for a new run and trained into, and an
    empty ``sub`` was left beside it."""
    (work / "mine").mkdir()
    (work / "mine" / "notes.txt").write_text("mine")
    args = run_args(made["tiny"], Path("sub/../mine"))
    assert_one_clear_line(
        capsys, work, args, "--out mine exists and is not a run folder", "no config.json"
    )
    assert not (work / "sub").exists()


class Payload:
    """Unpickling this would run code; a safe loader refuses it."""

    def __reduce__(self):
        return (print, ("payload ran",))


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


@pytest.mark.parametrize(
    "spoil, why",
    [
        (_truncated, "truncated or not a torch checkpoint"),
        (lambda p: p.write_bytes(b""), "truncated or not a torch checkpoint"),
        (lambda p: torch.save({"x": Payload()}, p), "Python objects other than tensors"),
        (lambda p: torch.save({"format": 1, "model": {}}, p), "it lacks optimizer"),
        (lambda p: torch.save([1, 2], p), "not a bench run checkpoint"),
    ],
    ids=["truncated", "empty", "pickled-object", "missing-keys", "not-a-dict"],
)
def test_unreadable_checkpoint(made, work, capsys, spoil, why):
    out = copy_run(made, work)
    spoil(out / "checkpoints" / "last.pt")
    line = assert_one_clear_line(
        capsys,
        work,
        run_args(made["tiny"], out),
        f"checkpoint {out / 'checkpoints' / 'last.pt'} is unreadable",
        why,
        "--force",
        "delete last.pt",
    )
    assert "weights_only" not in line and "payload ran" not in capsys.readouterr().out


def test_checkpoint_of_another_model(made, work, capsys):
    out = copy_run(made, work)
    ck = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    ck["model"] = {k: v[..., :1] for k, v in ck["model"].items()}
    torch.save(ck, out / "checkpoints" / "last.pt")
    assert_one_clear_line(
        capsys, work, run_args(made["tiny"], out), "unreadable", "does not fit this model"
    )


def _interrupted_run(made, work: Path, name: str, *extra: str) -> Path:
    """A real run of ``made["tiny"]`` into ``work/name`` (TINY_RUN, then ``extra``), left as a
    kill after its last checkpoint leaves it."""
    out = work / name
    assert main_status([*run_args(made["tiny"], out), *extra]) == 0
    (out / "summary.json").unlink()
    return out


def _strip_identity(out: Path) -> None:
    """Make ``out`` look written before runs recorded their identity: no dataset identity in
    config.json, no run record in the checkpoint."""
    config = json.loads((out / "config.json").read_text())
    del config["data_identity"]
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    ck = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    del ck["run"]
    torch.save(ck, out / "checkpoints" / "last.pt")


def test_checkpoint_copied_from_another_run(made, work, capsys):
    out = copy_run(made, work)
    other = _interrupted_run(made, work, "other", "--batch-size", "32")
    shutil.copy(other / "checkpoints" / "last.pt", out / "checkpoints" / "last.pt")
    assert_one_clear_line(
        capsys,
        work,
        run_args(made["tiny"], out),
        f"checkpoint {out / 'checkpoints' / 'last.pt'} was written by another run",
        "batch_size 32 recorded, 16 now",
        "--force",
        "another --out",
    )


def test_old_checkpoint_of_another_schedule(made, work, capsys):
    """Without a run record (an older checkpoint) the step is still checked against the run's
    schedule: 2 steps of 32 images are no point of a run of 4 steps of 16 per epoch."""
    out = copy_run(made, work)
    other = _interrupted_run(made, work, "other", "--batch-size", "32")
    _strip_identity(other)
    shutil.copy(other / "checkpoints" / "last.pt", out / "checkpoints" / "last.pt")
    assert_one_clear_line(
        capsys,
        work,
        run_args(made["tiny"], out),
        "was written by another run: its step 2 (epoch 1, batch 0)",
        "4 steps per epoch",
        "--force",
    )


def test_config_edited_to_fit_other_flags(made, work, capsys):
    """beta changed in config.json and passed as --beta: the checkpoint still says beta 4."""
    out = copy_run(made, work)
    config = json.loads((out / "config.json").read_text())
    config["hparams"] = {"beta": 8.0}
    config["model_hparams"]["beta"] = 8.0
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    assert_one_clear_line(
        capsys,
        work,
        [*run_args(made["tiny"], out), "--beta", "8"],
        "was written by another run",
        "model_hparams.beta 4.0 recorded, 8.0 now",
    )


def test_dataset_rebuilt_at_the_same_path(work, capsys):
    data = make_tiny_dataset(work / "d.h5", n=64, seed=2)
    out = work / "run"
    assert main_status(run_args(data, out)) == 0
    (out / "summary.json").unlink()
    recorded = json.loads((out / "config.json").read_text())["data_identity"]
    make_tiny_dataset(work / "other.h5", n=64, seed=3)
    shutil.copy(work / "other.h5", data)  # same path, same size and shape, other images
    assert_one_clear_line(
        capsys,
        work,
        run_args(data, out),
        f"{out} holds a different run (differs in data_identity",
        f"data_identity.dataset_id {recorded['dataset_id']!r} recorded",
        "--force",
    )


def test_a_run_moved_with_its_data_resumes_and_other_data_there_is_refused(made, work, capsys):
    """A run folder and its dataset moved together (a sweep folder moved or copied to another
    disk) used to be refused as "a different run (differs in data)": the path was part of the
    run's identity although the data's content digest is recorded too."""
    moved = work / "elsewhere"
    moved.mkdir()
    data = moved / "tiny.h5"
    shutil.copy(made["tiny"], data)
    out = moved / "run"
    shutil.copytree(made["run"], out)
    status, err, _ = invoke(capsys, *run_args(data, out))
    assert status == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["data"] == str(data.resolve())
    assert json.loads((out / "config.json").read_text())["data"] == str(data.resolve())
    # other images at the new path are still another run
    (out / "summary.json").unlink()
    make_tiny_dataset(work / "other.h5", n=64, seed=3)
    shutil.copy(work / "other.h5", data)
    assert_one_clear_line(
        capsys, work, run_args(data, out), f"{out} holds a different run (differs in data_identity"
    )


def test_run_folder_from_before_identities_still_resumes(made, work, capsys):
    out = copy_run(made, work)
    _strip_identity(out)
    status, err, _ = invoke(capsys, *run_args(made["tiny"], out))
    assert status == 0, err
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"
    identity = json.loads((out / "config.json").read_text())["data_identity"]
    assert identity["kind"] == "spritegen" and len(identity["content_sha256"]) == 64


# --- plugins ------------------------------------------------------------------------------


def install_plugin(site: Path, dist: str, module: str, source: str, models: dict[str, str]):
    """A plugin distribution as pip leaves it: the module and a dist-info with entry points."""
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = [f"{name} = {target}" for name, target in models.items()]
    (info / "entry_points.txt").write_text("[benchmark.models]\n" + "\n".join(lines) + "\n")


EXITS_ON_IMPORT = "import sys\nsys.exit('plugin gave up')\n"
RAISES_ON_IMPORT = "raise RuntimeError('plugin import failed')\n"
EXITS_IN_CONSTRUCTOR = """
import sys
from benchmark.models.vae import VAE

class Quitter(VAE):
    def __init__(self, image_shape, latent_dim):
        sys.exit(3)
"""


@pytest.mark.parametrize(
    "source, fragments",
    [
        (EXITS_ON_IMPORT, ["is broken: cannot load", "SystemExit: plugin gave up"]),
        (RAISES_ON_IMPORT, ["is broken: cannot load", "RuntimeError: plugin import failed"]),
        (EXITS_IN_CONSTRUCTOR, ["failed to build: SystemExit: 3"]),
    ],
    ids=["exit-on-import", "raise-on-import", "exit-in-constructor"],
)
def test_broken_plugin_never_ends_the_command(made, work, capsys, source, fragments):
    mod = f"plug_{abs(hash(source)) % 10**8}"
    model = f"{mod}_model"
    target = f"{mod}:Quitter" if "Quitter" in source else f"{mod}:Model"
    install_plugin(work, f"plugdist_{mod}", mod, source, {model: target})
    assert_one_clear_line(
        capsys, work, run_args(made["tiny"], work / "o", model=model), f"'{model}'", *fragments
    )
    status, err, listing = invoke(capsys, "models")  # lists everything, the plugin as broken
    assert status == 0 and "Traceback" not in err, err
    lines = {line.split()[0]: line for line in listing.splitlines() if line[:1].strip()}
    assert "BROKEN" in lines[model] and " ok " in lines["betavae"], listing
    assert "SystemExit" in listing or "RuntimeError" in listing


LINES_ON_IMPORT = "raise RuntimeError('plugin import failed\\nsecond line')\n"
LINES_IN_CONSTRUCTOR = """
from benchmark.models.vae import VAE

class Model(VAE):
    def __init__(self, image_shape, latent_dim, alpha: float = 1.0):
        raise {kind}("cannot build this\\nsecond line")
"""
LINES_ON_DRY_PASS = """
from benchmark.models.vae import VAE

class Model(VAE):
    def encode(self, x):
        raise RuntimeError("no encoder\\nsecond line")
"""
HPARAMS_RAISES = """
from benchmark.models.vae import VAE

class Model(VAE):
    @property
    def hparams(self):
        raise RuntimeError("no record\\nsecond line")
"""


@pytest.mark.parametrize(
    "source, fragment",
    [
        (LINES_ON_IMPORT, "RuntimeError: plugin import failed"),
        (LINES_IN_CONSTRUCTOR.format(kind="ValueError"), "': cannot build this"),
        (LINES_IN_CONSTRUCTOR.format(kind="RuntimeError"), "failed to build: RuntimeError: cannot"),
        (LINES_ON_DRY_PASS, "dry forward pass failed: RuntimeError: no encoder"),
        (HPARAMS_RAISES, "its 'hparams' failed: RuntimeError: no record"),
    ],
    ids=["import", "constructor-valueerror", "constructor-raises", "dry-pass", "hparams"],
)
def test_a_plugin_failing_with_a_message_of_several_lines(made, work, capsys, source, fragment):
    """What a plugin raises is quoted by its first line: the whole message broke the error line
    (and `bench models`' listing) in two; an ``hparams`` property that raised was a traceback."""
    model = plugin_model(work, source)
    args = run_args(made["tiny"], work / "o", model=model)
    line = assert_one_clear_line(capsys, work, args, f"model '{model}'", fragment)
    assert "second line" not in line
    rows = listing_of(capsys)
    assert "BROKEN" in rows[model] and fragment in rows[model], rows[model]
    assert "second line" not in "".join(rows.values())


def listing_of(capsys) -> dict[str, str]:
    """`bench models` (exit 0, no traceback): each model's name -> its lines of the listing."""
    status, err, listing = invoke(capsys, "models", "--latent-dim", "3")
    assert status == 0 and "Traceback" not in err, err
    rows: dict[str, str] = {}
    name = ""
    for line in listing.splitlines():
        if line[:1].strip():
            name = line.split()[0]
        rows[name] = rows.get(name, "") + line + "\n"
    return rows


def plugin_model(work: Path, source: str) -> str:
    """Install ``source`` (defining ``class Model``) as a plugin; the model's registered name."""
    mod = f"plug_{hashlib.sha256(source.encode()).hexdigest()[:10]}"
    install_plugin(work, f"plugdist_{mod}", mod, source, {f"{mod}_model": f"{mod}:Model"})
    return f"{mod}_model"


SHADOWED_HPARAMS = """
from benchmark.models.vae import VAE

class Model(VAE):
    def __init__(self, image_shape, latent_dim, seed: int = 3, lr: float = 0.1, alpha=1.0):
        super().__init__(image_shape, latent_dim)
        self.seed, self.lr = seed, lr
"""


def test_hyperparameter_named_like_a_run_option(made, work, capsys):
    """`--seed 5` sets the run's seed: a model's own `seed` could never be set, so it is refused."""
    model = plugin_model(work, SHADOWED_HPARAMS)
    line = assert_one_clear_line(
        capsys,
        work,
        [*run_args(made["tiny"], work / "o", model=model), "--seed", "5"],
        f"model '{model}'",
        "is broken",
        "'seed', 'lr'",
        "--seed, --lr",
        "rename them",
    )
    assert "alpha" not in line
    rows = listing_of(capsys)
    assert "BROKEN" in rows[model] and "'seed', 'lr'" in rows[model], rows[model]
    assert " ok " in rows["betavae"]


NO_PARAMETERS = """
import torch
from benchmark.models.base import GaussianVAE

class Model(GaussianVAE):
    def encode(self, x):
        return torch.zeros(len(x), self.latent_dim), torch.zeros(len(x), self.latent_dim)

    def decode(self, z):
        return torch.zeros(len(z), *self.image_shape)
"""
DETACHED_LOSS = """
from benchmark.models.vae import VAE

class Model(VAE):
    def loss(self, x, *, step=0, generator=None):
        terms = super().loss(x, step=step, generator=generator)
        return {k: t.detach() for k, t in terms.items()}
"""
COMPLEX_MEANS = """
import torch
from benchmark.models.vae import VAE

class Model(VAE):
    def encode(self, x):
        mu, logvar = super().encode(x)
        return mu.to(torch.complex64), logvar
"""
HPARAMS_LIST = """
from benchmark.models.vae import VAE

class Model(VAE):
    @property
    def hparams(self):
        return [1, 2]
"""
HPARAMS_INFINITE = """
from benchmark.models.vae import VAE

class Model(VAE):
    def __init__(self, image_shape, latent_dim, alpha: float = float("inf")):
        super().__init__(image_shape, latent_dim)
        self.alpha = alpha

    @property
    def hparams(self):
        return {"alpha": self.alpha}
"""


@pytest.mark.parametrize(
    "source, fragments",
    [
        (NO_PARAMETERS, ["has no parameters to train", "model.parameters() is empty"]),
        (DETACHED_LOSS, ["loss['loss'] does not require grad", "without detach()"]),
        (HPARAMS_LIST, ["'hparams' must be a dict", "got a list: [1, 2]"]),
        (HPARAMS_INFINITE, ["'hparams' holds non-finite values (alpha=inf)", "finite values"]),
        # it was "dry forward pass failed: RuntimeError: mat1 and mat2 must have the same dtype"
        (COMPLEX_MEANS, ["encode returned mu of dtype complex64", "a real floating dtype"]),
    ],
    ids=["no-parameters", "detached-loss", "hparams-list", "hparams-infinite", "complex-mu"],
)
def test_model_that_cannot_train_is_broken_at_build(made, work, capsys, source, fragments):
    """Caught by the dry pass, before the run folder exists: not by torch at the first step."""
    model = plugin_model(work, source)
    args = run_args(made["tiny"], work / "o", model=model)
    assert_one_clear_line(capsys, work, args, f"model '{model}'", *fragments)
    assert not (work / "o").exists()
    rows = listing_of(capsys)
    assert "BROKEN" in rows[model] and fragments[0] in rows[model], rows[model]


def test_finite_hyperparameter_makes_the_same_model_usable(made, work, capsys):
    """Only the non-finite value is refused: with --alpha 2 the run's records are plain JSON."""
    model = plugin_model(work, HPARAMS_INFINITE)
    status, err, _ = invoke(
        capsys, *run_args(made["tiny"], work / "o", model=model), "--alpha", "2"
    )
    assert status == 0, err
    for name in ("config.json", "summary.json"):
        record = json.loads((work / "o" / name).read_text(), parse_constant=pytest.fail)
        assert record["model_hparams"] == {"alpha": 2.0}


RICHLY_ANNOTATED = """
from typing import Literal, NewType

import torch
from benchmark.models.vae import VAE

Width = NewType("Width", int)


class Model(VAE):
    def __init__(self, image_shape, latent_dim, depth: Literal[1, 2, 3] = 1, width: Width = 4):
        super().__init__(image_shape, latent_dim)
        self.extra = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(depth)])
        self.depth, self.width = depth, width

    @property
    def hparams(self):
        return {"depth": self.depth, "width": self.width}
"""


def test_an_integer_for_a_richer_annotation_reaches_the_model_as_given(made, work, capsys):
    """Only an annotation that declares float makes an integer a float (``--beta 8`` is 8.0):
    ``--depth 2`` for ``Literal[1, 2, 3]`` and ``--width 8`` for a NewType of int reached the
    constructor as 2.0 and 8.0, and the run stopped at ``range(depth)`` with "model ...:
    'float' object cannot be interpreted as an integer"."""
    model = plugin_model(work, RICHLY_ANNOTATED)
    args = [*run_args(made["tiny"], work / "o", model=model), "--depth", "2", "--width", "8"]
    status, err, _ = invoke(capsys, *args)
    assert status == 0, err
    record = json.loads((work / "o" / "config.json").read_text())["model_hparams"]
    assert record == {"depth": 2, "width": 8}
    assert all(type(v) is int for v in record.values())


NO_DEFAULT = """
from benchmark.models.vae import VAE


class Model(VAE):
    def __init__(self, image_shape, latent_dim, alpha: float, gamma: float = 1.0):
        super().__init__(image_shape, latent_dim)
        self.alpha, self.gamma = alpha, gamma

    @property
    def hparams(self):
        return {"alpha": self.alpha, "gamma": self.gamma}
"""


def test_a_hyperparameter_without_default_is_asked_for_not_called_broken(made, work, capsys):
    """A constructor argument without a default: `bench models` listed the model as BROKEN
    ("missing 1 required positional argument: 'alpha'"), a sweep that set alpha and varied
    gamma was refused at `grid.gamma[0]` with the same words, and `bench run` without --alpha
    showed Python's. The model is fine once alpha is given."""
    model = plugin_model(work, NO_DEFAULT)
    rows = listing_of(capsys)
    assert " ok " in rows[model] and "BROKEN" not in rows[model], rows[model]
    assert "params: alpha=required, gamma=1.0" in rows[model]
    assert "not dry-run: alpha without default" in rows[model], rows[model]
    assert_one_clear_line(
        capsys,
        work,
        run_args(made["tiny"], work / "o", model=model),
        f"model '{model}' needs a value for 'alpha' (its constructor gives no default)",
        "--alpha VALUE on the command line, alpha: VALUE in a sweep spec",
    )
    spec = work / "s.yaml"
    spec.write_text(
        f"name: s\nset: {{model: {model}, data: '{made['tiny']}', epochs: 1, alpha: 2}}\n"
        "grid: {gamma: [1, 4]}\nreport: {x: gamma}\n"
    )
    status, err, out = invoke(capsys, "sweep", str(spec), "--out", str(work / "sw"), "--dry-run")
    assert status == 0, err
    assert "2 runs (s: 2)" in out, out
    spec.write_text(spec.read_text().replace(", alpha: 2", ""))
    assert_one_clear_line(
        capsys,
        work,
        ["sweep", str(spec), "--out", str(work / "sw"), "--dry-run"],
        f"experiment s: model '{model}' needs a value for 'alpha'",
    )
    status, err, _ = invoke(
        capsys, *run_args(made["tiny"], work / "o", model=model), "--alpha", "2"
    )
    assert status == 0, err
    record = json.loads((work / "o" / "config.json").read_text())["model_hparams"]
    assert record == {"alpha": 2.0, "gamma": 1.0}


ENCODE_SHAPE_LATE = """
from benchmark.models.vae import VAE

class Model(VAE):
    def encode(self, x):  # right for the dry pass's 2 images, one latent short for a batch
        mu, logvar = super().encode(x)
        return (mu[:, :-1], logvar[:, :-1]) if len(x) > 2 else (mu, logvar)
"""
KL_SHAPE_LATE = """
from benchmark.models.vae import VAE

class Model(VAE):
    def loss(self, x, *, step=0, generator=None):
        terms = super().loss(x, step=step, generator=generator)
        if step >= 1:
            terms["kl_per_dim"] = terms["kl_per_dim"][:-1]
        return terms
"""
LOSS_RAISES_LATE = """
from benchmark.models.vae import VAE

class Model(VAE):
    def loss(self, x, *, step=0, generator=None):
        if step == 2:
            raise RuntimeError(f"boom at step {step}\\nsecond line")
        return super().loss(x, step=step, generator=generator)
"""
LOSS_DETACHED_LATE = """
from benchmark.models.vae import VAE

class Model(VAE):
    def loss(self, x, *, step=0, generator=None):
        terms = super().loss(x, step=step, generator=generator)
        return {k: t.detach() for k, t in terms.items()} if step == 2 else terms
"""
LOSS_EXITS_LATE = """
import sys
from benchmark.models.vae import VAE

class Model(VAE):
    def loss(self, x, *, step=0, generator=None):
        if step == 2:
            sys.exit("plugin gave up")
        return super().loss(x, step=step, generator=generator)
"""


@pytest.mark.parametrize(
    "source, fragments",
    [
        (
            ENCODE_SHAPE_LATE,
            [
                "failed at step 1 (epoch 1) in loss(): RuntimeError: mat1 and mat2 shapes",
                "because encode returned mu of shape (16, 2), expected (16, 3) for a batch of 16",
            ],
        ),
        (
            KL_SHAPE_LATE,
            ["broke its contract at step 2 (epoch 1): kl_per_dim has shape (2,), expected (3,)"],
        ),
        (LOSS_RAISES_LATE, ["failed at step 3 (epoch 1) in loss(): RuntimeError: boom at step 2;"]),
        (
            LOSS_DETACHED_LATE,
            ["step 3 (epoch 1) in the backward pass of loss()['loss']", "does not require grad"],
        ),
        (LOSS_EXITS_LATE, ["step 3 (epoch 1) in loss(): SystemExit: plugin gave up"]),
    ],
    ids=["encode-shape", "kl-shape", "loss-raises", "loss-detached", "loss-exits"],
)
def test_model_failing_while_training(made, work, capsys, source, fragments):
    """Good input, a model that failed: exit 1, one line naming the model, the step, the method
    and the exception; the folder keeps config.json and its checkpoints, and summary.json says
    "failed" (as a diverged run's says "diverged"), so the same command resumes after a fix."""
    model = plugin_model(work, source)
    out = work / "o"
    args = [*run_args(made["tiny"], out, model=model), "--checkpoint-every", "1"]
    status, err, _ = invoke(capsys, *args)
    assert status == 1, f"exit {status}: {err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    mod = model.removesuffix("_model")
    assert lines[0].startswith(f"bench: error: model '{model}' ({mod}:Model) "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "second line" not in lines[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary == {"status": "failed", "error": lines[0].removeprefix("bench: error: ")}
    assert (out / "config.json").is_file()
    assert not list(out.rglob("*.partial"))
    kept = snapshot(out)
    assert ("checkpoints/last.pt" in kept) == ("step 1 " not in lines[0])
    status, again, _ = invoke(capsys, *args)  # the same command resumes and fails the same way
    assert status == 1 and again == err


ENCODE_RAISES_IN_EVAL = """
from benchmark.models.vae import VAE

class Model(VAE):
    def encode(self, x):
        if not self.training:
            raise ValueError("no scoring for me\\nsecond line")
        return super().encode(x)
"""
ENCODE_SHAPE_IN_EVAL = """
from benchmark.models.vae import VAE

class Model(VAE):
    def encode(self, x):
        mu, logvar = super().encode(x)
        return (mu, logvar) if self.training else (mu[:, :2], logvar[:, :2])
"""

ENCODE_COMPLEX_IN_EVAL = """
import torch
from benchmark.models.vae import VAE

class Model(VAE):
    def encode(self, x):
        mu, logvar = super().encode(x)
        return (mu, logvar) if self.training else (mu.to(torch.complex64) * (1 + 1j), logvar)
"""


@pytest.mark.parametrize(
    "source, fragment",
    [
        (
            ENCODE_RAISES_IN_EVAL,
            "failed while scoring, in encode(): ValueError: no scoring for me;",
        ),
        (ENCODE_SHAPE_IN_EVAL, "broke its contract while scoring: encode returned mu of shape"),
        # scored on the real part alone (a torch warning), then failed in decode when drawn
        (
            ENCODE_COMPLEX_IN_EVAL,
            "broke its contract while scoring: encode returned mu of dtype complex64",
        ),
    ],
    ids=["raises", "shape", "complex"],
)
@pytest.mark.parametrize("when", ["epoch", "final"])
def test_model_failing_while_scored(made, work, capsys, source, fragment, when):
    """A model that trains but fails when scored (in eval mode) is the same one line, exit 1,
    and a 'failed' summary as a failure during a training step, whether the per-epoch or the
    final evaluation meets it."""
    model = plugin_model(work, source)
    out = work / "o"
    presets = {"epoch": ["--score-preset", "stored"], "final": ["--final-preset", "stored"]}[when]
    status, err, _ = invoke(capsys, *run_args(made["scored"], out, model=model), *presets)
    assert status == 1, f"exit {status}: {err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    mod = model.removesuffix("_model")
    assert lines[0].startswith(f"bench: error: model '{model}' ({mod}:Model) "), lines[0]
    assert fragment in lines[0] and "second line" not in lines[0], lines[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary == {"status": "failed", "error": lines[0].removeprefix("bench: error: ")}


DECODE_RAISES_IN_EVAL = """
from benchmark.models.vae import VAE

class Model(VAE):
    def decode(self, z):
        if not self.training:
            raise ValueError("no pictures for me\\nsecond line")
        return super().decode(z)
"""
DECODE_SHAPE_IN_EVAL = """
from benchmark.models.vae import VAE

class Model(VAE):
    def decode(self, z):
        logits = super().decode(z)
        return logits if self.training else logits[:, :, :8]
"""


@pytest.mark.parametrize(
    "source, fragment",
    [
        (
            DECODE_RAISES_IN_EVAL,
            "failed while drawing reconstructions.png, in decode(): ValueError: no pictures for "
            "me;",
        ),
        (
            DECODE_SHAPE_IN_EVAL,
            "broke its contract while drawing reconstructions.png: decode returned shape (8, 1, 8, "
            "64), expected (8, 1, 64, 64)",
        ),
    ],
    ids=["raises", "shape"],
)
def test_model_failing_while_its_pictures_are_drawn(made, work, capsys, source, fragment):
    """The pictures drawn after training call encode and decode in eval mode, unguarded: a
    model failing there (no scoring to meet it first) was a traceback, exit 1, and a folder
    without summary.json. Now it is the one line of a model failing while scored."""
    model = plugin_model(work, source)
    out = work / "o"
    status, err, _ = invoke(capsys, *run_args(made["tiny"], out, model=model))
    assert status == 1, f"exit {status}: {err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"bench: error: model '{model}' "), lines[0]
    assert fragment in lines[0] and "second line" not in lines[0], lines[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary == {"status": "failed", "error": lines[0].removeprefix("bench: error: ")}
    assert not (out / "checkpoints" / "model.pt").exists() and not list(out.rglob("*.partial"))


# --- bench score: representation modules and evaluation data -----------------------------

REPRESENT = """
import sys
import numpy as np

def good(x):
    return x.reshape(len(x), -1)[:, :4].astype(float)

def none(x):
    return None

def listed(x):
    return [1.0, 2.0]

def rows(x):
    return np.zeros((len(x) + 1, 3))

def flat(x):
    return np.zeros(len(x))

def quits(x):
    sys.exit(5)

def huge32(x):
    return np.full((len(x), 2), 1e38, dtype=np.float32)

def huge64(x):
    return np.random.default_rng(0).random((len(x), 3)) * 1e300

def cplx(x):
    return x.reshape(len(x), -1)[:, :4].astype(np.complex128) * (1 + 1j)

def lines(x):
    raise ValueError("no latents\\nsecond line")
"""


@pytest.mark.parametrize(
    "function, fragments",
    [
        ("none", ["returned None", "expected an (n, D) float array"]),
        ("listed", ["returned a list of 2 items", "(n, D) float array"]),
        ("rows", ["returned 301 rows for a batch of 300 images"]),
        ("flat", ["returned ndarray of shape (300,)", "(n, D) float array"]),
        ("quits", ["raised SystemExit: 5"]),
        ("huge32", ["values as large as 1e+38", "|z| <= 1e+30", "latent dims [0, 1]"]),
        ("huge64", ["values as large as 1e+300", "|z| <= 1e+30"]),
        ("cplx", ["returned complex numbers (dtype complex128)", "latents must be real"]),
        ("missing", ["has no attribute 'missing'"]),
        ("lines", ["raised ValueError: no latents on a batch of 300 images"]),
    ],
)
def test_bad_representation_function(made, work, capsys, function, fragments):
    (work / "reps_mod.py").write_text(REPRESENT)
    assert_one_clear_line(
        capsys,
        work,
        ["score", str(made["scored"]), "--represent", f"reps_mod:{function}"],
        *fragments,
    )


@pytest.mark.parametrize(
    "source, fragments",
    [
        ("raise RuntimeError('no GPU here')\n", ["RuntimeError: no GPU here", "imports cleanly"]),
        ("import sys\nsys.exit(1)\n", ["SystemExit: 1", "importing module"]),
        ("import not_a_module_anywhere\n", ["cannot import module"]),
        # a message of several lines is quoted by its first: the error line was two
        ("raise RuntimeError('no GPU\\nsecond line')\n", ["RuntimeError: no GPU; fix the"]),
        ("raise ImportError('no GPU\\nsecond line')\n", ["cannot import module", ": no GPU"]),
    ],
    ids=["raises", "exits", "import-error", "raises-lines", "import-error-lines"],
)
def test_representation_module_that_fails_on_import(made, work, capsys, source, fragments):
    name = f"rep_{abs(hash(source)) % 10**8}"
    (work / f"{name}.py").write_text(source)
    assert_one_clear_line(
        capsys, work, ["score", str(made["scored"]), "--represent", f"{name}:f"], *fragments
    )


def test_large_constant_latents_still_score(made, work, capsys):
    """A constant 1e20 is within the limit: numpy cannot cut its (zero) range into 20 bins at
    that magnitude (it raised 'Too many bins for data range'); the histogram metrics bin it
    relative to its minimum and score it as the constant it is."""
    (work / "const_rep.py").write_text(
        "import numpy as np\ndef f(x):\n    return np.full((len(x), 2), 1e20)\n"
    )
    args = ["score", str(made["scored"]), "--represent", "const_rep:f", "--json"]
    status, err, out = invoke(capsys, *args, "--metrics", "mig,sap,modularity")
    assert status == 0, err
    result = json.loads(out)
    assert result["mig"] == 0.0 and result["sap"] == 0.0 and result["modularity"] == 0.0


def test_what_a_representation_prints_goes_to_stderr_not_into_the_json(made, work, capsys):
    """A print in the user's module (on import, and on every batch) came before the JSON object
    on stdout, so `bench score --json > scores.json` wrote a file no JSON reader could read."""
    (work / "chatty_rep.py").write_text(
        "print('loading my encoder')\n"
        "def f(x):\n"
        "    print('encoding', len(x), 'images')\n"
        "    return x.reshape(len(x), -1)[:, :2].astype(float)\n"
    )
    args = ["score", str(made["scored"]), "--represent", "chatty_rep:f", "--metrics", "mig"]
    status, err, out = invoke(capsys, *args, "--json")
    assert status == 0, err
    assert set(json.loads(out)) >= {"mig", "details"}  # stdout is one JSON object, nothing else
    assert "loading my encoder" in err and "encoding 300 images" in err


@pytest.mark.parametrize(
    "data, fragments",
    [
        ("mnist:x.npz", ["DATA 'mnist:x.npz': unknown dataset kind 'mnist'"]),
        ("dsprites:", ["DATA 'dsprites:': missing the path"]),
        ("plain.h5", ["not a spritegen dataset", "given as dsprites:PATH or 3dshapes:PATH"]),
    ],
    ids=["unknown-kind", "no-path", "not-spritegen"],
)
def test_score_names_its_data_argument_as_it_is_given(work, capsys, data, fragments):
    """bench score takes DATA as an argument: its messages once said '--data', a flag it lacks."""
    with h5py.File(work / "plain.h5", "w") as f:
        f["x"] = np.zeros(3)
    (work / "reps_d.py").write_text("def f(x):\n    return x.reshape(len(x), -1)[:, :2]\n")
    line = assert_one_clear_line(
        capsys, work, ["score", data, "--represent", "reps_d:f"], *fragments
    )
    assert "--data" not in line


@pytest.mark.parametrize(
    "data, fragments",
    [
        ("afolder", ["afolder: a folder, not a dataset file"]),
        ("/dev/null", ["/dev/null: not a regular file (a device, pipe or socket)"]),
        ("dsprites:/dev/null", ["/dev/null: not a regular file", "give it as dsprites:PATH"]),
        ("3dshapes:afolder", ["afolder: is a folder, not a file", "give it as 3dshapes:PATH"]),
        ("dsprites:none.npz", ["none.npz: no such file", "give it as dsprites:PATH"]),
    ],
    ids=["folder", "device", "dsprites-device", "3dshapes-folder", "dsprites-missing"],
)
@pytest.mark.parametrize("command", ["score", "run"])
def test_data_that_is_no_file_is_named_for_what_it_is(work, capsys, data, fragments, command):
    """A folder given as a spritegen DATA was "no such spritegen dataset", /dev/null given as
    dsprites "is a folder"; and the published datasets' hint said "pass --data dsprites:PATH"
    to bench score, which has no --data."""
    (work / "afolder").mkdir()
    (work / "reps_f.py").write_text("def f(x):\n    return x.reshape(len(x), -1)[:, :2]\n")
    args = {
        "score": ["score", data, "--represent", "reps_f:f"],
        "run": run_args(data, work / "out"),
    }[command]
    line = assert_one_clear_line(capsys, work, args, *fragments)
    assert "no such spritegen" not in line and "--data" not in line


def test_score_of_a_file_without_evaluation_sets(work, capsys):
    """It suggested scoring "against a live oracle", which bench score cannot do for a file."""
    path = make_tiny_dataset(work / "none.h5", n=64, seed=4, eval_preset="none")
    (work / "reps_n.py").write_text("def f(x):\n    return x.reshape(len(x), -1)[:, :2]\n")
    line = assert_one_clear_line(
        capsys,
        work,
        ["score", str(path), "--represent", "reps_n:f"],
        "no evaluation sets (/eval)",
        "an evaluation preset other than none",
    )
    assert "oracle" not in line


@pytest.mark.parametrize(
    "returned",
    [
        # 2**40 latents per image as a broadcast view (no memory): checking them needs a
        # petabyte, which numpy refuses at once, as it refuses a merely huge array on a small
        # machine (a --latent-dim of 100,000 did that before this test)
        "np.broadcast_to(np.zeros((1, 1)), (len(x), 2**40))",
        # the function itself runs out of memory: it was "--represent ... raised MemoryError",
        # exit 2, as if it had broken its contract
        "np.zeros((len(x), 2**47))",
    ],
    ids=["checking-the-latents", "inside-the-representation"],
)
def test_scoring_out_of_memory_is_the_out_of_memory_line(returned, made, work, capsys, request):
    """Scoring that needs more memory than there is, in bench's checks or in a --represent
    function: the one out-of-memory line bench gives anywhere else, exit status 1, no traceback."""
    module = "oom_" + request.node.callspec.id.replace("-", "_")  # imports are cached by name
    (work / f"{module}.py").write_text(f"import numpy as np\ndef f(x):\n    return {returned}\n")
    line = assert_one_clear_line(
        capsys,
        work,
        ["score", str(made["scored"]), "--represent", f"{module}:f"],
        "bench: error: out of memory: Unable to allocate",
        "free memory or ask for less",
        "run the command again",
        code=1,
    )
    assert "raised" not in line


def test_a_training_set_the_container_cannot_hold_is_one_line(made, work, capsys, monkeypatch):
    """In a container whose memory limit the training set exceeds, the set was allocated lazily
    and the OOM killer ended `bench run` while filling it, with no message at all."""
    from test_memory import make_cgroup

    import spritegen.memory as memory

    make_cgroup(work.parent / "cgroup", 2, limit="1100000", usage=1_000_000)
    monkeypatch.setattr(memory, "_CGROUP", work.parent / "cgroup")
    assert_one_clear_line(
        capsys,
        work,
        ["run", "--model", "betavae", "--data", str(made["tiny"]), *TINY_RUN, *QUIET],
        "out of memory: ",
        "the training set (64 images) needs 0.2 MiB in memory, but only 0.1 MiB is available",
        code=1,
    )


def test_represent_without_a_function(made, work, capsys):
    assert_one_clear_line(
        capsys, work, ["score", str(made["scored"]), "--represent", "nocolon"], "module:function"
    )


@pytest.mark.parametrize("value", ["lots", "-5", "inf"])
def test_bad_evaluation_cache_budget(made, work, capsys, monkeypatch, value):
    monkeypatch.setenv("BENCH_EVAL_CACHE_MB", value)
    out = work / "run-cache"
    args = ["run", "--model", "betavae", "--data", str(made["scored"]), *TINY_RUN, *QUIET]
    assert_one_clear_line(
        capsys, work, [*args, "--out", str(out)], f"BENCH_EVAL_CACHE_MB='{value}'", "megabytes"
    )
    assert not out.exists()


#: A --represent module whose four latents are the quadrant means of a 64x64 image: every
#: dimension varies, so every evaluation set is encoded (an all-constant one is pruned first).
QUADRANT_MEANS = (
    "import numpy as np\n"
    "def f(x):\n"
    "    x = x.astype(float)[..., 0]\n"
    "    return np.stack([x[:, :32].mean((1, 2)), x[:, 32:].mean((1, 2)),\n"
    "                     x[:, :, :32].mean((1, 2)), x[:, :, 32:].mean((1, 2))], 1)\n"
)


def test_corrupt_evaluation_chunk_is_named(made, work, capsys):
    path = work / "scored.h5"
    shutil.copy(made["scored"], path)
    with h5py.File(path, "r+") as f:
        dset = f["eval/kim_mnih/eval/images"]
        mask, stored = dset.id.read_direct_chunk((0, 0, 0, 0))
        stored = bytearray(stored)
        stored[len(stored) // 2 : len(stored) // 2 + 16] = b"\xff" * 16
        dset.id.write_direct_chunk((0, 0, 0, 0), bytes(stored), filter_mask=mask)
    (work / "reps_q.py").write_text(QUADRANT_MEANS)
    assert_one_clear_line(
        capsys,
        work,
        ["score", str(path), "--represent", "reps_q:f"],
        "/eval/kim_mnih/eval/images rows 0..255 (chunk 0)",
        "spritegen verify",
    )


def _alter_evaluation_pixel(f: h5py.File) -> None:
    """One byte of the first Kim-Mnih evaluation chunk changed, stored validly compressed."""
    dset = f["eval/kim_mnih/eval/images"]
    mask, stored = dset.id.read_direct_chunk((0, 0, 0, 0))
    raw = bytearray(zlib.decompress(stored))
    raw[4096 * 5 + 7] ^= 0x10
    dset.id.write_direct_chunk((0, 0, 0, 0), zlib.compress(bytes(raw), 1), filter_mask=mask)


def _alter_evaluation_checksums(f: h5py.File) -> None:
    """The chunk above altered and its checksum rewritten to match: only the content digest,
    which covers every checksum table, can tell."""
    import hashlib

    _alter_evaluation_pixel(f)
    dset = f["eval/kim_mnih/eval/images"]
    _, stored = dset.id.read_direct_chunk((0, 0, 0, 0))
    table = f["checksums/eval/kim_mnih/eval/images"]
    table[0] = np.frombuffer(hashlib.sha256(zlib.decompress(stored)).digest(), np.uint8)


@pytest.mark.parametrize("cache_mb", ["0", "100"], ids=["streamed", "kept"])
@pytest.mark.parametrize(
    ("how", "fragment"),
    [
        (
            _alter_evaluation_pixel,
            "/eval/kim_mnih/eval/images rows 0..255 (chunk 0) does not match its stored checksum",
        ),
        (_alter_evaluation_checksums, "changed since the build (content_sha256 does not match)"),
    ],
    ids=["pixel", "pixel-and-checksum"],
)
def test_evaluation_images_altered_since_the_build_are_not_scored(
    made, work, capsys, monkeypatch, how, fragment, cache_mb
):
    """An evaluation chunk rewritten with other (validly compressed) bytes was scored as if it
    were the build's: only `spritegen verify` found it. Scoring now checks every chunk it reads
    against its checksum, and the checksum tables against the content digest, whether the set
    is kept in memory or streamed."""
    monkeypatch.setenv("BENCH_EVAL_CACHE_MB", cache_mb)
    path = work / "scored.h5"
    shutil.copy(made["scored"], path)
    with h5py.File(path, "r+") as f:
        how(f)
    (work / "reps_a.py").write_text(QUADRANT_MEANS)
    assert_one_clear_line(
        capsys,
        work,
        ["score", str(path), "--represent", "reps_a:f", "--metrics", "kim_mnih"],
        fragment,
        "spritegen verify",
    )


def _drop(name: str) -> Callable[[h5py.File], None]:
    def how(f: h5py.File) -> None:
        del f[name]

    return how


def _shrink_variance_images(f: h5py.File) -> None:
    rows = f["eval/variance/images"].shape[0]
    del f["eval/variance/images"]
    f["eval/variance/images"] = np.zeros((rows, 32, 32, 1), np.uint8)


DAMAGED_EVAL_SETS = [
    (
        _drop("eval/kim_mnih/eval/images"),
        ["evaluation set /eval/kim_mnih/eval has no dataset 'images'", "spritegen verify"],
    ),
    (
        _drop("eval/higgins/train/factor_index"),
        ["evaluation set /eval/higgins/train has no dataset 'factor_index'"],
    ),
    (
        _drop("eval/random/train"),
        ["evaluation set /eval/random/train is missing", "random_train: 300"],
    ),
    (
        _shrink_variance_images,
        ["'/eval/variance/images' has shape (", "32, 32, 1)", "(64, 64, 1)"],
    ),
]
DAMAGED_EVAL_IDS = ["no-km-images", "no-hg-index", "no-random-set", "small-variance-images"]


@pytest.mark.parametrize("how, fragments", DAMAGED_EVAL_SETS, ids=DAMAGED_EVAL_IDS)
def test_damaged_evaluation_set_is_named_by_score(made, work, capsys, how, fragments):
    """Scoring reads the sets as it goes; a set deleted or replaced with h5py was a KeyError
    traceback (or a silent live rendering, for the i.i.d. sets) instead of one line."""
    path = work / "scored.h5"
    shutil.copy(made["scored"], path)
    with h5py.File(path, "r+") as f:
        how(f)
    (work / "reps_e.py").write_text(
        "import numpy as np\n"
        "def f(x):\n"
        "    x = x.astype(float)[..., 0]\n"
        "    return np.stack([x[:, :32].mean((1, 2)), x[:, :, :32].mean((1, 2))], 1)\n"
    )
    args = ["score", str(path), "--represent", "reps_e:f"]
    assert_one_clear_line(capsys, work, args, str(path), *fragments)


@pytest.mark.parametrize("how, fragments", DAMAGED_EVAL_SETS, ids=DAMAGED_EVAL_IDS)
def test_damaged_evaluation_set_stops_a_run_before_training(made, work, capsys, how, fragments):
    """A run scoring on the stored sets checks them before its first epoch, not after it."""
    path = work / "scored.h5"
    shutil.copy(made["scored"], path)
    with h5py.File(path, "r+") as f:
        how(f)
    out = work / "run-damaged"
    args = ["run", "--model", "betavae", "--data", str(path), *TINY_RUN, "--quiet"]
    args += ["--score-preset", "stored", "--final-preset", "none", "--out", str(out)]
    assert_one_clear_line(capsys, work, args, str(path))
    assert not out.exists()


# --- sweep folders and sweep specs --------------------------------------------------------


def _experiment(
    name: str = "e", metrics: list | None = None, point_id: str = "p", twice: bool = False
) -> str:
    """A sweep.json of one experiment (two with ``twice``) with one point, as JSON text."""
    exp = {
        "name": name,
        "x": "beta",
        "lines": [],
        "metrics": metrics if metrics is not None else ["kim_mnih"],
        "points": [{"id": point_id, "x": 1.0, "line": [], "seed": 0}],
    }
    points = [{"id": point_id}]
    return json.dumps({"name": "s", "experiments": [exp] * (1 + twice), "points": points})


@pytest.mark.parametrize(
    "manifest, fragment",
    [
        ("{oops", "sweep.json: is not valid JSON"),
        ("{}", "'experiments' is missing"),
        ("[]", "holds a JSON list"),
        ('{"experiments": [1]}', "experiments[0] is a JSON int"),
        ('{"experiments": [{"name": "e", "x": "beta"}]}', "experiments[0].lines is missing"),
        (
            '{"experiments": [{"name": "e", "x": "b", "lines": [], "metrics": [],'
            ' "points": [{"id": 3}]}]}',
            "experiments[0].points[0] lacks a valid id",
        ),
        (  # a null x was a TypeError in the beta_norm figure, a list one in the cells
            '{"experiments": [{"name": "e", "x": "b", "lines": [], "metrics": [],'
            ' "points": [{"id": "p", "x": null, "line": [], "seed": 0}]}]}',
            "experiments[0].points[0] has x None and line []; expected a number, text",
        ),
        (
            '{"experiments": [{"name": "e", "x": "b", "lines": ["c"], "metrics": [],'
            ' "points": [{"id": "p", "x": 1, "line": [[1, 2]], "seed": 0}]}]}',
            "experiments[0].points[0] has x 1 and line [[1, 2]]; expected",
        ),
        # the name prefixes every figure's file: 'a/b' was a traceback, '../x' drew outside
        (_experiment(name="a/b"), "experiments[0].name is 'a/b'; expected letters, digits"),
        (_experiment(name="../x"), "experiments[0].name is '../x'"),
        (_experiment(name="e", twice=True), "experiments[1].name is 'e'; expected"),
        # a name that is no score drew empty figures; one named twice, its figures twice
        (_experiment(metrics=["nosuch"]), "experiments[0].metrics holds 'nosuch'; expected"),
        (_experiment(metrics=[5]), "experiments[0].metrics holds 5; expected distinct names"),
        (_experiment(metrics=["mig", "mig"]), "experiments[0].metrics holds 'mig' twice"),
        (_experiment(point_id="../p"), "experiments[0].points[0] has id '../p'; expected the"),
    ],
)
@pytest.mark.parametrize("export", [False, True], ids=["report", "export"])
def test_damaged_sweep_folder(work, capsys, manifest, fragment, export):
    """``bench report`` and ``--export`` read sweep.json alike; the export's traceback on a
    damaged one ([] or a point without id) came after it had made the destination folder."""
    (work / "sweep").mkdir()
    (work / "sweep" / "sweep.json").write_text(manifest)
    args = ["report", str(work / "sweep"), *(["--export", "ex"] if export else [])]
    assert_one_clear_line(capsys, work, args, fragment, "bench sweep")
    assert not (work / "ex").exists()


@pytest.mark.parametrize(
    "points, fragment",
    [
        ("runs", "'points' is 'runs', expected a list of runs"),
        ([1], "points[0] has id None; expected the name of a run folder"),
        ([{"id": ".."}], "points[0] has id '..'; expected the name of a run folder"),
    ],
)
def test_export_of_a_damaged_run_list(work, capsys, points, fragment):
    """The run list --export copies (``points``, beside the experiments): a point without id
    was a traceback; an id '..' named the folder above the export as a run to replace."""
    manifest = json.loads(_experiment())
    manifest["points"] = points
    (work / "sweep").mkdir()
    (work / "sweep" / "sweep.json").write_text(json.dumps(manifest))
    args = ["report", str(work / "sweep"), "--export", "ex"]
    assert_one_clear_line(capsys, work, args, "SWEEP_DIR", "sweep.json", fragment)
    assert not (work / "ex").exists()


def test_damaged_metrics_of_a_finished_run(work, capsys):
    manifest = {
        "name": "s",
        "experiments": [
            {
                "name": "e",
                "x": "beta",
                "lines": [],
                "metrics": ["kim_mnih"],
                "points": [{"id": "p1", "x": 1.0, "line": [], "seed": 0}],
            }
        ],
    }
    run = work / "sweep" / "runs" / "p1"
    run.mkdir(parents=True)
    (work / "sweep" / "sweep.json").write_text(json.dumps(manifest))
    (run / "summary.json").write_text('{"status": "finished"}')
    (run / "metrics.jsonl").write_text('{"epoch": 1, "kim_mnih": 0.5}\n{"epoch": 2, "kim_mn')
    assert_one_clear_line(
        capsys, work, ["report", str(work / "sweep")], "metrics.jsonl: line 2 is not a JSON object"
    )


def _sweep_of_two_seeds(work: Path, lines: list[str], metrics: list[str]) -> Path:
    """A sweep folder as bench sweep leaves it: two finished seeds of one point; run p0's
    metrics.jsonl is ``lines``, run p1's a good record."""
    manifest = {
        "name": "s",
        "experiments": [
            {
                "name": "e",
                "x": "beta",
                "lines": [],
                "metrics": metrics,
                "points": [
                    {"id": f"p{seed}", "x": 1.0, "line": [], "seed": seed} for seed in (0, 1)
                ],
            }
        ],
    }
    sweep = work / "sweep"
    (sweep / "runs").mkdir(parents=True)
    (sweep / "sweep.json").write_text(json.dumps(manifest))
    good = {"epoch": 1, "kim_mnih": 0.5, "kim_mnih_weighted": None, "linear_r2": float("nan")}
    for seed, text in ((0, "".join(line + "\n" for line in lines)), (1, json.dumps(good) + "\n")):
        run = sweep / "runs" / f"p{seed}"
        run.mkdir()
        best = {"kim_mnih": {"value": 0.5, "epoch": 1}}
        (run / "summary.json").write_text(json.dumps({"status": "finished", "best_scores": best}))
        (run / "metrics.jsonl").write_text(text)
    return sweep


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("1e308", "field 'kim_mnih' is 1e+308; expected a number in [0, 1]"),
        ('"0.5"', "field 'kim_mnih' is '0.5'"),
        ("true", "field 'kim_mnih' is True"),
        ("NaN", "field 'kim_mnih' is nan"),
        ("[1]", "field 'kim_mnih' is [1]"),
        ("null", "field 'kim_mnih' is None"),
        ("-0.25", "field 'kim_mnih' is -0.25"),
    ],
    ids=["huge", "string", "bool", "nan", "list", "null", "negative"],
)
def test_bad_score_in_metrics_of_a_finished_run(work, capsys, value, fragment):
    """A score the report cannot use was left out of its cell (n=1 of 2) under "2 of 2 runs
    finished", or overflowed the standard deviation (1e308); one line names file, line, field."""
    lines = ['{"epoch": 1, "kim_mnih": 0.5}', '{"epoch": 2, "kim_mnih": ' + value + "}"]
    sweep = _sweep_of_two_seeds(work, lines, ["kim_mnih"])
    line = assert_one_clear_line(capsys, work, ["report", str(sweep)], fragment, "line 2")
    assert "runs/p0/metrics.jsonl" in line


@pytest.mark.parametrize(
    "lines, fragment",
    [
        (['{"epoch": 1, "loss": 3.0}'], "no line has field 'kim_mnih', but summary.json records"),
        ([], "holds no epoch record, but summary.json says the run finished"),
    ],
    ids=["score-missing", "empty"],
)
def test_scores_missing_from_a_finished_run(work, capsys, lines, fragment):
    sweep = _sweep_of_two_seeds(work, lines, ["kim_mnih"])
    assert_one_clear_line(capsys, work, ["report", str(sweep)], "p0/metrics.jsonl", fragment)


def test_metrics_that_are_not_utf8_name_their_line(work, capsys):
    sweep = _sweep_of_two_seeds(work, ['{"epoch": 1, "kim_mnih": 0.5}'], ["kim_mnih"])
    path = sweep / "runs" / "p0" / "metrics.jsonl"
    path.write_bytes(path.read_bytes() + b'{"epoch": 2, "note": "\xff\xfe"}\n')
    assert_one_clear_line(capsys, work, ["report", str(sweep)], "line 2 is not UTF-8 text")


def test_outputs_named_with_a_line_break_are_refused(made, work, capsys):
    """A run, sweep or report folder whose name holds a newline was written, and every line
    naming it afterwards (progress, a full disk, the next start's refusal) broke in two."""
    rule = "a path without line breaks or control characters"
    spec = work / "s.yaml"
    spec.write_text(
        f"name: s\nset: {{model: betavae, data: '{made['tiny']}', epochs: 1}}\n"
        "grid: {beta: [1, 4]}\nreport: {x: beta}\n"
    )
    sweep = _sweep_of_two_seeds(work, ['{"epoch": 1, "kim_mnih": 1.0}'], ["kim_mnih"])
    for args, flag in [
        (run_args(made["tiny"], work / "a\nb"), "--out"),
        (["sweep", str(spec), "--out", str(work / "a\nb"), "--dry-run"], "--out"),
        (["report", str(sweep), "--out", str(work / "a\nb")], "--out"),
        (["report", str(sweep), "--export", str(work / "a\nb")], "--export"),
    ]:
        line = assert_one_clear_line(capsys, work, args, rule)
        assert flag in line, line


def test_undefined_and_unscored_records_are_reported(work, capsys):
    """What valid runs write stays readable: null for an undefined weighted Kim–Mnih, NaN for an
    undefined R², and no score at all for a run scored with preset none (no best_scores)."""
    row = {"epoch": 1, "kim_mnih": 1.0, "kim_mnih_weighted": None, "linear_r2": float("nan")}
    sweep = _sweep_of_two_seeds(work, [json.dumps(row)], ["kim_mnih", "kim_mnih_weighted"])
    status, err, _ = invoke(capsys, "report", str(sweep), "--out", str(work / "rep"))
    assert status == 0, err
    report = (work / "rep" / "report.md").read_text()
    assert "2 of 2 runs finished" in report
    with open(work / "rep" / "report.csv") as fh:
        cells = [r for r in csv.DictReader(fh) if r["quantity"] == "cell"]
    final = [r for r in cells if r["metric"] == "kim_mnih" and r["score"] == "final"]
    assert [(r["n"], r["values"]) for r in final] == [("2", "1.0;0.5")]
    unscored = work / "unscored"
    unscored.mkdir()
    sweep = _sweep_of_two_seeds(unscored, ['{"epoch": 1, "loss": 3.0}'], ["kim_mnih"])
    for seed in (0, 1):
        (sweep / "runs" / f"p{seed}" / "summary.json").write_text('{"status": "finished"}')
    status, err, _ = invoke(capsys, "report", str(sweep), "--out", str(unscored / "rep"))
    assert status == 0, err


def test_report_of_a_sweep_whose_every_run_stopped_says_none_is_to_come(work, capsys):
    """A sweep whose runs all failed or diverged was told to "report again once a run has
    finished", as if runs were still training; none will finish without a new start."""
    sweep = _sweep_of_two_seeds(work, ['{"epoch": 1, "kim_mnih": 0.5}'], ["kim_mnih"])
    for seed, status in ((0, "failed"), (1, "diverged")):
        summary = {"status": status, "error": "the loss became non-finite (nan)"}
        (sweep / "runs" / f"p{seed}" / "summary.json").write_text(json.dumps(summary))
    line = assert_one_clear_line(
        capsys,
        work,
        ["report", str(sweep)],
        "every one of the 2 runs of",
        "stopped without finishing (1 diverged, 1 failed) and none is still to come",
        "runs/ID.log",
        "start the sweep again",
        code=1,
    )
    assert "report again once" not in line


def test_runs_without_any_score_are_noted_and_warned_of(work, capsys):
    """Runs trained without scoring (score and final presets none) were drawn as empty axes and
    n/a tables under "2 of 2 runs finished", without a word why; report.md now notes them and
    bench report warns. A sweep whose runs hold scores gets neither."""
    sweep = _sweep_of_two_seeds(work, ['{"epoch": 1, "loss": 3.0}'], ["kim_mnih"])
    (sweep / "runs" / "p1" / "metrics.jsonl").write_text('{"epoch": 1, "loss": 2.5}\n')
    for seed in (0, 1):
        (sweep / "runs" / f"p{seed}" / "summary.json").write_text('{"status": "finished"}')
    status, err, _ = invoke(capsys, "report", str(sweep), "--out", str(work / "rep"))
    assert status == 0, err
    note = (
        "2 of the finished runs hold no score of kim_mnih (trained with --score-preset none and "
        "--final-preset none?), so their cells are empty"
    )
    assert err.splitlines() == [
        f"bench: warning: {sweep}: experiment e: {note} (report.md lists them)"
    ]
    assert f"Unscored: {note}: p0, p1." in (work / "rep" / "report.md").read_text()
    (work / "other").mkdir()
    scored = _sweep_of_two_seeds(work / "other", ['{"epoch": 1, "kim_mnih": 0.5}'], ["kim_mnih"])
    status, err, _ = invoke(capsys, "report", str(scored), "--out", str(work / "rep2"))
    assert status == 0 and err == "", err
    assert "Unscored" not in (work / "rep2" / "report.md").read_text()


def test_report_out_never_overwrites_the_users_files(work, capsys):
    """--out into a folder of the user's own report.md and report.csv overwrote them; like
    --export it now writes only into an empty folder or one a previous bench report made."""
    sweep = _sweep_of_two_seeds(work, ['{"epoch": 1, "kim_mnih": 0.5}'], ["kim_mnih"])
    mine = work / "userdir"
    mine.mkdir()
    (mine / "report.md").write_text("# my own notes\n")
    (mine / "report.csv").write_text("a,b\n1,2\n")
    args = ["report", str(sweep), "--out", str(mine)]
    assert_one_clear_line(
        capsys, work, args, "--out", "userdir is not empty", "previous bench report"
    )
    ours = work / "ours"
    assert invoke(capsys, "report", str(sweep), "--out", str(ours))[0] == 0
    first = (ours / "report.md").read_bytes()
    (ours / "report.md").write_bytes(first.replace(b"2 of 2", b"1 of 2"))
    assert invoke(capsys, "report", str(sweep), "--out", str(ours))[0] == 0  # ours: rewritten
    assert (ours / "report.md").read_bytes() == first
    (ours / "report.md").unlink()  # as if killed before report.md, written last
    assert invoke(capsys, "report", str(sweep), "--out", str(ours))[0] == 0
    assert (ours / "report.md").read_bytes() == first


@pytest.mark.parametrize("flag", ["--out", "--export"])
def test_report_outputs_through_a_missing_folder_are_checked_where_they_land(work, capsys, flag):
    """``--out sub/../userdir`` wrote the report (``--export``: sweep.json) into the user's
    folder: while ``sub`` was missing, the check of what the folder holds saw nothing."""
    sweep = _sweep_of_two_seeds(work, ['{"epoch": 1, "kim_mnih": 0.5}'], ["kim_mnih"])
    for seed in (0, 1):
        (sweep / "runs" / f"p{seed}" / "config.json").write_text("{}")
    (work / "userdir").mkdir()
    (work / "userdir" / "report.md").write_text("# my own notes\n")
    args = ["report", str(sweep), flag, "sub/../userdir"]
    assert_one_clear_line(capsys, work, args, f"{flag}: userdir is not empty")
    assert not (work / "sub").exists()
    assert invoke(capsys, "report", str(sweep), flag, "sub/../new")[0] == 0
    assert not (work / "sub").exists() and (work / "new" / "sweep.json").exists() == (
        flag == "--export"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["report", "{sweep}", "--export", ""],
        ["report", "{sweep}", "--out", ""],
        ["report", ""],
        ["sweep", "{spec}", "--out", "", "--dry-run"],
        ["sweep", "", "--dry-run"],
    ],
    ids=["export", "report-out", "report-sweep", "sweep-out", "sweep-spec"],
)
def test_an_empty_path_is_refused_not_read_as_the_current_folder(work, capsys, args):
    """``Path("")`` is ``.``: ``--export ''`` merged the records into the current folder and
    ``bench sweep --out ''`` planned (and trained) the sweep there."""
    sweep = _sweep_of_two_seeds(work, ['{"epoch": 1, "kim_mnih": 0.5}'], ["kim_mnih"])
    spec = Path(__file__).parents[1] / "specs" / "sweep-tiny.yaml"
    argv = [a.format(sweep=sweep, spec=spec) for a in args]
    assert_one_clear_line(capsys, work, argv, "got an empty path", "'.' for the current folder")


def test_export_of_a_finished_run_without_its_config(work, capsys):
    """A finished run without config.json was a FileNotFoundError halfway through the export:
    the destination kept the runs before it, a ``.p0.partial`` folder and no sweep.json."""
    sweep = _sweep_of_two_seeds(work, ['{"epoch": 1, "kim_mnih": 0.5}'], ["kim_mnih"])
    (sweep / "runs" / "p1" / "config.json").write_text("{}")
    args = ["report", str(sweep), "--export", "ex"]
    line = assert_one_clear_line(capsys, work, args, "p0/config.json is missing", "finished")
    assert "run that point again" in line
    assert not (work / "ex").exists()


def test_an_export_exports_again(work, capsys):
    """bench report reads an export's ``<id>/`` as a sweep's ``runs/<id>/``; --export of an
    export read only ``runs/`` and reported every run "not finished", copying none."""
    sweep = _sweep_of_two_seeds(work, ['{"epoch": 1, "kim_mnih": 0.5}'], ["kim_mnih"])
    for seed in (0, 1):
        (sweep / "runs" / f"p{seed}" / "config.json").write_text("{}")
    assert invoke(capsys, "report", str(sweep), "--export", "first")[0] == 0
    status, err, out = invoke(capsys, "report", "first", "--export", "second")
    assert status == 0, err
    assert "exported 2 runs to second (0 already there, 0 not finished)" in out
    assert snapshot(work / "second") == snapshot(work / "first")


def test_folder_that_is_not_a_sweep(work, capsys):
    (work / "empty").mkdir()
    assert_one_clear_line(capsys, work, ["report", str(work / "empty")], "has no sweep.json")


def _alias_bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "content, fragment",
    [
        (_alias_bomb().encode(), "anchors and aliases (&name, *name) are not allowed"),
        (b"name: a\nname: b\n", "duplicate key"),
        # NAME_RE's $ matched before a final newline: the sweep folder was 'results/s\n'
        (b'name: "s\\n"\nset: {model: betavae, factors: 1}\nreport: {x: beta}\n', "got 's\\n'"),
        (b"\x89HDF\r\n\x1a\n\xff\xfe\x00binary", "not a text file"),
        (b"name: [unclosed\n", "not valid YAML"),
        (b"name: s\nmodels: betavae\n", "models: unknown field"),
        (b"", "spec"),
        (
            b"name: s\nset: {model: betavae, factors: 1}\npoints: 0\nreport: {x: beta}\n",
            "points: must be a list of mappings of run parameters, got 0",
        ),
        (
            b"name: s\nset: {model: betavae, factors: 1}\npoints: ''\nreport: {x: beta}\n",
            "points: must be a list of mappings of run parameters, got ''",
        ),
        (
            b"name: s\nset: {model: betavae, data: tiny.h5}\ngrid: {seed: [18446744073709551616]}\n"
            b"report: {x: latent_dim}\n",
            "grid.seed[0]: must be an integer in 0..18446744073709551615",
        ),
    ],
    ids=[
        "alias-bomb",
        "duplicate-key",
        "name-with-final-newline",
        "binary",
        "bad-yaml",
        "unknown-field",
        "empty",
        "points-zero",
        "points-empty-string",
        "seed-2**64",
    ],
)
def test_bad_sweep_spec(work, capsys, content, fragment):
    spec = work / "s.yaml"
    spec.write_bytes(content)
    assert len(content) < 1000
    assert_one_clear_line(
        capsys, work, ["sweep", str(spec), "--dry-run", "--out", str(work / "sw")], fragment
    )


def test_a_dataset_spec_given_to_sweep_is_named_for_what_it_is(work, capsys):
    """The project's own dataset spec given to `bench sweep` was "format: unknown field",
    which sent the user looking for a typo instead of the other command."""
    spec = work / "factors2.yaml"
    shutil.copy(Path(__file__).parents[1] / "specs" / "factors2.yaml", spec)
    line = assert_one_clear_line(
        capsys,
        work,
        ["sweep", str(spec), "--dry-run", "--out", str(work / "sw")],
        "factors2.yaml: this is a dataset spec (it has 'factors'), not a sweep spec: build it "
        "with `spritegen build SPEC`",
        "a sweep spec has the fields name, description, datasets, set, grid",
    )
    assert "unknown field" not in line


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--ensemble", "0"], "--ensemble must be auto, off or a positive integer, got '0'"),
        (["--ensemble", "many"], "--ensemble must be auto, off or a positive integer"),
        (["--only", "*_k9_*"], "--only '*_k9_*' matches none of the sweep's 4 run ids"),
        (["--workers", "0"], "'--workers': 0 is not in the range x>=1"),
        (["--build-workers", "0"], "'--build-workers': 0 is not in the range x>=1"),
        (["--cpus-per-run", "-1"], "'--cpus-per-run': -1.0 is not in the range x>0"),
        # refused once the datasets were built, after the sweep folder was written
        (["--address", "auto"], "--address: only used with --executor ray"),
    ],
    ids=[
        "ensemble-zero",
        "ensemble-word",
        "only-nothing",
        "workers-zero",
        "build-workers-zero",
        "cpus-per-run-negative",
        "address-without-ray",
    ],
)
def test_dry_run_checks_the_options_a_sweep_checks(work, capsys, args, fragment):
    spec = Path(__file__).parents[1] / "specs" / "sweep-tiny.yaml"
    out = work / "sw"
    assert_one_clear_line(capsys, work, ["sweep", str(spec), "--dry-run", *args], fragment)
    assert_one_clear_line(capsys, work, ["sweep", str(spec), *args, "--out", str(out)], fragment)
    assert not out.exists()


def test_inputs_count():
    """The issue asks for at least 30 malformed inputs to bench; count the cases above."""
    module = sys.modules[__name__]
    count = 0
    for name in dir(module):
        fn = getattr(module, name)
        if name.startswith("test_") and name != "test_inputs_count":
            marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
            count += int(np.prod([len(m.args[1]) for m in marks])) if marks else 1
    assert count >= 30, count


def test_bench_without_a_command_prints_the_whole_help(capsys):
    """Not an error line squashing the help into one: the help as ``bench --help`` shows it."""
    status, err, out = invoke(capsys)
    assert status in (0, 2), err
    text = err + out
    assert text.startswith("Usage: bench [OPTIONS] COMMAND [ARGS]..."), text
    assert "bench: error" not in text and len(text.splitlines()) > 8
    assert "\nCommands:\n" in text and "\n  run " in text


@pytest.mark.parametrize(
    "files, fragment",
    [
        (
            {"spec.yaml": "name: good\n", "sweep.json": '{"name": "good", "points": []}'},
            "holds sweep 'good', not 'tiny'; give each sweep its own --out",
        ),
        (
            {"spec.yaml": "my own notes\n", "sweep.json": '{"mine": 1}'},
            "sweep.json is not a bench sweep manifest",
        ),
        ({"spec.yaml": "my own notes\n"}, "holds a spec.yaml but no sweep.json"),
        ({"config.json": "{}"}, "is a bench run folder (it holds config.json)"),
        (
            {"sweep.json": '{"name": "tiny", "points": [{"id": "dropped_point"}]}'},
            "that this spec no longer has (such as 'dropped_point')",
        ),
    ],
    ids=["other-sweep", "users-files", "users-spec", "run-folder", "points-dropped"],
)
def test_sweep_refuses_a_folder_it_did_not_make(work, capsys, files, fragment):
    spec = Path(__file__).parents[1] / "specs" / "sweep-tiny.yaml"
    out = work / "folder"
    out.mkdir()
    for name, text in files.items():
        (out / name).write_text(text)
    for extra in ([], ["--dry-run"]):
        assert_one_clear_line(
            capsys, work, ["sweep", str(spec), "--out", str(out), "--quiet", *extra], fragment
        )
    # through a folder not made yet: the folder's files were not seen (it was planned as new)
    args = ["sweep", str(spec), "--out", "sub/../folder", "--quiet", "--dry-run"]
    assert_one_clear_line(capsys, work, args, fragment)
    assert not (work / "sub").exists()


@pytest.mark.parametrize(
    "data, extra, fragment",
    [
        ("foreign", "", "data: {path}: not a spritegen dataset"),
        ("small", "", "needs square images whose side is a multiple of 16"),
        ("tiny", ", device: tpu", "--device 'tpu' is not a torch device"),
        ("tiny", ", amp: true", "--amp (mixed precision) needs a CUDA device"),
    ],
    ids=["foreign-hdf5", "24-px-images", "device-tpu", "amp-on-cpu"],
)
def test_sweep_planning_checks_each_run_as_bench_run_does(
    work, made, capsys, tmp_path_factory, data, extra, fragment
):
    """What `bench run` refuses is refused when the sweep is planned, with or without
    --dry-run: exit 2, one line, nothing written (it was a failed run per point, exit 1)."""
    files = tmp_path_factory.mktemp("planning")
    paths = {"tiny": made["tiny"], "foreign": files / "foreign.h5", "small": files / "s.h5"}
    with h5py.File(paths["foreign"], "w") as fh:
        fh["x"] = [1, 2]
    make_tiny_dataset(paths["small"], n=16, seed=1, image_size=24)
    path = paths[data]
    spec = (
        f"name: s\nset: {{model: betavae, data: '{path}', epochs: 1{extra}}}\n"
        "grid: {beta: [1, 4]}\nreport: {x: beta}\n"
    )
    assert_sweep_refused_when_planned(capsys, work, spec, fragment.format(path=path))


def assert_sweep_refused_when_planned(capsys, work: Path, spec: str, *fragments: str) -> None:
    """`bench sweep` of the spec text refuses it with one line, with and without --dry-run,
    writing nothing."""
    path = work / "s.yaml"
    path.write_text(spec)
    for more in ([], ["--dry-run"]):
        assert_one_clear_line(
            capsys,
            work,
            ["sweep", str(path), "--out", str(work / "sw"), "--quiet", *more],
            *fragments,
        )


# --- records that are not regular files ---------------------------------------------------


@contextlib.contextmanager
def fifo_at(path: Path, patience: float = 20.0) -> Iterator[list[Path]]:
    """Put a FIFO at ``path`` for the block; yields the list of FIFOs a reader waited on.

    A reader that opens a FIFO waits for a writer forever, which would hang the test instead of
    failing it: after ``patience`` seconds a watchdog opens the FIFO for writing (it can only
    when a reader holds it open), records it, and closes it, so the blocked reader sees an empty
    file and the command ends.
    """
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    waited: list[Path] = []
    done = threading.Event()

    def watch() -> None:
        if done.wait(patience):
            return
        while not done.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader holds it open (ENXIO) yet
                time.sleep(0.05)
                continue
            waited.append(path)
            os.close(fd)

    watchdog = threading.Thread(target=watch, daemon=True)
    watchdog.start()
    try:
        yield waited
    finally:
        done.set()
        watchdog.join()
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("name", ["config.json", "summary.json"])
def test_a_record_that_is_a_fifo_is_unreadable_not_awaited(made, work, capsys, name):
    """A FIFO at a run record's place made `bench run` wait for a writer forever."""
    out = copy_run(made, work)
    with fifo_at(out / name) as waited:
        status, err, _ = invoke(capsys, *run_args(made["tiny"], out))
    assert not waited, f"bench run waited on the FIFO {name}"
    assert status == 2, err
    assert err.count("\n") == 1 and f"{name} cannot be read" in err, err
    assert "not a regular file (a device, pipe or socket)" in err, err


@pytest.mark.parametrize("name", ["summary.json", "metrics.jsonl"])
def test_report_names_a_run_record_that_is_a_fifo(work, capsys, name):
    """A FIFO in a finished run's folder made `bench report` wait for a writer forever; the run
    is now one without readable records, reported as not finished."""
    sweep = _sweep_of_two_seeds(work, ['{"epoch": 1, "kim_mnih": 0.5}'], ["kim_mnih"])
    with fifo_at(sweep / "runs" / "p1" / name) as waited:
        status, err, _ = invoke(capsys, "report", str(sweep), "--out", str(work / "rep"))
    assert not waited, f"bench report waited on the FIFO {name}"
    assert status == 0, err
    report = (work / "rep" / "report.md").read_text()
    assert "1 of 2 runs finished" in report, report
    assert f"Missing: unreadable {name} (1): p1." in report, report


@pytest.mark.parametrize(
    "summary, reason",
    [
        ("{oops", "unreadable summary.json"),
        ("[]", "unreadable summary.json"),
        ("5", "unreadable summary.json"),
        ('{"status": 7}', "unreadable summary.json"),
        (None, "no metrics.jsonl"),
    ],
    ids=["not-json", "a-list", "a-number", "status-a-number", "no-metrics"],
)
def test_report_says_why_a_hand_edited_run_has_no_scores(work, capsys, summary, reason):
    """A summary.json edited into a list or a number was reported "unfinished" (a run still to
    come), one whose status is a number "unreadable metrics.jsonl", and a finished run whose
    metrics.jsonl was deleted "unfinished": each is named for the file that is wrong."""
    sweep = _sweep_of_two_seeds(work, ['{"epoch": 1, "kim_mnih": 0.5}'], ["kim_mnih"])
    run = sweep / "runs" / "p0"
    if summary is None:
        (run / "metrics.jsonl").unlink()
    else:
        (run / "summary.json").write_text(summary)
    status, err, _ = invoke(capsys, "report", str(sweep), "--out", str(work / "rep"))
    assert status == 0 and "Traceback" not in err, err
    report = (work / "rep" / "report.md").read_text()
    assert "1 of 2 runs finished" in report, report
    assert f"Missing: {reason} (1): p0." in report, report


def test_sweep_names_a_run_summary_that_is_a_fifo(made, work, capsys):
    """A sweep point whose summary.json is a FIFO made `bench sweep` wait forever; it is a point
    whose summary is unreadable, which the sweep reports and does not train."""
    spec = work / "s.yaml"
    spec.write_text(
        f"name: s\nset: {{model: betavae, data: '{made['tiny']}', epochs: 1, batch_size: 16,\n"
        "  latent_dim: 3, score_preset: none, final_preset: none}\n"
        "grid: {beta: [1]}\nreport: {x: beta}\n"
    )
    sweep = work / "sweep"
    status, err, _ = invoke(capsys, "sweep", str(spec), "--out", str(sweep), "--quiet")
    assert status == 0, err
    (run,) = (sweep / "runs").iterdir()
    with fifo_at(run / "summary.json") as waited:
        status, err, out = invoke(capsys, "sweep", str(spec), "--out", str(sweep), "--dry-run")
    assert not waited, "bench sweep waited on the FIFO summary.json"
    assert status == 0, err
    assert "summary.json is unreadable" in out + err, out + err


# probe of 2026-12-01: bench run

HPARAMS_OF = """
import torch
from benchmark.models.vae import VAE

class Model(VAE):
    @property
    def hparams(self):
        return {{"activation": {value}}}
"""


@pytest.mark.parametrize(
    "value, fragments",
    [
        ("torch.nn.functional.relu", ["activation=<function relu at 0x", "(type function)"]),
        ("{'b': [1, {'c': object()}]}", ["activation['b'][1]['c']=<object", "(type object)"]),
        ("{'relu', 'tanh'}", ["(a set holding str)", "changes from process to process"]),
    ],
    ids=["function", "nested-object", "set-of-strings"],
)
def test_hparams_recorded_differently_in_each_process_are_refused(
    made, work, capsys, value, fragments
):
    """A value recorded as a repr naming its memory address (or a set of strings, ordered by
    a per-process hash) trained once, and every later start was refused: "holds a different run
    (differs in model_hparams)", finished or not, so neither a resume nor a sweep's skip could
    ever happen. Refused before anything is written, by `bench run`, `bench models` and a sweep."""
    model = plugin_model(work, HPARAMS_OF.format(value=value))
    allowed = "allowed: str, int, float, bool, None, and lists, tuples and dicts of them"
    args = run_args(made["tiny"], work / "o", model=model)
    assert_one_clear_line(capsys, work, args, f"model '{model}'", *fragments, allowed)
    assert not (work / "o").exists()
    rows = listing_of(capsys)
    assert "BROKEN" in rows[model] and fragments[0] in rows[model], rows[model]
    spec = (
        f"name: s\nset: {{model: {model}, data: '{made['tiny']}', epochs: 1, latent_dim: 3}}\n"
        "grid: {seed: [0, 1]}\nreport: {x: seed}\n"
    )
    assert_sweep_refused_when_planned(capsys, work, spec, f"model '{model}'", fragments[0])


@pytest.mark.parametrize(
    "value, recorded",
    [
        ("(1, 2)", "(1, 2)"),
        ("[1, {'a': (2.5, None)}]", "[1, {'a': (2.5, None)}]"),
        ("{3, 1}", "{1, 3}"),
        ("torch.float32", "torch.float32"),
    ],
    ids=["tuple", "nested-list", "set-of-numbers", "dtype"],
)
def test_hparams_recorded_alike_in_every_process_still_run(made, work, capsys, value, recorded):
    """What the record already held the same in every process keeps its record and is
    recognised by the next start as the same run."""
    model = plugin_model(work, HPARAMS_OF.format(value=value))
    args = run_args(made["tiny"], work / "o", model=model)
    status, err, _ = invoke(capsys, *args)
    assert status == 0, err
    assert json.loads((work / "o" / "config.json").read_text())["model_hparams"] == {
        "activation": recorded
    }
    assert_one_clear_line(capsys, work, args, "holds a finished run; use --force")


@pytest.mark.parametrize(
    "own, fragments",
    [
        ({"notes.txt": "notes", "analysis/plot.py": "x"}, ["'analysis/', 'notes.txt'"]),
        ({"checkpoints/mine.pt": "weights"}, ["'checkpoints/mine.pt'"]),
        ({"config.json.bak": "{}"}, ["'config.json.bak'"]),
    ],
    ids=["notes-and-folder", "in-checkpoints", "backup-of-config"],
)
def test_force_never_deletes_files_bench_did_not_write(made, work, capsys, own, fragments):
    """`--force` deleted the whole run folder, the user's notes and analyses with it; it now
    replaces only what a run writes and refuses, like a folder that is no run folder, when
    anything else is there."""
    out = work / "ri"
    args = run_args(made["tiny"], out)
    assert main_status(args) == 0
    for name, text in own.items():
        (out / name).parent.mkdir(exist_ok=True)
        (out / name).write_text(text)
    assert_one_clear_line(
        capsys,
        work,
        [*args, "--force"],
        f"--out {out} holds",
        *fragments,
        "which bench did not write; --force replaces only a run's own files",
        "move those out of the folder, or use another --out",
    )


def test_force_replaces_what_bench_wrote(made, work, capsys):
    """A finished run with a sweep's log and a killed write's ``.partial`` files is replaced
    whole: the files, numbers and weights of a fresh run of the command, nothing of the old."""
    fresh = work / "fresh"
    assert main_status(run_args(made["tiny"], fresh)) == 0
    out = work / "ri"
    args = run_args(made["tiny"], out)
    assert main_status([*args, "--batch-size", "32"]) == 0  # another run: --force replaces it
    (out / "sweep.log").write_text("log of an earlier start\n")
    (out / "summary.json.partial").write_text("{")
    (out / "checkpoints" / "last.pt.partial").write_bytes(b"\0")
    status, err, _ = invoke(capsys, *args, "--force")
    assert status == 0, err
    assert sorted(snapshot(out)) == sorted(snapshot(fresh))

    def losses(run: Path) -> list:
        return [json.loads(r)["loss"] for r in (run / "metrics.jsonl").read_text().splitlines()]

    assert losses(out) == losses(fresh)
    weights = [torch.load(r / "checkpoints" / "model.pt")["model"] for r in (out, fresh)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[1])


def test_out_at_the_root_folder_is_one_line(made, work, capsys):
    """`--out /` was a ValueError traceback from the lock's path ("'/' has an empty name")."""
    for out in ("/", "/.."):
        assert_one_clear_line(
            capsys,
            work,
            run_args(made["tiny"], Path(out)),
            f"--out '{out}' is the root folder, which cannot be a run folder",
            "choose a folder inside it",
        )


def test_a_model_too_large_for_memory_is_out_of_memory_not_broken(made, work, capsys):
    """A latent size whose first layer the allocator refuses: the out-of-memory line, exit 1,
    not "model 'vae' failed to build" (exit 2), and `bench models` does not list every model
    BROKEN. 2**40 latents need a petabyte for one Linear, beyond the address space, so the
    allocator refuses at once whatever the machine or its overcommit setting."""
    latent = str(2**40)
    args = run_args(made["tiny"], work / "o", model="vae")
    assert_one_clear_line(
        capsys,
        work,
        [*args, "--latent-dim", latent],
        f"out of memory: model 'vae' with latent size {latent} does not fit in memory",
        "ask for less (latent size",
        code=1,
    )
    status, err, listing = invoke(capsys, "models", "--latent-dim", latent)
    assert status == 0 and "Traceback" not in err, err
    assert "BROKEN" not in listing and ", 0 broken" in listing, listing
    assert f"not dry-run: latent size {latent} does not fit in memory" in listing


@pytest.mark.parametrize(
    "where, fragment",
    [
        ("file", "BENCH_DATA_DIR '{file}' is a file; set BENCH_DATA_DIR to a folder"),
        ("below-file", "BENCH_DATA_DIR '{file}/sub' has a file on its path ('{file}')"),
    ],
    ids=["file", "below-file"],
)
def test_a_bad_data_dir_is_named_as_bench_data_dir(
    made, work, capsys, monkeypatch, where, fragment
):
    """The default dataset's folder was reported as `--out '.../factors2.h5': a folder on its
    path is a file`, an option the user had not given."""
    file = made["tiny"]
    monkeypatch.setenv("BENCH_DATA_DIR", str(file) + ("/sub" if where == "below-file" else ""))
    line = assert_one_clear_line(
        capsys,
        work,
        ["run", "--model", "vae", "--factors", "2", *TINY_RUN, *QUIET, "--out", str(work / "o")],
        fragment.format(file=file),
        "or give --data FILE",
    )
    assert "--out" not in line
