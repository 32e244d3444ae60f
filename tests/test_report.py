"""`bench report` on a real tiny sweep: every figure and table, and numbers equal to the runs' own.

The expected numbers are computed here straight from each run folder (config.json for the cell,
metrics.jsonl for the scores), independently of the sweep manifest and of the report's code.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sweep_helpers import subprocess_env, tiny_spec

from benchmark.files import staging_path
from benchmark.report import write_report
from benchmark.sweep import load_sweep, run_sweep
from benchmark.sweep.cli import report_command

METRICS = ("kim_mnih", "higgins")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "sweep"
    result = run_sweep(load_sweep(tiny_spec("tiny2", [0, 1])), out=out, workers=2, progress=False)
    assert result.ok and len(result.finished) == 8, [o.error for o in result.failed]
    write_report(out)
    return out


def _expected(sweep: Path) -> dict[tuple[str, str, int, float], list[float]]:
    """(metric, score, K, beta) -> the seeds' values, from the run folders alone."""
    cells: dict[tuple[str, str, int, float], list[tuple[int, float]]] = {}
    for run in sorted((sweep / "runs").iterdir()):
        if not (run / "summary.json").is_file():
            continue
        config = json.loads((run / "config.json").read_text())
        rows = [
            json.loads(line)
            for line in (run / "metrics.jsonl").read_text().splitlines()
            if line.strip()
        ]
        k, beta, seed = config["num_factors"], float(config["hparams"]["beta"]), config["seed"]
        for m in METRICS:
            series = [r[m] for r in sorted(rows, key=lambda r: r["epoch"]) if r.get(m) is not None]
            cells.setdefault((m, "final", k, beta), []).append((seed, series[-1]))
            cells.setdefault((m, "best", k, beta), []).append((seed, max(series)))
    return {key: [v for _, v in sorted(vals)] for key, vals in cells.items()}


