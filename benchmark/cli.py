"""The ``bench`` command line: one click group; each command's body lives in its own module.

Keep this file small: commands are registered here in one line each, so that branches adding
commands merge without conflicts. User errors (``SpritegenError``) become one line on stderr and
exit status 2, without a traceback.
"""

from __future__ import annotations

import sys

import click

from spritegen.errors import SpritegenError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def bench() -> None:
    """Train VAE-family models on spritegen datasets and score their disentanglement."""


def _register() -> None:
    from benchmark.commands.models import models_command
    from benchmark.commands.run import run_command
    from benchmark.commands.score import score

    bench.add_command(score)
    bench.add_command(run_command, "run")
    bench.add_command(models_command, "models")


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``bench = benchmark.cli:main``)."""
    try:
        code = bench.main(args=argv, prog_name="bench", standalone_mode=False)
    except SpritegenError as exc:
        click.echo(f"bench: error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("bench: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
