"""Turn user errors into one line and exit status 2 (a diverged run exits with 1), no traceback."""

from __future__ import annotations

import contextlib
from typing import Iterator

import click

from spritegen.errors import SpritegenError


class UserError(click.ClickException):
    exit_code = 2


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    from benchmark.train import TrainingDiverged

    try:
        yield
    except TrainingDiverged as exc:
        err = click.ClickException(str(exc))
        err.exit_code = 1
        raise err from None
    except SpritegenError as exc:
        raise UserError(str(exc)) from None
