"""The ``bench`` command line: one click group; each command's body lives in its own module.

Keep this file small: commands are registered here in one line each, so that branches adding
commands merge without conflicts. User errors (``SpritegenError``) become one line on stderr and
exit status 2, without a traceback.

The benchmark needs the ``bench`` extra (torch, matplotlib); a data-only install
(``pip install spritegen``) gets one line saying how to add it instead of an ImportError.
"""

from __future__ import annotations

import sys

import click

from spritegen.clitools import CliGroup, run_cli


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"]})
def bench() -> None:
    """Train VAE-family models on spritegen datasets and score their disentanglement."""
    from benchmark.metrics.setcache import budget_from_environment

    budget_from_environment()  # a bad BENCH_EVAL_CACHE_MB fails now, not after an epoch


def _register() -> None:
    from benchmark.commands.models import models_command
    from benchmark.commands.run import run_command
    from benchmark.commands.score import score
    from benchmark.sweep.cli import report_command, sweep_command

    bench.add_command(score)
    bench.add_command(run_command, "run")
    bench.add_command(models_command, "models")
    bench.add_command(sweep_command)
    bench.add_command(report_command)


#: Third-party modules that only the ``bench`` extra installs.
BENCH_EXTRA_MODULES = ("torch", "matplotlib", "sklearn")
_missing_extra: str | None = None  # set when registering the commands needed a missing module

try:
    _register()
except ModuleNotFoundError as exc:  # a data-only install: say so when bench is run
    if exc.name not in BENCH_EXTRA_MODULES:
        raise
    _missing_extra = exc.name


def _no_bench_extra(module: str) -> None:
    click.echo(
        f"bench: error: {module} is not installed; the benchmark needs the bench extra: "
        "pip install 'spritegen[bench]'",
        err=True,
    )
    sys.exit(2)


#: Commands whose Ctrl-C line says to run them again: a run resumes from its last checkpoint,
#: a sweep skips its finished runs.
RESUMABLE = ("run", "sweep")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``bench = benchmark.cli:main``)."""
    if _missing_extra is not None:
        _no_bench_extra(_missing_extra)
    try:
        run_cli(bench, "bench", argv, resumable=RESUMABLE)
    except ModuleNotFoundError as exc:
        if exc.name not in BENCH_EXTRA_MODULES:
            raise
        _no_bench_extra(exc.name)


if __name__ == "__main__":
    main()
