"""Renderers turn full factor vectors into images; one per worker process, reused for every frame.

Every renderer is a pure function of the factor vector and its constructor arguments: the same
vector gives the same pixels in any process, which is what lets a build run in parallel, resume,
and be verified by re-rendering.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

RENDERER_KINDS = ("2d", "3d")


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
