"""A spritegen dataset file as a ``torch.utils.data.Dataset`` (torchvision conventions).

This is the only spritegen module that imports torch, and nothing in spritegen imports it: a user
who only renders data never loads torch.

    ds = SpritegenDataset("shapes2d_k5.h5")
    image, factors = ds[0]  # float32 (C, H, W) in [0, 1], float32 (K,)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True)

``transform`` receives the image as that float tensor (what torchvision's ``ToTensor`` would
give), ``target_transform`` the factor vector. With ``in_memory=True`` (the default) the training
set is read once (fast random access, as the design measured: whole-set loads take seconds, random
HDF5 reads 90-500 ms per batch); with ``in_memory=False`` each item is read from the file, opened
lazily in each DataLoader worker.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from spritegen.datafile import dataset_path, open_dataset, plain_value, read_training_set
from spritegen.errors import DatasetError, quote
from spritegen.memory import NotEnoughMemory

if TYPE_CHECKING:
    import h5py


class SpritegenDataset(Dataset):
    """Training images and factor values of one spritegen file.

    Items are ``(image, factors)``: image float32 (C, H, W) in [0, 1] (or ``transform(image)``),
    factors float32 (K,) (or ``target_transform(factors)``); categorical factors hold their class
    index as a float, as in the file.
    """

    def __init__(
        self,
        path: str | Path,
        transform: Callable[[torch.Tensor], Any] | None = None,
        target_transform: Callable[[torch.Tensor], Any] | None = None,
        in_memory: bool = True,
    ) -> None:
        self.path = dataset_path(path, "SpritegenDataset")
        for name, fn in (("transform", transform), ("target_transform", target_transform)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be a callable or None, got {quote(fn)}")
        if not isinstance(in_memory, (bool, np.bool_)):
            raise TypeError(f"in_memory must be True or False, got {quote(in_memory)}")
        in_memory = bool(in_memory)
        self.transform = transform
        self.target_transform = target_transform
        self.in_memory = in_memory
        self._file: h5py.File | None = None
        self._content = ""  # the file's content digest, for in_memory=False
        if in_memory:
            try:
                images, factors = read_training_set(self.path)
            except NotEnoughMemory as exc:
                raise NotEnoughMemory(
                    f"{exc}; SpritegenDataset({str(self.path)!r}, in_memory=False) reads each "
                    "item from the file instead"
                ) from None
            self.images = torch.from_numpy(np.ascontiguousarray(images))
            self.factors = torch.from_numpy(np.asarray(factors, dtype=np.float32))
            self._len = len(self.images)
        else:
            with open_dataset(self.path) as f:  # a complete dataset of a supported version
                self._len = f["images"].shape[0]
                self._content = plain_value(f.attrs["content_sha256"])

    def __len__(self) -> int:
        return self._len

    def _raw(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.in_memory:
            return self.images[index], self.factors[index]
        if self._file is None:  # opened here so each DataLoader worker has its own handle
            self._file = self._open()
        f = self._file
        return (
            torch.from_numpy(f["images"][index]),
            torch.from_numpy(np.asarray(f["factors"][index], dtype=np.float32)),
        )

    def _open(self) -> h5py.File:
        """The file, if it is still the one the dataset was made from. A rebuild renames a new
        file over the path: opened at the first item, or in each DataLoader worker, it was read
        under the old length without a word (another K, other images, h5py's IndexError)."""
        f = open_dataset(self.path)
        found = plain_value(f.attrs["content_sha256"])
        if found != self._content:
            f.close()
            raise DatasetError(
                f"{self.path} was replaced since this SpritegenDataset was made (content "
                f"digest {self._content[:12]}... then, {str(found)[:12]}... now); make a new "
                "SpritegenDataset to read the new file"
            )
        return f

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """Item ``index`` (negative counts from the end), as torchvision's datasets index.

        One integer only: a float was truncated to an item without a word, and a slice or a
        list failed comparing it with an int."""
        try:
            if isinstance(index, (bool, np.bool_)) or (
                isinstance(index, torch.Tensor) and index.dtype == torch.bool
            ):
                raise TypeError  # True would read item 1, as a list does; a dataset should not
            index = operator.index(index)
        except TypeError:
            raise TypeError(
                f"SpritegenDataset takes one integer index, got {quote(index)}; for several "
                "items use torch.utils.data.Subset or a DataLoader"
            ) from None
        if not -self._len <= index < self._len:
            raise IndexError(f"index {index} out of range for {self._len} images")
        image, factors = self._raw(index % self._len)
        image = image.permute(2, 0, 1).float().div(255.0)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            factors = self.target_transform(factors)
        return image, factors

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"] = None  # h5py handles do not pickle; workers reopen
        return state

    def __repr__(self) -> str:
        return (
            f"SpritegenDataset({str(self.path)!r}, {self._len} images, in_memory={self.in_memory})"
        )
