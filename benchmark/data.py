"""Load a training set into memory for the trainer, and the thesis' epoch schedule.

Reading goes through ``benchmark.datasets`` (spritegen files via
``benchmark.datasets.verified``, checked against the build's checksums; dSprites and 3dshapes via
their grid readers).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from spritegen.errors import DatasetError, SpecError

if TYPE_CHECKING:
    from benchmark.datasets import DataHandle

#: Epochs by number of factors (the thesis, section 3.4): 1-2 -> 10, 3 -> 20, 4-5 -> 30, 6-7 -> 60.
EPOCHS_BY_FACTORS = {1: 10, 2: 10, 3: 20, 4: 30, 5: 30, 6: 60, 7: 60}


def default_epochs(num_factors: int) -> int:
    if num_factors not in EPOCHS_BY_FACTORS:
        raise SpecError(
            f"number of factors must be 1..7 for the default epoch schedule, "
            f"got {num_factors}; pass --epochs"
        )
    return EPOCHS_BY_FACTORS[num_factors]


def load_training_set(data: str | Path | DataHandle) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, H, W, C), factors float32 (N, K)) held in memory.

    ``data`` is a ``--data`` value (a spritegen file, ``dsprites:PATH``, ``3dshapes:PATH``) or an
    opened ``benchmark.datasets.DataHandle``; spritegen files are checked to be complete datasets
    of a supported version.
    """
    from benchmark.datasets import DataHandle, open_data

    src = data if isinstance(data, DataHandle) else open_data(data)
    images, factors = src.read_training_set()
    images = np.asarray(images)
    factors = np.asarray(factors, dtype=np.float32)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DatasetError(
            f"{src.path}: training images must be uint8 (N, H, W, C), got "
            f"{images.dtype} {images.shape}"
        )
    return images, factors


def to_channels_first(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) numpy -> contiguous uint8 (N, C, H, W) tensor, converted once."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
