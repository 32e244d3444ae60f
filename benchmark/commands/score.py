"""``bench score FILE --represent module:function``: score any representation on a dataset file.

Lets a user check the metrics (or score their own encoder) without training anything: the
function gets uint8 image batches (n, H, W, C) and returns latent means (n, D), numpy or torch.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

import click

from benchmark.metrics.presets import PRESET_NAMES
from spritegen.errors import SpecError


def load_represent(target: str):
    """Import ``module:function`` (the current directory is importable) and return the function."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise SpecError(
            f"--represent must be 'module:function' (e.g. mypkg.encoders:encode), got {target!r}"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(f"--represent: cannot import module {module_name!r}: {exc}") from None
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SpecError(
                f"--represent: module {module_name!r} has no attribute {attr!r}"
            ) from None
    if not callable(obj):
        raise SpecError(f"--represent: {target!r} is not callable")
    return obj


@click.command()
@click.argument("file", metavar="DATA")
@click.option(
    "--represent",
    "target",
    required=True,
    metavar="MODULE:FUNCTION",
    help="Function mapping uint8 images (n, H, W, C) to latent means (n, D).",
)
@click.option(
    "--preset",
    type=click.Choice(PRESET_NAMES),
    default=None,
    help="Sample sizes: 'stored' = everything the file holds (default for spritegen "
    "files); 'full' = disentanglement_lib's study configuration (default for "
    "dSprites and 3dshapes, scored live); 'quick' for every epoch.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Random seed (stored evaluation sets are fixed; it matters for live oracles).",
)
@click.option(
    "--encode-batch-size",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Images per call of the representation function.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print every score and diagnostic as one JSON object."
)
def score(
    file: str, target: str, preset: str | None, seed: int, encode_batch_size: int, as_json: bool
) -> None:
    """Score a representation on DATA (Kim–Mnih, weighted Kim–Mnih, Higgins).

    DATA is a spritegen dataset file (scored on its stored evaluation sets) or
    dsprites:PATH / 3dshapes:PATH (scored live on the published grid).
    """
    from benchmark.datasets import open_data
    from benchmark.metrics import evaluate

    represent = load_represent(target)
    with open_data(file, in_memory=True) as data:
        if preset is None:
            preset = "full" if data.is_grid else "stored"
        if preset == "stored" and data.is_grid:
            raise SpecError(
                "--preset stored needs a spritegen file's stored evaluation sets; "
                f"{data.kind} is scored live: use --preset full or quick"
            )
        result = evaluate(
            data.metric_source(),
            represent,
            seed,
            preset,
            encode_batch_size=encode_batch_size,
            progress=sys.stderr.isatty(),
        )
    if as_json:
        click.echo(json.dumps(result))
        return
    km = result["details"]["kim_mnih"]
    click.echo(
        f"kim_mnih           {result['kim_mnih']:.4f}  "
        f"(train {result['kim_mnih_train']:.4f}, "
        f"{km['num_active_dims']}/{km['num_latents']} active dims)"
    )
    weighted = result["kim_mnih_weighted"]
    click.echo(
        f"kim_mnih_weighted  {weighted:.4f}"
        if weighted is not None
        else "kim_mnih_weighted  undefined (no vote moved the representation; always at K = 1)"
    )
    click.echo(
        f"higgins            {result['higgins']:.4f}  (train {result['higgins_train']:.4f}, "
        f"chance {result['details']['higgins']['chance']:.4f})"
    )
    click.echo(
        f"higgins_raw        {result['higgins_raw']:.4f}  (raw features, as disentanglement_lib)"
    )
    click.echo(
        f"preset {result['preset']}, seed {result['seed']}; time: read "
        f"{result['read_s']:.1f} s, encode {result['encode_s']:.1f} s, metric "
        f"{result['metric_s']:.2f} s"
    )
