"""What both command-line tools share: bad input becomes one line on stderr and exit status 2."""

from __future__ import annotations

import sys

import click

from spritegen.errors import SpritegenError


class UserErrorGroup(click.Group):
    """A click group that reports SpritegenError (and KeyboardInterrupt) without a traceback."""

    def main(self, *args, **kwargs):  # type: ignore[override]
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
            sys.exit(code if isinstance(code, int) else 0)
        except click.exceptions.Abort:
            click.echo("interrupted; run the same command again to resume", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except SpritegenError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted; run the same command again to resume", err=True)
            sys.exit(130)
