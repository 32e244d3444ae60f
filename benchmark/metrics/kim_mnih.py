"""The Kim–Mnih (FactorVAE) disentanglement metric and the thesis' weighted variant.

Definition (Kim & Mnih 2018, as implemented by disentanglement_lib; design.md section 4):

1. Encode ``num_variance`` random images; the global variance of each latent dimension is their
   variance with ``ddof=1``. Dimensions whose standard deviation is below ``prune_threshold``
   (0.05) are *inactive* (collapsed) and never vote.
2. A vote: factor k chosen uniformly; L images whose factor k shares one value and whose other
   factors are random. For every active dimension, its variance over the L latents (``ddof=1``,
   as disentanglement_lib's ``np.var(..., ddof=1)``) divided by its global variance; the vote is
   ``(d, k)`` with d the active dimension of smallest normalised variance (first on ties).
3. Vote matrix ``V[d, k]`` = number of train votes (d, k) (rows: latent dimensions, columns:
   factors; disentanglement_lib stores the transpose). Majority-vote classifier
   ``C(d) = argmax_k V[d, k]`` (the thesis' argmin is an erratum), first factor on ties, so a
   dimension that never won a train vote predicts factor 0, as in disentanglement_lib.
4. Score = accuracy of C on ``num_eval`` fresh votes; train accuracy is reported too.

With no active dimension no vote can be cast; the score is then 0 (train and eval accuracy 0,
no votes drawn), exactly as disentanglement_lib returns.

Weighted variant (the thesis, section 5.2.2): each vote also carries the weight
``w = |sum_d r_d - r_min| / sum_d r_d = 1 - r_min / sum_d r_d`` over its active dimensions'
normalised variances ``r_d``. When every ``r_d`` is 0 the weight is 0/0: the vote's batch does
not move the representation at all (with K = 1 every vote's images are identical), so the
thesis' two readings -- maximal because ``r_min = 0``, minimal because ``r_min`` equals the total --
coincide and contradict each other, and the vote singles out no dimension. Such a vote's weight is
*undefined*: it is left out of the weighted votes and of the weighted score, and counted. The
weighted vote matrix ``Vw[d, k]`` sums the defined weights, ``Cw(d) = argmax_k Vw[d, k]``, and the
weighted score is ``sum_m w_m [Cw(d_m) = k_m] / M`` over the M eval votes whose weight is defined:
a correct vote counts fully only when its smallest variance is negligible next to the others. It
is at most the accuracy of ``Cw``, NaN when no eval vote has a defined weight (always at K = 1),
and is reported beside the standard score, never instead of it.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from benchmark.metrics.encode import DEFAULT_ENCODE_BATCH_SIZE, Represent, Timings, encode
from benchmark.metrics.presets import PRESETS, check_sizes
from benchmark.metrics.seeding import as_generator, seed_of
from benchmark.metrics.sources import Source, open_source
from spritegen.errors import SpecError, check_flag

PRUNE_THRESHOLD = 0.05
_FULL = PRESETS["full"]


@dataclass
class WeightedKimMnih:
    """The thesis' weighted variant, computed from the same votes as the standard score."""

    score: float
    train_score: float
    eval_accuracy: float  # accuracy of the weighted classifier, votes unweighted
    mean_weight_train: float  # over the votes whose weight is defined
    mean_weight_eval: float
    votes: list[list[float]]  # (D, K) summed weights of the train votes
    classifier: list[int]  # (D,) factor predicted for each latent dimension
    undefined_train: int = 0  # votes whose normalised variances are all 0 (weight 0/0)
    undefined_eval: int = 0

    def as_dict(self) -> dict:
        """JSON-ready: an undefined (NaN) score or mean weight becomes None."""
        return {
            k: (None if isinstance(v, float) and np.isnan(v) else v)
            for k, v in asdict(self).items()
        }


