"""Reading a sweep folder's records and reducing them to the numbers the figures show.

Every number comes from the runs' own ``metrics.jsonl`` (one JSON object per epoch): the
*final* score is the metric at the last epoch that reports it, the *best* score the maximum over
epochs. Over seeds a cell reports the mean and the sample standard deviation (ddof=1; 0 for a
single seed); the spread across lines (e.g. across beta) is the sample standard deviation of the
cells' means at one x, as in the thesis' figures 4.2, 4.4, 4.6 and 4.8.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.files import read_regular_bytes
from benchmark.metrics.evaluate import SCORE_RANGES, UNDEFINED_SCORES
from benchmark.sweep.spec import METRICS, NAME_RE
from spritegen.errors import DatasetError, quote

SCORES = ("final", "best")
MANIFEST = "sweep.json"


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch records of a run, in file order, with old Higgins keys renamed; a damaged
    file is a one-line DatasetError naming the line (1-based) and, for a bad score, the field.

    Runs recorded before the Higgins headline changed stored ``higgins`` (standardised features)
    and ``higgins_raw`` (raw); they are read as ``higgins_standardised`` and ``higgins``.
    """
    path = run_dir / "metrics.jsonl"
    try:
        data = read_regular_bytes(path)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc}); {RERUN}") from None
    rows: list[dict[str, Any]] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise DatasetError(f"{path}: line {number} is not UTF-8 text; {RERUN}") from None
        if not line:
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError(f"a JSON {type(row).__name__}")
        except ValueError as exc:
            raise DatasetError(
                f"{path}: line {number} is not a JSON object per epoch ({type(exc).__name__}); "
                f"{RERUN}"
            ) from None
        row = upgrade_row(row)
        check_scores(row, path, number)
        rows.append(row)
    return rows


#: How to repair a run's damaged records, for the end of an error line.
RERUN = "run that point again (delete its folder, then bench sweep resumes it)"
#: Rounding a score may show beyond its range (an entropy ratio a few ulps above 1).
RANGE_SLACK = 1e-9


def check_scores(row: dict[str, Any], path: Path, number: int) -> None:
    """Every score of one epoch's record is a number in its metric's range (``SCORE_RANGES``),
    or that metric's own mark of an undefined score (``UNDEFINED_SCORES``).

    A score the report cannot read was silently left out of its cell (n=1 of 2 seeds, under
    "all runs finished"), and 1e308 overflowed the standard deviation."""
    for key in METRICS:
        if key not in row:
            continue  # not computed at this epoch (score preset none, DCI only at the end)
        value = row[key]
        undefined = UNDEFINED_SCORES.get(key)
        if undefined == "null" and value is None:
            continue
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if undefined == "NaN" and is_number and math.isnan(value):
            continue
        low, high = SCORE_RANGES[key]
        if is_number and low - RANGE_SLACK <= value <= high + RANGE_SLACK:
            continue
        allowed = f"a number in [{low:g}, {high:g}]".replace("[-inf", "(-inf")
        if undefined:
            allowed += f" or {undefined} (undefined)"
        raise DatasetError(
            f"{path}: line {number}: field '{key}' is {quote(value)}; expected {allowed}; {RERUN}"
        )


