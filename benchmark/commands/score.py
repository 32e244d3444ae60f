"""``bench score FILE --represent module:function``: score any representation on a dataset file.

Lets a user check the metrics (or score their own encoder) without training anything: the
function gets uint8 image batches (n, H, W, C) and returns latent means (n, D), numpy or torch.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable

import click
import numpy as np

from spritegen.errors import SpecError


def _describe(value: object) -> str:
    """What a representation function returned, for an error message."""
    if value is None:
        return "None"
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"{type(value).__name__} of shape {tuple(shape)} and dtype {dtype}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


def checked_represent(fn: Callable[[np.ndarray], object], target: str) -> Callable:
    """``fn`` with its failures and bad outputs turned into one line naming ``target``.

    Expected: an (n, D) float array (numpy or torch) for a batch of n images. Anything the
    function raises, SystemExit included (never KeyboardInterrupt), becomes a RepresentationError.
    """
    from benchmark.metrics.encode import RepresentationError, to_latents

    expected = "an (n, D) float array (numpy or torch), one row per image"

    def represent(images: np.ndarray) -> np.ndarray:
        n = len(images)
        try:
            out = fn(images)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit from user code must not end the command
            raise RepresentationError(
                f"--represent {target} raised {type(exc).__name__}: {exc} on a batch of {n} "
                f"images {tuple(images.shape)} uint8"
            ) from None
        shape = getattr(out, "shape", None)
        if shape is None and isinstance(out, (list, tuple)):
            try:  # nested lists of numbers are accepted, as numpy reads them
                shape = np.asarray(out, dtype=np.float64).shape
            except (ValueError, TypeError):
                shape = None
        if shape is None or len(shape) != 2:
            raise RepresentationError(
                f"--represent {target} returned {_describe(out)} for a batch of {n} images; "
                f"expected {expected}: shape ({n}, D)"
            )
        if shape[0] != n:
            raise RepresentationError(
                f"--represent {target} returned {shape[0]} rows for a batch of {n} images; "
                f"expected {expected}: shape ({n}, D)"
            )
        return to_latents(out, n, name=f"--represent {target}")

    return represent


def load_represent(target: str) -> Callable[[np.ndarray], np.ndarray]:
    """Import ``module:function`` (the current directory is importable) and return the function,
    wrapped by ``checked_represent``. A module that fails to import in any way (an exception,
    SystemExit) is a one-line SpecError, never the end of the command."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise SpecError(
            f"--represent must be 'module:function' (e.g. mypkg.encoders:encode), got {target!r}"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except KeyboardInterrupt:
        raise
    except ImportError as exc:
        raise SpecError(f"--represent: cannot import module {module_name!r}: {exc}") from None
    except BaseException as exc:  # the module's own code failed (SystemExit included)
        raise SpecError(
            f"--represent: importing module {module_name!r} failed: {type(exc).__name__}: "
            f"{exc}; fix the module so that it imports cleanly"
        ) from None
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
    return checked_represent(obj, target)


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
    type=click.Choice(["stored", "quick", "full"]),
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
    from benchmark.datasets import open_source
    from benchmark.metrics import evaluate

    represent = load_represent(target)
    with open_source(file, in_memory=True) as data:
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
    click.echo(f"kim_mnih_weighted  {result['kim_mnih_weighted']:.4f}")
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
