"""Atomic file writes: a reader sees the old file or the whole new one, never half of one.

Every file the project publishes (datasets, saved chunks, run summaries, checkpoints, sweep
manifests, reports, plots) is written through here: the content goes to ``PATH.partial`` in the
same folder (so the rename stays on one file system), is optionally fsynced, and is renamed onto
``PATH``. On any exception, disk full included, the temporary file is removed, so a failure leaves
the previous state and nothing half-written. A SIGKILL can still leave a ``.partial``; the next
write of the same path simply overwrites it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from spritegen.errors import check_output_path

PARTIAL_SUFFIX = ".partial"


def partial_path(path: str | Path) -> Path:
    """Where ``atomic_path(path)`` writes before the rename."""
    path = Path(path)
    return path.with_name(path.name + PARTIAL_SUFFIX)


def as_created(path: str | Path) -> Path:
    """``path`` as the file system will read it once its missing folders are made: each ``..``
    that follows a folder which does not exist yet is dropped together with that folder.

    While ``sub`` is missing, ``sub/../x`` cannot be looked at (``stat`` fails), so the checks of
    an output path saw nothing there, and ``mkdir(parents=True)`` then made ``sub`` and wrote
    over whatever ``x`` was, or a later refusal left the empty ``sub`` behind. Below the last
    folder that exists nothing can be a symlink, so dropping ``name/..`` there is exact.
    """
    kept: list[str] = []
    for part in Path(path).parts:
        if part == ".." and kept and kept[-1] != ".." and not os.path.lexists(Path(*kept)):
            kept.pop()
        else:
            kept.append(part)
    return Path(*kept) if kept else Path(".")


def output_path(flag: str, path: str | Path) -> Path:
    """The output ``path`` given as ``flag``, checked (``spritegen.errors.check_output_path``)
    and as it reads once its missing folders are made (``as_created``): the two steps every
    output must take before anything looks at what is already there."""
    check_output_path(flag, path)
    return as_created(path)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_path(path: str | Path, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    ``fsync=False`` skips the sync (for files a resume can re-create, such as a build's saved
    chunks, where a killed process loses nothing the page cache holds).
    """
    path = Path(path)
    tmp = partial_path(path)
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes_atomic(path: str | Path, data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return path


def write_text_atomic(
    path: str | Path, text: str, *, fsync: bool = True, newline: str | None = None
) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, "w", encoding="utf-8", newline=newline) as fh:
            fh.write(text)
    return path


@contextlib.contextmanager
def exclusive_lock(lock: str | Path, busy: Callable[[str], BaseException]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``lock`` (which names the holder's pid) meanwhile.

    When another process holds it, ``busy(pid)`` is raised at once: two writers of one output
    never wait on or interleave with each other. The kernel drops the lock when its holder dies,
    even by SIGKILL, so a killed writer never blocks the next one (its file, naming a dead pid, is
    simply taken over); the file is removed on release (the inode check makes that safe against
    a process that opened the old file just before).
    """
    lock = Path(lock)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise busy(holder) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous holder removed the file after we opened it: try again
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)
