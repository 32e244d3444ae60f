"""How much memory this process may still take, and refusing a load that cannot fit.

Reading a training set into memory allocates it whole with ``numpy.empty``. Linux grants such
an allocation lazily, so a set larger than the memory left does not fail there with a
``MemoryError``: the process is killed by the OOM killer while the chunks are being inflated,
with no message at all. Checking the size first turns that into one line naming both sizes.

In a container (Docker, Kubernetes, Slurm) ``MemAvailable`` describes the host, not the limit
the process is held to, so the memory cgroup's limit is consulted too (v2 ``memory.max``, v1
``memory.limit_in_bytes``), less what the cgroup holds beyond reclaimable file cache.
"""

from __future__ import annotations

import os
from pathlib import Path

#: cgroup v1 reports "no limit" as a number near 2**63; anything above this is no limit.
_NO_LIMIT = 2**60
_CGROUP = Path("/sys/fs/cgroup")


def _meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes, or {} where there is none (another OS)."""
    values: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                name, _, rest = line.partition(":")
                fields = rest.split()
                if fields and fields[0].isdigit():
                    values[name] = int(fields[0]) * 1024
    except OSError:
        pass
    return values


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # v2 writes "max" for no limit


def _stat_value(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def cgroup_room() -> int | None:
    """Bytes the memory cgroup of this process still allows, or None when it sets no limit."""
    root = _CGROUP
    for limit_file, usage_file, stat_file, inactive in (
        ("memory.max", "memory.current", "memory.stat", "inactive_file"),  # v2
        (
            "memory/memory.limit_in_bytes",
            "memory/memory.usage_in_bytes",
            "memory/memory.stat",
            "total_inactive_file",
        ),  # v1
    ):
        limit = _read_int(root / limit_file)
        usage = _read_int(root / usage_file)
        if limit is None or usage is None or limit >= _NO_LIMIT:
            continue
        working_set = max(0, usage - _stat_value(root / stat_file, inactive))
        return max(0, limit - working_set)
    return None


def _free_ram(info: dict[str, int]) -> int:
    free = info.get("MemAvailable")
    if free is None:  # no /proc/meminfo (another OS)
        free = int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    return free


def _within(nbytes: int, room: int | None) -> int:
    return nbytes if room is None else min(nbytes, room)


def available_memory() -> int:
    """Bytes of RAM available to new allocations: ``MemAvailable``, within the cgroup's limit."""
    return _within(_free_ram(_meminfo()), cgroup_room())


def loadable_memory() -> int:
    """Bytes a load can take before it must fail: available RAM plus free swap, within the
    cgroup's limit (which counts swap separately and is not raised by it)."""
    info = _meminfo()
    return _within(_free_ram(info) + info.get("SwapFree", 0), cgroup_room())


class NotEnoughMemory(MemoryError):
    """A load that was refused before allocating: it needs more than the machine has left."""


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MiB"


def check_fits(nbytes: int, what: str) -> None:
    """Raise ``NotEnoughMemory`` naming ``what`` and both sizes when ``nbytes`` cannot be held
    (more than ``loadable_memory()``); a load that merely pushes others into swap proceeds."""
    room = loadable_memory()
    if nbytes > room:
        raise NotEnoughMemory(
            f"{what} needs {_gib(nbytes)} in memory, but only {_gib(room)} is available "
            "(free memory and swap, within this process's memory limit)"
        )
