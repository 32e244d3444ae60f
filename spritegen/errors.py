"""User-facing errors: each carries one line that names what is wrong and what is allowed.

The command-line tools print ``str(error)`` and exit with status 2, without a traceback; library
users catch them like any other exception.
"""

from __future__ import annotations


class SpritegenError(Exception):
    """Base of every error caused by the user's input rather than by a bug."""


class SpritegenWarning(UserWarning):
    """Valid input that is probably not what its author meant: the tools print it as one line
    (``PROG: warning: ...``) and go on."""


class SpecError(SpritegenError, ValueError):
    """A dataset, run or sweep spec (or a flag overriding one) has a bad field."""


class DatasetError(SpritegenError):
    """A file is not a complete spritegen dataset of a supported version, or is corrupt."""


class BuildError(SpritegenError):
    """A build that was given good input could not finish (disk full, another build running)."""

    exit_code = 1


class RendererUnavailable(SpritegenError):
    """A renderer that cannot start here (the 3D renderer without a usable OpenGL platform):
    the input is good, and the same command works once the environment is fixed."""

    exit_code = 1


def line_breaking(text: str) -> str | None:
    """The first character of ``text`` that would break a one-line message (a newline, tab or
    other control character, or a Unicode line or paragraph separator), or None."""
    import unicodedata

    return next((c for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None)


def check_output_path(flag: str, path: object) -> None:
    """Refuse an output path whose name holds a line break or control character: every message
    naming the output (its progress line, a full disk, the next start's refusal) must stay one
    line. Paths to read are not checked: an existing file is taken by whatever name it has.
    An empty text is refused too: ``Path("")`` is the current folder, which nobody means by it."""
    if isinstance(path, str) and not path:
        raise SpecError(
            f"{flag}: got an empty path; name a file or folder ('.' for the current folder)"
        )
    bad = line_breaking(str(path))
    if bad is not None:
        raise SpecError(
            f"{flag} {quote(str(path))} holds the control character {bad!r}; allowed: a path "
            "without line breaks or control characters, so that every message naming it stays "
            "one line"
        )


def check_flag(name: str, value: object) -> bool:
    """``value`` as the bool it is (numpy's ``np.bool_`` included), or a SpecError naming the
    argument ``name``. A public flag is never read by its truth value: ``"no"`` and ``"False"``
    are true, so ``progress="no"`` drew progress bars, ``sap(continuous_factors="no")``
    computed the other SAP and ``build(spec, out, force="no")`` replaced an existing file."""
    import numpy as np

    if not isinstance(value, (bool, np.bool_)):
        raise SpecError(f"{name} must be True or False, got {quote(value)}")
    return bool(value)


def first_line(exc: BaseException, limit: int = 200, typed: bool = True) -> str:
    """``Type: first line of the message`` (without ``typed``, the line alone), cut to ``limit``
    characters: how an exception raised by someone else's code (a plugin, a user's function) is
    quoted in an error line, which its multi-line message would otherwise break in two."""
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else ""
    text = (f"{type(exc).__name__}: {line}" if line else type(exc).__name__) if typed else line
    return text if len(text) <= limit else text[: limit - 3] + "..."


def counted(number: int, noun: str) -> str:
    """``"1 run"``, ``"1,024 rows"``: counts in messages read as English."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def quote(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for quoting user input in an error line.

    Every message that echoes a value goes through here, so a huge or deeply nested value (a YAML
    alias bomb once made an 800 MB error line) can never turn one error line into megabytes; the
    repr is built piecewise and stops at the limit, so it costs no more than the limit either.
    """
    text = _bounded_repr(value, limit + 1)
    if len(text) > limit:
        return text[: max(0, limit - 3)] + "..."
    return text


def quote_some(values: list[str], most: int = 3) -> str:
    """The first ``most`` values quoted, then `` and N more``: an error line that names the
    entries in the way (a folder's foreign files) stays one short line however many there are."""
    more = f" and {len(values) - most} more" if len(values) > most else ""
    return ", ".join(quote(v) for v in values[:most]) + more


def _bounded_repr(value: object, limit: int, depth: int = 0) -> str:
    """repr that stops once ``limit`` characters are produced, even for huge nested values.

    Every nesting level adds at least one bracket, so below ``limit`` levels (or 100, to stay
    far from Python's recursion limit) nothing more can show: a value nested thousands deep is
    cut there instead of raising RecursionError.
    """
    if isinstance(value, (list, tuple, dict, set)) and depth >= min(limit, 100):
        return "..."
    if isinstance(value, (list, tuple, dict, set)):
        brackets = (
            "{}" if isinstance(value, (dict, set)) else "()" if isinstance(value, tuple) else "[]"
        )
        open_, close = brackets[0], brackets[1]
        items = value.items() if isinstance(value, dict) else value
        out = open_
        for i, item in enumerate(items):
            if i:
                out += ", "
            if isinstance(value, dict):
                key, val = item
                out += (
                    _bounded_repr(key, limit, depth + 1)
                    + ": "
                    + _bounded_repr(val, limit, depth + 1)
                )
            else:
                out += _bounded_repr(item, limit, depth + 1)
            if len(out) > limit:
                return out
        return out + close
    if isinstance(value, (str, bytes)) and len(value) > limit:
        value = value[:limit]
    return repr(value)


class DatasetBusyError(DatasetError):
    """A good dataset file that cannot be read now (another process holds it open for writing):
    trying again later helps, so the exit status is that of good input that could not finish."""

    exit_code = 1
