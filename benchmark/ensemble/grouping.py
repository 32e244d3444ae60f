"""Which runs of a study train together, and how many fit in memory at once.

Only runs that agree on every field of ``runner.SHARED`` (dataset, model, schedule, device,
scoring presets) are ever grouped; within such a set, groups hold at most ``size`` runs, in the
order given. ``--ensemble``: ``off`` (every run alone), ``auto`` (as many as fit in memory, in
near-equal groups, at least as many groups as there are parallel workers so that none idles), or
a number N (at most N; more than fit is an error naming the number that fits).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from benchmark.ensemble.runner import SHARED
from benchmark.models.base import Model
from benchmark.params import RunConfig
from spritegen.errors import SpecError
from spritegen.memory import available_memory

#: Fraction of the free memory an ensemble may plan to use (the rest: data, scoring, others).
MEMORY_SHARE = 0.5


def parse_ensemble(value: str | int | None) -> str | int:
    """``auto``, ``off`` or a positive integer, else one clear error."""
    if value is None:
        return "auto"
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif str(value).strip().lower() in ("auto", "off"):
        return str(value).strip().lower()
    else:
        try:
            n = int(str(value))
        except ValueError:
            n = 0
    if n < 1:
        raise SpecError(f"--ensemble must be auto, off or a positive integer, got {value!r}")
    return n


def share_key(cfg: RunConfig) -> tuple[Any, ...]:
    """Runs with equal keys may share one ensemble."""
    return tuple(repr(getattr(cfg, name)) for name in SHARED)


def member_bytes(model: Model, image_shape: Sequence[int], batch_size: int) -> int:
    """Memory one member needs while training: weights, gradients and two Adam moments, plus
    its activations at ``batch_size`` (every module output of a forward pass, kept for backward
    and matched by their gradients), measured by a dry forward pass on two images."""
    sizes: list[int] = []
    hooks = [
        m.register_forward_hook(
            lambda _m, _i, out: sizes.append(out.numel() if isinstance(out, torch.Tensor) else 0)
        )
        for m in model.modules()
    ]
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            x = torch.rand((2, *image_shape), device=device)
            model.loss(x, step=0, generator=torch.Generator(device=device).manual_seed(0))
    finally:
        for h in hooks:
            h.remove()
    activations = sum(sizes) // 2 * batch_size * 2  # saved for backward + their gradients
    params = sum(p.numel() for p in model.parameters()) * 4  # weight, grad, exp_avg, exp_avg_sq
    return 4 * (params + activations)


def free_bytes(device: torch.device) -> int:
    """Free memory where the ensemble trains (a GPU's free memory; the host's available RAM)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return available_memory()


def fitting_size(per_member: int, data_bytes: int, device: torch.device) -> int:
    """How many members fit: MEMORY_SHARE of the free memory, less one copy of the data."""
    budget = free_bytes(device) * MEMORY_SHARE - data_bytes
    return max(1, math.floor(budget / max(1, per_member)))


def plan_groups(
    configs: Sequence[RunConfig],
    size: int | str,
    fits: Callable[[RunConfig, int], int] | int,
    parallel: int = 1,
) -> list[list[int]]:
    """Indices of ``configs`` in groups of compatible runs, at most ``size`` each; ``off`` gives
    one group per run. For ``auto``, groups hold at most as many as ``fits(first config of the
    set, largest latent size)`` says fit, and the sets are cut into near-equal groups, at least
    ``parallel`` groups in all, so that one big ensemble never leaves the other workers idle.
    A number above what fits is an error naming what fits. Groups come in the order of their
    first run."""
    if size == "off":
        return [[i] for i in range(len(configs))]
    by_key: dict[tuple[Any, ...], list[int]] = {}
    for i, cfg in enumerate(configs):
        by_key.setdefault(share_key(cfg), []).append(i)
    # how many pieces each set is cut into, at least, for every worker to have one
    pieces = max(1, math.ceil(max(1, parallel) / len(by_key))) if by_key else 1
    groups = []
    for members in by_key.values():
        if len(members) == 1:
            groups.append(members)
            continue
        widest = max(configs[i].latent_dim for i in members)
        fit = fits if isinstance(fits, int) else fits(configs[members[0]], widest)
        if size != "auto" and int(size) > fit:
            raise SpecError(
                f"--ensemble {size}: only {fit} models like {configs[members[0]].model} "
                f"(latent size up to {widest}) fit in "
                f"memory here; use --ensemble {fit} or auto"
            )
        if size == "auto":
            count = max(math.ceil(len(members) / fit), min(pieces, len(members)))
            groups += [list(part) for part in _near_equal(members, count)]
        else:
            limit = int(size)
            groups += [members[k : k + limit] for k in range(0, len(members), limit)]
    return sorted(groups, key=lambda g: g[0])


def _near_equal(items: Sequence[int], count: int) -> list[Sequence[int]]:
    """``items`` cut in order into ``count`` runs whose lengths differ by at most one."""
    base, extra = divmod(len(items), count)
    out, start = [], 0
    for k in range(count):
        stop = start + base + (1 if k < extra else 0)
        out.append(items[start:stop])
        start = stop
    return out


def memory_fit(cfg: RunConfig, latent_dim: int | None = None) -> int:
    """How many models like ``cfg`` (at the largest latent size) fit, on the device it names."""
    from benchmark.datasets import open_source
    from benchmark.models.registry import build_model
    from benchmark.run import resolve_data
    from benchmark.train import resolve_device

    device = resolve_device(cfg.device)
    with open_source(resolve_data(cfg)) as src:
        h, w, c = src.observation_shape
        num_images = _num_images(src)
    model = build_model(
        cfg.model, (c, h, w), latent_dim or cfg.latent_dim, cfg.hparams, seed=0, check=False
    )
    per_member = member_bytes(model, (c, h, w), cfg.batch_size)
    return fitting_size(per_member, num_images * h * w * c, device)


def _num_images(src: Any) -> int:
    grid = getattr(src, "_grid", None)
    if grid is not None:
        return int(grid.num_images)
    from spritegen.datafile import open_dataset

    with open_dataset(src.path) as f:
        return int(f["images"].shape[0])
