"""Turn user errors into one line and exit status 2 (a diverged run exits with 1), no traceback.

The line reads like the one ``benchmark.cli.main`` prints for errors that reach it, so commands
behave the same whether they are run through ``main`` or invoked on the click group directly.
"""

from __future__ import annotations

import contextlib
from typing import IO, Iterator

import click

from spritegen.errors import SpritegenError


class UserError(click.ClickException):
    exit_code = 2

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: IO | None = None) -> None:
        click.echo(f"bench: error: {self.format_message()}", err=True, file=file)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    from benchmark.train import TrainingDiverged  # lazy: the CLI must import without torch

    try:
        yield
    except TrainingDiverged as exc:
        raise UserError(str(exc), exit_code=1) from None
    except SpritegenError as exc:
        raise UserError(str(exc)) from None
