"""`bench report`: the thesis' figures and tables from a sweep folder.

    paths = write_report("results/experiment1", out="results/experiment1/report")

writes, per experiment, metric and score, ``<exp>_<metric>_<score>_lines.{png,svg}`` and
``..._spread.{png,svg}`` (and ``..._beta_norm.{png,svg}`` for an experiment over D with one line
per beta: the same cells against the normalised beta), one ``<exp>_traversals.{png,svg}``, and
``report.md`` and ``report.csv`` holding every number the figures show.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.report import beta_norm
from benchmark.report.figures import plot_lines, plot_spread, plot_traversals
from benchmark.report.records import SCORES, load_sweep
from benchmark.report.tables import write_csv, write_markdown


def write_report(sweep_dir: Path | str, out: Path | str | None = None) -> list[Path]:
    """Draw every figure and table of a sweep; return the files written."""
    sweep_dir = Path(sweep_dir)
    out_dir = Path(out) if out is not None else sweep_dir / "report"
    manifest, experiments = load_sweep(sweep_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    figures: dict[str, list[tuple[str, Path]]] = {}
    for exp in experiments:
        figs = figures.setdefault(exp.name, [])
        for metric in exp.metrics:
            for score in SCORES:
                stem = f"{exp.name}_{metric}_{score}"
                lines = plot_lines(exp, metric, score, out_dir, f"{stem}_lines")
                spread = plot_spread(exp, metric, score, out_dir, f"{stem}_spread")
                written += lines + spread
                figs += [
                    (f"{metric}, {score}: mean ± std over seeds", lines[0]),
                    (f"{metric}, {score}: spread across lines and heatmaps", spread[0]),
                ]
                if beta_norm.applies(exp):  # the thesis' section 5.1.1 view of Experiment 1
                    view = beta_norm.plot_beta_norm(
                        exp, metric, score, out_dir, f"{stem}_beta_norm"
                    )
                    written += view
                    if view:
                        figs.append((f"{metric}, {score}: against normalised β", view[0]))
        trav = plot_traversals(exp, out_dir, f"{exp.name}_traversals")
        written += trav
        if trav:
            figs.append(("latent traversals", trav[0]))
    written.append(write_csv(experiments, out_dir / "report.csv"))
    written.append(write_markdown(manifest, experiments, figures, out_dir / "report.md"))
    return written


__all__ = ["write_report"]
