"""What decides a run's float32 rounding besides its config: the threads and processor on the
CPU, the device on a GPU.

Training is bit-for-bit repeatable on one machine with one thread count, but the thread count
splits float32 reductions differently and the processor's instruction set (AVX2, AVX-512, AMX)
picks other kernels, so the same config and seed drift apart within tens of steps elsewhere
(docs/training.md, "Threads and processors change the rounding"). config.json records these
under ``NUMERICS_KEY`` so a reader can tell a repeat from another draw; a resume under other
numerics is allowed (the checkpoint is valid) but said, and the record keeps both.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch

#: The config.json field holding the numerics a run was trained with.
NUMERICS_KEY = "numerics"


def numerics(device: torch.device) -> dict[str, Any]:
    """The numerics of training on ``device`` in this process."""
    if device.type == "cuda":
        return {"device": torch.cuda.get_device_name(device)}
    return {
        "threads": torch.get_num_threads(),
        "cpu": torch.backends.cpu.get_cpu_capability(),
        "processor": processor_name(),
    }


def processor_name() -> str:
    """The processor's model name: the instruction-set level alone does not tell two machines
    apart (an AMD EPYC and an Intel Xeon with AMX both report AVX512, and round differently)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resumed_numerics(old: Any, new: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The record of a run resumed under ``new`` numerics after training under ``old`` (the
    value config.json held, possibly missing), and a warning when they differ. Earlier parts'
    numerics stay under ``before`` (oldest first) so no part of the run's history is lost."""
    if not isinstance(old, dict):  # recorded before numerics were, or hand-edited
        return new, None
    before = old.get("before")
    earlier = [e for e in before if isinstance(e, dict)] if isinstance(before, list) else []
    last = {k: v for k, v in old.items() if k != "before"}
    if last == new:
        return old, None
    record = {**new, "before": [*earlier, last]}
    shown = ", ".join(
        f"{k} {last.get(k)} -> {new.get(k)}"
        for k in sorted(set(last) | set(new))
        if last.get(k) != new.get(k)
    )
    return record, (
        f"resuming under other numerics ({shown}): the float32 rounding differs from the steps "
        "before, so this run will not equal one trained in one go; config.json records both"
    )
