"""Hue to RGB, shared by both renderers so that a hue value means the same colour in 2D and 3D."""

from __future__ import annotations

import numpy as np


def hue_to_rgb(hue: np.ndarray | float) -> np.ndarray:
    """HSV(h, 1, 1) -> RGB in [0, 1], vectorised; h is taken modulo 1."""
    h = np.asarray(hue, dtype=np.float64) % 1.0
    k = (np.array([5.0, 3.0, 1.0]) + h[..., None] * 6.0) % 6.0
    return 1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
