"""Modularity and explicitness (Ridgeway & Mozer 2018), as disentanglement_lib computes them.

- **Modularity**: with ``m[d, k]`` the mutual information between latent d and factor k (both
  discretised as for MIG), each latent's deviation from an ideal module is
  ``delta_d = (sum_k m[d,k]^2 - max_k m[d,k]^2) / (max_k m[d,k]^2 (K - 1))`` and its modularity is
  ``1 - delta_d`` (0 for a latent that carries no information about any factor); the score is the
  mean over latents.
- **Explicitness**: latents standardised with the train part's mean and std (a constant latent
  is only centred; disentanglement_lib would divide by zero), then per factor a multinomial
  logistic regression (scikit-learn's defaults: L2, C = 1, lbfgs) on the discretised factor;
  its macro one-vs-rest ROC-AUC on the eval part. The score is the mean over factors.
  Classes absent from the eval part are left out of the average (disentanglement_lib's binariser
  would misalign them). Train AUC is reported too.

The logistic regressions run with one BLAS thread. Their products are tiny (2,000 x D), and right
after encoding, torch's OpenMP threads are still spinning on the same cores: with OpenBLAS's own
threads as well, the fits of a quick evaluation took 4.9-6.1 s on the 2-core VM, with one thread
0.6-0.8 s, with the same scores (each output element's sum is computed in the same order either
way; tested).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from benchmark.metrics.encode import DEFAULT_ENCODE_BATCH_SIZE, Represent
from benchmark.metrics.presets import METRIC_MINIMUMS
from benchmark.metrics.samples import (
    NUM_BINS,
    EncodedSamples,
    SampleMetricResult,
    discretize_factors,
    histogram_discretize,
    mutual_information,
    prepare,
)
from benchmark.metrics.sources import Source

NUM_TRAIN = 10_000
NUM_EVAL = 5_000


@dataclass(kw_only=True)
class ModularityResult(SampleMetricResult):
    """``modularity`` and ``explicitness`` (eval ROC-AUC) with per-latent / per-factor parts."""

    modularity: float
    explicitness: float
    explicitness_train: float
    per_latent_modularity: list[float]
    per_factor_explicitness: list[float]
    mutual_info: list[list[float]]
    factor_bins: dict
    num_bins: int
    num_eval: int


def modularity_from_mi(mi: np.ndarray) -> tuple[float, np.ndarray]:
    """(D, K) mutual information -> (modularity, per-latent modularity)."""
    sq = np.square(mi)
    top = sq.max(axis=1)
    k = mi.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (sq.sum(axis=1) - top) / (top * (k - 1))
    per = np.where(top > 0, 1.0 - delta, 0.0)
    if k == 1:  # one factor: every informative latent is a perfect module
        per = np.where(top > 0, 1.0, 0.0)
    return float(np.mean(per)), per


def _auc(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    onehot = (y[:, None] == classes[None, :]).astype(np.int64)
    keep = (onehot.sum(axis=0) > 0) & (onehot.sum(axis=0) < len(y))
    if not keep.any():
        return float("nan")
    return float(roc_auc_score(onehot[:, keep], proba[:, keep], average="macro"))


def explicitness_per_factor(
    x_train: np.ndarray, y_train: np.ndarray, x_eval: np.ndarray, y_eval: np.ndarray
) -> tuple[float, float]:
    """Train and eval macro ROC-AUC of a logistic regression predicting one factor's classes."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if np.unique(y_train).size < 2:  # a factor constant in the sample: nothing to predict
        return float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression().fit(x_train, y_train)
    return (
        _auc(y_train, clf.predict_proba(x_train), clf.classes_),
        _auc(y_eval, clf.predict_proba(x_eval), clf.classes_),
    )


def modularity_explicitness(
    source: Source | object,
    represent: Represent,
    random_state: int | np.random.Generator,
    *,
    num_train: int = NUM_TRAIN,
    num_eval: int = NUM_EVAL,
    num_bins: int = NUM_BINS,
    encode_batch_size: int = DEFAULT_ENCODE_BATCH_SIZE,
    progress: bool = False,
    samples: EncodedSamples | None = None,
) -> ModularityResult:
    """Modularity (train part) and explicitness (fit on train, ROC-AUC on eval) of ``represent``."""
    s = prepare(
        samples,
        source,
        represent,
        random_state,
        num_train=num_train,
        num_eval=num_eval,
        encode_batch_size=encode_batch_size,
        progress=progress,
        metric="modularity",
        min_eval=METRIC_MINIMUMS["modularity"]["num_samples_eval"],  # one row: NaN ROC-AUC
    )
    t0 = time.perf_counter()
    y_tr, y_ev, bins = discretize_factors(s.y_train, s.y_eval, num_bins)
    assert y_ev is not None  # an eval part was given
    mi = mutual_information(histogram_discretize(s.z_train, num_bins), y_tr)
    score, per_latent = modularity_from_mi(mi)
    mean, std = s.z_train.mean(axis=0), s.z_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x_tr, x_ev = (s.z_train - mean) / std, (s.z_eval - mean) / std
    with threadpool_limits(1, user_api="blas"):  # see the module docstring
        aucs = np.array(
            [
                explicitness_per_factor(x_tr, y_tr[:, k], x_ev, y_ev[:, k])
                for k in range(s.num_factors)
            ]
        )
    s.timings.metric += time.perf_counter() - t0
    return ModularityResult(
        modularity=score,
        explicitness=float(np.nanmean(aucs[:, 1])),
        explicitness_train=float(np.nanmean(aucs[:, 0])),
        per_latent_modularity=per_latent.tolist(),
        per_factor_explicitness=aucs[:, 1].tolist(),
        mutual_info=mi.tolist(),
        factor_bins=bins.as_dict(),
        num_bins=num_bins,
        num_train=s.num_train,
        num_eval=s.num_eval,
        num_factors=s.num_factors,
        num_latents=s.num_latents,
        seed=s.seed,
        source=s.source,
        timings=s.timings,
    )
