"""What glibc's malloc tuning (benchmark.allocator) buys: thesis-network training steps and
encoding, each in a fresh process with and without it, interleaved, medians.

Each trial is a subprocess so that one setting cannot leak into the other (mallopt is
process-wide and cannot be undone). CPU time is reported besides wall time because the machine
may be shared; the kernel ("system") share of the CPU time is what the tuning removes.

    PYTHONPATH=. python benchmarks/bench_allocator.py [--steps 20] [--trials 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TRIAL = """
import json, resource, sys, time, torch
tuned, steps, threads = sys.argv[1] == "tuned", int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
if tuned:
    from benchmark.allocator import keep_freed_memory
    assert keep_freed_memory()
from benchmark.models.registry import build_model
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime
model = build_model("betavae", (1, 64, 64), 10, {"beta": 4.0}, seed=0)
opt = torch.optim.Adam(model.parameters(), lr=5e-4)
x = (torch.rand(64, 1, 64, 64, generator=torch.Generator().manual_seed(1)) > 0.5).float()
noise = torch.Generator().manual_seed(0)
def step(i):
    loss = model.loss(x, step=i, generator=noise)["loss"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss
for i in range(3):
    step(i)
(u0, s0), w0 = cpu(), time.perf_counter()
for i in range(steps):
    loss = step(i)
(u1, s1), w1 = cpu(), time.perf_counter()
model.eval()
images = (torch.rand(512, 1, 64, 64, generator=torch.Generator().manual_seed(2)) > 0.5).float()
with torch.inference_mode():
    model.encode(images)
    (u2, s2), w2 = cpu(), time.perf_counter()
    for _ in range(steps // 5 + 1):
        model.encode(images)
    (u3, s3), w3 = cpu(), time.perf_counter()
encoded = 512 * (steps // 5 + 1)
print(json.dumps({
    "step_wall_ms": (w1 - w0) / steps * 1e3, "step_cpu_ms": (u1 - u0 + s1 - s0) / steps * 1e3,
    "step_sys_share": (s1 - s0) / max(1e-9, u1 - u0 + s1 - s0),
    "encode_cpu_ms_per_image": (u3 - u2 + s3 - s2) / encoded * 1e3,
    "encode_wall_ms_per_image": (w3 - w2) / encoded * 1e3,
    "loss": float(loss.detach()),
}))
"""


def trial(tuned: bool, steps: int, threads: int) -> dict:
    mode = "tuned" if tuned else "default"
    out = subprocess.run(
        [sys.executable, "-c", TRIAL, mode, str(steps), str(threads)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    results: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(args.trials):
        for tuned in (False, True):
            results[tuned].append(trial(tuned, args.steps, args.threads))
    losses = {r["loss"] for rs in results.values() for r in rs}
    med = {
        t: {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "loss"}
        for t, rs in results.items()
    }
    print(f"thesis beta-VAE, D = 10, batch 64, {args.threads} thread(s), {args.trials} trials")
    print(
        f"{'malloc':<10}{'step CPU ms':>12}{'step wall ms':>14}{'kernel share':>14}"
        f"{'encode CPU ms/img':>19}"
    )
    for tuned, name in ((False, "default"), (True, "tuned")):
        m = med[tuned]
        print(
            f"{name:<10}{m['step_cpu_ms']:>12.1f}{m['step_wall_ms']:>14.1f}"
            f"{m['step_sys_share']:>14.0%}{m['encode_cpu_ms_per_image']:>19.3f}"
        )
    print(f"same losses in every trial: {len(losses) == 1}")
    train = med[False]["step_cpu_ms"] / med[True]["step_cpu_ms"]
    encode = med[False]["encode_cpu_ms_per_image"] / med[True]["encode_cpu_ms_per_image"]
    print(f"speedup training {train:.2f}, encoding {encode:.2f} (CPU time)")


if __name__ == "__main__":
    main()
