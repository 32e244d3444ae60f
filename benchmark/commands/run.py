"""``bench run``: train one model on one dataset and write its run folder."""

from __future__ import annotations

from typing import Any

import click
import yaml

from spritegen.clitools import user_errors
from spritegen.errors import SpecError

# model-hyperparameter flags -> the constructor argument they set
HPARAM_FLAGS = {
    "beta": "--beta",
    "beta_norm": "--beta-norm",
    "gamma": "--gamma",
    "capacity_max": "--capacity-max",
    "capacity_steps": "--capacity-steps",
}


def parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    """--param key=value (value read as YAML: 8, 0.5, true, null, text)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise SpecError(f"--param {item!r}: expected key=value with a Python identifier key")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key] = value
    return out


def print_table(summary: dict) -> None:
    final = summary.get("final", {})
    rows = [("epochs / steps", f"{summary['epochs']} / {summary['steps']}")]
    rows += [(k, f"{v:.4g}") for k, v in final.items()]
    best = summary.get("best_scores", {})
    for k, v in summary.get("final_scores", {}).items():
        if (
            isinstance(v, (int, float))
            and not isinstance(v, bool)
            and k in ("kim_mnih", "kim_mnih_weighted", "higgins")
        ):
            extra = (
                f"   (best {best[k]['value']:.3f} @ epoch {best[k]['epoch']})" if k in best else ""
            )
            rows.append((k, f"{v:.3f}{extra}"))
    if not summary.get("final_scores"):
        rows.append(("scores", "not computed (no metrics installed, or presets 'none')"))
    width = max(len(r[0]) for r in rows)
    click.echo(f"run {summary['model']} {summary['model_hparams']} -> {summary['out']}")
    for k, v in rows:
        click.echo(f"  {k:<{width}}  {v}")


@click.command()
@click.option("--model", required=True, help="Model name (see `bench models`).")
@click.option(
    "--data", metavar="DATA", help="A spritegen dataset file, or dsprites:PATH / 3dshapes:PATH."
)
@click.option(
    "--factors", type=int, help="Use (building if needed) the default dataset with K factors."
)
@click.option("--beta", type=float, help="KL weight (betavae).")
@click.option("--beta-norm", type=float, help="Normalised beta (betavae): beta = beta_norm*N/M.")
@click.option("--gamma", type=float, help="Capacity weight (annealedvae).")
@click.option("--capacity-max", type=float, help="Final capacity C_max in nats (annealedvae).")
@click.option("--capacity-steps", type=int, help="Steps over which C rises to C_max (annealedvae).")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any model hyperparameter; repeatable.",
)
@click.option("--latent-dim", default=10, show_default=True, type=int)
@click.option("--epochs", type=int, help="Default by factors: 1-2:10, 3:20, 4-5:30, 6-7:60.")
@click.option("--steps", "max_steps", type=int, help="Stop after this many steps (quick runs).")
@click.option("--batch-size", default=64, show_default=True, type=int)
@click.option("--lr", default=5e-4, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--amp", is_flag=True, help="bfloat16 mixed precision (CUDA only).")
@click.option(
    "--score-preset",
    default="quick",
    show_default=True,
    type=click.Choice(["quick", "full", "stored", "none"]),
    help="Metric sizes after each epoch (stored: all the file's evaluation sets).",
)
@click.option(
    "--final-preset",
    default="full",
    show_default=True,
    type=click.Choice(["quick", "full", "stored", "none"]),
    help="Metric sizes at the end.",
)
@click.option(
    "--score-every",
    default=1,
    show_default=True,
    type=int,
    help="Score every N epochs (0: only at the end).",
)
@click.option(
    "--checkpoint-every",
    default=0,
    show_default=True,
    type=int,
    help="Also checkpoint every N steps (each epoch always).",
)
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default results/...).")
@click.option("--force", is_flag=True, help="Replace a finished (or different) run in --out.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run_command(
    model: str,
    data: str | None,
    factors: int | None,
    params: tuple[str, ...],
    latent_dim: int,
    epochs: int | None,
    max_steps: int | None,
    batch_size: int,
    lr: float,
    seed: int,
    device: str,
    amp: bool,
    score_preset: str,
    final_preset: str,
    score_every: int,
    checkpoint_every: int,
    out: str | None,
    force: bool,
    quiet: bool,
    **flags: Any,
) -> None:
    """Train MODEL on a dataset, score it after every epoch and write a run folder."""
    from benchmark.run import RunConfig, run

    with user_errors("bench"):
        hparams = parse_params(params)
        for key, value in flags.items():
            if value is not None:
                if key in hparams:
                    raise SpecError(f"{HPARAM_FLAGS[key]} and --param {key}=... both given")
                hparams[key] = value
        cfg = RunConfig(
            model=model,
            data=data,
            factors=factors,
            hparams=hparams,
            latent_dim=latent_dim,
            epochs=epochs,
            max_steps=max_steps,
            seed=seed,
            device=device,
            out=out,
            batch_size=batch_size,
            lr=lr,
            amp=amp,
            score_preset=score_preset,
            final_preset=final_preset,
            score_every=score_every,
            checkpoint_every=checkpoint_every,
            force=force,
            progress=not quiet,
        )
        from benchmark.models.registry import get_entry

        entry = get_entry(model)
        for key in flags:
            if flags[key] is not None and key not in entry.hparams and not entry.accepts_any:
                allowed = (
                    ", ".join(HPARAM_FLAGS.get(k, f"--param {k}=...") for k in entry.hparams)
                    or "none"
                )
                raise SpecError(
                    f"{HPARAM_FLAGS[key]} is not a parameter of model {model!r}; "
                    f"it accepts: {allowed}"
                )
        summary = run(cfg)
    print_table(summary)
