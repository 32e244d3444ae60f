"""``bench score FILE --represent module:function``: score any representation on a dataset file.

Lets a user check the metrics (or score their own encoder) without training anything: the
function gets uint8 image batches (n, H, W, C) and returns latent means (n, D), numpy or torch.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from collections.abc import Callable

import click
import numpy as np

from benchmark.metrics.evaluate import METRIC_KEYS
from benchmark.metrics.presets import PRESET_NAMES
from spritegen.clitools import is_out_of_memory
from spritegen.errors import SpecError, first_line


def to_stderr() -> contextlib.AbstractContextManager[object]:
    """Send what the user's module prints to stderr: stdout holds only the scores, so that
    ``bench score --json > scores.json`` stays one JSON object (a debugging ``print`` in the
    representation function used to land in front of it)."""
    return contextlib.redirect_stdout(sys.stderr)


def checked_represent(fn: Callable[[np.ndarray], object], target: str) -> Callable:
    """``fn`` with its failures and bad outputs turned into one line naming ``target``.

    Expected: an (n, D) float array (numpy or torch) for a batch of n images. Anything the
    function raises, SystemExit included, becomes a RepresentationError (bad input, exit 2),
    except KeyboardInterrupt and running out of memory: the machine ran out, not the function's
    contract, so it gets the command's out-of-memory line and exit 1 (``run_cli``), as the same
    failure does anywhere else in bench.
    """
    from benchmark.metrics.encode import (
        EXPECTED_OUTPUT,
        RepresentationError,
        describe_output,
        to_latents,
    )

    expected = EXPECTED_OUTPUT

    def represent(images: np.ndarray) -> np.ndarray:
        n = len(images)
        try:
            with to_stderr():
                out = fn(images)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit from user code must not end the command
            if is_out_of_memory(exc):
                raise
            raise RepresentationError(
                f"--represent {target} raised {first_line(exc)} on a batch of {n} "
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
                f"--represent {target} returned {describe_output(out)} for a batch of {n} images; "
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
        with to_stderr():
            module = importlib.import_module(module_name)
    except KeyboardInterrupt:
        raise
    except ImportError as exc:
        raise SpecError(
            f"--represent: cannot import module {module_name!r}: {first_line(exc, typed=False)}"
        ) from None
    except BaseException as exc:  # the module's own code failed (SystemExit included)
        raise SpecError(
            f"--represent: importing module {module_name!r} failed: {first_line(exc)}; fix the "
            "module so that it imports cleanly"
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
    "--dci-model",
    type=click.Choice(["gbt", "forest"]),
    default="gbt",
    show_default=True,
    help="DCI importances: gradient-boosted trees (the reference, slow) or a random forest "
    "(cheaper, not comparable with published DCI).",
)
@click.option(
    "--metrics",
    "metric_list",
    default=None,
    metavar="NAMES",
    help=f"Comma-separated subset of {', '.join(METRIC_KEYS)} (default: all).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print every score and diagnostic as one JSON object."
)
def score(
    file: str,
    target: str,
    preset: str | None,
    seed: int,
    encode_batch_size: int,
    dci_model: str,
    metric_list: str | None,
    as_json: bool,
) -> None:
    """Score a representation on DATA (Kim–Mnih, weighted Kim–Mnih, Higgins, MIG, DCI, SAP,
    modularity and explicitness).

    DATA is a spritegen dataset file (scored on its stored evaluation sets) or
    dsprites:PATH / 3dshapes:PATH (scored live on the published grid).
    """
    from benchmark.datasets import open_data
    from benchmark.metrics import evaluate

    metrics = None
    if metric_list is not None:
        metrics = [m.strip() for m in metric_list.split(",") if m.strip()]
        bad = [m for m in metrics if m not in METRIC_KEYS]
        if bad or not metrics:
            raise SpecError(
                f"--metrics: got {metric_list!r}; allowed: a comma-separated subset of "
                f"{','.join(METRIC_KEYS)}"
            )
    represent = load_represent(target)
    with open_data(file, in_memory=True, flag="DATA") as data:
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
            dci_model=dci_model,
            metrics=metrics,
        )
    if as_json:
        click.echo(json.dumps(result))
        return
    for line in summary_lines(result):
        click.echo(line)


def summary_lines(result: dict) -> list[str]:
    """The human-readable lines of ``bench score``: each score present, its note and its time.

    Scores print with ``z`` (PEP 682): a value that rounds to zero from below, such as DCI's
    -2.2e-16 for importances spread evenly over five factors, reads 0.0000, not -0.0000."""
    d, t = result["details"], result["times"]
    lines = []
    if "kim_mnih" in result:
        km = d["kim_mnih"]
        lines.append(
            f"{'kim_mnih':<21}{result['kim_mnih']:z.4f}  (train {result['kim_mnih_train']:z.4f}, "
            f"{km['num_active_dims']}/{km['num_latents']} active dims; time {t['kim_mnih']:.1f} s)"
        )
        weighted = result["kim_mnih_weighted"]
        lines.append(
            f"{'kim_mnih_weighted':<21}{weighted:z.4f}"
            if weighted is not None
            else f"{'kim_mnih_weighted':<21}undefined (no vote moved the representation, as at K=1)"
        )
    if "higgins" in result:
        lines.append(
            f"{'higgins':<21}{result['higgins']:z.4f}  (raw features, as disentanglement_lib; "
            f"train {result['higgins_train']:z.4f}, chance {d['higgins']['chance']:z.4f}; "
            f"time {t['higgins']:.1f} s)"
        )
        lines.append(f"{'higgins_standardised':<21}{result['higgins_standardised']:z.4f}")
    rows = (
        ("mig", "mig", lambda: f"{d['mig']['num_bins']} bins"),
        ("dci_disentanglement", "dci", lambda: f"{d['dci']['model']} importances"),
        ("dci_completeness", None, None),
        ("dci_informativeness", None, lambda: "eval accuracy"),
        ("sap", "sap", lambda: "discretised factors"),
        ("modularity", "modularity", None),
        ("explicitness", None, lambda: "eval ROC-AUC"),
        ("linear_r2", "linear_r2", lambda: "R² of a linear read-out, all dims"),
        ("linear_r2_best_dim", None, lambda: "best single dim"),
    )
    for key, timed, note in rows:
        if key not in result:
            continue
        extra = [note()] if note else []
        if timed:
            extra.append(f"time {t[timed]:.1f} s")
        text = f"  ({'; '.join(extra)})" if extra else ""
        lines.append(f"{key:<21}{result[key]:z.4f}{text}")
    if "samples" in t:
        p = d["preset"]
        lines.append(
            f"  ({p['num_samples_train']} + {p['num_samples_eval']} random images read and "
            f"encoded once for MIG/DCI/SAP/modularity: {t['samples']:.1f} s)"
        )
    lines.append(
        f"preset {result['preset']}, seed {result['seed']}; time: read {result['read_s']:.1f} s, "
        f"encode {result['encode_s']:.1f} s, metric {result['metric_s']:.2f} s"
    )
    return lines
