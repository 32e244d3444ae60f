"""GroundTruthAdapter: disentanglement_lib's ground-truth interface over project oracles."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from benchmark.datasets import open_dsprites, open_shapes3d
from benchmark.datasets.testing import read_barcodes, write_dsprites_npz, write_shapes3d
from spritegen.adapters import GroundTruthAdapter
from spritegen.factors import FactorSpace


@pytest.fixture(scope="module")
def dsprites(tmp_path_factory: pytest.TempPathFactory):
    path = write_dsprites_npz(tmp_path_factory.mktemp("d") / "dsprites.npz")
    with open_dsprites(path) as oracle:
        yield oracle


@pytest.fixture(scope="module")
def shapes3d(tmp_path_factory: pytest.TempPathFactory):
    path = write_shapes3d(tmp_path_factory.mktemp("s") / "3dshapes.h5")
    with open_shapes3d(path) as oracle:
        yield oracle


def _kim_mnih_style_check(data, random_state: np.random.RandomState) -> list[int]:
    """Code written for disentanglement_lib's interface, as its FactorVAE metric draws a vote:
    sample factors, fix one column to one value, render, and read the factors back."""
    fixed = []
    for _ in range(8):
        k = random_state.randint(data.num_factors)
        factors = data.sample_factors(16, random_state)
        factors[:, k] = factors[0, k]
        obs = data.sample_observations_from_factors(factors, random_state)
        assert obs.dtype == np.float32 and obs.shape == (16,) + tuple(data.observation_shape)
        assert 0.0 <= obs.min() and obs.max() <= 1.0
        fixed.append(int(k))
    return fixed


@pytest.mark.parametrize("which", ["dsprites", "shapes3d"])
def test_grid_oracle_through_the_adapter(which: str, request: pytest.FixtureRequest) -> None:
    oracle = request.getfixturevalue(which)
    data = GroundTruthAdapter(oracle)
    assert data.num_factors == oracle.num_factors
    assert data.factors_num_values == oracle.factors_num_classes  # grids pass through
    assert data.observation_shape == oracle.observation_shape
    factors = data.sample_factors(300, np.random.RandomState(0))
    assert factors.dtype == np.int64 and factors.shape == (300, data.num_factors)
    for k, n in enumerate(data.factors_num_values):
        assert set(np.unique(factors[:, k])) == set(range(n))
    obs = data.sample_observations_from_factors(factors, np.random.RandomState(1))
    assert obs.dtype == np.float32 and obs.min() == 0.0 and obs.max() == 1.0
    # the image of each index vector is the row the published layout gives it
    np.testing.assert_array_equal(read_barcodes(obs), oracle.index_of(factors))
    np.testing.assert_array_equal(obs, oracle.render(factors).astype(np.float32) / 255)
    _kim_mnih_style_check(data, np.random.RandomState(2))


def test_same_random_state_same_draws(dsprites) -> None:
    data = GroundTruthAdapter(dsprites)
    f1, o1 = data.sample(20, np.random.RandomState(7))
    f2, o2 = data.sample(20, np.random.RandomState(7))
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(o1, o2)
    f3, _ = data.sample(20, np.random.default_rng(7))  # Generators are accepted too
    assert f3.shape == f1.shape
    assert not np.array_equal(data.sample_factors(20, np.random.RandomState(8)), f1)
    assert data.sample_observations(5, np.random.RandomState(0)).shape == (5, 64, 64, 1)
    with pytest.raises(TypeError, match="RandomState or numpy.random.Generator"):
        data.sample_factors(3, 0)


def test_bad_indices_are_refused(dsprites) -> None:
    data = GroundTruthAdapter(dsprites)
    with pytest.raises(ValueError, match="shape"):
        data.sample_observations_from_factors(np.zeros((2, 6), np.int64), None)
    with pytest.raises(ValueError, match="index of factor 'shape' must be in 0..2, got 3"):
        data.sample_observations_from_factors(np.array([[3, 0, 0, 0, 0]]), None)


# -- continuous factors -------------------------------------------------------------------------


class _SpaceOnly:
    """The metadata half of a spritegen Oracle (its FactorSpace), for the binning arithmetic.

    It has no renderer: these tests only convert between indices and factor values.
    """

    def __init__(self, k: int) -> None:
        self.space = FactorSpace(num_active=k)
        self.num_factors = k
        self.factor_names = self.space.names
        self.factors_num_classes = [f.num_classes for f in self.space.factors]
        self.observation_shape = (64, 64, 1)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.space.sample(n, rng)

    def render(self, factors: np.ndarray) -> np.ndarray:
        raise AssertionError("these tests never render")


def test_continuous_factors_are_binned() -> None:
    data = GroundTruthAdapter(_SpaceOnly(5), bins=[10, 10, 4, 99, 8])
    # pos_x, pos_y, scale binned; shape keeps its 3 classes (the 99 is ignored); rotation 8 bins
    assert data.factors_num_values == [10, 10, 4, 3, 8]
    idx = np.array([[0, 9, 3, 2, 7]])
    centre = data.factor_values(idx)
    np.testing.assert_allclose(centre[0], [0.05, 0.95, 0.875, 2, 7.5 * 2 * math.pi / 8], rtol=1e-6)
    np.testing.assert_array_equal(data.factor_indices(centre), idx)
    values = _SpaceOnly(5).sample_factors(2000, np.random.default_rng(0))
    indices = data.factor_indices(values)
    assert indices.min() == 0
    assert (indices.max(axis=0) == np.array(data.factors_num_values) - 1).all()


def test_uniform_within_bin_stays_in_its_bin() -> None:
    data = GroundTruthAdapter(_SpaceOnly(3), bins=5, within_bin="uniform")
    idx = data.sample_factors(1000, np.random.RandomState(0))
    values = data.factor_values(idx, np.random.RandomState(1))
    np.testing.assert_array_equal(data.factor_indices(values), idx)
    assert len(np.unique(values[:, 0])) > 900  # really drawn, not centres
    with pytest.raises(ValueError, match="needs a random_state"):
        data.factor_values(idx)
    with pytest.raises(ValueError, match="within_bin must be one of centre, uniform"):
        GroundTruthAdapter(_SpaceOnly(3), within_bin="edge")
    with pytest.raises(ValueError, match="bins must be one int or 3 ints"):
        GroundTruthAdapter(_SpaceOnly(3), bins=[4, 4])


# -- a real spritegen Oracle and dataset file ----------------------------------------------------


@pytest.fixture(scope="module")
def k5_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spritegen.build import build
    from spritegen.spec import default_spec, with_overrides

    spec = with_overrides(default_spec(5), {"n": 64, "eval_preset": "none"})
    return build(spec, tmp_path_factory.mktemp("k5") / "k5.h5", workers=1, progress=False)


def test_spritegen_oracle_through_the_adapter() -> None:
    from spritegen.oracle import Oracle
    from spritegen.spec import default_spec

    oracle = Oracle.from_spec(default_spec(5))
    data = GroundTruthAdapter(oracle, bins=16)
    assert data.factor_names == ("pos_x", "pos_y", "scale", "shape", "rotation")
    assert data.factors_num_values == [16, 16, 16, 3, 16]
    assert data.observation_shape == (64, 64, 1)
    factors = data.sample_factors(6, np.random.RandomState(0))
    obs = data.sample_observations_from_factors(factors, np.random.RandomState(0))
    expected = oracle.render(data.factor_values(factors)).astype(np.float32) / 255
    np.testing.assert_array_equal(obs, expected)
    assert obs.dtype == np.float32 and obs.min() == 0 and obs.max() > 0.5 and obs.max() <= 1
    # fixing an index fixes the rendered value exactly (bin centres): same shape, same size,
    # same rotation, different positions -> the same number of lit pixels in every image
    factors = data.sample_factors(8, np.random.RandomState(1))
    factors[:, 2:] = factors[0, 2:]
    factors[:, 0] = np.arange(4, 12)
    obs = data.sample_observations_from_factors(factors, np.random.RandomState(1))
    mass = obs.reshape(8, -1).sum(axis=1)
    np.testing.assert_allclose(mass, mass[0], rtol=0.02)
    _kim_mnih_style_check(data, np.random.RandomState(2))
    oracle.close()


def test_adapter_from_a_dataset_file(k5_file: Path) -> None:
    data = GroundTruthAdapter(k5_file, bins=8, within_bin="uniform")
    assert data.num_factors == 5 and data.factors_num_values == [8, 8, 8, 3, 8]
    factors, obs = data.sample(10, np.random.RandomState(3))
    assert obs.shape == (10, 64, 64, 1) and obs.dtype == np.float32
    # the stored training images, re-rendered through the adapter from their bins, land in the
    # same bins: what the file stores and what the adapter renders agree on the factors
    from spritegen.datafile import read_training_set

    images, stored = read_training_set(k5_file, limit=16)
    indices = data.factor_indices(stored)
    np.testing.assert_array_equal(indices[:, 3], stored[:, 3])  # shape classes pass through
    uniform = data.factor_values(indices, np.random.RandomState(4))
    np.testing.assert_array_equal(data.factor_indices(uniform), indices)
    # rendering the stored values exactly gives the stored pixels
    np.testing.assert_array_equal(data.oracle.render(stored), images)
