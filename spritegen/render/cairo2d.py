"""The 2D renderer: square, ellipse and triangle drawn with pycairo, antialiased.

Geometry (all in pixels of a W×W canvas; see docs/format.md for the same table):

* ``size = S_MAX · (0.5 + 0.5·scale)`` with ``S_MAX = 0.3·W``: the side of the square, and the side
  of the square with the same area for the other shapes, so all shapes have equal area at equal
  scale (``size²``).
* ellipse: semi-axes ``a = size·sqrt(2/π)`` and ``b = a/2`` (aspect 2:1 so rotation shows);
  triangle: equilateral, side ``size·sqrt(4/sqrt(3))``, centred on its centroid.
* the centroid sits at ``R + pos·(W − 2R)`` with ``R`` the largest circumradius of any shape at
  scale 1 (the triangle's), so no shape leaves the canvas at any scale and rotation.
* rotation turns the shape about its centroid, clockwise on screen for a positive angle.
"""

from __future__ import annotations

import math

import cairo
import numpy as np

from spritegen.factors import SYMMETRY_2D
from spritegen.render import check_full_factors
from spritegen.render.colour import hue_to_rgb

RENDERER_NAME = "cairo2d"
RENDERER_VERSION = "1"  # bump whenever the pixels for a given factor vector change
SHAPES = ("square", "ellipse", "triangle")
S_MAX_FRACTION = 0.3
ELLIPSE_SEMI_MAJOR = math.sqrt(2.0 / math.pi)  # per unit size; semi-minor is half of it
TRIANGLE_SIDE = math.sqrt(4.0 / math.sqrt(3.0))  # per unit size
CIRCUMRADIUS = {  # per unit size
    "square": math.sqrt(2.0) / 2.0,
    "ellipse": ELLIPSE_SEMI_MAJOR,
    "triangle": TRIANGLE_SIDE / math.sqrt(3.0),
}
MAX_CIRCUMRADIUS = max(CIRCUMRADIUS.values())


def shape_size(scale: float, image_size: int) -> float:
    """Side of the equal-area square, in pixels, for a scale factor in [0, 1]."""
    return S_MAX_FRACTION * image_size * (0.5 + 0.5 * scale)


def centre_pixels(pos: float, image_size: int) -> float:
    """Pixel coordinate of the centroid for a position factor in [0, 1]."""
    margin = MAX_CIRCUMRADIUS * shape_size(1.0, image_size)
    return margin + pos * (image_size - 2.0 * margin)


class CairoRenderer:
    """Draws one shape per image on a reused cairo surface; a pure function of the factors."""

    def __init__(self, image_size: int = 64, coloured: bool = False) -> None:
        self.image_size = int(image_size)
        self.coloured = bool(coloured)
        self.channels = 3 if coloured else 1
        fmt = cairo.FORMAT_RGB24 if coloured else cairo.FORMAT_A8
        self._surface = cairo.ImageSurface(fmt, self.image_size, self.image_size)
        self._ctx = cairo.Context(self._surface)
        self._ctx.set_antialias(cairo.ANTIALIAS_GRAY)
        stride = self._surface.get_stride()
        buf = np.ndarray(
            shape=(self.image_size, stride), dtype=np.uint8, buffer=self._surface.get_data()
        )
        if coloured:  # native-endian xRGB words: bytes B, G, R, x on little-endian machines
            words = buf.reshape(self.image_size, stride // 4, 4)[:, : self.image_size]
            # a view with a negative stride over B, G, R (a fancy index would copy once, here)
            self._pixels = words[:, :, 2::-1] if np.little_endian else words[:, :, 1:]
        else:
            self._pixels = buf[:, : self.image_size, None]

    def render(self, full: np.ndarray) -> np.ndarray:
        full = check_full_factors(full)
        n, w = full.shape[0], self.image_size
        out = np.empty((n, w, w, self.channels), dtype=np.uint8)
        rgb = hue_to_rgb(full[:, 5]) if self.coloured else None
        ctx = self._ctx
        for i in range(n):
            pos_x, pos_y, scale, shape, rotation = full[i, :5]
            ctx.set_operator(cairo.OPERATOR_SOURCE)
            ctx.set_source_rgba(0.0, 0.0, 0.0, 0.0)
            ctx.paint()
            ctx.set_operator(cairo.OPERATOR_OVER)
            if rgb is not None:
                ctx.set_source_rgb(*rgb[i])
            else:
                ctx.set_source_rgba(1.0, 1.0, 1.0, 1.0)
            ctx.save()
            ctx.translate(centre_pixels(pos_x, w), centre_pixels(pos_y, w))
            ctx.rotate(rotation)
            self._trace(SHAPES[int(shape)], shape_size(scale, w))
            ctx.restore()
            ctx.fill()
            self._surface.flush()
            out[i] = self._pixels
        return out

    def _trace(self, shape: str, size: float) -> None:
        ctx = self._ctx
        if shape == "square":
            ctx.rectangle(-size / 2.0, -size / 2.0, size, size)
        elif shape == "ellipse":
            a = ELLIPSE_SEMI_MAJOR * size
            ctx.save()
            ctx.scale(a, a / 2.0)
            ctx.arc(0.0, 0.0, 1.0, 0.0, 2.0 * math.pi)
            ctx.restore()
        else:
            radius = TRIANGLE_SIDE * size / math.sqrt(3.0)
            for j in range(3):
                angle = -math.pi / 2.0 + j * 2.0 * math.pi / 3.0
                ctx.line_to(radius * math.cos(angle), radius * math.sin(angle))
            ctx.close_path()

    def info(self) -> dict[str, str]:
        return {
            "renderer": RENDERER_NAME,
            "renderer_version": RENDERER_VERSION,
            "pycairo": cairo.version,
            "cairo": cairo.cairo_version_string(),
            "symmetry_radians": ", ".join(f"{k}={v:.6f}" for k, v in SYMMETRY_2D.items()),
        }

    def close(self) -> None:
        self._surface.finish()
