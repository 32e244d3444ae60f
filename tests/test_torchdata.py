"""spritegen.torchdata.SpritegenDataset follows torchvision's Dataset conventions."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from train_fixtures import make_tiny_dataset

from spritegen.errors import DatasetError
from spritegen.torchdata import SpritegenDataset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def path(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("data") / "k2.h5", n=40, seed=4)


@pytest.mark.parametrize("in_memory", [True, False])
def test_items_are_float_chw_images_and_factor_vectors(path, in_memory):
    import h5py

    with h5py.File(path) as f:
        images, factors = f["images"][()], f["factors"][()]
    ds = SpritegenDataset(path, in_memory=in_memory)
    assert len(ds) == 40
    image, target = ds[7]
    assert image.dtype == torch.float32 and image.shape == (1, 64, 64)
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert torch.equal(image, torch.from_numpy(images[7]).permute(2, 0, 1).float() / 255)
    assert target.dtype == torch.float32 and np.array_equal(target.numpy(), factors[7])
    assert torch.equal(ds[-1][0], ds[39][0])
    with pytest.raises(IndexError):
        ds[40]


def test_transforms_and_dataloader(path):
    ds = SpritegenDataset(
        path, transform=lambda x: x * 2, target_transform=lambda f: f[0], in_memory=False
    )
    plain = SpritegenDataset(path)
    assert torch.equal(ds[3][0], plain[3][0] * 2) and ds[3][1] == plain[3][1][0]
    batches = list(
        DataLoader(
            SpritegenDataset(path),
            batch_size=16,
            shuffle=True,
            generator=torch.Generator().manual_seed(0),
        )
    )
    assert [b[0].shape for b in batches] == [(16, 1, 64, 64), (16, 1, 64, 64), (8, 1, 64, 64)]
    lazy = SpritegenDataset(path, in_memory=False)
    lazy[0]
    clone = pickle.loads(pickle.dumps(lazy))  # what a DataLoader worker receives
    assert torch.equal(clone[5][0], plain[5][0])


@pytest.mark.parametrize("in_memory", [True, False])
def test_a_missing_file_or_a_folder_is_a_dataset_error(tmp_path, in_memory):
    with pytest.raises(DatasetError, match="none.h5: no such file"):
        SpritegenDataset(tmp_path / "none.h5", in_memory=in_memory)
    with pytest.raises(DatasetError, match="a folder, not a dataset file"):  # was "does not exist"
        SpritegenDataset(tmp_path, in_memory=in_memory)


@pytest.mark.parametrize("in_memory", [True, False])
@pytest.mark.parametrize(
    "index",
    [1.5, "3", None, slice(0, 4), [0, 1], np.array([1, 2]), True, np.True_, torch.tensor(False)],
)
def test_an_index_that_is_not_one_integer_is_a_type_error(path, in_memory, index):
    """A float was truncated to an item without a word (ds[1.5] was ds[1]); a slice or a list
    failed comparing itself with an int; a bool read item 1 or 0, as a list index would."""
    ds = SpritegenDataset(path, in_memory=in_memory)
    with pytest.raises(TypeError, match="takes one integer index, got .*; for several items"):
        ds[index]
    assert torch.equal(ds[np.int64(3)][0], ds[3][0]) and torch.equal(
        ds[torch.tensor(3)][1], ds[3][1]
    )


def test_a_transform_or_flag_of_the_wrong_kind_is_refused_when_made(path):
    with pytest.raises(TypeError, match="transform must be a callable or None, got 3"):
        SpritegenDataset(path, transform=3)
    with pytest.raises(TypeError, match="in_memory must be True or False, got 'no'"):
        SpritegenDataset(path, in_memory="no")  # was taken as True


def test_a_file_replaced_since_the_dataset_was_made_is_refused_not_read(path, tmp_path):
    """A rebuild writes a new file and renames it over the old one (``spritegen build --force``
    does): a lazy dataset made before opens the path at its first item, in the main process or
    in each DataLoader worker, and read the new file's items under the old length without a
    word: another K, other images, an IndexError from h5py past the new end."""
    import os
    import shutil

    target = tmp_path / "data.h5"
    shutil.copy(path, target)
    lazy = SpritegenDataset(target, in_memory=False)
    early = SpritegenDataset(target, in_memory=False)
    first = early[0]  # opened before the replacement: keeps reading the file it was made from
    os.replace(make_tiny_dataset(tmp_path / "k3.h5", n=30, seed=5, factors=3), target)
    replaced = "data.h5 was replaced since this SpritegenDataset was made"
    with pytest.raises(DatasetError, match=replaced):
        lazy[0]
    with pytest.raises(DatasetError, match=replaced):
        next(iter(DataLoader(lazy, batch_size=4, num_workers=2)))
    assert torch.equal(early[0][0], first[0]) and early[0][1].shape == (2,)
    shutil.copy(path, target)  # the same content again: read as before
    assert torch.equal(lazy[0][0], first[0])


def test_spritegen_and_the_bench_cli_do_not_import_torch():
    code = (
        "import sys, spritegen, spritegen.factors, spritegen.errors, benchmark.cli; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
