"""`bench report`: the thesis' figures and tables from a sweep folder.

    paths = write_report("results/experiment1", out="results/experiment1/report")

writes, per experiment, metric and score, ``<exp>_<metric>_<score>_lines.{png,svg}`` and
``..._spread.{png,svg}`` (and ``..._beta_norm.{png,svg}`` for an experiment over D with one line
per beta: the same cells against the normalised beta), one ``<exp>_traversals.{png,svg}``, and
``report.md`` and ``report.csv`` holding every number the figures show. They are drawn into
``.NAME.partial`` beside the report folder ``NAME`` and put in place once all are drawn
(``benchmark.files.staged_folder``): an interrupted report leaves the old one as it was.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from benchmark.files import staged_folder
from benchmark.report import beta_norm
from benchmark.report.export import check_own_folder
from benchmark.report.figures import plot_lines, plot_spread, plot_traversals
from benchmark.report.records import PENDING, SCORES, ExperimentData, load_sweep
from benchmark.report.tables import (
    CSV_COLUMNS,
    REPORT_TITLE,
    unscored_note,
    write_csv,
    write_markdown,
)
from spritegen.atomic import output_path
from spritegen.errors import SpritegenError, SpritegenWarning

REPORT_MD, REPORT_CSV = "report.md", "report.csv"
CSV_HEADER = (",".join(CSV_COLUMNS) + "\r\n").encode()


class NothingToReport(SpritegenError):
    """A sweep none of whose runs has finished: its figures would be empty axes and its tables
    blank (the report of a sweep started a minute ago). The input is fine; there is just
    nothing to draw yet, so the exit status is 1."""

    exit_code = 1


def check_something_finished(sweep_dir: Path, experiments: list[ExperimentData]) -> None:
    """Refuse, before anything is written, a sweep without a finished run, saying how many
    runs it has and where they stand (``missing_reason``). When every run has stopped (failed,
    diverged, unreadable), waiting helps nothing: the line says that none is still to come and
    how to retry them (it used to say "report again once a run has finished")."""
    if any(exp.scores for exp in experiments):
        return
    why = {run_id: reason for exp in experiments for run_id, reason in exp.why_missing.items()}
    where = ", ".join(f"{n} {reason}" for reason, n in sorted(Counter(why.values()).items()))
    if any(reason in PENDING for reason in why.values()):
        raise NothingToReport(
            f"SWEEP_DIR: none of the {len(why)} runs of {sweep_dir} has finished ({where}), so "
            "there is nothing to draw; report again once a run has finished"
        )
    raise NothingToReport(
        f"SWEEP_DIR: every one of the {len(why)} runs of {sweep_dir} stopped without finishing "
        f"({where}) and none is still to come, so there is nothing to draw; see why in each "
        "run's runs/ID.log, fix the cause and start the sweep again to retry them"
    )


def warn_unscored(sweep_dir: Path, experiments: list[ExperimentData]) -> None:
    """Warn of finished runs without any score (report.md notes them too): their figures and
    tables are drawn empty, which read as a broken report when nothing said why."""
    for exp in experiments:
        unscored = exp.unscored()
        if unscored:
            warnings.warn(
                f"{sweep_dir}: experiment {exp.name}: {unscored_note(exp, unscored)} "
                "(report.md lists them)",
                SpritegenWarning,
                stacklevel=2,
            )


def write_report(sweep_dir: Path | str, out: Path | str | None = None) -> list[Path]:
    """Draw every figure and table of a sweep; return the files written."""
    sweep_dir = Path(sweep_dir)
    # on the text: Path("") would be the current folder
    out_dir = output_path("--out", out) if out is not None else sweep_dir / "report"
    manifest, experiments = load_sweep(sweep_dir)
    check_something_finished(sweep_dir, experiments)
    warn_unscored(sweep_dir, experiments)
    check_own_folder(
        out_dir,
        "--out",
        lambda d: is_report_folder(d) or holds_only_figures(d, [e.name for e in experiments]),
        f"holds no {REPORT_MD} written by bench report",
        "a previous bench report",
    )
    with staged_folder(out_dir, "report", "--out", last=REPORT_MD) as stage:
        written = _draw(manifest, experiments, stage)
    return [out_dir / p.name for p in written]


def _draw(manifest: dict[str, Any], experiments: list[ExperimentData], out_dir: Path) -> list[Path]:
    """Every figure and table of the report into ``out_dir``, report.md last."""
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
    written.append(write_csv(experiments, out_dir / REPORT_CSV))
    written.append(write_markdown(manifest, experiments, figures, out_dir / REPORT_MD))
    return written


def is_report_folder(folder: Path) -> bool:
    """Whether bench report wrote ``folder``: its report.md begins with the title
    ``write_markdown`` writes (as an export is recognised by its sweep.json)."""
    try:
        with open(folder / REPORT_MD, "rb") as fh:
            return fh.read(len(REPORT_TITLE)) == REPORT_TITLE
    except OSError:
        return False


def holds_only_figures(folder: Path, experiment_names: list[str]) -> bool:
    """Whether every entry of ``folder`` is a figure this sweep's report draws, or a report.csv
    with our header (or a partial file of either): what a report interrupted before its
    report.md (written last) leaves behind."""
    prefixes = tuple(f"{name}_" for name in experiment_names)

    def ours(p: Path) -> bool:
        name = p.name.removesuffix(".partial")
        if not p.is_file():
            return False
        if name == REPORT_CSV:
            with open(p, "rb") as fh:
                return fh.read(len(CSV_HEADER)) == CSV_HEADER
        return name.startswith(prefixes) and name.endswith((".png", ".svg"))

    return all(ours(p) for p in folder.iterdir())


__all__ = ["write_report"]
