"""The numbers behind each verdict of docs/results.md, from a study's exported run records.

    python scripts/study_claims.py docs/results/runs/experiment1-small [--x latent_dim]
    python scripts/study_claims.py docs/results/runs/experiment2-small --x factors
    python scripts/study_claims.py results/experiment1-long   # a sweep folder, while it runs
    python scripts/study_claims.py docs/results/runs/experiment2-k5-60-epochs --x epoch

Prints markdown: per x, each beta's mean score over seeds (final and best epoch), the gap
between the beta-VAEs and the VAE two ways (std of the beta means, as the thesis' spread figures;
best beta-VAE mean minus the VAE mean), the active latent dimensions (KL above 0.1 nats in the
last epoch's kl_per_dim), the collapsed runs, and at K = 1 the linear read-outs. Then the
mean-image plateau (docs/results.md, section 3): how many runs of each beta had left it after
each epoch (epoch mean reconstruction below --plateau nats), and the final scores of only the runs
that had left it by the end, with the same gap rows: at this scale the plateau, not beta's effect
on a trained model, decides most of the gap. Reads the same records as `bench report`
(benchmark.report.records.read_metrics), nothing else.

``--x epoch`` puts the scored epochs on the x axis instead of a config field: each run is read
as it stood after each epoch it was scored in (its "final" score is that epoch's, its "best" the
best so far), to follow one schedule's gap as training goes on.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.report.records import finished_summary, read_metrics

ACTIVE_NATS = 0.1
METRICS = ("kim_mnih", "higgins")


def _x(config: dict, name: str) -> int:
    return int(config["num_factors"] if name == "factors" else config[name])


def load(folder: Path, x_name: str) -> list[dict]:
    """One dict per finished run (with ``x_name`` "epoch", per run and scored epoch): x, beta,
    seed, its per-epoch rows and folder name. ``folder`` is an export (one folder per run) or a
    sweep folder (``runs/<id>``, read as it trains: a stopped or unfinished run is left out, as
    ``bench report`` leaves it out)."""
    runs = []
    if (folder / "runs").is_dir():
        folder = folder / "runs"
    for cfg_path in sorted(folder.glob("*/config.json")):
        run_dir = cfg_path.parent
        if finished_summary(run_dir) is None:
            continue
        config = json.loads(cfg_path.read_text())
        rows = read_metrics(run_dir)
        run = {
            "id": run_dir.name,
            "beta": float(config["hparams"]["beta"]),
            "seed": int(config["seed"]),
        }
        if x_name != "epoch":
            runs.append({**run, "x": _x(config, x_name), "rows": rows})
            continue
        for scored in (r["epoch"] for r in rows if isinstance(r.get(METRICS[0]), (int, float))):
            runs.append({**run, "x": scored, "rows": [r for r in rows if r["epoch"] <= scored]})
    return runs


def whole_runs(runs: list[dict]) -> list[dict]:
    """Each run once, with all its rows (with ``--x epoch`` a run appears once per scored
    epoch): what the per-epoch plateau table and the collapsed list count."""
    longest: dict[str, dict] = {}
    for run in runs:
        if run["id"] not in longest or len(run["rows"]) > len(longest[run["id"]]["rows"]):
            longest[run["id"]] = run
    return list(longest.values())


def score(run: dict, metric: str, which: str) -> float | None:
    values = [r[metric] for r in run["rows"] if isinstance(r.get(metric), (int, float))]
    if not values:
        return None
    return float(values[-1] if which == "final" else max(values))


def active_dims(run: dict) -> int:
    kl = run["rows"][-1].get("kl_per_dim") or []
    return sum(1 for v in kl if v > ACTIVE_NATS)


@dataclass(frozen=True)
class Plateau:
    """The reconstruction (nats) below which a run has left the mean-image plateau: one level
    for every x, and its own for some (the RGB mean images of K = 6 and of K = 7, 3D, cost
    about 1,200 and 1,130-1,150 nats, the grey one of K <= 5 625-642)."""

    nats: float = 600.0
    at: dict[int, float] = field(default_factory=dict)

    def of(self, run: dict) -> float:
        return self.at.get(run["x"], self.nats)

    def __str__(self) -> str:
        own = "".join(f"; {n:g} at {x}" for x, n in sorted(self.at.items()))
        return f"{self.nats:g} nats{own}"


def parse_plateau(values: list[str]) -> Plateau:
    """``--plateau`` values: ``N`` for every x, ``X=N`` for one x."""
    nats, at = Plateau.nats, {}
    for value in values:
        x, _, level = value.rpartition("=")
        try:
            if x:
                at[int(x)] = float(level)
            else:
                nats = float(level)
        except ValueError:
            raise SystemExit(
                f"study_claims: --plateau {value!r}: give N (nats, every x) or X=N (one x)"
            ) from None
    return Plateau(nats, at)


def left_plateau(run: dict, plateau: Plateau, epoch: int | None = None) -> bool:
    """Whether the run's mean reconstruction term in ``epoch`` (default: its last) is below
    its plateau level: it no longer draws the mean image (docs/results.md, section 3)."""
    rows = run["rows"] if epoch is None else [r for r in run["rows"] if r["epoch"] == epoch]
    return bool(rows) and float(rows[-1]["reconstruction"]) < plateau.of(run)


def _ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def print_scores(
    cells: dict[tuple[int, float], list[dict]],
    xs: list[int],
    betas: list[float],
    metric: str,
    which: str,
    x_name: str,
) -> None:
    """One markdown table: each beta's mean ± std over its runs per x, then the gap rows (std of
    the beta means; best beta-VAE mean minus the VAE mean)."""
    print("| β \\ " + x_name + " | " + " | ".join(map(str, xs)) + " |")
    print("|---" * (len(xs) + 1) + "|")
    means: dict[tuple[int, float], float] = {}
    for b in betas:
        row = []
        for x in xs:
            got = [score(r, metric, which) for r in cells.get((x, b), [])]
            vals = [v for v in got if v is not None]
            if vals:
                means[(x, b)] = statistics.mean(vals)
            row.append(_ms(vals))
        print(f"| {b:g} | " + " | ".join(row) + " |")
    spread, gap = [], []
    for x in xs:
        ms = [means[(x, b)] for b in betas if (x, b) in means]
        spread.append(f"{statistics.stdev(ms):.3f}" if len(ms) > 1 else "n/a")
        others = [means[(x, b)] for b in betas if b > 1 and (x, b) in means]
        gap.append(
            f"{max(others) - means[(x, 1.0)]:+.3f}" if others and (x, 1.0) in means else "n/a"
        )
    print("| std across β | " + " | ".join(spread) + " |")
    print("| best β-VAE − VAE | " + " | ".join(gap) + " |\n")


def print_plateau(
    runs: list[dict],
    cells: dict[tuple[int, float], list[dict]],
    xs: list[int],
    betas: list[float],
    plateau: Plateau,
    x_name: str,
) -> None:
    """The plateau tables: runs per beta that had left it after each epoch, then the final
    scores of only the runs that had left it by the end."""
    epochs = sorted({r["epoch"] for run in runs for r in run["rows"]})
    print(f"### runs that had left the plateau (reconstruction < {plateau}), per epoch\n")
    print("| β \\ epoch | " + " | ".join(map(str, epochs)) + " |")
    print("|---" * (len(epochs) + 1) + "|")
    for b in betas:
        mine = [r for r in runs if r["beta"] == b]
        row = [f"{sum(left_plateau(r, plateau, e) for r in mine)}/{len(mine)}" for e in epochs]
        print(f"| {b:g} | " + " | ".join(row) + " |")
    print()
    escaped = {key: [r for r in rs if left_plateau(r, plateau)] for key, rs in cells.items()}
    for metric in METRICS:
        print(f"### {metric}, final epoch, runs that had left the plateau only\n")
        print_scores(escaped, xs, betas, metric, "final", x_name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--x", default="latent_dim", choices=("latent_dim", "factors", "epoch"))
    parser.add_argument(
        "--plateau",
        action="append",
        default=[],
        metavar="[X=]N",
        help="reconstruction (nats) below which a run has left the mean-image plateau, for "
        "every x (N) or one (X=N; repeat as needed); default 600, which suits the 64x64 grey "
        "images of K <= 5 (the mean image costs 625-642 nats there); the RGB images of "
        "K = 6 and 7 want 6=1000 and 7=1000 (about 1,200 and 1,130-1,150)",
    )
    args = parser.parse_args()
    plateau = parse_plateau(args.plateau)
    runs = load(args.folder, args.x)
    if not runs:
        raise SystemExit(
            f"study_claims: no finished run in {args.folder}; give a sweep folder or an export "
            "(bench report SWEEP --export DEST)"
        )
    cells: dict[tuple[int, float], list[dict]] = defaultdict(list)
    for r in runs:
        cells[(r["x"], r["beta"])].append(r)
    xs = sorted({r["x"] for r in runs})
    betas = sorted({r["beta"] for r in runs})
    whole = whole_runs(runs)
    print(f"{len(whole)} finished runs in {args.folder}\n")

    for metric in METRICS:
        for which in ("final", "best"):
            print(f"### {metric}, {which} epoch (mean ± std over seeds)\n")
            print_scores(cells, xs, betas, metric, which, args.x)
    print(f"### active latent dimensions (KL > {ACTIVE_NATS} nats, last epoch), per seed\n")
    print("| β \\ " + args.x + " | " + " | ".join(map(str, xs)) + " |")
    print("|---" * (len(xs) + 1) + "|")
    for b in betas:
        row = [
            ", ".join(str(active_dims(r)) for r in sorted(cells[(x, b)], key=lambda r: r["seed"]))
            for x in xs
        ]
        print(f"| {b:g} | " + " | ".join(row) + " |")
    collapsed = [r["id"] for r in whole if active_dims(r) == 0]
    print(f"\ncollapsed runs (no dimension above {ACTIVE_NATS} nats): {len(collapsed)}")
    for name in collapsed:
        print(f"  {name}")

    print()
    print_plateau(whole, cells, xs, betas, plateau, args.x)

    if args.x == "factors" and 1 in xs:
        keys = ("kim_mnih", "kim_mnih_weighted", "higgins", "linear_r2_best_dim", "linear_r2")
        print("\n### K = 1 (final epoch, mean ± std over seeds)\n")
        print("| β | " + " | ".join(keys) + " | active dims |")
        print("|---" * (len(keys) + 2) + "|")
        for b in betas:
            rs = cells[(1, b)]
            row = []
            for k in keys:
                vals = [v for r in rs if (v := score(r, k, "final")) is not None]
                row.append(_ms(vals) if vals else "undefined")
            row.append(", ".join(str(active_dims(r)) for r in rs))
            print(f"| {b:g} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
