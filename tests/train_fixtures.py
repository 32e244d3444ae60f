"""Tiny real datasets for the training tests, made with spritegen's own build."""

from __future__ import annotations

from pathlib import Path

from spritegen.build import build
from spritegen.spec import spec_from_mapping


def make_tiny_dataset(
    path: Path,
    n: int = 256,
    seed: int = 0,
    factors: int = 2,
    eval_preset: str = "none",
    image_size: int = 64,
) -> Path:
    """An ``n``-image dataset with the first ``factors`` factors (2D, ``image_size`` square)."""
    spec = spec_from_mapping(
        {
            "factors": factors,
            "n": n,
            "seed": seed,
            "image_size": image_size,
            "name": Path(path).stem,
            "evaluation": {"preset": eval_preset},
        }
    )
    return build(spec, path, workers=1, progress=False)
