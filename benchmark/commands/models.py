"""``bench models``: every installed model, where it comes from, and whether it works."""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Build each model and run a dry forward pass on a 64x64x1 batch.",
)
@click.option(
    "--latent-dim",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Latent size D of the dry pass (a positive integer, as for bench run).",
)
def models_command(check: bool, latent_dim: int) -> None:
    """List the models of the entry point group benchmark.models."""
    from benchmark.models.registry import (
        build_model,
        describe_default,
        discover,
        required_hparams,
    )
    from spritegen.errors import SpritegenError, first_line
    from spritegen.memory import NotEnoughMemory

    entries = discover()
    broken = 0
    for name, entry in entries.items():
        status = "ok"
        reason = entry.error
        needs = required_hparams(entry) if entry.ok else []
        too_large = None
        if entry.ok and check and not needs:
            try:
                build_model(name, (1, 64, 64), latent_dim, {}, seed=0, check=True)
            except KeyboardInterrupt:
                raise
            except NotEnoughMemory:  # the machine's limit, not the model's fault
                too_large = f"not dry-run: latent size {latent_dim} does not fit in memory here"
            except BaseException as exc:  # the model's own fault (even sys.exit): keep listing
                reason = str(exc) if isinstance(exc, SpritegenError) else first_line(exc)
        if reason:
            status, broken = "BROKEN", broken + 1
        click.echo(f"{name:<16} {status:<7} {entry.origin}  [{entry.target}]")
        if entry.ok:
            hp = ", ".join(f"{k}={describe_default(v)}" for k, v in entry.hparams.items())
            click.echo(
                f"{'':<16} params: {hp or 'none'}"
                + (" (+ any **kwargs)" if entry.accepts_any else "")
            )
        if reason:
            click.echo(f"{'':<16} error: {reason}")
        elif needs and check:
            click.echo(f"{'':<16} {unchecked(needs)}")
        elif too_large:
            click.echo(f"{'':<16} {too_large}; try a smaller --latent-dim")
    click.echo(f"{len(entries)} model(s), {broken} broken")


def unchecked(needs: list[str]) -> str:
    """Why a model was not dry-run: its constructor gives ``needs`` no default, so no value
    could be made up for them (it was listed BROKEN, "missing 1 required positional argument",
    although it trains once they are given); ``bench run`` checks it with the values given."""
    flags = " ".join(f"--{n.replace('_', '-')} VALUE" for n in needs)
    return f"not dry-run: {', '.join(needs)} without default; bench run {flags} checks it"
