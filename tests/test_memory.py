"""spritegen.memory: what a load may take, read from /proc/meminfo and the memory cgroup, and
loads refused before they allocate what the machine (or the container) does not have."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from train_fixtures import make_tiny_dataset

import spritegen.memory as memory
from spritegen.memory import NotEnoughMemory
from spritegen.torchdata import SpritegenDataset


def make_cgroup(root: Path, version: int, limit: str, usage: int, inactive: int = 0) -> Path:
    """A cgroup file system as the kernel lays it out (v2 unified, or v1's memory controller)."""
    if version == 2:
        root.mkdir(parents=True, exist_ok=True)
        (root / "memory.max").write_text(f"{limit}\n")
        (root / "memory.current").write_text(f"{usage}\n")
        (root / "memory.stat").write_text(f"anon 1\ninactive_file {inactive}\nactive_file 5\n")
    else:
        mem = root / "memory"
        mem.mkdir(parents=True, exist_ok=True)
        (mem / "memory.limit_in_bytes").write_text(f"{limit}\n")
        (mem / "memory.usage_in_bytes").write_text(f"{usage}\n")
        (mem / "memory.stat").write_text(f"cache 9\ntotal_inactive_file {inactive}\n")
    return root


@pytest.mark.parametrize("version", [1, 2])
def test_a_cgroup_limit_leaves_its_limit_less_what_it_holds_beyond_file_cache(
    tmp_path, monkeypatch, version
):
    root = make_cgroup(tmp_path, version, limit="1000000", usage=400_000, inactive=100_000)
    monkeypatch.setattr(memory, "_CGROUP", root)
    assert memory.cgroup_room() == 1_000_000 - (400_000 - 100_000)
    assert memory.available_memory() <= 700_000
    assert memory.loadable_memory() <= 700_000


@pytest.mark.parametrize(("version", "limit"), [(2, "max"), (1, str(2**63 - 4096))])
def test_a_cgroup_without_a_limit_leaves_the_machines_memory(tmp_path, monkeypatch, version, limit):
    root = make_cgroup(tmp_path, version, limit=limit, usage=400_000)
    monkeypatch.setattr(memory, "_CGROUP", root)
    assert memory.cgroup_room() is None


def test_this_machines_memory_is_read():
    total = memory._meminfo()["MemTotal"]
    assert 0 < memory.available_memory() <= total
    assert memory.available_memory() <= memory.loadable_memory()


@pytest.fixture
def small_container(tmp_path, monkeypatch) -> int:
    """This process in a container that leaves it 100 kB (v2 limit and usage)."""
    make_cgroup(tmp_path / "cgroup", 2, limit=str(1_100_000), usage=1_000_000)
    monkeypatch.setattr(memory, "_CGROUP", tmp_path / "cgroup")
    return 100_000


def test_a_dataset_larger_than_the_memory_left_is_refused_before_loading(tmp_path, small_container):
    """A training set larger than the container's limit was allocated lazily and filled until
    the OOM killer ended the process, with no message; now one MemoryError names both sizes and
    the lazy alternative, and the lazy dataset still works."""
    path = make_tiny_dataset(tmp_path / "k2.h5", n=40, seed=4)  # 40 x 64 x 64 = 160 kB
    with pytest.raises(NotEnoughMemory) as caught:
        SpritegenDataset(path)
    message = str(caught.value)
    assert "the training set (40 images) needs 0.2 MiB in memory" in message
    assert "only 0.1 MiB is available" in message
    assert "in_memory=False" in message
    assert isinstance(caught.value, MemoryError)
    lazy = SpritegenDataset(path, in_memory=False)
    assert len(lazy) == 40 and np.isfinite(lazy[39][0].numpy()).all()
