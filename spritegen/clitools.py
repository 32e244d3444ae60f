"""What both command-line tools share: bad input becomes one line on stderr and exit status 2.

``spritegen`` and ``bench`` run their click groups through ``run_cli``, so an error caused by the
user (a ``SpritegenError`` from any layer, or a click usage error) reads the same in both tools,
never shows a traceback, and an interrupt tells the user how to resume.
"""

from __future__ import annotations

import sys

import click

from spritegen.errors import SpritegenError


def run_cli(group: click.Group, prog_name: str, argv: list[str] | None = None) -> None:
    """Run ``group`` as a console script and exit: 0 done, 1 failed, 2 bad input, 130 interrupted."""
    try:
        code = group.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except SpritegenError as exc:
        click.echo(f"{prog_name}: error: {exc}", err=True)
        sys.exit(2)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo(f"{prog_name}: interrupted; run the same command again to resume", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
