"""Latent means of uint8 images under one model or many: the representation the metrics score.

One function encodes for a single model (``make_represent``, what ``bench run`` and every metric
call use) and for many (``encode_all``, the batched scorer), so their latents are the same bits:
the same chunks of 512 images, the same model calls. Each chunk is moved and converted to floats
once, whatever the number of models. How fast a chunk goes through the convolutions on a CPU is
the encoder's business (``benchmark.models.thesis``: it convolves in slices that fit the cache).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from benchmark.allocator import keep_freed_memory
from benchmark.models.base import Model

if TYPE_CHECKING:
    from benchmark.train import TrainingStopped

#: Images per model call (the fully connected layers' rows, so the latents' rounding: unchanged
#: since round 1, whatever the device).
CHUNK = 512


def to_input(batch: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 in [0, 1], the model's input convention."""
    return batch.float().div_(255.0)


def encode_all(
    models: Sequence[Model],
    images: np.ndarray,
    device: torch.device,
    chunk: int = CHUNK,
    *,
    failed: dict[int, TrainingStopped] | None = None,
) -> list[np.ndarray]:
    """Latent means of uint8 images (n, H, W, C) under every model: one float32 (n, D_i) each.

    Each chunk is moved and converted to floats once and encoded by every model, so many
    models scored on the same images share the reading and the conversion. Latents stay on the
    device until every chunk is encoded: copying each to the host would make the host wait for
    every model's every chunk, leaving a GPU idle between calls.

    A model whose encode fails raises ``ModelFailed``, one whose latents are not finite or too
    large for the metrics ``TrainingDiverged`` (``_diverged``); with ``failed`` (the ensemble's
    scorer) it is recorded there under its position instead, and the other models go on. A model
    recorded there is not called again; its latents are incomplete and not to be used."""
    from benchmark.train import ModelFailed  # here: benchmark.train imports this module

    keep_freed_memory()
    outs: list[list[torch.Tensor]] = [[] for _ in models]
    modes = [m.training for m in models]
    for m in models:
        m.eval()
    try:
        # no_grad, not inference_mode: a plugin's encode may keep a tensor it later trains with
        with torch.no_grad():
            for i in range(0, len(images), chunk):
                part = torch.as_tensor(np.ascontiguousarray(images[i : i + chunk]))
                x = to_input(part.to(device).permute(0, 3, 1, 2))
                for k, (out, m) in enumerate(zip(outs, models)):
                    if failed is not None and k in failed:
                        continue
                    try:
                        out.append(_latent_means(m, x))
                    except ModelFailed as exc:
                        if failed is None:
                            raise
                        failed[k] = exc
    finally:
        for m, mode in zip(models, modes):
            m.train(mode)
    latents = []
    for k, (o, m) in enumerate(zip(outs, models)):
        z = torch.cat(o) if o else torch.zeros((0, m.latent_dim))
        diverged = None if failed is not None and k in failed else _diverged(m, z)
        if diverged is not None:
            if failed is None:
                raise diverged
            failed[k] = diverged
        latents.append(z.cpu().numpy())
    return latents


def _diverged(model: Model, z: torch.Tensor) -> TrainingStopped | None:
    """``TrainingDiverged`` when a trained model's latent means are NaN, infinite or beyond
    ``MAX_LATENT_ABS`` (which the metrics refuse): its weights diverged where the loss was not
    looked at (on a GPU every 50th step; an update that overflowed them), or its encode returns
    such values. It was the metrics' bad-input line (exit 2, the model unnamed) and no
    summary.json; now the run stops as diverged at its last good checkpoint. One reduction and
    one sync per model and call, on latents that go to the host anyway."""
    from benchmark.metrics.encode import MAX_LATENT_ABS
    from benchmark.train import TrainingDiverged, model_label

    bad = ~(z.abs() <= MAX_LATENT_ABS)  # NaN compares False
    count = int(bad.sum())
    if count == 0:
        return None
    kind = "NaN or infinite" if not bool(torch.isfinite(z[bad]).all()) else "beyond 1e30"
    return TrainingDiverged(
        f"the latent means of model {model_label(model)} were {kind} in {count} of {z.numel()} "
        "values when scored: its weights diverged (or its encode() returns such values); the "
        "last good checkpoint is kept. Lower the learning rate or check the model and its "
        "hyperparameters."
    )


def _latent_means(model: Model, x: torch.Tensor) -> torch.Tensor:
    """``model.encode(x)``'s means, or one ``ModelFailed`` line when the model's code raises or
    breaks the contract (mu and logvar (B, D)) while being scored: checked on every chunk, as
    training checks every step, by shapes alone (no device sync)."""
    from benchmark.models.registry import encode_fault
    from benchmark.train import broke_contract, model_code

    with model_code(model, "while scoring, in encode()"):
        out = model.encode(x)
    broke_contract(
        model, "while scoring", encode_fault(out, x.shape[0], getattr(model, "latent_dim", None))
    )
    return out[0].float()


def make_represent(
    model: Model, device: torch.device, batch_size: int = CHUNK
) -> Callable[[np.ndarray], np.ndarray]:
    """The representation the metrics take: uint8 images (n, H, W, C) -> latent means (n, D)."""

    def represent(images: np.ndarray) -> np.ndarray:
        return encode_all([model], images, device, batch_size)[0]

    return represent
