"""The ground-truth contract: every oracle implements it, and live scoring samples like a build.

The build's stored evaluation sets and a live oracle's batches come from one sampler
(``spritegen.evalsets``); drawing live with the build's random stream must therefore reproduce
the stored factor vectors exactly.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from benchmark.datasets import open_data
from benchmark.datasets.testing import write_dsprites_npz, write_shapes3d
from benchmark.metrics import OracleSource, evaluate
from spritegen.adapters import GroundTruthAdapter
from spritegen.errors import SpecError
from spritegen.evalsets import rng_for
from spritegen.groundtruth import GroundTruth, check_ground_truth
from spritegen.oracle import Oracle
from spritegen.spec import default_spec


@pytest.fixture(scope="module")
def grid_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("grids")
    return [
        write_dsprites_npz(folder / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"),
        write_shapes3d(folder / "3dshapes.h5"),
    ]


def test_every_oracle_implements_the_contract(dataset_k5: Path, grid_files: list[Path]) -> None:
    oracles: list[object] = [Oracle.from_file(dataset_k5), GroundTruthAdapter(dataset_k5, bins=4)]
    handles = [open_data(path) for path in grid_files]
    oracles += [h.oracle() for h in handles]
    for oracle in oracles:
        assert isinstance(oracle, GroundTruth)
        assert check_ground_truth(oracle) is oracle
        images = oracle.render(oracle.sample_factors(3, np.random.default_rng(0)))
        assert images.shape == (3, *oracle.observation_shape) and images.dtype == np.uint8
    for h in handles:
        h.close()


def test_oracle_from_file_parses_the_stored_spec_once(
    dataset_k5: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open_dataset parses the stored spec to check the arrays; from_file takes that parse."""
    import spritegen.datafile as datafile

    texts: list[str] = []
    parse = datafile.parse_spec_text
    monkeypatch.setattr(
        datafile, "parse_spec_text", lambda t, **kw: texts.append(t) or parse(t, **kw)
    )
    datafile._parse_stored_spec.cache_clear()
    Oracle.from_file(dataset_k5).close()
    assert len(texts) == 1


class _NoRender:
    num_factors = 2
    factor_names = ("a", "b")
    factors_num_classes = (0, 0)
    observation_shape = (8, 8, 1)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(size=(n, 2)).astype(np.float32)


class _Inconsistent(_NoRender):
    factor_names = ("a",)

    def render(self, factors: np.ndarray) -> np.ndarray:
        return np.zeros((len(factors), 8, 8, 1), np.uint8)


def test_contract_violations_are_one_line_naming_the_member() -> None:
    with pytest.raises(SpecError, match=r"_NoRender .*GroundTruth\): missing render$"):
        check_ground_truth(_NoRender())
    with pytest.raises(SpecError, match="factor_names has 1 entries for 2 factors"):
        check_ground_truth(_Inconsistent())
    with pytest.raises(SpecError, match="live oracle _NoRender"):
        evaluate(_NoRender(), lambda x: x.reshape(len(x), -1), 0, preset="quick")


def test_live_oracle_draws_exactly_what_the_build_stores(dataset_k5: Path) -> None:
    live = OracleSource(Oracle.from_file(dataset_k5))
    seed = default_spec(5).seed  # build_small keeps the default seed 0
    with h5py.File(dataset_k5, "r") as f:
        for split in ("train", "eval"):
            km = f[f"eval/kim_mnih/{split}"]
            votes, L = km["factor_index"].shape[0], int(km.attrs["batch_size"])
            drawn = live.kim_mnih_votes(split, votes, L, rng_for(seed, f"kim_mnih/{split}"))
            np.testing.assert_array_equal(drawn.factor_index, km["factor_index"][()])
            np.testing.assert_array_equal(drawn.info["factors"], km["factors"][()])
            hg = f[f"eval/higgins/{split}"]
            points = hg["factor_index"].shape[0]
            pairs = live.higgins_pairs(split, points, L, rng_for(seed, f"higgins/{split}"))
            np.testing.assert_array_equal(pairs.factor_index, hg["factor_index"][()])
            np.testing.assert_array_equal(pairs.info["factors_a"], hg["factors_a"][()])
            np.testing.assert_array_equal(pairs.info["factors_b"], hg["factors_b"][()])
            # and the pixels: the first vote rendered live is the stored one
            first = next(drawn.images.chunks(L))
            np.testing.assert_array_equal(first, km["images"][:L])


def test_one_class_index_check_everywhere(dataset_k5: Path, grid_files: list[Path]) -> None:
    oracle = Oracle.from_file(dataset_k5)
    factors = oracle.sample_factors(2, np.random.default_rng(0))
    factors[1, 3] = 1.5  # shape is categorical
    with pytest.raises(ValueError, match="whole numbers; factor 'shape' got 1.5"):
        oracle.render(factors)
    factors[1, 3] = 3
    with pytest.raises(ValueError, match="index of factor 'shape' must be in 0..2"):
        oracle.render(factors)
    with open_data(grid_files[0]) as handle:
        grid = handle.oracle()
        bad = grid.sample_factors(1, np.random.default_rng(0))
        bad[0, 0] = grid.factors_num_classes[0]
        with pytest.raises(ValueError, match=f"index of factor '{grid.factor_names[0]}' must be"):
            grid.render(bad)
