"""How much of each factor a linear read-out of the representation explains (R²).

Kim–Mnih and Higgins classify *which* factor was held fixed, so with one factor (K = 1) both are
1.0 by construction: there is a single class. What stays informative there is how well the
representation encodes the factor's *value*. For each factor k, on random images:

* ``best_dim[k]``: the R² of the best single latent dimension, ``f_k ≈ a + b z_d`` (the thesis'
  "one dimension per factor" reading of disentanglement);
* ``all_dims[k]``: the R² of an ordinary least-squares fit on every latent dimension,
  ``f_k ≈ a + Z w`` (how linearly recoverable the factor is at all).

Fits use the first half of the points and R² is measured on the second half,
``1 - SSE / SST`` (so an uninformative representation scores about 0, possibly slightly below;
a perfect linear code 1). The headline scores are the means over factors. A categorical factor
(shape) is fitted on its class index and a rotation on its angle in radians, so a perfect encoder
of those can still score below 1 (classes are not ordered, angles wrap around): read R² for
positions and scale first.

Points come from the source's Kim–Mnih variance set (random images with their factors) when the
source is a dataset file, or are sampled and rendered from ``random_state`` with a live oracle.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from benchmark.metrics.encode import DEFAULT_ENCODE_BATCH_SIZE, Represent, Timings, encode
from benchmark.metrics.presets import PRESETS
from benchmark.metrics.seeding import as_generator, seed_of
from benchmark.metrics.sources import ImageStream, Source, StoredSource, open_source
from spritegen.errors import DatasetError, SpecError
from spritegen.groundtruth import draw_factors


@dataclass
class LinearR2Result:
    """Mean R² over factors (``score``: all dimensions; ``best_dim_score``: one dimension)."""

    score: float
    best_dim_score: float
    all_dims: list[float]  # (K,) R² of the fit on every latent dimension
    best_dim: list[float]  # (K,) R² of the best single dimension
    best_dim_index: list[int]  # (K,) which dimension that is
    num_points: int
    num_factors: int
    num_latents: int
    seed: int | None
    source: dict
    timings: Timings = field(default_factory=Timings)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["timings"] = self.timings.as_dict()
        return d


def _labelled(src: Source, n: int, rng: np.random.Generator) -> tuple[ImageStream, np.ndarray]:
    """n random images and their (n, K) factors."""
    if isinstance(src, StoredSource):
        group = src._group("eval/variance")  # the file's random images, stored with factors
        if "factors" not in group or group["images"].shape[0] < n:
            raise DatasetError(
                f"{src.path}: /eval/variance holds {group['images'].shape[0]} images (with "
                f"factors: {'factors' in group}) but {n} were asked for; use fewer points"
            )
        factors = np.asarray(group["factors"][:n], dtype=np.float64)
        return src.variance_images(n), factors
    factors = draw_factors(src.oracle, n, rng)  # as OracleSource.variance_images draws them
    return src._stream(factors), np.asarray(factors, dtype=np.float64)


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
    random_state: int | np.random.Generator | None,
    *,
    num_points: int = PRESETS["full"].num_variance,
    encode_batch_size: int = DEFAULT_ENCODE_BATCH_SIZE,
    progress: bool = False,
) -> LinearR2Result:
    """R² of linear fits of each factor from the representation; see the module docstring."""
    if isinstance(num_points, bool) or not isinstance(num_points, int) or num_points < 4:
        raise SpecError(f"num_points must be an integer >= 4, got {num_points!r}")
    rng = as_generator(random_state)
    timings = Timings()
    with open_source(source) as src:
        t0 = time.perf_counter()
        stream, factors = _labelled(src, num_points, rng)
        timings.read += time.perf_counter() - t0
        z = encode(
            stream.chunks(encode_batch_size),
            stream.total,
            represent=represent,
            batch_size=encode_batch_size,
            timings=timings,
            progress=progress,
            desc="linear_r2",
        ).astype(np.float64)
        described = src.describe()
    t0 = time.perf_counter()
    half = num_points // 2
    all_dims, best, best_index = [], [], []
    for k in range(factors.shape[1]):
        y_fit, y_test = factors[:half, k], factors[half:, k]
        all_dims.append(_r2(_fit_predict(z[:half], y_fit, z[half:]), y_test))
        per_dim = [
            _r2(_fit_predict(z[:half, [d]], y_fit, z[half:, [d]]), y_test)
            for d in range(z.shape[1])
        ]
        d_best = int(np.nanargmax(per_dim)) if np.isfinite(per_dim).any() else 0
        best_index.append(d_best)
        best.append(per_dim[d_best] if per_dim else float("nan"))
    timings.metric += time.perf_counter() - t0
    return LinearR2Result(
        score=float(np.nanmean(all_dims)) if np.isfinite(all_dims).any() else float("nan"),
        best_dim_score=float(np.nanmean(best)) if np.isfinite(best).any() else float("nan"),
        all_dims=all_dims,
        best_dim=best,
        best_dim_index=best_index,
        num_points=num_points,
        num_factors=int(factors.shape[1]),
        num_latents=int(z.shape[1]),
        seed=seed_of(random_state),
        source=described,
        timings=timings,
    )
