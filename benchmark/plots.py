"""The pictures of a run: reconstructions, and a latent traversal grid ordered by KL.

Drawn with matplotlib's object API (a Figure on an Agg canvas, no pyplot global state).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmark.encode import to_input
from benchmark.models.base import Model
from benchmark.models.registry import decode_fault, encode_fault
from benchmark.train import broke_contract, model_code
from spritegen.atomic import atomic_path

TRAVERSAL_VALUES = np.linspace(-3.0, 3.0, 7)
PAD = 2


def _mosaic(rows: list[np.ndarray]) -> np.ndarray:
    """rows of (n, H, W, C) float images in [0, 1] -> one (R*(H+PAD), n*(W+PAD), C) array."""
    n = max(len(r) for r in rows)
    h, w, c = rows[0].shape[1:]
    out = np.full((len(rows) * (h + PAD) + PAD, n * (w + PAD) + PAD, c), 0.5, dtype=np.float32)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = PAD + i * (h + PAD), PAD + j * (w + PAD)
            out[y : y + h, x : x + w] = img
    return out


def _save(
    mosaic: np.ndarray,
    path: Path,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    title: str,
    cell: int,
) -> None:
    rows, cols = len(row_labels), len(col_labels)
    fig = Figure(figsize=(1.0 + 0.9 * cols, 0.5 + 0.9 * rows), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    img = mosaic[..., 0] if mosaic.shape[-1] == 1 else mosaic
    ax.imshow(
        img, cmap="gray" if mosaic.shape[-1] == 1 else None, vmin=0, vmax=1, interpolation="nearest"
    )
    step = cell + PAD
    ax.set_yticks([PAD + i * step + cell / 2 for i in range(rows)], list(row_labels), fontsize=8)
    ax.set_xticks([PAD + j * step + cell / 2 for j in range(cols)], list(col_labels), fontsize=8)
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, fsync=False) as tmp:
        fig.savefig(tmp, format="png")


def _images(logits: torch.Tensor) -> np.ndarray:
    return torch.sigmoid(logits.float()).permute(0, 2, 3, 1).cpu().numpy()


def _means(model: Model, x: torch.Tensor, picture: str) -> torch.Tensor:
    """``model.encode(x)``'s means; the model's failures are one ``ModelFailed`` line, as while
    it is scored (they were a traceback, and the run folder got no summary.json)."""
    with model_code(model, f"while drawing {picture}, in encode()"):
        out = model.encode(x)
    fault = encode_fault(out, len(x), getattr(model, "latent_dim", None))
    broke_contract(model, f"while drawing {picture}", fault)
    return out[0]


def _decoded(
    model: Model, z: torch.Tensor, image_shape: tuple[int, ...], picture: str
) -> np.ndarray:
    """``model.decode(z)`` as (n, H, W, C) images in [0, 1], the model's failures named."""
    with model_code(model, f"while drawing {picture}, in decode()"):
        logits = model.decode(z)
    c, h, w = image_shape
    broke_contract(model, f"while drawing {picture}", decode_fault(logits, len(z), (c, h, w)))
    return _images(logits)


@torch.no_grad()
def save_reconstructions(model: Model, images: torch.Tensor, path: Path) -> None:
    """Top row: inputs (uint8 (n, C, H, W)); bottom row: decode(mean of encode(input))."""
    model.eval()
    device = next(model.parameters()).device
    x = to_input(images.to(device))
    mu = _means(model, x, Path(path).name)
    rows = [x.permute(0, 2, 3, 1).cpu().numpy(), _decoded(model, mu, x.shape[1:], Path(path).name)]
    _save(
        _mosaic(rows),
        Path(path),
        ["input", "reconstruction"],
        [str(i + 1) for i in range(len(images))],
        "reconstructions (latent means)",
        images.shape[-1],
    )


@torch.no_grad()
def save_traversal(
    model: Model, image: torch.Tensor, kl_per_dim: Sequence[float], path: Path
) -> None:
    """One row per latent dimension, most informative (largest KL) first; each row sets that
    dimension to -3 .. +3 around the encoding of ``image`` (uint8 (C, H, W)) and decodes."""
    model.eval()
    device = next(model.parameters()).device
    mu = _means(model, to_input(image[None].to(device)), Path(path).name)
    order = np.argsort(-np.asarray(kl_per_dim, dtype=float), kind="stable")
    values = torch.as_tensor(TRAVERSAL_VALUES, dtype=mu.dtype, device=device)
    rows = []
    for d in order:
        z = mu.repeat(len(values), 1)
        z[:, d] = values
        rows.append(_decoded(model, z, tuple(image.shape), Path(path).name))
    labels = [f"z{d}  KL {kl_per_dim[d]:.2f}" for d in order]
    _save(
        _mosaic(rows),
        Path(path),
        labels,
        [f"{v:+.0f}" for v in TRAVERSAL_VALUES],
        "latent traversal (rows by KL)",
        image.shape[-1],
    )
