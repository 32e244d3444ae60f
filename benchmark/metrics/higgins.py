"""The Higgins (beta-VAE) disentanglement metric.

Definition (Higgins et al. 2017, as implemented by disentanglement_lib; design.md section 4):
for each point choose a factor k uniformly; draw two batches of L factor vectors whose row i share
the value of factor k (the other factors independent); render both with the ground-truth oracle
(not the model's decoder: the thesis' section 3.3.1 erratum); encode; the feature is the mean
over the batch of ``|z_a - z_b|`` (one value per latent dimension), the label is k. A low-capacity
linear classifier (multinomial logistic regression, settings in ``benchmark.metrics.logistic``)
is fitted on ``num_train`` points; the score is its accuracy on ``num_eval`` fresh points.

The headline (``features="raw"``, the default) fits on raw features, as disentanglement_lib and
every published number do. ``score_standardised`` (features z-scored with the training points'
statistics before the L2-penalised fit) is reported beside it: rescaling a latent dimension cannot
change that one, but it magnifies tiny absolute differences (docs/metrics.md).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from benchmark.metrics import logistic
from benchmark.metrics.encode import DEFAULT_ENCODE_BATCH_SIZE, Represent, Timings, encode
from benchmark.metrics.presets import PRESETS, check_sizes
from benchmark.metrics.seeding import as_generator, seed_of
from benchmark.metrics.sources import Source, open_source
from spritegen.errors import SpecError, check_flag

_FULL = PRESETS["full"]
#: How the classifier sees the features: z-scored on the train points, or raw (disentanglement_lib).
HIGGINS_FEATURES = ("standardised", "raw")


@dataclass
class HigginsResult:
    """Score and diagnostics of one Higgins evaluation; ``score`` is the eval accuracy."""

    score: float
    train_accuracy: float
    eval_accuracy: float
    chance: float  # accuracy of always predicting the most frequent train label, on eval
    features: str  # "standardised" or "raw": what ``score`` was computed with
    score_standardised: float  # eval accuracy with z-scored features
    score_raw: float  # eval accuracy on raw features (disentanglement_lib's convention)
    confusion: list[list[int]]  # (K, K) eval points: rows true factor, columns predicted
    coef: list[list[float]]  # (D, C) weights on standardised features
    intercept: list[float]
    classes: list[int]
    classifier: dict
    n_iter: int
    converged: bool
    num_factors: int
    num_latents: int
    batch_size: int
    num_train: int
    num_eval: int
    seed: int | None
    source: dict
    timings: Timings = field(default_factory=Timings)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["timings"] = self.timings.as_dict()
        return d


def higgins(
    source: Source | object,
    represent: Represent,
    random_state: int | np.random.Generator,
    *,
    batch_size: int = _FULL.batch_size,
    num_train: int = _FULL.num_train,
    num_eval: int = _FULL.num_eval,
    encode_batch_size: int = DEFAULT_ENCODE_BATCH_SIZE,
    features: str = "raw",
    progress: bool = False,
) -> HigginsResult:
    """Score ``represent`` with the Higgins metric on ``source``.

    ``features="raw"`` (default) fits the classifier on the features as they are, the convention
    of disentanglement_lib (comparable with published numbers); ``"standardised"`` z-scores them
    on the train points first, so rescaling latents cannot change the score. Both scores are in
    the result either way (``score_raw``, ``score_standardised``).

    Defaults are disentanglement_lib's study sizes (L=64, 10,000 train and 5,000 eval points).
    ``random_state`` (int seed or numpy Generator) drives the live-oracle sampling; stored
    evaluation sets are fixed and ignore it, and the classifier uses no randomness.
    """
    batch_size, num_train, num_eval = check_sizes(
        batch_size=batch_size, num_train=num_train, num_eval=num_eval
    )
    if features not in HIGGINS_FEATURES:
        raise SpecError(
            f"higgins features: got {features!r}; allowed: {', '.join(HIGGINS_FEATURES)}"
        )
    progress = check_flag("progress", progress)
    rng = as_generator(random_state)
    timings = Timings()
    enc: dict[str, Any] = dict(
        represent=represent, batch_size=encode_batch_size, timings=timings, progress=progress
    )
    data = {}
    num_latents: int | None = None
    with open_source(source) as src:
        k = src.num_factors
        for split, n in (("train", num_train), ("eval", num_eval)):
            t0 = time.perf_counter()
            ps = src.higgins_pairs(split, n, batch_size, rng)
            timings.read += time.perf_counter() - t0
            za = encode(
                ps.images_a.chunks(encode_batch_size),
                ps.images_a.total,
                expected_dim=num_latents,
                desc=f"higgins {split} a",
                **enc,
            )
            num_latents = za.shape[1]
            zb = encode(
                ps.images_b.chunks(encode_batch_size),
                ps.images_b.total,
                expected_dim=num_latents,
                desc=f"higgins {split} b",
                **enc,
            )
            t0 = time.perf_counter()
            z_diff = np.abs(za - zb).reshape(n, batch_size, num_latents).mean(axis=1)
            data[split] = (z_diff, ps.factor_index)
            timings.metric += time.perf_counter() - t0
        describe = src.describe()

    t0 = time.perf_counter()
    (x_tr, y_tr), (x_ev, y_ev) = data["train"], data["eval"]
    model = logistic.fit(x_tr, y_tr, standardise=features == "standardised")
    pred = model.predict(x_ev)
    # The other convention costs one more fit on the same features (no extra encoding).
    other = logistic.fit(x_tr, y_tr, standardise=features != "standardised")
    other_score = float(np.mean(other.predict(x_ev) == y_ev))
    own_score = float(np.mean(pred == y_ev))
    by_kind = {
        features: own_score,
        HIGGINS_FEATURES[1 - HIGGINS_FEATURES.index(features)]: other_score,
    }
    confusion = np.bincount(y_ev * k + pred, minlength=k * k).reshape(k, k)
    majority = np.bincount(y_tr, minlength=k).argmax()
    result = HigginsResult(
        score=own_score,
        train_accuracy=model.accuracy(x_tr, y_tr),
        eval_accuracy=own_score,
        chance=float(np.mean(y_ev == majority)),
        features=features,
        score_standardised=by_kind["standardised"],
        score_raw=by_kind["raw"],
        confusion=confusion.tolist(),
        coef=model.coef.tolist(),
        intercept=model.intercept.tolist(),
        classes=model.classes.tolist(),
        classifier={**logistic.SETTINGS, "features": features},
        n_iter=model.n_iter,
        converged=model.converged,
        num_factors=k,
        num_latents=int(num_latents or 0),
        batch_size=batch_size,
        num_train=num_train,
        num_eval=num_eval,
        seed=seed_of(random_state),
        source=describe,
        timings=timings,
    )
    timings.metric += time.perf_counter() - t0
    return result