@dataclass
class KimMnihResult:
    """Score and diagnostics of one Kim–Mnih evaluation; ``score`` is the eval accuracy."""

    score: float
    train_accuracy: float
    eval_accuracy: float
    num_active_dims: int
    active_dims: list[int]
    global_variance: list[float]
    votes: list[list[int]]  # (D, K) train vote counts, rows latent dims, columns factors
    eval_votes: list[list[int]]
    classifier: list[int]
    weighted: WeightedKimMnih
    num_factors: int
    num_latents: int
    batch_size: int
    num_train: int
    num_eval: int
    num_variance: int
    prune_threshold: float
    seed: int | None
    source: dict
    timings: Timings = field(default_factory=Timings)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["timings"] = self.timings.as_dict()
        d["weighted"] = self.weighted.as_dict()
        return d


def check_prune_threshold(value: Any) -> float:
    """``prune_threshold`` as a float, or a SpecError naming it and its range (finite, > 0).

    At 0 or below a collapsed dimension (global variance 0) counted as active and its 0/0
    ratio took part in every vote (another score, a NaN weighted score); NaN or inf pruned every
    dimension, so any representation scored 0 without a word."""
    number = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if not number or not 0 < float(value) < math.inf:
        raise SpecError(
            "kim_mnih: prune_threshold must be a finite number > 0 (the standard deviation below "
            f"which a latent dimension is inactive; default {PRUNE_THRESHOLD}), got {value!r}"
        )
    return float(value)


