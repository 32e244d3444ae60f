"""Writing a run folder's files so that neither a kill nor a full disk leaves a half-written one.

Every file goes whole to ``NAME.partial`` beside its destination and is renamed over it
(``spritegen.atomic``), so a reader sees the old file or the new one, never a mix. A kill can
leave a stale ``.partial``; the next start of the run removes it (``remove_partials``). A full
disk (ENOSPC, EDQUOT) removes the partial file at once and becomes ``DiskFull``: one line naming
the file, the folder and the free space, exit status 1 (the input was fine; the machine ran out
of room).

Records are read back with ``read_regular_bytes``: a FIFO, device or folder at a record's place
is an OSError naming it, which every reader already treats as an unreadable record, instead of a
read that waits for a writer forever.

An output made of many files (a report, an export) is written into ``.NAME.partial`` beside its
folder and put in place once complete (``staged_folder``), so an interrupted one leaves the folder
as it was.

A run folder is written by one process at a time: ``run_folder_lock`` holds ``OUT.lock`` beside it
(spritegen's ``exclusive_lock``) while a run or an ensemble trains into it.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import stat
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from spritegen import atomic
from spritegen.errors import SpecError, SpritegenError, quote
from spritegen.executors import sigint_blocked

PARTIAL = atomic.PARTIAL_SUFFIX
#: The log ``bench sweep`` keeps in each run folder it trained.
SWEEP_LOG = "sweep.log"
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class DiskFull(SpritegenError):
    """The disk holding a run folder filled up; the run resumes once space is freed."""

    exit_code = 1


def is_disk_full(exc: BaseException) -> bool:
    """True for the OSErrors a full disk or an exhausted quota raise."""
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL


def _free(folder: Path) -> str:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "unknown"
    return f"{free / 2**20:.1f} MiB"


def disk_full_error(path: Path, need: int | None = None) -> DiskFull:
    """The one-line error for a write to ``path`` (of ``need`` bytes) that found the disk full."""
    folder = path.parent
    size = f"{need / 2**20:.1f} MiB, " if need is not None else ""
    return DiskFull(
        f"no space left on the disk holding {folder} while writing {path.name} "
        f"({size}{_free(folder)} free); free some disk space and run the same command again "
        f"to resume"
    )


def make_output_folder(folder: Path, out: Path, what: str, flag: str = "--out") -> None:
    """Create ``folder`` (with its parents) for the output ``flag out``: a full disk is
    ``DiskFull`` (exit 1), a folder that cannot be made (read-only, under /proc, below a file,
    no permission) one line naming ``flag`` (exit 2), not an OSError traceback."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(folder) from None
        raise SpecError(
            f"{flag} {quote(str(out))}: cannot create the {what} folder "
            f"({exc.strerror or exc}); choose a writable folder"
        ) from None


def staging_path(dest: Path) -> Path:
    """Where ``staged_folder(dest)`` writes: ``.NAME.partial`` beside ``dest`` (beside the
    folder it names, for ``.``, ``x/..`` or a link)."""
    dest = Path(dest).resolve()
    return dest.with_name(f".{dest.name}{PARTIAL}")


@contextlib.contextmanager
def staged_folder(dest: Path, what: str, flag: str, last: str) -> Iterator[Path]:
    """Yield an empty folder beside ``dest`` (``staging_path``) to write a whole output into
    (a report, an export); once the block ends, its entries are put in place in ``dest``
    (``publish_folder``, ``last`` last). On any exception, Ctrl-C included, the folder is removed
    with the parents made for it, and ``dest`` is as it was: a report interrupted halfway used
    to leave some figures and no report.md, or old and new figures mixed. A folder that cannot
    be made is one line naming ``flag`` (``make_output_folder``)."""
    dest = Path(dest)
    stage = staging_path(dest)
    if stage.is_dir() and not stage.is_symlink():  # what a killed write left
        shutil.rmtree(stage)
    elif os.path.lexists(stage):
        stage.unlink()
    made = [p for p in reversed(stage.parents) if not os.path.lexists(p)]
    make_output_folder(stage, dest, what, flag)
    try:
        yield stage
        publish_folder(stage, dest, last)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        raise


def publish_folder(stage: Path, dest: Path, last: str) -> None:
    """Put the complete folder ``stage`` in place as ``dest``: renamed whole where ``dest`` is
    missing or empty; else each entry replaces its namesake in ``dest`` (a folder whole), ``last``
    (the file by which a reader knows the output complete) after all others, with Ctrl-C held
    until the last rename. Entries of ``dest`` that ``stage`` lacks stay: they may be the user's."""
    with sigint_blocked():
        if not os.path.lexists(dest) or (
            dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir())
        ):
            with contextlib.suppress(OSError):  # filled meanwhile: entry by entry below
                os.replace(stage, dest)
                return
        for name in sorted(os.listdir(stage), key=lambda n: (n == last, n)):
            target = dest / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            _move(stage / name, target)
        stage.rmdir()


