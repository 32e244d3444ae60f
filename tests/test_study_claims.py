"""scripts/study_claims.py, the numbers behind docs/results.md's verdicts, on the study's
committed records: an export and a sweep folder give the same tables, a run that did not
finish is left out, and a folder without finished runs is named, not printed as empty tables."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from sweep_helpers import ROOT, subprocess_env

EXPORT = ROOT / "docs" / "results" / "runs" / "experiment2-long"


def _claims(folder: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scripts/study_claims.py", str(folder), "--x", "factors", *extra],
        cwd=ROOT,
        env=subprocess_env(tmp),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _tables(out: str) -> str:
    """The printed tables, without the first line (which names the folder)."""
    return out.split("\n", 1)[1]


def test_a_sweep_folder_reads_as_its_export_and_unfinished_runs_are_left_out(tmp_path: Path):
    """A sweep folder (runs/<id>) read as no runs at all and printed empty tables; a stopped
    run's summary counted it as finished."""
    exported = _claims(EXPORT, tmp_path)
    assert exported.returncode == 0, exported.stderr
    runs = sorted(p.name for p in EXPORT.iterdir() if (p / "config.json").is_file())
    assert exported.stdout.startswith(f"{len(runs)} finished runs in ")
    assert "\n| 1 | " in exported.stdout and "\n| 8 | " in exported.stdout  # rows per beta

    sweep = tmp_path / "sweep"
    shutil.copytree(EXPORT, sweep / "runs")
    in_sweep = _claims(sweep, tmp_path)
    assert in_sweep.returncode == 0, in_sweep.stderr
    assert _tables(in_sweep.stdout) == _tables(exported.stdout)

    summary = sweep / "runs" / runs[0] / "summary.json"
    record = json.loads(summary.read_text())
    summary.write_text(json.dumps({**record, "status": "diverged"}))
    (sweep / "runs" / runs[1] / "summary.json").unlink()  # a run still training
    fewer = _claims(sweep, tmp_path)
    assert fewer.stdout.startswith(f"{len(runs) - 2} finished runs in ")


def test_a_folder_without_finished_runs_is_named(tmp_path: Path):
    empty = _claims(tmp_path, tmp_path)
    assert empty.returncode == 1 and empty.stdout == ""
    assert empty.stderr == (
        f"study_claims: no finished run in {tmp_path}; give a sweep folder or an export "
        "(bench report SWEEP --export DEST)\n"
    )


def test_the_plateau_level_can_be_set_for_one_x(tmp_path: Path):
    """The RGB mean images of K = 6, 7 cost about 1,130-1,200 nats, so at the grey images' 600
    no K = 6 or 7 run ever left the plateau; ``--plateau 6=1000`` gives K = 6 its own level, and
    only K = 6."""

    def table(*plateau: str) -> list[str]:
        done = _claims(EXPORT, tmp_path, *plateau)
        assert done.returncode == 0, done.stderr
        section = done.stdout.split("### runs that had left the plateau")[1].split("###")[0]
        return [line for line in section.splitlines() if line.startswith("| 8 |")]

    grey, own6 = table(), table("--plateau", "6=1000")
    own = table("--plateau", "6=1000", "--plateau", "7=1000")
    rgb = {k: [p for p in EXPORT.glob(f"betavae_k{k}_*beta8*") if p.is_dir()] for k in (6, 7)}
    last = lambda row: row[0].rstrip(" |").rsplit("| ", 1)[1]  # noqa: E731
    n = int(last(grey).split("/")[1])
    assert rgb[6] and rgb[7]
    assert last(grey) == f"{n - len(rgb[6]) - len(rgb[7])}/{n}"
    assert last(own6) == f"{n - len(rgb[7])}/{n}" and last(own) == f"{n}/{n}"
    assert table("--plateau", "600") == grey

    bad = _claims(EXPORT, tmp_path, "--plateau", "six")
    assert bad.returncode == 1 and bad.stderr == (
        "study_claims: --plateau 'six': give N (nats, every x) or X=N (one x)\n"
    )


def test_epochs_on_x_read_each_run_as_it_stood_after_each_scored_epoch(tmp_path: Path):
    """``--x epoch`` follows one schedule's gap over training: at the last scored epoch its
    columns are ``--x factors``'s for the same runs, earlier ones read the runs truncated there,
    and each run counts once."""
    k5 = tmp_path / "k5"
    for run in EXPORT.glob("betavae_k5_*"):
        shutil.copytree(run, k5 / run.name)
    n = len(list(k5.iterdir()))
    by_k, by_epoch = _claims(k5, tmp_path), _claims(k5, tmp_path, "--x", "epoch")
    assert by_k.returncode == 0 and by_epoch.returncode == 0, by_epoch.stderr
    assert by_epoch.stdout.startswith(f"{n} finished runs in ")

    def column(out: str, title: str, at: int) -> list[str]:
        table = out.split(f"### {title}\n")[1].split("###")[0].strip().splitlines()
        where = [c.strip() for c in table[0].strip("|").split("|")].index(str(at))
        return [[c.strip() for c in row.strip("|").split("|")][where] for row in table[2:]]

    for title in (
        "kim_mnih, final epoch (mean ± std over seeds)",
        "higgins, best epoch (mean ± std over seeds)",
    ):
        assert column(by_epoch.stdout, title, 20) == column(by_k.stdout, title, 5)
        assert column(by_epoch.stdout, title, 10) != column(by_epoch.stdout, title, 20)
    rows = {}
    for run in k5.iterdir():
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        beta = json.loads((run / "config.json").read_text())["hparams"]["beta"]
        rows.setdefault(beta, []).append(next(r for r in metrics if r["epoch"] == 10)["kim_mnih"])
    at10 = column(by_epoch.stdout, "kim_mnih, final epoch (mean ± std over seeds)", 10)
    for beta, cell in zip(sorted(rows), at10):
        assert cell.startswith(f"{sum(rows[beta]) / len(rows[beta]):.3f} ± ")
