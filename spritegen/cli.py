"""The ``spritegen`` command: build, inspect, show and verify datasets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from spritegen.clitools import CliGroup, PathArg, run_cli
from spritegen.errors import SpecError, quote
from spritegen.factors import MAX_FACTORS, MIN_FACTORS, NUM_FACTORS_RANGE
from spritegen.render import RENDERER_KINDS
from spritegen.show import DEFAULT_OUT
from spritegen.show import show as run_show
from spritegen.spec import (
    DEFAULT_EVAL_PRESET,
    EVAL_PRESETS,
    IMAGE_SIZE_RANGE,
    MAX_IMAGES,
    MAX_SEED,
    THESIS_NUM_IMAGES,
    DatasetSpec,
)


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="spritegen")
def cli() -> None:
    """Ground-truth image datasets for disentanglement research."""


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``spritegen = spritegen.cli:main``)."""
    run_cli(cli, "spritegen", argv, resumable=RESUMABLE)


#: Commands whose Ctrl-C line says to run them again: a build keeps its finished chunks.
RESUMABLE = ("build",)


def resolve_spec(spec_path: str | None, factors: int | None, overrides: dict) -> DatasetSpec:
    """The spec a build command asks for: a YAML file or the study's default for --factors."""
    from spritegen.spec import default_spec, load_spec, with_overrides

    if (spec_path is None) == (factors is None):
        raise SpecError(
            f"give either a SPEC file or --factors K ({NUM_FACTORS_RANGE}), "
            "not both and not neither"
        )
    if spec_path is not None:
        spec = load_spec(spec_path, overrides)
    else:
        assert factors is not None  # exactly one of the two was given
        spec = with_overrides(default_spec(factors, overrides.pop("renderer", None)), overrides)
    return spec


#: What a name must be to give the default output NAME.h5, as error lines state it.
PLAIN_NAME = (
    "a plain file name (printable characters, no path separator, not starting with '.', no "
    "leading or trailing spaces, at most 200 characters)"
)


def _is_plain_name(name: str) -> bool:
    """Whether NAME.h5 is a visible file in the current folder whose name prints on one line.

    ``str.isprintable`` is False for control characters and for Unicode line and paragraph
    separators (U+2028, U+0085), which would split the one-line messages that quote the path.
    """
    return (
        name.strip() == name != ""
        and "/" not in name
        and "\\" not in name
        and not name.startswith(".")
        and name.isprintable()
        and len(name) <= 200
    )


def default_out(spec_name: str, spec_path: str | None) -> Path:
    """The output file without --out: NAME.h5 in the current folder, NAME from the spec's
    ``name`` field or else from the spec file's name (the line says which, so the user knows
    what to change)."""
    if spec_name or spec_path is None:
        if not _is_plain_name(spec_name):
            raise SpecError(
                f"spec field 'name': got {quote(spec_name)}; allowed without --out: "
                f"{PLAIN_NAME}; or pass --out"
            )
        return Path(f"{spec_name}.h5")
    stem = Path(spec_path).stem
    if not _is_plain_name(stem):
        raise SpecError(
            f"the spec sets no 'name', so the output is named after the spec file "
            f"{quote(spec_path)}, giving {quote(stem)}, which is not {PLAIN_NAME}; set 'name:' "
            "in the spec or pass --out"
        )
    return Path(f"{stem}.h5")