def _move(src: Path, target: Path) -> None:
    """``os.replace``, and onto another file system (``dest`` a mount point) a copy to
    ``target.partial`` renamed into place."""
    try:
        os.replace(src, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        tmp = atomic.partial_path(target)
        if src.is_dir():
            shutil.copytree(src, tmp)
            shutil.rmtree(src)
        else:
            shutil.copy2(src, tmp)
            src.unlink()
        os.replace(tmp, target)


def write_bytes_atomic(path: Path, data: bytes, *, fsync: bool = False) -> None:
    """``spritegen.atomic.write_bytes_atomic``, with a full disk as ``DiskFull``."""
    try:
        atomic.write_bytes_atomic(path, data, fsync=fsync)
    except OSError as exc:  # atomic_path has removed the partial file already
        if is_disk_full(exc):
            raise disk_full_error(Path(path), len(data)) from None
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def save_torch_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to memory, then an atomic, fsynced write: torch's own writer reports a
    full disk as a RuntimeError without errno, a plain write as the OSError it is."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes_atomic(path, buf.getvalue(), fsync=True)


def read_regular_bytes(path: Path) -> bytes:
    """The bytes of the regular file at ``path``; anything else there is an OSError.

    ``Path.read_bytes`` on a FIFO named ``summary.json`` waited for a writer forever, so one
    stray pipe in a run folder hung ``bench report`` and ``bench sweep``. The file is opened
    without blocking (a FIFO opens at once, a regular file as usual) and checked before it is
    read; the error is one callers catch already as "cannot be read".
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "a folder, not a file", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file (a device, pipe or socket)", str(path))
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def remove_partials(folder: Path) -> list[Path]:
    """Delete the ``*.partial`` files a killed run left in ``folder`` (recursively); return them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = sorted(folder.rglob(f"*{PARTIAL}"))
    for p in found:
        if p.is_file() or p.is_symlink():
            p.unlink(missing_ok=True)
    return found


class RunFolderBusy(SpritegenError):
    """Another process is training into the same run folder (exit 2: choose another --out)."""


#: Run folders this process holds the lock of: resolved path -> (thread id, depth). An ensemble
#: holds its members' folders and may train one of them as a single run meanwhile.
_HELD: dict[Path, tuple[int, int]] = {}
_HELD_GUARD = threading.Lock()


def lock_path(out: Path) -> Path:
    """``OUT.lock``, beside the run folder: inside it, ``--force`` would delete it while held."""
    out = Path(out).resolve()
    return out.with_name(out.name + ".lock")


@contextlib.contextmanager
def run_folder_lock(out: Path) -> Iterator[None]:
    """Hold the run folder ``out`` for this process (re-entrant within one thread).

    Two ``bench run`` of one ``--out`` used to train into the same files (with ``--force`` one
    deleted the other's checkpoint mid-write); the second now stops at once naming the holder's
    pid. Folders above ``out`` that had to be created for the lock file are removed again on
    release when still empty, so a run refused later for bad input leaves nothing behind. An
    ``out`` that is a file is refused here, before the data are loaded and any lock is taken.
    """
    key = Path(out).resolve()
    if not key.name:  # "/" (also "/..", or "." in /): no folder to hold OUT.lock beside it
        raise SpecError(
            f"--out {quote(str(out))} is the root folder, which cannot be a run folder (its "
            f"lock file goes beside it); choose a folder inside it, e.g. --out /runs/NAME"
        )
    if key.exists() and not key.is_dir():  # it read "cannot create the run folder (Not a dir...)"
        raise SpecError(
            f"--out {quote(str(out))} is a file, not a folder; a run writes a folder (config.json, "
            "metrics.jsonl, checkpoints/): choose a new or empty folder"
        )
    me = threading.get_ident()
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None and held[0] == me:
            _HELD[key] = (me, held[1] + 1)
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _HELD_GUARD:
                _HELD[key] = (me, _HELD[key][1] - 1)
        return
    created = _make_parents(key)
    try:
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(atomic.exclusive_lock(lock_path(key), partial(_busy, out)))
            except OSError as exc:  # only taking the lock: the run's own OSErrors pass through
                if is_disk_full(exc):
                    raise disk_full_error(lock_path(key)) from None
                raise _cannot_create(out, exc) from None
            with _HELD_GUARD:
                _HELD[key] = (me, 1)
            try:
                yield
            finally:
                with _HELD_GUARD:
                    _HELD.pop(key, None)
    finally:
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: the run may have filled it


def _busy(out: Path, holder: str) -> RunFolderBusy:
    return RunFolderBusy(
        f"--out {quote(str(out))} is being written by another bench run (pid {holder}); wait "
        f"for it to finish, or use another --out"
    )


def _cannot_create(out: Path, exc: OSError) -> SpecError:
    return SpecError(
        f"--out {quote(str(out))}: cannot create the run folder ({exc.strerror or exc}); "
        f"choose a writable folder"
    )


def _make_parents(out: Path) -> list[Path]:
    """Create the missing folders above ``out``; return them, outermost first."""
    missing = [p for p in reversed(out.parents) if not p.exists()]
    created = []
    for folder in missing:
        try:
            folder.mkdir()
        except FileExistsError:  # made meanwhile by another process
            continue
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full_error(folder) from None
            raise _cannot_create(out, exc) from None
        created.append(folder)
    return created
