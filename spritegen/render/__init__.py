"""Renderers turn full factor vectors into images; one per worker process, reused for every frame.

Every renderer is a pure function of the factor vector and its constructor arguments: the same
vector gives the same pixels in any process, which is what lets a build run in parallel, resume,
and be verified by re-rendering.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from spritegen.factors import NUM_ALL_FACTORS, FactorSpace, check_renderable

RENDERER_KINDS = ("2d", "3d")
#: The seven factors of a full vector, each checked against its own range.
FULL_SPACE = FactorSpace(NUM_ALL_FACTORS)


class Renderer(Protocol):
    """What the build, the oracle and ``verify`` need from a renderer."""

    #: Number of image channels this renderer produces (1 or 3).
    channels: int
    image_size: int

    def render(self, full: np.ndarray) -> np.ndarray:
        """(N, 7) float64 full factor vectors -> (N, H, W, C) uint8 images."""
        ...

    def info(self) -> dict[str, str]:
        """Renderer name, version and library versions, recorded in the file's provenance."""
        ...

    def close(self) -> None:
        """Release native resources (GL contexts)."""
        ...


def check_full_factors(full: np.ndarray, class_names: Sequence[str] = ()) -> np.ndarray:
    """``full`` as the (N, 7) float64 array a renderer draws, or a ValueError naming the row and
    factor: a renderer handed a value it cannot draw must refuse it, not break (cairo keeps a
    non-invertible matrix's error on its context and refuses every later drawing)."""
    full = np.asarray(full)
    if full.dtype.kind not in "iuf":
        raise ValueError(f"factors must be real numbers, got an array of dtype {full.dtype}")
    if full.ndim != 2 or full.shape[1] != NUM_ALL_FACTORS:
        raise ValueError(f"expected full factor vectors of shape (N, 7), got {full.shape}")
    full = full.astype(np.float64, copy=False)
    check_renderable(FULL_SPACE, full, class_names)
    return full


def channels_for(kind: str, coloured: bool) -> int:
    """2D images are grey until hue is a factor; 3D images are always RGB (shading needs it)."""
    return 3 if (coloured or kind == "3d") else 1


RENDERER_MODULES = {"2d": "spritegen.render.cairo2d", "3d": "spritegen.render.pyrender3d"}


def renderer_version(kind: str) -> str:
    """The version of a renderer's pixels; a build never mixes chunks of two versions."""
    import importlib

    return str(importlib.import_module(RENDERER_MODULES[kind]).RENDERER_VERSION)


def make_renderer(kind: str, image_size: int, coloured: bool) -> Renderer:
    """Build the renderer ``kind`` ("2d" or "3d"); 3D imports pyrender only when asked for."""
    if kind == "2d":
        from spritegen.render.cairo2d import CairoRenderer

        return CairoRenderer(image_size=image_size, coloured=coloured)
    if kind == "3d":
        from spritegen.render.pyrender3d import PyrenderRenderer

        return PyrenderRenderer(image_size=image_size, coloured=coloured)
    raise ValueError(f"unknown renderer {kind!r}; allowed: {', '.join(RENDERER_KINDS)}")
