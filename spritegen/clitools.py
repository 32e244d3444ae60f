"""What both command-line tools share: bad input becomes one line on stderr and exit status 2.

``spritegen`` and ``bench`` run their click groups through ``run_cli``, so an error caused by the
user (a ``SpritegenError`` from any layer, or a click usage error) reads the same in both tools,
never shows a traceback, and an interrupt is one line (both groups are ``CliGroup``s for that)
that says to rerun only for the commands that resume. Commands that are also invoked on their own
(tests, other click groups) wrap their bodies in ``user_errors`` to get the same line and exit
status without ``run_cli``.

An error class may set ``exit_code`` (default 2, bad input); a diverged training run uses 1, and
so does running out of memory (one line saying so, the work done so far kept for a rerun).
"""

from __future__ import annotations

import _thread
import contextlib
import sys
import threading
import warnings
from collections.abc import Collection, Iterator
from typing import IO, Any

import click

from spritegen.errors import SpritegenError, SpritegenWarning


def _exit_code(exc: BaseException) -> int:
    return int(getattr(exc, "exit_code", 2))


#: click >= 8.2 raises this (a UsageError whose message is the whole help) for a group run
#: without a command; older click prints the help and exits by itself.
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


class Interrupted(Exception):
    """Ctrl-C while a command ran; ``command`` (its name) tells ``run_cli`` whether a rerun
    resumes. Not a KeyboardInterrupt, so click's ``main`` lets it through without echoing the
    blank line it writes for one."""

    def __init__(self, command: str | None) -> None:
        super().__init__(command)
        self.command = command


class CliGroup(click.Group):
    """The click group of both tools: a Ctrl-C inside a command leaves as ``Interrupted``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted(ctx.invoked_subcommand) from None


class UserError(click.ClickException):
    """A SpritegenError carried through click: shown as ``PROG: error: message``."""

    def __init__(self, message: str, prog: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.prog = prog
        self.exit_code = exit_code  # type: ignore[misc]  # click declares a class default

    def show(self, file: IO | None = None) -> None:
        click.echo(f"{self.prog}: error: {self.format_message()}", err=True, file=file)


@contextlib.contextmanager
def user_errors(prog: str) -> Iterator[None]:
    """Turn a SpritegenError raised inside into a one-line click error with its exit status."""
    try:
        yield
    except SpritegenError as exc:
        raise UserError(str(exc), prog, _exit_code(exc)) from None


class PathArg(click.Path):
    """``click.Path`` that refuses an empty path instead of reading it as the current folder.

    ``pathlib.Path("")`` is ``Path(".")``, so ``bench report SWEEP --export ''`` merged its
    records into the current folder and ``bench sweep SPEC --out ''`` trained there; a user who
    means the current folder writes ``.``.
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value:
            self.fail("got an empty path; name a file or folder ('.' for the current folder)")
        return super().convert(value, param, ctx)


#: Seconds after a swallowed Ctrl-C before it is raised again: long enough that the callback
#: which swallowed it has returned (raised inside the hook, it would be swallowed once more).
REDELIVER_S = 0.05


@contextlib.contextmanager
def interrupts_not_lost() -> Iterator[None]:
    """Deliver again a Ctrl-C that Python swallowed in a ``__del__`` or weakref callback.

    A KeyboardInterrupt raised while such a callback runs (h5py frees objects through them
    all the time) cannot propagate: Python prints "Exception ignored in ..." and the command
    goes on as if Ctrl-C had not been pressed (about one ``verify`` in ten). The hook raises it
    again in the main thread a moment later; if the command ends first, on leaving this block.
    """
    previous = sys.unraisablehook
    pending: list[threading.Timer] = []
    delivered = threading.Event()

    def deliver() -> None:
        delivered.set()
        _thread.interrupt_main()

    def hook(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            previous(unraisable)
        elif not pending or delivered.is_set():  # one retry at a time
            delivered.clear()
            timer = threading.Timer(REDELIVER_S, deliver)
            timer.daemon = True
            pending.append(timer)
            timer.start()

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous
        for timer in pending:
            timer.cancel()
        if pending and not delivered.is_set():  # the command ended before the retry landed
            raise KeyboardInterrupt


@contextlib.contextmanager
def one_line_warnings(prog: str) -> Iterator[None]:
    """Show each ``SpritegenWarning`` as ``PROG: warning: message`` on stderr (no file, line or
    source text); other warnings as Python shows them."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SpritegenWarning):
            click.echo(f"{prog}: warning: {message}", err=True)
        else:
            shown(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def is_out_of_memory(exc: BaseException) -> bool:
    """numpy's and Python's MemoryError, torch's OutOfMemoryError (CUDA) and its CPU allocator's
    RuntimeError: the machine ran out, which deserves one line, not a traceback."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def run_cli(
    group: click.Group,
    prog_name: str,
    argv: list[str] | None = None,
    resumable: Collection[str] = (),
) -> None:
    """Run ``group`` as a console script; exit 0 done, 1 failed, 2 bad input, 130 interrupted.

    ``resumable`` names the commands that pick up where an interrupted run stopped: only their
    Ctrl-C line says to run the same command again.
    """
    try:
        with one_line_warnings(prog_name), interrupts_not_lost():
            code = group.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except SpritegenError as exc:
        click.echo(f"{prog_name}: error: {exc}", err=True)
        sys.exit(_exit_code(exc))
    except (Interrupted, click.exceptions.Abort, KeyboardInterrupt) as exc:
        resumes = isinstance(exc, Interrupted) and exc.command in resumable
        hint = "; run the same command again to resume" if resumes else ""
        click.echo(f"{prog_name}: interrupted{hint}", err=True)
        sys.exit(130)
    except _NO_ARGS_IS_HELP as exc:  # no command given: the help, as click prints it
        exc.show()
        sys.exit(exc.exit_code)
    except click.UsageError as exc:  # one line, like every other error; the help is one flag away
        command = exc.ctx.command_path if exc.ctx is not None else prog_name
        message = " ".join(exc.format_message().split())
        click.echo(f"{prog_name}: error: {message} (see '{command} --help')", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:  # after click's own exceptions, which are Exceptions too
        if not is_out_of_memory(exc):
            raise
        click.echo(
            f"{prog_name}: error: out of memory: {' '.join(str(exc).split())}; the work done so "
            "far is kept: free memory or ask for less (latent size, batch size, evaluation "
            "preset, workers) and run the command again",
            err=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
