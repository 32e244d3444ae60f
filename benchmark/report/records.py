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

from benchmark.sweep.spec import METRICS
from spritegen.errors import DatasetError

SCORES = ("final", "best")
MANIFEST = "sweep.json"


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch records of a run, in file order, with old Higgins keys renamed; a damaged
    file is a one-line DatasetError.

    Runs recorded before the Higgins headline changed stored ``higgins`` (standardised features)
    and ``higgins_raw`` (raw); they are read as ``higgins_standardised`` and ``higgins``.
    """
    path = run_dir / "metrics.jsonl"
    rows: list[dict[str, Any]] = []
    number = 0
    try:
        with open(path) as fh:
            for line in fh:
                number += 1
                line = line.strip()
                if line:
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise ValueError(f"a JSON {type(row).__name__}")
                    rows.append(upgrade_row(row))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(
            f"{path}: line {number} is not a JSON object per "
            f"epoch ({type(exc).__name__}); run that point again (delete its folder, then "
            f"bench sweep resumes it)"
        ) from None
    return rows


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
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        raise _fail(path, "is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise _fail(path, f"holds {_kind(manifest)}, expected a JSON object with 'experiments'")
    experiments = manifest.get("experiments")
    if not isinstance(experiments, list) or not experiments:
        raise _fail(path, f"'experiments' is {_kind(experiments)}, expected a non-empty list")
    fields = {"name": str, "x": str, "lines": list, "metrics": list, "points": list}
    point_fields = {"id": str, "line": list, "seed": int}
    for i, e in enumerate(experiments):
        if not isinstance(e, dict):
            raise _fail(path, f"experiments[{i}] is {_kind(e)}, expected an object")
        for key, kind in fields.items():
            if not isinstance(e.get(key), kind):
                raise _fail(
                    path,
                    f"experiments[{i}].{key} is {_kind(e.get(key))}, expected a {kind.__name__}",
                )
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
    if not isinstance(manifest.get("name", ""), str):
        raise _fail(path, "'name' must be a string")
    manifest.setdefault("name", path.parent.name)
    return manifest


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
    return math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))


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


def _finished(run_dir: Path) -> bool:
    """A run counts once bench run has written a summary with status "finished"."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return False
    return summary.get("status", "finished") == "finished"


def sort_key(v: Any) -> tuple[int, float, str]:
    """Numbers in numeric order, then strings, then missing values."""
    if v is None:
        return (2, 0.0, "")
    if _is_number(v):
        return (0, float(v), "")
    return (1, 0.0, str(v))


def load_sweep(sweep_dir: Path | str) -> tuple[dict[str, Any], list[ExperimentData]]:
    """Read ``sweep.json`` and every finished run's metrics."""
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
            run_dir = sweep_dir / "runs" / run_id
            if _finished(run_dir) and (run_dir / "metrics.jsonl").is_file():
                rows = read_metrics(run_dir)
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
        scores, missing = {}, []
        for p in points:
            got = scores_of(p["id"], tuple(e["metrics"]))
            if got is None:
                missing.append(p["id"])
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
            )
        )
    return manifest, experiments
