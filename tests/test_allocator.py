"""The malloc tuning that keeps PyTorch's freed buffers in the process (benchmark.allocator)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import json, resource, sys, torch
from benchmark.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "on" else False
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 4, 2, 1), torch.nn.ReLU(),
                          torch.nn.Conv2d(32, 32, 4, 2, 1))
opt = torch.optim.Adam(net.parameters())
x = torch.rand(64, 1, 64, 64, generator=torch.Generator().manual_seed(1))
for _ in range(20):
    loss = net(x).square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(json.dumps({"applied": applied, "loss": float(loss.detach()), "faults": faults}))
"""


def _train(mode: str) -> dict:
    import json

    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tuning_keeps_the_numbers_and_stops_the_page_faults():
    """Same losses bit for bit; far fewer minor page faults (the kernel time it saves)."""
    on, off = _train("on"), _train("off")
    assert on["applied"] is True
    assert on["loss"] == off["loss"]
    assert on["faults"] < off["faults"] / 2, (on, off)


def test_second_call_is_a_no_op():
    from benchmark.allocator import keep_freed_memory

    first = keep_freed_memory()
    assert keep_freed_memory() is first
