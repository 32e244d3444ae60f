"""`bench sweep` and `bench report`: click commands, registered on the `bench` group.

Bad input (a spec error, an unknown executor, a folder that is not a sweep) prints one line and
exits with status 2; failed runs are summarised and exit with status 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from spritegen.clitools import PathArg, user_errors
from spritegen.errors import SpecError


@click.command("sweep")
@click.argument("spec", type=PathArg(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=PathArg(file_okay=False, path_type=Path),
    default=None,
    help="Sweep folder (default: results/<name>; for SPEC a sweep folder's spec.yaml, that "
    "folder). Starting again in it resumes.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: a pool of processes on this machine; ray: Ray tasks.",
)
@click.option(
    "--address",
    default=None,
    help="Ray cluster address ('auto', 'ray://host:10001'); "
    "without one, a local Ray instance is started.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Local runs at once (default: one per GPU, or 1 without GPUs).",
)
@click.option(
    "--cpus-per-run",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Ray: CPUs reserved per run.",
)
@click.option(
    "--build-workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes rendering each dataset.",
)
@click.option(
    "--ensemble",
    default="auto",
    show_default=True,
    help="Train compatible runs (same dataset, model, schedule) together: auto (as many as fit "
    "in memory), off, or at most N per ensemble.",
)
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="PATTERN",
    help="Train only the runs whose id matches this shell pattern (repeatable), e.g. "
    "--only '*_k[1-5]_*': one part of a sweep; the rest is left for another start or machine.",
)
@click.option("--quiet", is_flag=True, help="No progress display.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Validate SPEC; name the sweep folder and list each run with its state there (finished, "
    "stopped, resumes at epoch N, new). Builds, trains and writes nothing.",
)
def sweep_command(
    spec: Path,
    out: Path | None,
    executor: str,
    address: str | None,
    workers: int | None,
    cpus_per_run: float,
    build_workers: int | None,
    ensemble: str,
    only: tuple[str, ...],
    quiet: bool,
    dry_run: bool,
) -> None:
    """Train every point of sweep SPEC (YAML), skipping the ones already finished."""
    from benchmark.sweep import format_summary, load_sweep, run_sweep
    from benchmark.sweep.runner import dry_run as plan_lines

    with user_errors("bench"):
        plan = load_sweep(spec)
        if dry_run:
            for line in plan_lines(
                plan, out=out, ensemble=ensemble, only=only, executor=executor, address=address
            ):
                click.echo(line)
            return
        kwargs = {"cpus_per_run": cpus_per_run} if executor == "ray" else {}
        result = run_sweep(
            plan,
            out=out,
            executor=executor,
            address=address,
            workers=workers,
            build_workers=build_workers,
            progress=not quiet,
            ensemble=ensemble,
            only=only,
            **kwargs,
        )
    click.echo(format_summary(result))
    if result.stopped:  # one line, exit 1, after the summary of what was done
        from benchmark.files import DiskFull

        with user_errors("bench"):
            raise DiskFull(result.stopped)
    if result.failed:
        sys.exit(1)


@click.command("report")
@click.argument("sweep_dir", type=PathArg(file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=PathArg(file_okay=False, path_type=Path),
    default=None,
    help="Report folder (default: SWEEP_DIR/report).",
)
@click.option(
    "--export",
    "export_to",
    type=PathArg(file_okay=False, path_type=Path),
    default=None,
    help="Instead of drawing: copy sweep.json and each finished run's config.json, "
    "metrics.jsonl and summary.json into this folder (merging with an earlier export), "
    "for `bench report FOLDER` and for committing.",
)
def report_command(sweep_dir: Path, out: Path | None, export_to: Path | None) -> None:
    """Draw the study's figures and tables from the finished runs of SWEEP_DIR (a sweep folder,
    or a folder of records written by --export)."""
    from benchmark.report import write_report

    with user_errors("bench"):
        if export_to is not None:
            from benchmark.report.export import export_runs

            if out is not None:
                raise SpecError("--out and --export: give one (export first, then report)")
            result = export_runs(sweep_dir, export_to)
            click.echo(
                f"exported {len(result.copied)} runs to {export_to} "
                f"({len(result.unchanged)} already there, {len(result.unfinished)} not finished)"
            )
            return
        paths = write_report(sweep_dir, out)
    folder = paths[0].parent if paths else out
    click.echo(f"wrote {len(paths)} files to {folder}")
