"""The normalised-β view of an experiment over the latent size (the thesis, section 5.1.1).

The KL term sums over the D latent dimensions, so a fixed β puts less pressure on each dimension
as D grows. Higgins et al. (2017) normalise it: β_norm = β·M/N, with M = D the latent size and
N the number of input values per image (C·H·W; the thesis' section 5.1.1 prints the ratio
inverted, an erratum). The thesis proposes re-reading Experiment 1 against β_norm: the same runs,
each (D, β) cell placed at x = β_norm, one line per D. Drawn for every experiment whose x axis is
``latent_dim`` and whose lines are ``beta``; N is read from the runs' ``config.json``
(``image_shape``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from matplotlib.ticker import NullFormatter

from benchmark.files import read_regular_bytes
from benchmark.report.figures import METRIC_LABELS, SCORE_LABELS, _save, plt
from benchmark.report.records import ExperimentData


def applies(exp: ExperimentData) -> bool:
    """Is this an experiment over D with one line per β (the thesis' Experiment 1 layout)?"""
    return exp.x == "latent_dim" and exp.lines == ("beta",)


def input_values(exp: ExperimentData) -> int | None:
    """N = C·H·W of the experiment's images, from any finished run's config.json."""
    for run_dir in exp.run_dirs.values():
        try:
            shape = json.loads(read_regular_bytes(run_dir / "config.json"))["image_shape"]
        except (OSError, ValueError, KeyError):
            continue
        return int(np.prod(shape))
    return None


def beta_norm(beta: float, latent_dim: int, n_inputs: int) -> float:
    """β_norm = β·D/N."""
    return float(beta) * latent_dim / n_inputs


def plot_beta_norm(
    exp: ExperimentData, metric: str, score: str, out_dir: Path, stem: str
) -> list[Path]:
    """Mean ± std over seeds against β_norm (log scale), one line per D; [] when N is unknown."""
    n_inputs = input_values(exp)
    if n_inputs is None:
        return []
    cells = exp.cells(metric, score)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    dims = exp.x_values()
    colours = plt.get_cmap("plasma")(np.linspace(0.0, 0.85, max(1, len(dims))))
    for colour, d in zip(colours, dims):
        pts = sorted(
            (beta_norm(line[0], d, n_inputs), c.mean, c.std)
            for (x, line), c in cells.items()
            if x == d and c.n and line[0] is not None
        )
        if not pts:
            continue
        xs, means, stds = (np.array(v, dtype=float) for v in zip(*pts))
        ax.plot(xs, means, marker="o", color=colour, label=f"D = {d}")
        ax.fill_between(xs, means - stds, means + stds, color=colour, alpha=0.18, linewidth=0)
    ax.set_xscale("log")
    # labels on the decades only: minor labels (2e-3, 3e-3, ...) overprint each other
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"normalised β: β_norm = β·D/N (N = {n_inputs} input values)")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3, which="both")
    seeds = len({p["seed"] for p in exp.points})
    ax.set_title(
        f"{exp.name}: {METRIC_LABELS.get(metric, metric)}, {SCORE_LABELS[score]}, "
        f"against β_norm\nmean ± 1 std over {seeds} seed{'s' if seeds != 1 else ''}",
        fontsize=10,
    )
    ax.legend(title="latent size", fontsize=8, title_fontsize=9, loc="best")
    if not math.isfinite(ax.get_xlim()[0]):
        plt.close(fig)
        return []
    return _save(fig, out_dir, stem)
