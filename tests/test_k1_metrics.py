"""What the metrics say with one generative factor (K = 1), and the linear R² read-out.

With K = 1 every Kim–Mnih vote holds the only factor fixed, so its L images are identical: the
standard score is 1 by construction, and the weighted variant's weight is 0/0 (undefined). The
linear R² of docs/metrics.md stays informative: an exact code of the factor scores about 1, a
constant one about 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import build_small
from metrics_helpers import lookup_from_file

from benchmark.metrics import dci, evaluate, kim_mnih, linear_r2
from benchmark.metrics.dci import completeness, disentanglement

SIZES = dict(batch_size=16, num_train=60, num_eval=40, num_variance=300)


@pytest.fixture(scope="module")
def k1_file(tmp_path_factory):
    return build_small(tmp_path_factory.mktemp("k1"), 1, n=200)


@pytest.fixture(scope="module")
def k2_file(tmp_path_factory):
    return build_small(tmp_path_factory.mktemp("k2"), 2, n=200)


def _pixels(images: np.ndarray) -> np.ndarray:
    """A real representation that reads pixels: the column and row means of the image (D = 128)."""
    x = images[..., 0].astype(np.float64) / 255
    return np.concatenate([x.mean(axis=1), x.mean(axis=2)], axis=1)


def test_k1_kim_mnih_is_one_and_weighted_is_undefined(k1_file):
    km = kim_mnih(k1_file, _pixels, 0, **SIZES)
    assert km.num_active_dims > 0
    assert km.score == 1.0  # a single class: 1 by construction
    assert math.isnan(km.weighted.score)
    assert km.weighted.undefined_eval == SIZES["num_eval"]
    assert km.weighted.undefined_train == SIZES["num_train"]
    assert km.weighted.as_dict()["score"] is None
    scores = evaluate(k1_file, _pixels, 0, preset="stored", metrics=["kim_mnih", "linear_r2"])
    assert scores["kim_mnih"] == 1.0 and scores["kim_mnih_weighted"] is None
    assert scores["linear_r2"] >= 0.9  # what stays informative: pos_x is read off the pixels


def test_weighted_is_defined_when_other_factors_move_the_batch(k2_file):
    km = kim_mnih(k2_file, _pixels, 0, **SIZES)
    assert km.weighted.undefined_eval == 0
    assert 0.0 < km.weighted.score <= km.weighted.eval_accuracy


def test_k1_dci_disentanglement_is_one_as_completeness_is_with_one_latent(k1_file):
    """With one factor every latent's importance can only go to it: an entropy in base K = 1 is
    0/0, and the score was NaN: every K = 1 run's summary.json held NaN as its final DCI."""
    for represent in (_pixels, lambda im: np.zeros((len(im), 3))):
        result = dci(k1_file, represent, 0, num_train=300, num_eval=200, model="forest")
        assert result.num_factors == 1
        assert result.disentanglement == 1.0
        assert 0.0 <= result.completeness <= 1.0
    scores = evaluate(k1_file, _pixels, 0, preset="stored", metrics="dci", dci_model="forest")
    assert scores["dci_disentanglement"] == 1.0
    # the mirror case the formula already had: one latent is complete for every factor
    assert disentanglement(np.array([[0.3], [0.7]])) == completeness(np.array([[0.3, 0.7]])) == 1.0


@pytest.mark.parametrize("fixture", ["k1_file", "k2_file"])
def test_linear_r2_identity_is_one_and_constant_is_zero(fixture, request):
    path = request.getfixturevalue(fixture)
    lookup = lookup_from_file(path)
    k = 1 if fixture == "k1_file" else 2
    ident = linear_r2(path, lookup, 0, num_train=300, num_eval=200)
    assert ident.num_factors == k
    assert min(ident.all_dims) >= 0.99 and min(ident.best_dim) >= 0.99
    assert ident.best_dim_index == list(range(k))  # latent d is factor d

    const = linear_r2(path, lambda im: np.zeros((len(im), 3)), 0, num_train=300, num_eval=200)
    assert abs(const.score) <= 0.05 and abs(const.best_dim_score) <= 0.05


def test_linear_r2_sees_position_in_pixels_but_not_in_noise(k2_file, tmp_path):
    from spritegen.oracle import Oracle

    pixels = linear_r2(k2_file, _pixels, 0, num_train=300, num_eval=200)
    rng = np.random.default_rng(1)

    def noise(images):
        return rng.normal(size=(len(images), 4))

    assert pixels.score >= 0.9  # column / row means locate the shape almost linearly
    assert linear_r2(k2_file, noise, 0, num_train=300, num_eval=200).score <= 0.1
    # a live oracle: same seed, same points, same score
    oracle = Oracle.from_file(k2_file)
    a = linear_r2(oracle, _pixels, 5, num_train=200, num_eval=100)
    b = linear_r2(oracle, _pixels, 5, num_train=200, num_eval=100)
    assert a.score == b.score >= 0.9
    scores = evaluate(k2_file, _pixels, 0, preset="stored", metrics=["linear_r2"])
    assert scores["linear_r2"] == pytest.approx(pixels.score)
