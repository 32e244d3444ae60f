"""Writing a run folder's files so that neither a kill nor a full disk leaves a half-written one.

Every file goes whole to ``NAME.partial`` beside its destination and is renamed over it
(``spritegen.atomic``), so a reader sees the old file or the new one, never a mix. A kill can
leave a stale ``.partial``; the next start of the run removes it (``remove_partials``). A full
disk (ENOSPC, EDQUOT) removes the partial file at once and becomes ``DiskFull``: one line naming
the file, the folder and the free space, exit status 1 (the input was fine; the machine ran out
of room).
"""

from __future__ import annotations

import errno
import io
import shutil
from pathlib import Path
from typing import Any

from spritegen import atomic
from spritegen.errors import SpritegenError

PARTIAL = atomic.PARTIAL_SUFFIX
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
