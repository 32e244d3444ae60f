"""How much of each factor a linear read-out of the representation explains (R²).

Kim–Mnih and Higgins classify *which* factor was held fixed, so with one factor (K = 1) both are
1.0 by construction: there is a single class. What stays informative there is how well the
representation encodes the factor's *value*. For each factor k, on random images:

* ``best_dim[k]``: the R² of the best single latent dimension, ``f_k ≈ a + b z_d`` (the thesis'
  "one dimension per factor" reading of disentanglement);
* ``all_dims[k]``: the R² of an ordinary least-squares fit on every latent dimension,
  ``f_k ≈ a + Z w`` (how linearly recoverable the factor is at all).

The fits use the train part of random (factors, image) samples and R² is measured on the eval
part, ``1 - SSE / SST`` (so an uninformative representation scores about 0, possibly slightly
below; a perfect linear code 1). The headline scores are the means over factors. A categorical
factor (shape) is fitted on its class index and a rotation on its angle in radians, so a perfect
encoder of those can still score below 1 (classes are not ordered, angles wrap around): read R²
for positions and scale first.

The samples are the i.i.d. ones MIG, DCI, SAP and modularity use (``encode_samples``: the
stored ``/eval/random`` sets of a dataset file, or images sampled and rendered from
``random_state`` with a live oracle); ``evaluate`` encodes them once for all five.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from benchmark.metrics.encode import DEFAULT_ENCODE_BATCH_SIZE, Represent
from benchmark.metrics.presets import METRIC_MINIMUMS, PRESETS
from benchmark.metrics.samples import EncodedSamples, SampleMetricResult, prepare
from benchmark.metrics.sources import Source


@dataclass(kw_only=True)
class LinearR2Result(SampleMetricResult):
    """Mean R² over factors (``score``: all dimensions; ``best_dim_score``: one dimension)."""

    score: float
    best_dim_score: float
    all_dims: list[float]  # (K,) R² of the fit on every latent dimension
    best_dim: list[float]  # (K,) R² of the best single dimension
    best_dim_index: list[int]  # (K,) which dimension that is
    num_eval: int


def _r2(pred: np.ndarray, target: np.ndarray) -> float:
    sst = float(np.sum((target - target.mean()) ** 2))
    if sst == 0.0:
        return float("nan")  # a factor constant over the points: nothing to explain
    return 1.0 - float(np.sum((target - pred) ** 2)) / sst


def _fit_predict(z_fit: np.ndarray, y_fit: np.ndarray, z_test: np.ndarray) -> np.ndarray:
    """Least squares with an intercept, on dimensions standardised by the fit half."""
    mu, sd = z_fit.mean(axis=0), z_fit.std(axis=0)
    keep = sd > 1e-12  # a constant dimension carries nothing (and would make lstsq singular)
    a = np.column_stack([np.ones(len(z_fit)), (z_fit[:, keep] - mu[keep]) / sd[keep]])
    b = np.column_stack([np.ones(len(z_test)), (z_test[:, keep] - mu[keep]) / sd[keep]])
    coef, *_ = np.linalg.lstsq(a, y_fit, rcond=None)
    return b @ coef


def linear_r2(
    source: Source | object,
    represent: Represent,
    random_state: int | np.random.Generator,
    *,
    num_train: int = PRESETS["full"].num_samples_train,
    num_eval: int = PRESETS["full"].num_samples_eval,
    encode_batch_size: int = DEFAULT_ENCODE_BATCH_SIZE,
    progress: bool = False,
    samples: EncodedSamples | None = None,
) -> LinearR2Result:
    """R² of linear fits of each factor from the representation; see the module docstring.

    ``samples`` (from ``encode_samples``) are reused when given, else ``num_train`` +
    ``num_eval`` random images are read or rendered and encoded here.
    """
    s = prepare(
        samples,
        source,
        represent,
        random_state,
        num_train=num_train,
        num_eval=num_eval,
        encode_batch_size=encode_batch_size,
        progress=progress,
        metric="linear_r2",
        min_eval=METRIC_MINIMUMS["linear_r2"]["num_samples_eval"],
    )
    t0 = time.perf_counter()
    all_dims, best, best_index = [], [], []
    for k in range(s.num_factors):
        y_fit, y_test = s.y_train[:, k], s.y_eval[:, k]
        all_dims.append(_r2(_fit_predict(s.z_train, y_fit, s.z_eval), y_test))
        per_dim = [
            _r2(_fit_predict(s.z_train[:, [d]], y_fit, s.z_eval[:, [d]]), y_test)
            for d in range(s.num_latents)
        ]
        d_best = int(np.nanargmax(per_dim)) if np.isfinite(per_dim).any() else 0
        best_index.append(d_best)
        best.append(per_dim[d_best] if per_dim else float("nan"))
    s.timings.metric += time.perf_counter() - t0
    return LinearR2Result(
        score=float(np.nanmean(all_dims)) if np.isfinite(all_dims).any() else float("nan"),
        best_dim_score=float(np.nanmean(best)) if np.isfinite(best).any() else float("nan"),
        all_dims=all_dims,
        best_dim=best,
        best_dim_index=best_index,
        num_train=s.num_train,
        num_eval=s.num_eval,
        num_factors=s.num_factors,
        num_latents=s.num_latents,
        seed=s.seed,
        source=s.source,
        timings=s.timings,
    )
