"""DCI disentanglement, completeness and informativeness (Eastwood & Williams 2018).

As disentanglement_lib computes them (``evaluation/metrics/dci.py``): for each factor k, a
classifier predicts k's (discretised) class from all latents; its feature importances form
column k of the importance matrix ``R`` (D, K).

- **disentanglement** = ``sum_d rho_d (1 - H_K(P_d.))``, ``P_dk = R_dk / sum_k R_dk``, entropy in
  base K, weights ``rho_d = sum_k R_dk / sum R`` (1e-11 added to R inside the entropies, as the
  reference does);
- **completeness** = ``sum_k rho_k (1 - H_D(P_.k))``, ``P_dk = R_dk / sum_d R_dk``, base D;
- with one factor (K = 1) each latent's term of disentanglement is 1, and with one latent (D = 1)
  each factor's term of completeness is 1: the importance has only one place to go, and an
  entropy in base 1 is 0/0 (disentanglement_lib returns NaN there);
- **informativeness** = the classifiers' mean accuracy on the eval part (the reference's
  ``informativeness_test``); train accuracy is reported too.

Importance models (``model``):

- ``"gbt"`` (the headline, as the reference): scikit-learn's ``GradientBoostingClassifier`` with
  its defaults (100 stages, depth 3, learning rate 0.1) and ``random_state=0``, impurity-based
  importances. Exact but slow: it fits one tree per class per stage, so 20-bin factors cost 20x
  a binary one (about 3 minutes per factor at 10,000 points on one loaded core).
- ``"forest"``: a cheaper documented alternative, ``RandomForestClassifier(n_estimators=50,
  max_features=None, min_samples_leaf=5, random_state=0)`` with impurity importances (every
  split sees every latent, as in the boosted trees; the default ``"sqrt"`` would force splits on
  irrelevant latents and spread the importances). Its scores are not the
  reference's numbers; use it for quick looks, never to compare with published DCI.

The classifiers' own random state is fixed (0), so a stored source's score depends only on the
file and the representation.
"""

from __future__ import annotations

import time
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
from spritegen.errors import SpecError

NUM_TRAIN = 10_000
NUM_EVAL = 5_000
DCI_MODELS = ("gbt", "forest")


@dataclass(kw_only=True)
class DCIResult(SampleMetricResult):
    disentanglement: float
    completeness: float
    informativeness: float  # mean eval accuracy over factors
    informativeness_train: float
    per_factor_accuracy: list[float]
    importance: list[list[float]]  # (D, K)
    model: str
    factor_bins: dict
    num_bins: int
    num_eval: int


def _entropy_rows(p: np.ndarray, base: int) -> np.ndarray:
    from scipy.stats import entropy

    return entropy(p.T, base=base)


def disentanglement(importance: np.ndarray) -> float:
    """Importance-weighted mean over latents of 1 - (entropy of the latent's row, base K)."""
    r = np.asarray(importance, dtype=np.float64)
    if r.shape[1] == 1:  # one factor: every latent's importance is on it alone
        per_code = np.ones(r.shape[0])  # (an entropy in base 1 is 0/0: the score was NaN)
    else:
        per_code = 1.0 - _entropy_rows(r + 1e-11, r.shape[1])
    if r.sum() == 0:
        r = np.ones_like(r)
    return float(np.sum(per_code * r.sum(axis=1) / r.sum()))


def completeness(importance: np.ndarray) -> float:
    """Importance-weighted mean over factors of 1 - (entropy of the factor's column, base D)."""
    r = np.asarray(importance, dtype=np.float64)
    if r.shape[0] == 1:  # one latent: every factor is captured by it alone
        per_factor = np.ones(r.shape[1])
    else:
        per_factor = 1.0 - _entropy_rows(r.T + 1e-11, r.shape[0])
    if r.sum() == 0:
        r = np.ones_like(r)
    return float(np.sum(per_factor * r.sum(axis=0) / r.sum()))


def _model(name: str):
    if name == "gbt":
        from sklearn.ensemble import GradientBoostingClassifier

        return GradientBoostingClassifier(random_state=0)
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(
        n_estimators=50, max_features=None, min_samples_leaf=5, random_state=0
    )


def importance_matrix(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_eval: np.ndarray,
    y_eval: np.ndarray,
    model: str = "gbt",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(D, K) importances, (K,) train and (K,) eval accuracies; y are integer class labels."""
    if model not in DCI_MODELS:
        raise SpecError(f"dci model: got {model!r}; allowed: {', '.join(DCI_MODELS)}")
    d, k = x_train.shape[1], y_train.shape[1]
    r = np.zeros((d, k))
    acc_tr, acc_ev = np.zeros(k), np.zeros(k)
    for j in range(k):
        if np.unique(y_train[:, j]).size < 2:  # constant factor: nothing to learn
            acc_tr[j] = acc_ev[j] = 1.0
            continue
        clf = _model(model).fit(x_train, y_train[:, j])
        r[:, j] = np.abs(clf.feature_importances_)
        acc_tr[j] = np.mean(clf.predict(x_train) == y_train[:, j])
        acc_ev[j] = np.mean(clf.predict(x_eval) == y_eval[:, j])
    return r, acc_tr, acc_ev


def dci(
    source: Source | object,
    represent: Represent,
    random_state: int | np.random.Generator,
    *,
    num_train: int = NUM_TRAIN,
    num_eval: int = NUM_EVAL,
    num_bins: int = NUM_BINS,
    model: str = "gbt",
    encode_batch_size: int = DEFAULT_ENCODE_BATCH_SIZE,
    progress: bool = False,
    samples: EncodedSamples | None = None,
) -> DCIResult:
    """DCI of ``represent``: importances fitted on ``num_train`` random images, accuracy on
    ``num_eval`` more. Factors are discretised as for MIG (``benchmark.metrics.samples``)."""
    if model not in DCI_MODELS:
        raise SpecError(f"dci model: got {model!r}; allowed: {', '.join(DCI_MODELS)}")
    s = prepare(
        samples,
        source,
        represent,
        random_state,
        num_train=num_train,
        num_eval=num_eval,
        encode_batch_size=encode_batch_size,
        progress=progress,
        metric="dci",
        min_eval=METRIC_MINIMUMS["dci"]["num_samples_eval"],
    )
    t0 = time.perf_counter()
    y_tr, y_ev, bins = discretize_factors(s.y_train, s.y_eval, num_bins)
    assert y_ev is not None  # an eval part was given
    r, acc_tr, acc_ev = importance_matrix(s.z_train, y_tr, s.z_eval, y_ev, model)
    s.timings.metric += time.perf_counter() - t0
    return DCIResult(
        disentanglement=disentanglement(r),
        completeness=completeness(r),
        informativeness=float(acc_ev.mean()),
        informativeness_train=float(acc_tr.mean()),
        per_factor_accuracy=acc_ev.tolist(),
        importance=r.tolist(),
        model=model,
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
