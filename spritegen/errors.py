"""User-facing errors: each carries one line that names what is wrong and what is allowed.

The command-line tools print ``str(error)`` and exit with status 2, without a traceback; library
users catch them like any other exception.
"""

from __future__ import annotations


class SpritegenError(Exception):
    """Base of every error caused by the user's input rather than by a bug."""


class SpecError(SpritegenError, ValueError):
    """A dataset, run or sweep spec (or a flag overriding one) has a bad field."""


class DatasetError(SpritegenError):
    """A file is not a complete spritegen dataset of a supported version, or is corrupt."""


def quote(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: a message never quotes a huge value whole
    (a YAML alias bomb once made an 800 MB error line)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
