"""Keep freed memory in the process instead of handing it back to the OS after every step.

PyTorch on the CPU allocates and frees the same multi-megabyte activation buffers at every
training step and every encoded chunk. glibc's default malloc serves blocks above its mmap
threshold with fresh ``mmap`` calls and trims the heap top back to the OS after each ``free``,
so every step pays page faults and page zeroing in the kernel: measured on the 2-core VM, a third
of the CPU time of a training sweep was system time. Raising the trim threshold, padding the heap
and raising the mmap threshold to glibc's maximum lets freed buffers be reused: the thesis
network's training step went from ~250 to ~150 ms of CPU and encoding from ~0.66 to ~0.3 ms per
image (one thread; docs/performance.md), with bit-identical numbers (allocation never changes
arithmetic). The cost is resident memory that stays at its peak, which a training process
reaches anyway.

This is glibc's own documented knob (``mallopt``); jemalloc or tcmalloc through ``LD_PRELOAD``
would do the same but must be set before the interpreter starts and installed as system
packages. Elsewhere (macOS, musl, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

#: Freed memory at the heap top kept before trimming; extra heap requested per growth; the
#: largest block served from the heap (glibc refuses more than 32 MiB on 64-bit systems).
TRIM_THRESHOLD = 1 << 30
TOP_PAD = 256 << 20
MMAP_THRESHOLD = 32 << 20

_done = False


def keep_freed_memory() -> bool:
    """Tune glibc's malloc for PyTorch's repeated large buffers, once per process; True when
    applied (glibc on Linux), False where there is no such allocator."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = all(
        mallopt(param, value) == 1
        for param, value in (
            (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (_M_TOP_PAD, TOP_PAD),
            (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        )
    )
    _done = ok
    return ok
