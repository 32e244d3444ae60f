"""Claiming a file's disk blocks before a library writes into them.

HDF5 (1.14, through h5py) does not survive every write that fails for lack of space: when a
dataset's chunk cache is flushed as its handle is released and the write fails, h5py can only
print the error, and closing the file afterwards can crash the process with SIGSEGV (reproduced
by filling a small tmpfs to every free size around a file's length: about 2% of them crash).
A build therefore claims the assembled file's blocks up front, so that a full disk is met
here, as a Python ``OSError``, and never inside HDF5.

The blocks are claimed with Linux ``fallocate(FALLOC_FL_KEEP_SIZE)``: they belong to the file
but lie beyond its end, so the bytes HDF5 writes, and so the file, stay exactly what they were.
Where the call does not exist or the file system cannot do it (another OS, NFS, some FUSE file
systems) nothing is claimed and the build runs as it did without it.
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

_KEEP_SIZE = 0x01  # FALLOC_FL_KEEP_SIZE, linux/falloc.h


def _fallocate():
    try:
        call = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    call.restype = ctypes.c_int
    return call


_FALLOCATE = _fallocate()


def reserve(path: str | Path, nbytes: int) -> bool:
    """Claim ``nbytes`` of disk for the existing file ``path`` without changing its length.

    Returns False where claiming is not supported. Raises ``OSError(ENOSPC)`` when the disk
    cannot hold ``nbytes``, leaving nothing claimed.
    """
    if _FALLOCATE is None or nbytes <= 0:
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        if _FALLOCATE(fd, _KEEP_SIZE, 0, nbytes) == 0:
            return True
        code = ctypes.get_errno()
        if code in (errno.ENOSPC, errno.EDQUOT):
            release_unused(path)
            raise OSError(code, os.strerror(code), str(path))
        return False  # EOPNOTSUPP, ENOSYS, EINVAL...: this file system claims nothing ahead
    finally:
        os.close(fd)


def release_unused(path: str | Path) -> None:
    """Give back the claimed blocks that lie beyond the end of ``path``.

    Truncating a file to its own length frees them (measured on ext4 and tmpfs).
    """
    path = Path(path)
    os.truncate(path, path.stat().st_size)
