"""Every number in the report's figures, as a CSV (for tools) and a markdown file (for people)."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

from benchmark.report.figures import (
    METRIC_LABELS,
    SCORE_LABELS,
    axis_label,
    fmt,
    line_label,
    lines_title,
)
from benchmark.report.records import SCORES, ExperimentData
from spritegen.atomic import atomic_path

CSV_COLUMNS = (
    "experiment",
    "metric",
    "score",
    "quantity",
    "x_name",
    "x",
    "line_name",
    "line",
    "n",
    "seeds",
    "values",
    "mean",
    "std",
)


def _num(v: float) -> str:
    return "" if not math.isfinite(v) else repr(float(v))


def csv_rows(experiments: list[ExperimentData]) -> list[dict[str, Any]]:
    """One row per (x, line) cell (quantity 'cell': mean and std over seeds, and the seeds' own
    values) and one per x (quantity 'across_lines': mean and std of the cells' means)."""
    rows = []
    for exp in experiments:
        for metric in exp.metrics:
            for score in SCORES:
                cells = exp.cells(metric, score)
                base = {
                    "experiment": exp.name,
                    "metric": metric,
                    "score": score,
                    "x_name": exp.x,
                    "line_name": "/".join(exp.lines),
                }
                for line in exp.line_values():
                    for x in exp.x_values():
                        c = cells.get((x, line))
                        if c is None:
                            continue
                        rows.append(
                            {
                                **base,
                                "quantity": "cell",
                                "x": fmt(x),
                                "line": "/".join(map(fmt, line)),
                                "n": c.n,
                                "seeds": ";".join(map(str, c.seeds)),
                                "values": ";".join(repr(v) for v in c.values),
                                "mean": _num(c.mean),
                                "std": _num(c.std),
                            }
                        )
                for x, (m, s, n) in exp.spread_across_lines(metric, score).items():
                    rows.append(
                        {
                            **base,
                            "quantity": "across_lines",
                            "x": fmt(x),
                            "line": "",
                            "n": n,
                            "seeds": "",
                            "values": "",
                            "mean": _num(m),
                            "std": _num(s),
                        }
                    )
    return rows


def write_csv(experiments: list[ExperimentData], path: Path) -> Path:
    with atomic_path(path, fsync=False) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(csv_rows(experiments))
    return path


def _cell_text(mean: float, std: float, n: int, unit: str = "") -> str:
    if n == 0 or not math.isfinite(mean):
        return "n/a"
    return f"{mean:z.3f} ± {std:.3f} (n={n}{unit})"  # z: no -0.000


#: How every report.md begins; ``benchmark.report.is_report_folder`` recognises its folders by it.
REPORT_TITLE = b"# Sweep report: "


def unscored_note(exp: ExperimentData, unscored: list[str]) -> str:
    """The sentence, in report.md and in bench report's warning, about finished runs without
    any score of ``exp``'s metrics."""
    return (
        f"{len(unscored)} of the finished runs hold no score of "
        f"{', '.join(exp.metrics)} (trained with --score-preset none and --final-preset none?), "
        "so their cells are empty"
    )


def write_markdown(
    manifest: dict[str, Any],
    experiments: list[ExperimentData],
    figures: dict[str, list[tuple[str, Path]]],
    path: Path,
) -> Path:
    out = [f"{REPORT_TITLE.decode()}{manifest['name']}", ""]
    if manifest.get("description"):
        out += [manifest["description"].strip(), ""]
    out += [
        "Scores are read from each run's `metrics.jsonl`. *final*: the score at the last epoch; "
        "*best*: the maximum over epochs. Cells give mean ± sample std (ddof=1) over seeds and the "
        "number of seeds; the last row is the mean and sample std of the cells' means across the "
        "lines at each x. All numbers are also in `report.csv`.",
        "",
    ]
    for exp in experiments:
        out += [f"## {exp.name}", ""]
        if exp.description:
            out += [exp.description.strip(), ""]
        done = len({p["id"] for p in exp.points}) - len(set(exp.missing))
        out.append(f"{done} of {len({p['id'] for p in exp.points})} runs finished.")
        if exp.missing:
            by_reason: dict[str, list[str]] = {}
            for run_id in sorted(set(exp.missing)):
                by_reason.setdefault(exp.why_missing.get(run_id, "unfinished"), []).append(run_id)
            groups = [
                f"{why} ({len(ids)}): {', '.join(ids)}" for why, ids in sorted(by_reason.items())
            ]
            out.append(f"Missing: {'; '.join(groups)}.")
        unscored = exp.unscored()
        if unscored:
            out.append(f"Unscored: {unscored_note(exp, unscored)}: {', '.join(unscored)}.")
        out.append("")
        xs, lines = exp.x_values(), exp.line_values()
        for metric in exp.metrics:
            for score in SCORES:
                cells = exp.cells(metric, score)
                spread = exp.spread_across_lines(metric, score)
                out += [f"### {METRIC_LABELS.get(metric, metric)}, {SCORE_LABELS[score]}", ""]
                header = [f"{lines_title(exp.lines)} \\ {axis_label(exp.x)}"] + [fmt(x) for x in xs]
                out.append("| " + " | ".join(header) + " |")
                out.append("|" + "---|" * len(header))
                for line in lines:
                    row = [line_label(exp.lines, line)]
                    for x in xs:
                        c = cells.get((x, line))
                        row.append(_cell_text(c.mean, c.std, c.n) if c else "")
                    out.append("| " + " | ".join(row) + " |")
                row = [f"across {lines_title(exp.lines)}"] + [
                    _cell_text(*spread[x], unit=" lines") for x in xs
                ]
                out.append("| " + " | ".join(row) + " |")
                out.append("")
        for caption, fig in figures.get(exp.name, []):
            out.append(f"![{exp.name}: {caption}]({os.path.relpath(fig, path.parent)})")
        out.append("")
    path.write_text("\n".join(out))
    return path