def check_recorded(run_dir: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """A finished run's records hold what its summary says was scored: at least one epoch, and
    every score whose best value summary.json lists. A legitimately unscored metric (score
    preset none) is in neither, and stays allowed."""
    path = run_dir / "metrics.jsonl"
    if not rows:
        raise DatasetError(
            f"{path}: holds no epoch record, but summary.json says the run finished; {RERUN}"
        )
    best = summary.get("best_scores")
    if not isinstance(best, dict):
        return
    for key in METRICS:
        if key in best and not any(key in row for row in rows):
            raise DatasetError(
                f"{path}: no line has field '{key}', but summary.json records its best score; "
                f"{RERUN}"
            )


def _fail(path: Path, what: str) -> DatasetError:
    return DatasetError(
        f"{path}: {what}; this file is written by bench sweep: give a sweep folder it made, or run "
        f"`bench sweep SPEC --out {path.parent}` again to rewrite it"
    )


def _kind(value: Any) -> str:
    return f"a JSON {type(value).__name__}" if value is not None else "missing"


def read_manifest(path: Path) -> dict[str, Any]:
    """``sweep.json``, checked to have what the report reads: experiments with their points."""
    try:
        manifest = json.loads(read_regular_bytes(path))
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror or exc})") from None
    except ValueError:  # UnicodeDecodeError too
        raise _fail(path, "is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise _fail(path, f"holds {_kind(manifest)}, expected a JSON object with 'experiments'")
    experiments = manifest.get("experiments")
    if not isinstance(experiments, list) or not experiments:
        raise _fail(path, f"'experiments' is {_kind(experiments)}, expected a non-empty list")
    fields = {"name": str, "x": str, "lines": list, "metrics": list, "points": list}
    point_fields = {"id": str, "line": list, "seed": int}
    names: set[str] = set()
    for i, e in enumerate(experiments):
        if not isinstance(e, dict):
            raise _fail(path, f"experiments[{i}] is {_kind(e)}, expected an object")
        for key, kind in fields.items():
            if not isinstance(e.get(key), kind):
                raise _fail(
                    path,
                    f"experiments[{i}].{key} is {_kind(e.get(key))}, expected a {kind.__name__}",
                )
        _check_layout(path, i, e, names)
        for j, p in enumerate(e["points"]):
            bad = [
                k
                for k, kind in point_fields.items()
                if not isinstance(p, dict) or not isinstance(p.get(k), kind)
            ]
            if bad or "x" not in p:
                raise _fail(
                    path, f"experiments[{i}].points[{j}] lacks a valid {', '.join(bad or ['x'])}"
                )
            if not is_run_id(p["id"]):
                raise _fail(path, f"experiments[{i}].points[{j}] has id {quote(p['id'])}; {RUN_ID}")
            # the axes' values are table keys and plot coordinates: a null x or a list value
            # was a TypeError deep in the figures, after some of them were written
            if not _is_axis_value(p["x"]) or not all(
                v is None or _is_axis_value(v) for v in p["line"]
            ):
                raise _fail(
                    path,
                    f"experiments[{i}].points[{j}] has x {quote(p['x'])} and line "
                    f"{quote(p['line'])}; expected a number, text or true/false each (null also "
                    "in line)",
                )
    if not isinstance(manifest.get("name", ""), str):
        raise _fail(path, "'name' must be a string")
    manifest.setdefault("name", path.parent.name)
    return manifest


#: What a run id is, for the end of an error line: it names a folder in runs/ (or in an export).
RUN_ID = "expected the name of a run folder (not empty, '.' or '..', no '/' or '\\')"


def is_run_id(value: Any) -> bool:
    """Whether ``value`` can be a run id: one folder name, so that ``runs/<id>`` (an export's
    ``DEST/<id>``) stays inside its folder; ``--export`` replaces ``DEST/<id>`` whole, and an id
    ``../x`` pointed it outside DEST."""
    return (
        isinstance(value, str)
        and value not in ("", ".", "..")
        and not any(c in value for c in "/\\\0")
    )


def _check_layout(path: Path, i: int, e: dict[str, Any], names: set[str]) -> None:
    """An experiment's name and metrics as a sweep spec allows them (``benchmark.sweep.spec``):
    the name prefixes each figure's file name, so ``a/b`` was a traceback and ``../x`` wrote
    figures outside the report folder; a metric name that is no score (``nosuch``, ``5``) drew
    empty figures, and one named twice drew its figures twice over the same files."""
    name = e["name"]
    if not NAME_RE.fullmatch(name) or name in names:
        raise _fail(
            path,
            f"experiments[{i}].name is {quote(name)}; expected letters, digits, '-', '_' and "
            "'.', starting with a letter or digit, and unique among the experiments",
        )
    names.add(name)
    seen: set[str] = set()
    for m in e["metrics"]:
        twice = isinstance(m, str) and m in seen
        if not isinstance(m, str) or m not in METRICS or twice:
            raise _fail(
                path,
                f"experiments[{i}].metrics holds {quote(m)}{' twice' if twice else ''}; "
                f"expected distinct names among {', '.join(METRICS)}",
            )
        seen.add(m)


def _is_axis_value(value: Any) -> bool:
    """A value a run parameter takes on a report axis: a number, text or a boolean."""
    return isinstance(value, (str, int, float))


def upgrade_row(row: dict[str, Any]) -> dict[str, Any]:
    """Map a record's pre-rename Higgins keys onto the current ones (see ``read_metrics``)."""
    if "higgins_raw" in row and "higgins_standardised" not in row:
        row = dict(row)
        row["higgins_standardised"] = row.get("higgins")
        row["higgins"] = row.pop("higgins_raw")
    return row


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def final_and_best(rows: list[dict[str, Any]], metric: str) -> tuple[float, float] | None:
    """(score at the last epoch that has it, best score over epochs), or None if never scored."""
    values = [float(r[metric]) for r in rows if _is_number(r.get(metric))]
    if not values:
        return None
    return values[-1], max(values)


def sample_std(values: list[float]) -> float:
    """Sample standard deviation (ddof=1); 0 for one value, NaN for none."""
    n = len(values)
    if n == 0:
        return math.nan
    if n == 1:
        return 0.0
    m = sum(values) / n
    try:
        return math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    except OverflowError:  # an R² (unbounded below) of -1e200 next to a sane one
        return math.inf


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


@dataclass
class Cell:
    """One (x, line) cell of an experiment for one metric and score: a value per seed."""

    x: Any
    line: tuple[Any, ...]
    seeds: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return mean(self.values)

    @property
    def std(self) -> float:
        return sample_std(self.values)


@dataclass
class ExperimentData:
    """An experiment's layout plus every run's final and best score for each metric."""

    name: str
    description: str
    x: str
    lines: tuple[str, ...]
    metrics: tuple[str, ...]
    points: list[dict[str, Any]]  # id, x, line (tuple), seed
    scores: dict[str, dict[str, tuple[float, float]]]  # run id -> metric -> (final, best)
    missing: list[str]  # run ids without a finished run folder
    run_dirs: dict[str, Path]
    why_missing: dict[str, str] = field(default_factory=dict)  # run id -> ``missing_reason``

    def unscored(self) -> list[str]:
        """Finished runs that hold no score of this experiment's metrics (trained with
        ``--score-preset none --final-preset none``): their cells are empty, and the report
        says so rather than drawing empty axes and n/a tables without a word."""
        return sorted(
            i for i, got in self.scores.items() if not any(m in got for m in self.metrics)
        )

    def x_values(self) -> list[Any]:
        return sorted({p["x"] for p in self.points}, key=sort_key)

    def line_values(self) -> list[tuple[Any, ...]]:
        return sorted({p["line"] for p in self.points}, key=lambda t: tuple(sort_key(v) for v in t))

    def cells(self, metric: str, score: str) -> dict[tuple[Any, tuple[Any, ...]], Cell]:
        """(x, line) -> Cell over seeds, for every cell of the layout (empty if no finished run)."""
        which = SCORES.index(score)
        out: dict[tuple[Any, tuple[Any, ...]], Cell] = {}
        for p in sorted(self.points, key=lambda p: p["seed"]):
            cell = out.setdefault((p["x"], p["line"]), Cell(p["x"], p["line"]))
            got = self.scores.get(p["id"], {}).get(metric)
            if got is not None:
                cell.seeds.append(p["seed"])
                cell.values.append(got[which])
        return out

    def spread_across_lines(self, metric: str, score: str) -> dict[Any, tuple[float, float, int]]:
        """x -> (mean of the line means, sample std of the line means, number of lines)."""
        cells = self.cells(metric, score)
        out = {}
        for x in self.x_values():
            means = [c.mean for (cx, _), c in cells.items() if cx == x and c.n > 0]
            out[x] = (mean(means), sample_std(means), len(means))
        return out


def finished_summary(run_dir: Path) -> dict[str, Any] | None:
    """The summary of a run bench run has finished (status "finished"; its metrics.jsonl,
    written before, is then complete), or None for a run that has not."""
    try:
        summary = json.loads(read_regular_bytes(run_dir / "summary.json"))
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or not (run_dir / "metrics.jsonl").is_file():
        return None
    return summary if summary.get("status", "finished") == "finished" else None


#: The ``missing_reason`` of a run still to come: the sweep has not started it, or is training it
#: (or was stopped while it trained, and resumes it). Every other reason is a run that stopped.
PENDING = ("not run", "unfinished")


def missing_reason(run_dir: Path) -> str:
    """Why a run has no scores, in a word or two, from what its folder holds: a diverged or
    failed run is a result of the study (a beta too large), not a run still to come.

    A summary.json edited by hand (a list, a number, a status that is no text) is unreadable,
    not "unfinished": bench run never writes one, so no start will finish that run as it is.
    A finished summary without its metrics.jsonl is "no metrics.jsonl" (it was "unfinished")."""
    if not run_dir.is_dir():
        return "not run"
    try:
        summary = json.loads(read_regular_bytes(run_dir / "summary.json"))
    except FileNotFoundError:
        return "unfinished"
    except (OSError, ValueError):
        return "unreadable summary.json"
    status = summary.get("status", "finished") if isinstance(summary, dict) else None
    if not isinstance(status, str):
        return "unreadable summary.json"
    if status != "finished":
        return status  # diverged, failed
    metrics = run_dir / "metrics.jsonl"
    if not (metrics.exists() or metrics.is_symlink()):
        return "no metrics.jsonl"
    return "unreadable metrics.jsonl"  # a folder, a FIFO or a dangling link at its place


def is_finished(run_dir: Path) -> bool:
    """Whether bench run has finished this run (see ``finished_summary``)."""
    return finished_summary(run_dir) is not None


def run_folder(sweep_dir: Path, run_id: str) -> Path:
    """Where a run's records are: ``runs/<id>`` in a sweep folder, ``<id>`` in an export
    (``bench report SWEEP --export DEST``, docs/results/runs/...)."""
    in_sweep = sweep_dir / "runs" / run_id
    return in_sweep if in_sweep.is_dir() else sweep_dir / run_id


def sort_key(v: Any) -> tuple[int, float, str]:
    """Numbers in numeric order, then strings, then missing values."""
    if v is None:
        return (2, 0.0, "")
    if _is_number(v):
        return (0, float(v), "")
    return (1, 0.0, str(v))


def load_sweep(sweep_dir: Path | str) -> tuple[dict[str, Any], list[ExperimentData]]:
    """Read ``sweep.json`` and every finished run's metrics, from a sweep folder or from an
    export of its records (see ``run_folder``)."""
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / MANIFEST
    if not path.is_file():
        raise DatasetError(
            f"SWEEP_DIR: {sweep_dir} has no {MANIFEST}; give a folder made by bench sweep"
        )
    manifest = read_manifest(path)
    cache: dict[str, dict[str, tuple[float, float]] | None] = {}
    run_dirs: dict[str, Path] = {}

    def scores_of(run_id: str, metrics: tuple[str, ...]) -> dict[str, tuple[float, float]] | None:
        if run_id not in cache:
            run_dir = run_folder(sweep_dir, run_id)
            summary = finished_summary(run_dir)
            if summary is not None:
                rows = read_metrics(run_dir)
                check_recorded(run_dir, rows, summary)
                got = {}
                for m in METRICS:
                    fb = final_and_best(rows, m)
                    if fb is not None:
                        got[m] = fb
                cache[run_id] = got
                run_dirs[run_id] = run_dir
            else:
                cache[run_id] = None
        return cache[run_id]

    experiments = []
    for e in manifest["experiments"]:
        points = [
            {"id": p["id"], "x": p["x"], "line": tuple(p["line"]), "seed": p["seed"]}
            for p in e["points"]
        ]
        scores, missing, why_missing = {}, [], {}
        for p in points:
            got = scores_of(p["id"], tuple(e["metrics"]))
            if got is None:
                missing.append(p["id"])
                why_missing[p["id"]] = missing_reason(run_folder(sweep_dir, p["id"]))
            else:
                scores[p["id"]] = got
        experiments.append(
            ExperimentData(
                name=e["name"],
                description=e.get("description", ""),
                x=e["x"],
                lines=tuple(e["lines"]),
                metrics=tuple(e["metrics"]),
                points=points,
                scores=scores,
                missing=missing,
                run_dirs={p["id"]: run_dirs[p["id"]] for p in points if p["id"] in run_dirs},
                why_missing=why_missing,
            )
        )
    return manifest, experiments
