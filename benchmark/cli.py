"""The ``bench`` command line: one click group; each command's body lives in its own module.

Keep this file small: commands are registered here in one line each, so that branches adding
commands merge without conflicts. User errors (``SpritegenError``) become one line on stderr and
exit status 2, without a traceback.
"""

from __future__ import annotations

import click

from spritegen.clitools import run_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def bench() -> None:
    """Train VAE-family models on spritegen datasets and score their disentanglement."""


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


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``bench = benchmark.cli:main``)."""
    run_cli(bench, "bench", argv)


if __name__ == "__main__":
    main()