def _std(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


@pytest.mark.slow
def test_report_numbers_equal_the_runs_records(sweep: Path) -> None:
    expected = _expected(sweep)
    assert len(expected) == 2 * 2 * 2 * 2  # metrics x scores x K x beta
    with open(sweep / "report" / "report.csv") as fh:
        rows = list(csv.DictReader(fh))
    cells = {
        (r["metric"], r["score"], int(r["x"]), float(r["line"])): r
        for r in rows
        if r["quantity"] == "cell"
    }
    assert set(cells) == set(expected)
    for key, values in expected.items():
        row = cells[key]
        assert int(row["n"]) == 2
        assert [float(v) for v in row["values"].split(";")] == pytest.approx(
            values, abs=0, rel=1e-12
        )
        assert float(row["mean"]) == pytest.approx(np.mean(values), rel=1e-12)
        assert float(row["std"]) == pytest.approx(_std(values), rel=1e-12, abs=1e-15)
    # the spread across beta at each K: std of the per-beta means
    across = {
        (r["metric"], r["score"], int(r["x"])): r for r in rows if r["quantity"] == "across_lines"
    }
    for (m, s, k), row in across.items():
        means = [np.mean(expected[(m, s, k, b)]) for b in (1.0, 4.0)]
        assert float(row["mean"]) == pytest.approx(np.mean(means), rel=1e-12)
        assert float(row["std"]) == pytest.approx(_std(means), rel=1e-12, abs=1e-15)
    assert len(across) == 2 * 2 * 2
    # best is never below final
    for (m, s, k, b), values in expected.items():
        if s == "best":
            assert all(bv >= fv for bv, fv in zip(values, expected[(m, "final", k, b)]))


@pytest.mark.slow
def test_markdown_holds_the_same_numbers(sweep: Path) -> None:
    text = (sweep / "report" / "report.md").read_text()
    for values in _expected(sweep).values():
        assert f"{np.mean(values):.3f} ± {_std(values):.3f} (n=2)" in text
    assert "8 of 8 runs finished." in text
    for png in (
        "tiny2_kim_mnih_final_lines.png",
        "tiny2_higgins_best_spread.png",
        "tiny2_traversals.png",
    ):
        assert f"]({png})" in text


@pytest.mark.slow
def test_cli_writes_figures_in_both_formats(sweep: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(report_command, [str(sweep), "--out", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    pngs = sorted(p.stem for p in (tmp_path / "rep").glob("*.png"))
    svgs = sorted(p.stem for p in (tmp_path / "rep").glob("*.svg"))
    assert (
        pngs == svgs and len(pngs) == 2 * 2 * 2 + 1
    )  # metrics x scores x (lines, spread) + traversals
    for p in (tmp_path / "rep").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_report_of_a_partial_sweep_lists_missing_runs(sweep: Path, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    (partial / "runs").mkdir(parents=True)
    (partial / "sweep.json").write_text((sweep / "sweep.json").read_text())
    manifest = json.loads((sweep / "sweep.json").read_text())
    ids = [p["id"] for p in manifest["points"]]
    kept, diverged, unfinished = ids[:3]
    (partial / "runs" / kept).symlink_to(sweep / "runs" / kept)
    # a run that diverged (its summary says so) and one killed before its summary
    for run_id in (diverged, unfinished):
        shutil.copytree(sweep / "runs" / run_id, partial / "runs" / run_id)
    (partial / "runs" / diverged / "summary.json").write_text(
        json.dumps({"status": "diverged", "error": "the loss became non-finite (nan)"})
    )
    (partial / "runs" / unfinished / "summary.json").unlink()
    write_report(partial)
    text = (partial / "report" / "report.md").read_text()
    assert "1 of 8 runs finished." in text
    not_run = ", ".join(sorted(ids[3:]))
    assert (
        f"Missing: diverged (1): {diverged}; not run (5): {not_run}; unfinished (1): {unfinished}."
    ) in text
    assert "n/a" in text
    with open(partial / "report" / "report.csv") as fh:
        filled = [r for r in csv.DictReader(fh) if r["quantity"] == "cell" and r["n"] != "0"]
    assert len(filled) == 2 * 2  # the one run's cell, for each metric and score
    assert all(math.isfinite(float(r["mean"])) for r in filled)


def test_report_of_a_sweep_without_a_finished_run_is_one_line(sweep: Path, tmp_path: Path) -> None:
    """A sweep none of whose runs has finished (a report asked for a minute after the start)
    drew every figure as empty axes and blank tables. Now: one line saying where the runs stand,
    exit 1, no report folder."""
    early = tmp_path / "early"
    (early / "runs").mkdir(parents=True)
    (early / "sweep.json").write_text((sweep / "sweep.json").read_text())
    ids = [p["id"] for p in json.loads((sweep / "sweep.json").read_text())["points"]]
    shutil.copytree(sweep / "runs" / ids[0], early / "runs" / ids[0])
    (early / "runs" / ids[0] / "summary.json").unlink()  # killed before its summary
    res = CliRunner().invoke(report_command, [str(early)])
    assert res.exit_code == 1, res.output
    assert res.output.splitlines() == [
        f"bench: error: SWEEP_DIR: none of the 8 runs of {early} has finished (7 not run, "
        "1 unfinished), so there is nothing to draw; report again once a run has finished"
    ]
    assert sorted(p.name for p in early.iterdir()) == ["runs", "sweep.json"]
    (early / "runs" / ids[0] / "summary.json").write_text(
        (sweep / "runs" / ids[0] / "summary.json").read_text()
    )
    assert CliRunner().invoke(report_command, [str(early)]).exit_code == 0


def test_not_a_sweep_folder_is_exit_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(report_command, [str(tmp_path)])
    assert res.exit_code == 2
    assert "has no sweep.json" in res.output


def _cells(report_csv: Path) -> list[dict[str, str]]:
    with open(report_csv) as fh:
        return list(csv.DictReader(fh))


def _part(sweep: Path, folder: Path, keep: list[str]) -> Path:
    """A sweep folder holding only some of ``sweep``'s runs, as one machine of several would."""
    (folder / "runs").mkdir(parents=True)
    (folder / "sweep.json").write_text((sweep / "sweep.json").read_text())
    for run_id in keep:
        (folder / "runs" / run_id).symlink_to(sweep / "runs" / run_id)
    return folder


@pytest.mark.slow
def test_export_holds_only_records_and_reports_the_same_numbers(
    sweep: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "docs" / "results" / "runs" / "tiny2"
    res = CliRunner().invoke(report_command, [str(sweep), "--export", str(dest)])
    assert res.exit_code == 0, res.output
    assert "exported 8 runs" in res.output
    run_dirs = sorted(p for p in dest.iterdir() if p.is_dir())
    assert len(run_dirs) == 8
    for d in run_dirs:
        assert sorted(p.name for p in d.iterdir()) == [
            "config.json",
            "metrics.jsonl",
            "summary.json",
        ]
        assert (d / "metrics.jsonl").read_bytes() == (
            sweep / "runs" / d.name / "metrics.jsonl"
        ).read_bytes()
    assert {p.name for p in dest.iterdir() if p.is_file()} == {"sweep.json"}
    # the report drawn from the export has the sweep's own numbers
    write_report(dest, tmp_path / "from-export")
    assert _cells(tmp_path / "from-export" / "report.csv") == _cells(
        sweep / "report" / "report.csv"
    )
    again = CliRunner().invoke(report_command, [str(sweep), "--export", str(dest)])
    assert "exported 0 runs" in again.output and "8 already there" in again.output


@pytest.mark.slow
def test_export_in_parts_accumulates_runs(sweep: Path, tmp_path: Path) -> None:
    ids = [p["id"] for p in json.loads((sweep / "sweep.json").read_text())["points"]]
    dest = tmp_path / "export"
    from benchmark.report.export import export_runs

    first = export_runs(_part(sweep, tmp_path / "machine-a", ids[:3]), dest)
    assert len(first.copied) == 3 and len(first.unfinished) == 5
    write_report(dest, tmp_path / "partial")
    assert "3 of 8 runs finished." in (tmp_path / "partial" / "report.md").read_text()
    second = export_runs(_part(sweep, tmp_path / "machine-b", ids[3:]), dest)
    assert len(second.copied) == 5 and second.unfinished == []
    write_report(dest, tmp_path / "whole")
    assert _cells(tmp_path / "whole" / "report.csv") == _cells(sweep / "report" / "report.csv")


@pytest.mark.slow
def test_export_refuses_another_sweep_with_one_line(sweep: Path, tmp_path: Path) -> None:
    dest = tmp_path / "export"
    assert CliRunner().invoke(report_command, [str(sweep), "--export", str(dest)]).exit_code == 0
    other = tmp_path / "other"
    other.mkdir()
    manifest = json.loads((sweep / "sweep.json").read_text())
    manifest["name"] = "another"
    (other / "sweep.json").write_text(json.dumps(manifest))
    before = sorted(p.name for p in dest.iterdir())
    res = CliRunner().invoke(report_command, [str(other), "--export", str(dest)])
    assert res.exit_code == 2
    assert "holds sweep 'tiny2', not 'another'" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert sorted(p.name for p in dest.iterdir()) == before


@pytest.mark.slow
def test_beta_norm_view_of_an_experiment_over_latent_size(sweep: Path, tmp_path: Path) -> None:
    """Re-labelled as an experiment over D (all tiny runs have D = 3), the report adds the
    normalised-beta figures, with N read from the runs' config.json (32 x 32 x 1)."""
    from benchmark.report import beta_norm
    from benchmark.report.records import load_sweep as load_records

    over_d = tmp_path / "over-d"
    over_d.mkdir()
    manifest = json.loads((sweep / "sweep.json").read_text())
    for exp in manifest["experiments"]:
        exp["x"] = "latent_dim"
        for p in exp["points"]:
            p["x"] = 3
    (over_d / "sweep.json").write_text(json.dumps(manifest))
    (over_d / "runs").symlink_to(sweep / "runs")
    _, (exp,) = load_records(over_d)
    assert beta_norm.applies(exp)
    assert beta_norm.input_values(exp) == 32 * 32
    assert beta_norm.beta_norm(4, 3, 32 * 32) == pytest.approx(12 / 1024)
    written = write_report(over_d, tmp_path / "rep")
    names = {p.name for p in written}
    assert "tiny2_kim_mnih_final_beta_norm.png" in names
    assert "against normalised β" in (tmp_path / "rep" / "report.md").read_text()
    # an experiment over K is not redrawn
    _, (over_k,) = load_records(sweep)
    assert not beta_norm.applies(over_k)


def test_old_run_folders_higgins_keys_are_read_under_the_new_names(tmp_path: Path) -> None:
    """Runs recorded before the Higgins headline change stored the standardised score as
    `higgins` and the raw one as `higgins_raw`; the report reads them under today's names."""
    from benchmark.report.records import final_and_best, read_metrics

    rows = [
        {"epoch": 1, "higgins": 0.9, "higgins_raw": 0.7},
        {"epoch": 2, "higgins": 1.0, "higgins_raw": 0.6},
        {"epoch": 3, "higgins": 0.8, "higgins_standardised": 0.95},  # already new: untouched
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = read_metrics(tmp_path)
    assert [r["higgins"] for r in got] == [0.7, 0.6, 0.8]
    assert [r["higgins_standardised"] for r in got] == [0.9, 1.0, 0.95]
    assert all("higgins_raw" not in r for r in got)
    assert final_and_best(got, "higgins") == (0.8, 0.8)


# probe of 2026-12-01


@pytest.mark.slow
@pytest.mark.parametrize(
    "flag, where, why",
    [
        ("--out", "k2.h5/sub", "Not a directory"),
        ("--export", "k2.h5/sub", "Not a directory"),
        ("--out", "/proc/report", "No such file or directory"),
    ],
)
def test_a_report_folder_that_cannot_be_created_is_one_line(
    sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str, where: str, why: str
) -> None:
    """`--out` / `--export` where no folder can be made (below a file, under /proc) was a
    NotADirectoryError or FileNotFoundError traceback, exit 1. Now one line, exit 2, as
    `bench run` and `bench sweep` say it; nothing is written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "k2.h5").write_text("a file\n")
    res = CliRunner().invoke(report_command, [str(sweep), flag, where])
    assert res.exit_code == 2, res.output
    what = "report" if flag == "--out" else "export"
    assert res.output.splitlines() == [
        f"bench: error: {flag} '{where}': cannot create the {what} folder ({why}); "
        "choose a writable folder"
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["k2.h5"]


def _interrupted_report(sweep: Path, out: Path, tmp: Path) -> tuple[int, str]:
    """(exit status, stderr) of `bench report SWEEP --out OUT` given Ctrl-C (SIGINT) once it
    has drawn its first figure (beside OUT, or in a new OUT as it used to); its caches in
    ``tmp``."""
    drawn = [staging_path(out)] + ([] if out.exists() else [out])
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmark.cli", "report", str(sweep), "--out", str(out)],
        env=subprocess_env(tmp),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    while proc.poll() is None and not any(p for d in drawn for p in d.glob("*.png")):
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.slow
def test_an_interrupted_report_leaves_the_report_folder_as_it_was(
    sweep: Path, tmp_path: Path
) -> None:
    """Ctrl-C during `bench report --out DIR` left DIR with some figures and no report.md, and
    over an earlier report a mix of old and new figures. Now the report is drawn beside DIR and
    put in place once complete: interrupted, no DIR at all, or the earlier report as it was;
    the next report replaces the old one's files and keeps the user's."""
    work = tmp_path / "work"
    work.mkdir()
    status, err = _interrupted_report(sweep, work / "rpi", tmp_path)
    assert status == 130 and err.splitlines()[-1] == "bench: interrupted", err
    assert sorted(p.name for p in work.iterdir()) == []

    old = work / "rep"
    assert CliRunner().invoke(report_command, [str(sweep), "--out", str(old)]).exit_code == 0
    (old / "report.md").write_bytes((old / "report.md").read_bytes() + b"\nan earlier report\n")
    (old / "my-notes.txt").write_text("mine\n")
    before = _files(old)
    status, err = _interrupted_report(sweep, old, tmp_path)
    assert status == 130 and err.splitlines()[-1] == "bench: interrupted", err
    assert _files(old) == before
    assert sorted(p.name for p in work.iterdir()) == ["rep"]

    staging_path(old).mkdir()  # as a killed report leaves it
    (staging_path(old) / "tiny2_traversals.png").write_bytes(b"half a figure")
    res = CliRunner().invoke(report_command, [str(sweep), "--out", str(old)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in work.iterdir()) == ["rep"]
    after = _files(old)
    assert after["my-notes.txt"] == b"mine\n"
    assert after["report.md"] == (sweep / "report" / "report.md").read_bytes()
    assert set(after) == set(before)


@pytest.mark.slow
def test_an_export_is_put_in_place_whole(sweep: Path, tmp_path: Path) -> None:
    """An export is written beside DEST and put in place once complete, as a report is: what a
    killed export left there is dropped, and DEST holds its runs and sweep.json."""
    dest = tmp_path / "export"
    staging_path(dest).mkdir()
    (staging_path(dest) / "half").mkdir()
    res = CliRunner().invoke(report_command, [str(sweep), "--export", str(dest)])
    assert res.exit_code == 0 and "exported 8 runs" in res.output, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    assert len([p for p in dest.iterdir() if p.is_dir()]) == 8 and (dest / "sweep.json").is_file()
