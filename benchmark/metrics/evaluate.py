"""All metrics on one source in one call: what training loops and ``bench score`` use."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmark.metrics.encode import DEFAULT_ENCODE_BATCH_SIZE, Represent
from benchmark.metrics.higgins import higgins
from benchmark.metrics.kim_mnih import kim_mnih
from benchmark.metrics.linear_r2 import linear_r2
from benchmark.metrics.presets import Preset, get_preset
from benchmark.metrics.seeding import seed_of, spawn
from benchmark.metrics.sources import Source, StoredSource, open_source
from spritegen.errors import SpecError


def evaluate(
    source: Source | object,
    represent: Represent,
    random_state: int | np.random.Generator,
    preset: str | Preset = "quick",
    *,
    encode_batch_size: int = DEFAULT_ENCODE_BATCH_SIZE,
    progress: bool = False,
) -> dict:
    """Kim–Mnih, weighted Kim–Mnih and Higgins scores of ``represent`` as one JSON-ready dict.

    ``preset``: "quick", "full", a ``Preset``, or "stored" (a dataset file's whole evaluation
    sets). Flat keys: ``kim_mnih``, ``kim_mnih_weighted``, ``higgins`` (the scores),
    ``higgins_raw`` (Higgins on raw features, disentanglement_lib's convention),
    ``kim_mnih_train``, ``higgins_train`` (train accuracies), ``kim_mnih_active_dims``,
    ``linear_r2`` and ``linear_r2_best_dim`` (mean R² over factors of a linear read-out of each
    factor from all latent dimensions / the best single one, on the variance images),
    ``preset``, ``seed``, ``read_s``, ``encode_s``, ``metric_s``; ``details`` holds each metric's
    full ``as_dict()``. Each metric draws from its own child of ``random_state``, so the scores do
    not depend on which metrics run or in which order.
    """
    if preset != "stored":
        p = get_preset(preset)
    # children 0 and 1 are the ones evaluate always gave Kim–Mnih and Higgins
    rng_km, rng_hg, rng_r2 = spawn(random_state, 3)
    seed = seed_of(random_state)
    with open_source(source) as src:
        if preset == "stored":
            if not isinstance(src, StoredSource):
                raise SpecError(
                    'preset "stored" needs a dataset file; a live oracle needs '
                    '"quick", "full" or a Preset'
                )
            p = src.stored_preset()
        sizes: dict[str, Any] = dict(
            batch_size=p.batch_size,
            num_train=p.num_train,
            num_eval=p.num_eval,
            encode_batch_size=encode_batch_size,
            progress=progress,
        )
        km = kim_mnih(src, represent, rng_km, num_variance=p.num_variance, **sizes)
        hg = higgins(src, represent, rng_hg, **sizes)
        r2 = linear_r2(
            src,
            represent,
            rng_r2,
            num_points=p.num_variance,
            encode_batch_size=encode_batch_size,
            progress=progress,
        )
    km.seed = hg.seed = r2.seed = seed
    timings = {
        key: sum(m.timings.as_dict()[key] for m in (km, hg, r2))
        for key in ("read_s", "encode_s", "metric_s")
    }
    return {
        "kim_mnih": km.score,
        # None (JSON null) where undefined: no vote moved the representation (always at K = 1)
        "kim_mnih_weighted": km.weighted.as_dict()["score"],
        "higgins": hg.score,
        "higgins_raw": hg.score_raw,
        "kim_mnih_train": km.train_accuracy,
        "higgins_train": hg.train_accuracy,
        "kim_mnih_active_dims": km.num_active_dims,
        "linear_r2": r2.score,
        "linear_r2_best_dim": r2.best_dim_score,
        "preset": p.name,
        "seed": seed,
        **timings,
        "details": {
            "preset": p.as_dict(),
            "kim_mnih": km.as_dict(),
            "higgins": hg.as_dict(),
            "linear_r2": r2.as_dict(),
        },
    }
