"""The thesis' figures (4.1-4.8) drawn from a sweep's records, legible without the code.

Per experiment, metric and score (final epoch / best over epochs):

* ``lines``: mean score against x (D or K) with a +-1 std band over seeds, one line per beta
  (figures 4.1, 4.3, 4.5, 4.7);
* ``spread``: the std across beta against x, and heatmaps of the mean and of the std over seeds
  (figures 4.2, 4.4, 4.6, 4.8);

plus one ``traversals`` figure per experiment with the runs' traversal grids side by side.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from benchmark.params import BY_KEY
from benchmark.report.records import ExperimentData

FORMATS = ("png", "svg")
# Greek letters spelled out in hyperparameter names are drawn as letters: beta_norm -> β_norm.
GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "eta": "η",
    "kappa": "κ", "lambda": "λ", "mu": "μ", "rho": "ρ", "sigma": "σ", "tau": "τ", "omega": "ω",
}  # fmt: skip
METRIC_LABELS = {
    "kim_mnih": "Kim–Mnih (FactorVAE) score",
    "kim_mnih_weighted": "weighted Kim–Mnih score",
    "higgins": "Higgins (β-VAE) score",
    "higgins_standardised": "Higgins score, standardised features",
    "mig": "MIG",
    "dci_disentanglement": "DCI disentanglement",
    "dci_completeness": "DCI completeness",
    "dci_informativeness": "DCI informativeness (accuracy)",
    "sap": "SAP score",
    "modularity": "modularity",
    "explicitness": "explicitness (ROC-AUC)",
    "linear_r2": "linear R² of the factors (all latent dims)",
    "linear_r2_best_dim": "linear R² of the factors (best single latent dim)",
}
SCORE_LABELS = {"final": "final epoch", "best": "best over epochs"}


def _greek(name: str) -> str:
    return "_".join(GREEK.get(part, part) for part in name.split("_"))


def axis_label(name: str) -> str:
    """A run parameter's label from the parameter table; a model hyperparameter's own name."""
    return BY_KEY[name].label if name in BY_KEY else _greek(name).replace("_", " ")


def axis_symbol(name: str) -> str:
    return BY_KEY[name].symbol if name in BY_KEY else _greek(name)


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return "–" if v is None else str(v)


def line_label(names: tuple[str, ...], values: tuple[Any, ...]) -> str:
    """'β = 4', or 'model = annealedvae, C_max = 25' for several line parameters."""
    parts = [f"{axis_symbol(n)} = {fmt(v)}" for n, v in zip(names, values) if v is not None]
    return ", ".join(parts) or "default"


def lines_title(names: tuple[str, ...]) -> str:
    return " / ".join(axis_symbol(n) for n in names)


def _save(fig: plt.Figure, out_dir: Path, stem: str) -> list[Path]:
    paths = []
    for ext in FORMATS:
        p = out_dir / f"{stem}.{ext}"
        fig.savefig(p, dpi=130, bbox_inches="tight")
        paths.append(p)
    plt.close(fig)
    return paths


def _seeds_note(exp: ExperimentData) -> str:
    seeds = sorted({p["seed"] for p in exp.points})
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}"


def plot_lines(
    exp: ExperimentData, metric: str, score: str, out_dir: Path, stem: str
) -> list[Path]:
    """Mean score against x with a +-1 std band over seeds, one line per line value."""
    cells = exp.cells(metric, score)
    xs = exp.x_values()
    numeric = all(isinstance(x, (int, float)) for x in xs)
    pos = np.array(xs, dtype=float) if numeric else np.arange(len(xs), dtype=float)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, max(1, len(exp.line_values()))))
    for colour, line in zip(colours, exp.line_values()):
        means = np.array(
            [
                cells[(x, line)].mean if cells.get((x, line)) and cells[(x, line)].n else math.nan
                for x in xs
            ]
        )
        stds = np.array(
            [
                cells[(x, line)].std if cells.get((x, line)) and cells[(x, line)].n else math.nan
                for x in xs
            ]
        )
        ax.plot(pos, means, marker="o", color=colour, label=line_label(exp.lines, line))
        ax.fill_between(pos, means - stds, means + stds, color=colour, alpha=0.18, linewidth=0)
    ax.set_xticks(pos, [fmt(x) for x in xs])
    ax.set_xlabel(axis_label(exp.x))
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(
        f"{exp.name}: {METRIC_LABELS.get(metric, metric)}, {SCORE_LABELS[score]}\n"
        f"mean ± 1 std over {_seeds_note(exp)}",
        fontsize=10,
    )
    ax.legend(title=lines_title(exp.lines), fontsize=8, title_fontsize=9, loc="best")
    return _save(fig, out_dir, stem)


def _heatmap(
    ax: plt.Axes, grid: np.ndarray, exp: ExperimentData, title: str, vmax: float | None, cmap: str
) -> None:
    xs, lines = exp.x_values(), exp.line_values()
    masked = np.ma.masked_invalid(grid)
    im = ax.imshow(masked, cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto", origin="lower")
    ax.set_xticks(range(len(xs)), [fmt(x) for x in xs])
    ax.set_yticks(range(len(lines)), [line_label(exp.lines, ln) for ln in lines], fontsize=8)
    ax.set_xlabel(axis_label(exp.x))
    ax.set_ylabel(lines_title(exp.lines))
    ax.set_title(title, fontsize=10)
    top = vmax if vmax is not None else (np.nanmax(grid) if np.isfinite(grid).any() else 1.0)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = grid[i, j]
            text = "n/a" if not math.isfinite(v) else f"{v:z.2f}"
            dark = math.isfinite(v) and top and v < 0.6 * top
            ax.text(
                j, i, text, ha="center", va="center", fontsize=9, color="white" if dark else "black"
            )
    plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04)


def plot_spread(
    exp: ExperimentData, metric: str, score: str, out_dir: Path, stem: str
) -> list[Path]:
    """Std across lines against x; heatmap of the mean; heatmap of the std over seeds."""
    cells = exp.cells(metric, score)
    xs, lines = exp.x_values(), exp.line_values()
    spread = exp.spread_across_lines(metric, score)
    mean_grid = np.full((len(lines), len(xs)), math.nan)
    std_grid = np.full((len(lines), len(xs)), math.nan)
    for i, line in enumerate(lines):
        for j, x in enumerate(xs):
            c = cells.get((x, line))
            if c is not None and c.n:
                mean_grid[i, j], std_grid[i, j] = c.mean, c.std
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.6), gridspec_kw={"width_ratios": [1, 1.15, 1.15]})
    numeric = all(isinstance(x, (int, float)) for x in xs)
    pos = np.array(xs, dtype=float) if numeric else np.arange(len(xs), dtype=float)
    ax = axes[0]
    ax.plot(pos, [spread[x][1] for x in xs], marker="o", color="black")
    ax.set_xticks(pos, [fmt(x) for x in xs])
    ax.set_xlabel(axis_label(exp.x))
    ax.set_ylabel(f"std across {lines_title(exp.lines)} of the mean score")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_title(f"spread across {lines_title(exp.lines)}", fontsize=10)
    _heatmap(axes[1], mean_grid, exp, f"mean over {_seeds_note(exp)}", 1.0, "viridis")
    top = np.nanmax(std_grid) if np.isfinite(std_grid).any() else 0.0
    _heatmap(axes[2], std_grid, exp, f"std over {_seeds_note(exp)}", max(float(top), 0.05), "magma")
    fig.suptitle(
        f"{exp.name}: {METRIC_LABELS.get(metric, metric)}, {SCORE_LABELS[score]}", fontsize=11
    )
    fig.tight_layout()
    return _save(fig, out_dir, stem)


def plot_traversals(exp: ExperimentData, out_dir: Path, stem: str) -> list[Path]:
    """Each cell's traversal.png (lowest seed) in a grid: rows are lines, columns are x."""
    xs, lines = exp.x_values(), exp.line_values()
    chosen: dict[tuple[Any, tuple[Any, ...]], tuple[int, Path]] = {}
    for p in exp.points:
        d = exp.run_dirs.get(p["id"])
        if d is None or not (d / "traversal.png").is_file():
            continue
        key = (p["x"], p["line"])
        if key not in chosen or p["seed"] < chosen[key][0]:
            chosen[key] = (p["seed"], d / "traversal.png")
    if not chosen:
        return []
    first = plt.imread(next(iter(chosen.values()))[1])
    cell_w = 4.6
    cell_h = cell_w * first.shape[0] / first.shape[1] + 0.45
    fig, axes = plt.subplots(
        len(lines),
        len(xs),
        figsize=(cell_w * len(xs) + 0.8, cell_h * len(lines) + 0.7),
        squeeze=False,
    )
    for i, line in enumerate(lines):
        for j, x in enumerate(xs):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if (x, line) in chosen:
                seed, path = chosen[(x, line)]
                ax.imshow(plt.imread(path), cmap="gray", interpolation="nearest")
                ax.set_title(f"{axis_symbol(exp.x)} = {fmt(x)}, seed {seed}", fontsize=8)
            else:
                ax.text(0.5, 0.5, "no run", ha="center", va="center", transform=ax.transAxes)
            if j == 0:
                ax.set_ylabel(line_label(exp.lines, line), fontsize=9)
    fig.suptitle(
        f"{exp.name}: latent traversals (rows: {lines_title(exp.lines)}; columns: "
        f"{axis_label(exp.x)})",
        fontsize=11,
    )
    fig.tight_layout()
    return _save(fig, out_dir, stem)
