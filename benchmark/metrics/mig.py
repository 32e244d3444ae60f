"""The mutual information gap (MIG) of Chen et al. (2018), as disentanglement_lib computes it.

For each factor k: the mutual information between k and every latent dimension, both
discretised (``benchmark.metrics.samples``: 20 equal-width bins), the gap between the largest and
the second largest, divided by the factor's entropy; MIG is the mean over factors. Only a train
sample is used (disentanglement_lib: ``mig.num_train = 10000``). With a single latent dimension
the second largest is taken as 0; a factor of zero entropy (constant in the sample) gets gap 0.
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
    entropy,
    histogram_discretize,
    mutual_information,
    prepare,
)
from benchmark.metrics.sources import Source

NUM_TRAIN = 10_000


@dataclass(kw_only=True)
class MIGResult(SampleMetricResult):
    """``score`` is the mean over factors of the normalised gap (``gaps``)."""

    score: float
    gaps: list[float]  # (K,) per factor
    mutual_info: list[list[float]]  # (D, K) nats
    factor_entropy: list[float]  # (K,) nats
    factor_bins: dict
    num_bins: int


def mig_from_mi(mi: np.ndarray, factor_entropy: np.ndarray) -> tuple[float, np.ndarray]:
    """(D, K) mutual information and (K,) entropies -> (MIG, per-factor normalised gaps)."""
    top = np.sort(mi, axis=0)[::-1]
    second = top[1] if top.shape[0] > 1 else np.zeros(top.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        gaps = np.where(factor_entropy > 0, (top[0] - second) / factor_entropy, 0.0)
    return float(np.mean(gaps)), gaps


def mig(
    source: Source | object,
    represent: Represent,
    random_state: int | np.random.Generator,
    *,
    num_train: int = NUM_TRAIN,
    num_bins: int = NUM_BINS,
    encode_batch_size: int = DEFAULT_ENCODE_BATCH_SIZE,
    progress: bool = False,
    samples: EncodedSamples | None = None,
) -> MIGResult:
    """Score ``represent`` with MIG on ``num_train`` random images of ``source``.

    ``samples`` (from ``encode_samples``) reuses latents already encoded for another metric.
    """
    s = prepare(
        samples,
        source,
        represent,
        random_state,
        num_train=num_train,
        num_eval=0,
        encode_batch_size=encode_batch_size,
        progress=progress,
        metric="mig",
        min_eval=METRIC_MINIMUMS["mig"]["num_samples_eval"],
    )
    t0 = time.perf_counter()
    labels, _, bins = discretize_factors(s.y_train, None, num_bins)
    mi = mutual_information(histogram_discretize(s.z_train, num_bins), labels)
    h = entropy(labels)
    score, gaps = mig_from_mi(mi, h)
    s.timings.metric += time.perf_counter() - t0
    return MIGResult(
        score=score,
        gaps=gaps.tolist(),
        mutual_info=mi.tolist(),
        factor_entropy=h.tolist(),
        factor_bins=bins.as_dict(),
        num_bins=num_bins,
        num_train=s.num_train,
        num_factors=s.num_factors,
        num_latents=s.num_latents,
        seed=s.seed,
        source=s.source,
        timings=s.timings,
    )
