"""Load a spritegen training set into memory for the trainer.

Uses ``spritegen.datafile.read_training_set`` (which checks that the file is a complete dataset of
a supported version) when that module exists; until then it reads ``/images`` and ``/factors``
straight from the HDF5 file (the smallest piece the trainer needs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from spritegen.errors import DatasetError, SpecError

#: Epochs by number of factors (the thesis, section 3.4): 1-2 -> 10, 3 -> 20, 4-5 -> 30, 6-7 -> 60.
EPOCHS_BY_FACTORS = {1: 10, 2: 10, 3: 20, 4: 30, 5: 30, 6: 60, 7: 60}


def default_epochs(num_factors: int) -> int:
    if num_factors not in EPOCHS_BY_FACTORS:
        raise SpecError(f"number of factors must be 1..7 for the default epoch schedule, "
                        f"got {num_factors}; pass --epochs")
    return EPOCHS_BY_FACTORS[num_factors]


def load_training_set(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, H, W, C), factors float32 (N, K)) held in memory."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file {str(path)!r} does not exist")
    try:
        from spritegen.datafile import read_training_set
    except ImportError:
        read_training_set = None
    if read_training_set is not None:
        images, factors = read_training_set(path)
    else:
        import h5py

        try:
            with h5py.File(path, "r") as f:
                if "images" not in f or "factors" not in f:
                    raise DatasetError(f"{path} has no /images and /factors: not a spritegen dataset")
                images, factors = f["images"][()], f["factors"][()]
        except OSError as exc:
            raise DatasetError(f"{path} is not a readable HDF5 file ({exc})") from None
    images = np.asarray(images)
    factors = np.asarray(factors, dtype=np.float32)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DatasetError(f"{path}: /images must be uint8 (N, H, W, C), got "
                           f"{images.dtype} {images.shape}")
    return images, factors


def to_channels_first(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) numpy -> contiguous uint8 (N, C, H, W) tensor, converted once."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
