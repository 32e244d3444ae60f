"""The in-memory cache of stored evaluation sets (``benchmark.metrics.setcache``).

Scores with the cache must equal scores without it, a changed file must be read again, the
budget must bound what is held, and a representation that writes into its input must not change
what later calls see.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from benchmark.metrics import evaluate, setcache, sources
from benchmark.metrics.evaluate import EPOCH_METRICS
from spritegen.errors import SpecError

EVAL_SIZES = {
    "batch_size": 16,
    "variance": 400,
    "kim_mnih_train": 120,
    "kim_mnih_eval": 60,
    "higgins_train": 120,
    "higgins_eval": 60,
    "random_train": 300,
    "random_eval": 200,
}
SCORED = [m for m in EPOCH_METRICS if m != "explicitness"]  # explicitness: slowest, adds nothing


def _build(seed: int, path):
    from spritegen.build import build
    from spritegen.spec import spec_from_mapping

    spec = spec_from_mapping(
        {"factors": 4, "n": 64, "seed": seed, "image_size": 64, "evaluation": EVAL_SIZES}
    )
    return build(spec, path, workers=1, progress=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("setcache")
    return _build(7, root / "a.h5"), _build(8, root / "b.h5")


def _projection(seed: int = 0, overwrite_input: bool = False):
    """A fixed random linear map of the pixels to 6 numbers; optionally zeroes its input after
    reading it, as a careless user function might."""
    weights = np.random.default_rng(seed).normal(size=(64 * 64, 6))

    def represent(images: np.ndarray) -> np.ndarray:
        z = images.reshape(len(images), -1).astype(np.float64) @ weights
        if overwrite_input:
            images[...] = 0
        return z

    return represent


def _scores(path, represent) -> dict:
    result = evaluate(path, represent, 0, "stored", metrics=SCORED)
    return {k: result[k] for k in result if k in SCORED or k.startswith("kim_mnih")}


@pytest.fixture()
def cache(monkeypatch):
    """A fresh cache with room for everything, in place of the process's."""
    fresh = setcache.SetCache(budget=1 << 30)
    monkeypatch.setattr(sources, "EVAL_SETS", fresh)
    return fresh


def test_kept_sets_give_the_same_scores_and_are_not_read_again(files, cache, monkeypatch):
    path = files[0]
    represent = _projection(overwrite_input=True)
    first = _scores(path, represent)
    reads = cache.reads
    assert reads >= 6 and cache.held_bytes > 0  # variance, votes, pairs a/b, random samples
    again = _scores(path, represent)
    assert cache.reads == reads and cache.hits >= reads
    assert again == first  # the represent zeroing its input did not reach the kept sets
    monkeypatch.setattr(sources, "EVAL_SETS", setcache.SetCache(budget=0))
    assert _scores(path, _projection()) == first  # streamed chunk by chunk, as without a cache
    assert first["kim_mnih"] > 0  # a projection of the pixels keeps some factors apart


def test_a_replaced_or_touched_file_is_read_again(files, cache, tmp_path):
    path = tmp_path / "data.h5"
    shutil.copy(files[0], path)
    represent = _projection()
    before = _scores(path, represent)
    reads = cache.reads
    os.replace(shutil.copy(files[1], tmp_path / "other.h5"), path)  # rebuilt at the same path
    replaced = _scores(path, represent)
    assert cache.reads == 2 * reads
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # edited in place
    assert _scores(path, represent) == replaced
    assert cache.reads == 3 * reads
    assert replaced == _scores(files[1], represent) and replaced != before


def test_the_budget_bounds_what_is_held(files, monkeypatch):
    whole = setcache.SetCache(budget=1 << 30)
    monkeypatch.setattr(sources, "EVAL_SETS", whole)
    expected = _scores(files[0], _projection())
    everything = whole.held_bytes
    small = setcache.SetCache(budget=everything // 2)
    monkeypatch.setattr(sources, "EVAL_SETS", small)
    for _ in range(2):
        assert _scores(files[0], _projection()) == expected
        assert 0 < small.held_bytes <= everything // 2
    reads = small.reads
    assert small.hits > 0 and reads < whole.reads  # some sets kept, the rest streamed
    _scores(files[1], _projection())  # another file: the first one's sets make room
    assert 0 < small.held_bytes <= everything // 2 and small.reads > reads


def test_a_larger_kept_set_serves_a_smaller_request_and_a_larger_one_replaces_it(files, cache):
    from benchmark.metrics.presets import Preset

    path, represent = files[0], _projection()

    def scored(preset) -> dict:
        result = evaluate(path, represent, 0, preset, metrics=SCORED)
        return {k: result[k] for k in result if k in SCORED or k.startswith("kim_mnih")}

    # the first rows of every stored set: a smaller preset than the file's, as quick is to full
    small = Preset("small", 16, 60, 30, 200, num_samples_train=150, num_samples_eval=100)
    expected_small = scored(small)
    sets, held_small = cache.reads, cache.held_bytes
    assert scored("stored") == _scores(path, represent)
    reads, held = cache.reads, cache.held_bytes
    assert reads == 2 * sets  # every set read again, larger
    e = EVAL_SIZES  # the file's sets, whole; the smaller ones were replaced, not kept beside them
    stored_rows = e["variance"] + e["random_train"] + e["random_eval"]
    votes, pairs = e["kim_mnih_train"] + e["kim_mnih_eval"], e["higgins_train"] + e["higgins_eval"]
    stored_rows += e["batch_size"] * (votes + 2 * pairs)
    assert held == stored_rows * 64 * 64 > held_small
    assert scored(small) == expected_small
    assert cache.reads == reads and cache.held_bytes == held  # served by the larger sets


def test_budget_from_the_environment(monkeypatch):
    monkeypatch.setenv(setcache.BUDGET_ENV, "0")
    assert setcache.SetCache().budget == 0
    monkeypatch.setenv(setcache.BUDGET_ENV, "1.5")
    assert setcache.SetCache().budget == 3 * 2**19
    monkeypatch.delenv(setcache.BUDGET_ENV)
    assert setcache.SetCache().budget > 0  # a share of the available memory
    for bad in ("lots", "-1", "inf", "nan"):
        monkeypatch.setenv(setcache.BUDGET_ENV, bad)
        with pytest.raises(SpecError, match=f"{setcache.BUDGET_ENV}='{bad}'.*megabytes"):
            _ = setcache.SetCache().budget


def test_turning_the_cache_off_drops_what_it_holds(files, cache, monkeypatch):
    live = setcache.SetCache()  # budget from the environment, as the process's own cache
    monkeypatch.setattr(sources, "EVAL_SETS", live)
    monkeypatch.setenv(setcache.BUDGET_ENV, "64")
    expected = _scores(files[0], _projection())
    assert live.held_bytes > 0
    monkeypatch.setenv(setcache.BUDGET_ENV, "0")
    assert _scores(files[0], _projection()) == expected
    assert live.held_bytes == 0
