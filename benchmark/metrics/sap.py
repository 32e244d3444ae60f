"""The SAP score (Kumar et al. 2018), as disentanglement_lib computes it.

A (D, K) score matrix, then the mean over factors of the gap between the largest and the second
largest entry of the factor's column (0 for the second with a single latent).

- ``continuous_factors=False`` (disentanglement_lib's study configuration, the default): entry
  (d, k) is the eval accuracy of a linear SVM (``LinearSVC(C=0.01, class_weight="balanced")``,
  scikit-learn) predicting factor k's discretised class from latent d alone, fitted on the train
  part. Factors are discretised as for MIG (``benchmark.metrics.samples``).
- ``continuous_factors=True``: entry (d, k) is the squared correlation of latent d and factor k's
  values on the train part (0 for a latent of variance <= 1e-12); no eval part is used.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from benchmark.metrics.encode import DEFAULT_ENCODE_BATCH_SIZE, Represent
from benchmark.metrics.presets import METRIC_MINIMUMS
from benchmark.metrics.samples import (
    NUM_BINS,
    EncodedSamples,
    SampleMetricResult,
    discretize_factors,
    prepare,
)
from benchmark.metrics.sources import Source
from spritegen.errors import check_flag

NUM_TRAIN = 10_000
NUM_EVAL = 5_000


@dataclass(kw_only=True)
class SAPResult(SampleMetricResult):
    score: float
    score_matrix: list[list[float]]  # (D, K)
    continuous_factors: bool
    factor_bins: dict | None
    num_bins: int
    num_eval: int


def top_two_gap(matrix: np.ndarray) -> float:
    """Mean over columns of (largest - second largest) entry."""
    s = np.sort(matrix, axis=0)
    second = s[-2] if s.shape[0] > 1 else np.zeros(s.shape[1])
    return float(np.mean(s[-1] - second))


def score_matrix_discrete(
    z_train: np.ndarray, y_train: np.ndarray, z_eval: np.ndarray, y_eval: np.ndarray
) -> np.ndarray:
    """(D, K) eval accuracies of one-latent linear SVMs on integer factor classes."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    m = np.zeros((z_train.shape[1], y_train.shape[1]))
    for d in range(z_train.shape[1]):
        for k in range(y_train.shape[1]):
            if np.unique(y_train[:, k]).size < 2:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf = LinearSVC(C=0.01, class_weight="balanced", random_state=0)
                clf.fit(z_train[:, d : d + 1], y_train[:, k])
            m[d, k] = np.mean(clf.predict(z_eval[:, d : d + 1]) == y_eval[:, k])
    return m


def score_matrix_continuous(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(D, K) squared correlations (ddof=1); 0 where a latent's variance is <= 1e-12."""
    zc, yc = z - z.mean(axis=0), y - y.mean(axis=0)
    n = len(z) - 1
    cov = zc.T @ yc / n
    var_z, var_y = (zc**2).sum(axis=0) / n, (yc**2).sum(axis=0) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        m = cov**2 / (var_z[:, None] * var_y[None, :])
    return np.where((var_z[:, None] > 1e-12) & (var_y[None, :] > 0), m, 0.0)


def sap(
    source: Source | object,
    represent: Represent,
    random_state: int | np.random.Generator,
    *,
    num_train: int = NUM_TRAIN,
    num_eval: int = NUM_EVAL,
    num_bins: int = NUM_BINS,
    continuous_factors: bool = False,
    encode_batch_size: int = DEFAULT_ENCODE_BATCH_SIZE,
    progress: bool = False,
    samples: EncodedSamples | None = None,
) -> SAPResult:
    """SAP score of ``represent`` (defaults: disentanglement_lib's study configuration)."""
    # "no" was true: the continuous SAP (another score) was computed
    continuous_factors = check_flag("continuous_factors", continuous_factors)
    s = prepare(
        samples,
        source,
        represent,
        random_state,
        num_train=num_train,
        num_eval=0 if continuous_factors else num_eval,
        encode_batch_size=encode_batch_size,
        progress=progress,
        metric="sap",
        min_eval=0 if continuous_factors else METRIC_MINIMUMS["sap"]["num_samples_eval"],
    )
    t0 = time.perf_counter()
    if continuous_factors:
        m, bins = score_matrix_continuous(s.z_train, s.y_train), None
    else:
        y_tr, y_ev, fb = discretize_factors(s.y_train, s.y_eval, num_bins)
        assert y_ev is not None  # an eval part was given
        m, bins = score_matrix_discrete(s.z_train, y_tr, s.z_eval, y_ev), fb.as_dict()
    score = top_two_gap(m)
    s.timings.metric += time.perf_counter() - t0
    return SAPResult(
        score=score,
        score_matrix=m.tolist(),
        continuous_factors=bool(continuous_factors),
        factor_bins=bins,
        num_bins=num_bins,
        num_train=s.num_train,
        num_eval=s.num_eval,
        num_factors=s.num_factors,
        num_latents=s.num_latents,
        seed=s.seed,
        source=s.source,
        timings=s.timings,
    )