def _votes(
    latents: np.ndarray, batch_size: int, global_var: np.ndarray, active: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(V*L, D) latents -> argmin dimension (V,) (original indices) and vote weight (V,)."""
    z = latents[:, active].reshape(-1, batch_size, int(active.size))
    ratios = z.var(axis=1, ddof=1) / global_var[active]
    winner = np.argmin(ratios, axis=1)
    total = ratios.sum(axis=1)
    smallest = ratios[np.arange(len(ratios)), winner]
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(total > 0, np.abs(total - smallest) / total, np.nan)  # 0/0: undefined
    return active[winner], weight


def _mean_or_nan(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def _matrix(
    dims: np.ndarray,
    factors: np.ndarray,
    weights: np.ndarray | None,
    num_latents: int,
    num_factors: int,
) -> np.ndarray:
    flat = dims * num_factors + factors
    m = np.bincount(flat, weights=weights, minlength=num_latents * num_factors)
    return m.reshape(num_latents, num_factors)


def _empty_result(num_factors, num_latents, global_var, preset_args, seed, source, timings):
    zeros = [[0] * num_factors for _ in range(num_latents)]
    weighted = WeightedKimMnih(
        0.0, 0.0, 0.0, 0.0, 0.0, [[0.0] * num_factors] * num_latents, [0] * num_latents
    )
    return KimMnihResult(
        0.0,
        0.0,
        0.0,
        0,
        [],
        global_var.tolist(),
        zeros,
        zeros,
        [0] * num_latents,
        weighted,
        num_factors,
        num_latents,
        **preset_args,
        seed=seed,
        source=source,
        timings=timings,
    )


def kim_mnih(
    source: Source | object,
    represent: Represent,
    random_state: int | np.random.Generator,
    *,
    batch_size: int = _FULL.batch_size,
    num_train: int = _FULL.num_train,
    num_eval: int = _FULL.num_eval,
    num_variance: int = _FULL.num_variance,
    prune_threshold: float = PRUNE_THRESHOLD,
    encode_batch_size: int = DEFAULT_ENCODE_BATCH_SIZE,
    progress: bool = False,
) -> KimMnihResult:
    """Score ``represent`` with the Kim–Mnih metric (and its weighted variant) on ``source``.

    ``source``: a dataset path, an open dataset file, a live oracle, or a Source. Defaults are
    disentanglement_lib's study sizes (L=64, 10,000 train and 5,000 eval votes, 10,000 images for
    the global variance). ``random_state`` (int seed or numpy Generator) drives the live-oracle
    sampling; stored evaluation sets are fixed and ignore it.
    """
    batch_size, num_train, num_eval, num_variance = check_sizes(
        batch_size=batch_size, num_train=num_train, num_eval=num_eval, num_variance=num_variance
    )
    prune_threshold = check_prune_threshold(prune_threshold)
    progress = check_flag("progress", progress)
    rng = as_generator(random_state)
    timings = Timings()
    sizes: dict[str, Any] = dict(
        batch_size=batch_size,
        num_train=num_train,
        num_eval=num_eval,
        num_variance=num_variance,
        prune_threshold=prune_threshold,
    )
    enc: dict[str, Any] = dict(
        represent=represent, batch_size=encode_batch_size, timings=timings, progress=progress
    )
    with open_source(source) as src:
        k = src.num_factors
        t0 = time.perf_counter()
        stream = src.variance_images(num_variance, rng)
        timings.read += time.perf_counter() - t0
        zv = encode(stream.chunks(encode_batch_size), stream.total, desc="kim_mnih variance", **enc)
        num_latents = zv.shape[1]
        t0 = time.perf_counter()
        global_var = zv.var(axis=0, ddof=1)
        active = np.flatnonzero(np.sqrt(global_var) >= prune_threshold)
        timings.metric += time.perf_counter() - t0
        if active.size == 0:
            return _empty_result(
                k, num_latents, global_var, sizes, seed_of(random_state), src.describe(), timings
            )

        splits = {}
        for split, n in (("train", num_train), ("eval", num_eval)):
            t0 = time.perf_counter()
            vs = src.kim_mnih_votes(split, n, batch_size, rng)
            timings.read += time.perf_counter() - t0
            z = encode(
                vs.images.chunks(encode_batch_size),
                vs.images.total,
                expected_dim=num_latents,
                desc=f"kim_mnih {split}",
                **enc,
            )
            t0 = time.perf_counter()
            dims, weight = _votes(z, batch_size, global_var, active)
            splits[split] = (dims, vs.factor_index, weight)
            timings.metric += time.perf_counter() - t0

    t0 = time.perf_counter()
    (tr_d, tr_k, tr_w), (ev_d, ev_k, ev_w) = splits["train"], splits["eval"]
    votes = _matrix(tr_d, tr_k, None, num_latents, k).astype(np.int64)
    eval_votes = _matrix(ev_d, ev_k, None, num_latents, k).astype(np.int64)
    classifier = np.argmax(votes, axis=1)
    train_acc = float(np.mean(classifier[tr_d] == tr_k))
    eval_acc = float(np.mean(classifier[ev_d] == ev_k))

    tr_def, ev_def = ~np.isnan(tr_w), ~np.isnan(ev_w)  # votes whose weight is defined
    wvotes = _matrix(tr_d[tr_def], tr_k[tr_def], tr_w[tr_def], num_latents, k)
    wclassifier = np.argmax(wvotes, axis=1)
    w_train_hit = (wclassifier[tr_d] == tr_k)[tr_def]
    w_eval_hit = (wclassifier[ev_d] == ev_k)[ev_def]
    weighted = WeightedKimMnih(
        score=_mean_or_nan(ev_w[ev_def] * w_eval_hit),
        train_score=_mean_or_nan(tr_w[tr_def] * w_train_hit),
        eval_accuracy=_mean_or_nan(w_eval_hit.astype(float)),
        mean_weight_train=_mean_or_nan(tr_w[tr_def]),
        mean_weight_eval=_mean_or_nan(ev_w[ev_def]),
        votes=wvotes.tolist(),
        classifier=wclassifier.tolist(),
        undefined_train=int((~tr_def).sum()),
        undefined_eval=int((~ev_def).sum()),
    )
    timings.metric += time.perf_counter() - t0
    return KimMnihResult(
        score=eval_acc,
        train_accuracy=train_acc,
        eval_accuracy=eval_acc,
        num_active_dims=int(active.size),
        active_dims=active.tolist(),
        global_variance=global_var.tolist(),
        votes=votes.tolist(),
        eval_votes=eval_votes.tolist(),
        classifier=classifier.tolist(),
        weighted=weighted,
        num_factors=k,
        num_latents=num_latents,
        **sizes,
        seed=seed_of(random_state),
        source=src.describe(),
        timings=timings,
    )