@cli.command()
@click.argument("spec_path", metavar="[SPEC]", required=False, type=PathArg(dir_okay=False))
@click.option(
    "--factors",
    type=click.IntRange(MIN_FACTORS, MAX_FACTORS),
    help="Use the study's spec with the first K factors.",
)
@click.option(
    "--renderer",
    type=click.Choice(RENDERER_KINDS),
    help="2d (cairo) or 3d (pyrender) (default: the spec's, else 2d; 3d for 7 factors).",
)
@click.option(
    "--n",
    "n",
    type=click.IntRange(1, MAX_IMAGES),
    help=f"Number of training images (default: the spec's, else {THESIS_NUM_IMAGES:,}).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    help="Seed of every random draw in the dataset (default: the spec's, else 0).",
)
@click.option(
    "--image-size",
    type=click.IntRange(*IMAGE_SIZE_RANGE),
    help="Image side in pixels (default: the spec's, else 64).",
)
@click.option(
    "--eval-preset",
    type=click.Choice(list(EVAL_PRESETS)),
    help=(
        f"Sizes of the oracle's evaluation sets (default: the spec's, else {DEFAULT_EVAL_PRESET})."
    ),
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help=(
        "Output file (default: NAME.h5 in the current folder, NAME being the spec's name, "
        "else the SPEC file's name, else factorsK)."
    ),
)
@click.option(
    "--workers", type=click.IntRange(1), default=None, help="Worker processes (default: all cores)."
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Render chunks in local processes or as tasks on a Ray cluster (same bytes).",
)
@click.option(
    "--address",
    default=None,
    help="Ray cluster address (with --executor ray; default: start a local Ray).",
)
@click.option(
    "--force", is_flag=True, help="Replace an existing dataset (an HDF5 file, never another file)."
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def build(
    spec_path,
    factors,
    renderer,
    n,
    seed,
    image_size,
    eval_preset,
    out,
    workers,
    executor,
    address,
    force,
    quiet,
):
    """Render a dataset from SPEC (YAML) or from --factors K.

    Interrupted builds resume when the same command is run again; the result is byte-identical
    for any number of workers.
    """
    from spritegen.build import build as run_build

    overrides = {
        "renderer": renderer,
        "n": n,
        "seed": seed,
        "image_size": image_size,
        "eval_preset": eval_preset,
    }
    spec = resolve_spec(spec_path, factors, overrides)
    out_path = out if out is not None else default_out(spec.name, spec_path)
    if address and executor != "ray":
        raise SpecError("--address is for --executor ray")
    remote = None
    if executor == "ray":
        from spritegen.executors import make_executor

        remote = make_executor("ray", address=address).map_ordered
    path = run_build(
        spec,
        out_path,
        workers=workers,
        executor=remote,
        force=force,
        progress=not quiet,
        announce=click.echo,
    )
    click.echo(
        f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB, {spec.n} images, "
        f"{spec.factors} factors)"
    )


@cli.command()
@click.argument("path", type=PathArg(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def info(path, as_json):
    """Describe a dataset file: factors, sizes, provenance."""
    from spritegen.datafile import damaged_structure, open_dataset, read_attrs, read_strings

    with open_dataset(path) as f, damaged_structure(path):
        attrs = read_attrs(f)
        names = read_strings(f["metadata/factor_names"])
        kinds = read_strings(f["metadata/factor_kinds"])
        low, high = f["metadata/factor_low"][()], f["metadata/factor_high"][()]
        classes = read_strings(f["metadata/class_names/shape"])
        inactive = dict(
            zip(
                read_strings(f["metadata/inactive_factor_names"]),
                f["metadata/inactive_factor_values"][()].tolist(),
            )
        )
        sets = {}
        f.visititems(
            lambda n, o: (
                sets.__setitem__(n, list(o.shape))
                if hasattr(o, "shape")
                and n.split("/")[-1].startswith("images")
                and not n.startswith("checksums")
                else None
            )
        )
    factors = []
    for k, name in enumerate(names):
        entry = {"name": name, "kind": kinds[k]}
        if kinds[k] == "categorical":
            entry["classes"] = classes
        else:
            entry["range"] = [float(low[k]), float(high[k])]
        factors.append(entry)
    summary = {
        "path": str(path),
        "dataset_id": attrs["dataset_id"],
        "format_version": attrs["format_version"],
        "factors": factors,
        "inactive_factors": {k: ("white" if k == "hue" else v) for k, v in inactive.items()},
        "image_sets": sets,
        "renderer": attrs["renderer"],
        "seed": attrs["seed"],
        "package_version": attrs["package_version"],
        "renderer_info": attrs["renderer_info"],
        "library_versions": attrs["library_versions"],
        "content_sha256": attrs["content_sha256"],
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(
        f"{path}  (dataset id {summary['dataset_id']}, format v{summary['format_version']}, "
        f"spritegen {summary['package_version']})"
    )
    click.echo(f"renderer: {summary['renderer']}  seed: {summary['seed']}")
    click.echo("factors:")
    for e in factors:
        detail = (
            ", ".join(e["classes"])
            if "classes" in e
            else f"U[{e['range'][0]:g}, {e['range'][1]:.4g})"
        )
        click.echo(f"  {e['name']:<11} {e['kind']:<12} {detail}")
    if summary["inactive_factors"]:
        click.echo(
            "fixed (inactive): "
            + ", ".join(f"{k}={v}" for k, v in summary["inactive_factors"].items())
        )
    click.echo("image sets:")
    for name, shape in sets.items():
        click.echo(f"  /{name:<30} {' x '.join(map(str, shape))}")
    click.echo(
        "libraries: "
        + ", ".join(
            f"{k} {v}"
            for k, v in {**summary["library_versions"], **summary["renderer_info"]}.items()
            if k != "symmetry_radians"
        )
    )


@cli.command()
@click.argument("path", type=PathArg(dir_okay=False))
@click.option(
    "--out",
    type=click.Path(),
    default=DEFAULT_OUT,
    show_default=True,
    help="PNG of random samples, a name ending in .png; the factor sweeps go to OUT-sweep.png. A "
    "folder (existing, or any path ending in '/') gets grid.png and grid-sweep.png inside it. "
    "Any other name (x.h5, x.jpg, a bare x that is not a folder) is refused. An existing PNG "
    "is replaced (it is show's own output); any other existing file, and the dataset itself, "
    "is refused.",
)
@click.option(
    "--samples",
    type=click.IntRange(1, 1024),
    default=None,
    show_default="64, or every image of a smaller file",
    help="Images in the sample grid; more than the file holds draws them all, with a warning.",
)
@click.option(
    "--steps",
    type=click.IntRange(2, 64),
    default=10,
    show_default=True,
    help="Columns per factor sweep.",
)
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
def show(path, out, samples, steps, seed):
    """Draw a grid of samples and a grid sweeping one factor at a time (rendered live)."""
    grid, sweep = run_show(path, out, samples=samples, steps=steps, seed=seed)
    click.echo(f"wrote {grid} and {sweep}")


@cli.command()
@click.argument("path", type=PathArg(dir_okay=False))
@click.option(
    "--sample",
    type=click.IntRange(0),
    default=256,
    show_default=True,
    help="Images per image set to re-render and compare.",
)
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
def verify(path, sample, seed):
    """Recompute checksums and re-render a random sample; exit 1 on any mismatch."""
    from spritegen.verify import verify as run_verify

    report = run_verify(path, sample=sample, seed=seed)
    for problem in report.problems:
        click.echo(f"FAIL {problem}", err=True)
    status = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    click.echo(
        f"{path}: {status} ({report.chunks_checked} chunks checksummed, "
        f"{report.images_rerendered} images re-rendered)"
    )
    if not report.ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
