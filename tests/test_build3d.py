"""End to end: a small K = 7 dataset built with the 3D renderer, by one and by two workers.

Real builds (spawned worker processes, real renders, real HDF5 files): the files must be
byte-identical whatever the number of workers, hold RGB images of all seven factors, and the
oracle made from the file must re-render stored images exactly (what ``verify`` relies on).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from spritegen.build import build
from spritegen.datafile import open_dataset, read_training_set
from spritegen.oracle import Oracle
from spritegen.spec import spec_from_mapping
from spritegen.verify import verify

SMALL_EVAL = {
    "batch_size": 4,
    "variance": 20,
    "kim_mnih_train": 6,
    "kim_mnih_eval": 4,
    "higgins_train": 6,
    "higgins_eval": 4,
    # unset sizes take the full preset's: 15,000 random images, 97% of this module's rendering
    "random_train": 20,
    "random_eval": 10,
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("build3d")
    spec = spec_from_mapping(
        {
            "factors": 7,
            "n": 300,
            "seed": 3,
            "name": "k7-small",
            "storage": {"chunk_images": 64},
            "evaluation": SMALL_EVAL,
        }
    )
    assert spec.renderer == "3d"
    out = {}
    with pytest.MonkeyPatch.context() as mp:  # spawned workers inherit the environment
        mp.setenv("MESA_SHADER_CACHE_DIR", str(root / "mesa_cache"))
        mp.setenv("PYOPENGL_PLATFORM", "egl")
        for workers in (1, 2):
            out[workers] = build(spec, root / f"w{workers}.h5", workers=workers, progress=False)
    return out


@pytest.mark.slow
def test_one_and_two_workers_give_identical_files(built: dict[int, Path]) -> None:
    digests = {w: hashlib.sha256(p.read_bytes()).hexdigest() for w, p in built.items()}
    assert digests[1] == digests[2]


@pytest.mark.slow
def test_k7_file_holds_rgb_images_of_all_seven_factors(built: dict[int, Path]) -> None:
    images, factors = read_training_set(built[2])
    assert images.shape == (300, 64, 64, 3) and images.dtype == np.uint8
    assert factors.shape == (300, 7)
    assert set(np.unique(factors[:, 3])) == {0.0, 1.0, 2.0}
    assert (images.reshape(300, -1).max(axis=1) > 0).all()  # every image shows a shape
    with open_dataset(built[2]) as f:
        info = json.loads(f.attrs["renderer_info"])
    assert info["renderer"] == "pyrender3d" and info["gl_renderer"]


@pytest.mark.slow
def test_oracle_rerenders_the_stored_images(built: dict[int, Path]) -> None:
    images, factors = read_training_set(built[1], limit=40)
    oracle = Oracle.from_file(built[1])
    try:
        assert oracle.observation_shape == (64, 64, 3)
        assert oracle.render(factors).tobytes() == images.tobytes()
    finally:
        oracle.close()


@pytest.mark.slow
def test_verify_passes_the_3d_file(built: dict[int, Path]) -> None:
    """Every check of ``spritegen verify`` (spec, plan, chunks, re-render) holds for 3D."""
    report = verify(built[1], sample=8)
    assert report.problems == [] and report.images_rerendered > 0
