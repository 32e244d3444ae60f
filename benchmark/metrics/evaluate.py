"""All metrics on one source in one call: what training loops and ``bench score`` use."""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from benchmark.metrics.dci import DCI_MODELS, dci
from benchmark.metrics.encode import DEFAULT_ENCODE_BATCH_SIZE, Represent
from benchmark.metrics.higgins import higgins
from benchmark.metrics.kim_mnih import kim_mnih
from benchmark.metrics.linear_r2 import linear_r2
from benchmark.metrics.mig import mig
from benchmark.metrics.modularity import modularity_explicitness
from benchmark.metrics.presets import Preset, get_preset
from benchmark.metrics.samples import encode_samples
from benchmark.metrics.sap import sap
from benchmark.metrics.seeding import seed_of, spawn
from benchmark.metrics.sources import Source, StoredSource, open_source
from spritegen.errors import SpecError, check_flag, quote

#: Metric names ``evaluate(metrics=...)`` accepts and the score keys each one produces.
METRIC_KEYS = {
    "kim_mnih": ("kim_mnih", "kim_mnih_weighted"),
    "higgins": ("higgins", "higgins_standardised"),
    "mig": ("mig",),
    "dci": ("dci_disentanglement", "dci_completeness", "dci_informativeness"),
    "sap": ("sap",),
    "modularity": ("modularity", "explicitness"),
    "linear_r2": ("linear_r2", "linear_r2_best_dim"),
}
#: Flat score keys ``evaluate`` returns, in the order ``bench score`` prints them.
SCORE_KEYS = tuple(key for keys in METRIC_KEYS.values() for key in keys)
#: Each score's range (docs/metrics.md): accuracies, ROC-AUCs and normalised scores lie in
#: [0, 1]; an R² can be any amount below 0 (it is not clipped).
SCORE_RANGES: dict[str, tuple[float, float]] = {
    key: ((-math.inf, 1.0) if key.startswith("linear_r2") else (0.0, 1.0)) for key in SCORE_KEYS
}
#: Scores that can be undefined, and how a run record writes that: the weighted Kim–Mnih as null
#: (no vote moved the representation), the R² scores as NaN (every factor constant).
UNDEFINED_SCORES: dict[str, str] = {
    "kim_mnih_weighted": "null",
    "linear_r2": "NaN",
    "linear_r2_best_dim": "NaN",
}
_SAMPLE_METRICS = ("mig", "dci", "sap", "modularity", "linear_r2")
#: What `bench run` computes after each epoch: all but DCI, whose gradient-boosted trees cost
#: minutes per model (one fit per factor); DCI is computed once, with the final scores.
EPOCH_METRICS = tuple(m for m in METRIC_KEYS if m != "dci")


def _load_sklearn() -> None:
    """Import the scikit-learn modules of MIG, DCI, SAP and modularity (seconds, the first time)."""
    for name in ("sklearn.ensemble", "sklearn.linear_model", "sklearn.metrics", "sklearn.svm"):
        importlib.import_module(name)


def _chosen_metrics(metrics: Sequence[str] | str | None) -> tuple[str, ...]:
    """The metric names asked for: all by default; one name alone may be given as a string
    (``metrics="mig"`` was read letter by letter: "metrics: got 'm'"). An empty selection,
    which returned a dict without a single score, is refused as ``bench score --metrics`` is."""
    if metrics is None:
        return tuple(METRIC_KEYS)
    if not isinstance(metrics, (str, Iterable)):  # tuple(5) was "'int' object is not iterable"
        raise SpecError(
            f"metrics must be a metric name or a list of them ({', '.join(METRIC_KEYS)}), "
            f"got {quote(metrics)}"
        )
    chosen = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    for name in chosen:
        if name not in METRIC_KEYS:
            raise SpecError(f"metrics: got {quote(name)}; allowed: {', '.join(METRIC_KEYS)}")
    if not chosen:
        raise SpecError(f"metrics is empty; name at least one of {', '.join(METRIC_KEYS)}")
    return chosen


def evaluate(
    source: Source | object,
    represent: Represent,
    random_state: int | np.random.Generator,
    preset: str | Preset = "quick",
    *,
    encode_batch_size: int = DEFAULT_ENCODE_BATCH_SIZE,
    progress: bool = False,
    dci_model: str = "gbt",
    metrics: Sequence[str] | str | None = None,
) -> dict:
    """Every metric's score of ``represent`` as one JSON-ready dict.

    ``preset``: "quick", "full", a ``Preset``, or "stored" (a dataset file's whole
    evaluation sets). Flat keys: the scores in ``SCORE_KEYS`` (``higgins`` on raw features as
    disentanglement_lib, ``higgins_standardised`` on z-scored ones), ``kim_mnih_train``,
    ``higgins_train`` (train accuracies), ``kim_mnih_active_dims``, ``preset``, ``seed``,
    ``read_s``, ``encode_s``, ``metric_s`` (totals) and ``times`` (seconds per metric; the shared
    random samples' reading and encoding, and loading scikit-learn, is ``samples``). ``details``
    holds each metric's full ``as_dict()``.

    Each of Kim–Mnih, Higgins and the shared i.i.d. samples draws from its own child of
    ``random_state`` (children 0, 1, 2: adding the third left the first two, and so the existing
    scores, unchanged). MIG, DCI, SAP and modularity/explicitness reuse one encoded sample set.
    ``dci_model="forest"`` swaps DCI's gradient-boosted trees for the cheaper documented model.
    ``metrics`` (default: all of ``METRIC_KEYS``; one name may be a string) computes only the
    named ones; the keys of the
    others are left out (the random streams do not move, so the scores computed are the same).
    """
    chosen = _chosen_metrics(metrics)
    progress = check_flag("progress", progress)  # "no" is true: it drew progress bars
    if dci_model not in DCI_MODELS:  # dci() checks it too, but only after everything is encoded
        raise SpecError(f"dci_model: got {quote(dci_model)}; allowed: {', '.join(DCI_MODELS)}")
    if preset != "stored":
        p = get_preset(preset)
    rng_km, rng_hg, rng_samples = spawn(random_state, 3)
    seed = seed_of(random_state)
    times: dict[str, float] = {}
    with open_source(source) as src:
        if isinstance(src, StoredSource):  # a set its spec left out: named before any encoding
            src.check_metrics(chosen)
        if preset == "stored":
            if not isinstance(src, StoredSource):
                raise SpecError(
                    'preset "stored" needs a dataset file; a live oracle needs '
                    '"quick", "full" or a Preset'
                )
            src.check_stored_sizes(chosen)
            p = src.stored_preset()
        sizes: dict[str, Any] = dict(
            batch_size=p.batch_size,
            num_train=p.num_train,
            num_eval=p.num_eval,
            encode_batch_size=encode_batch_size,
            progress=progress,
        )
        km = hg = samples = None
        if "kim_mnih" in chosen:
            t0 = time.perf_counter()
            km = kim_mnih(src, represent, rng_km, num_variance=p.num_variance, **sizes)
            times["kim_mnih"] = time.perf_counter() - t0
        if "higgins" in chosen:
            t0 = time.perf_counter()
            hg = higgins(src, represent, rng_hg, features="raw", **sizes)
            times["higgins"] = time.perf_counter() - t0
        if any(name in chosen for name in _SAMPLE_METRICS):
            t0 = time.perf_counter()
            _load_sklearn()  # once, here: not billed to whichever metric happens to run first
            samples = encode_samples(
                src,
                represent,
                rng_samples,
                num_train=p.num_samples_train,
                num_eval=p.num_samples_eval,
                encode_batch_size=encode_batch_size,
                progress=progress,
            )
            times["samples"] = time.perf_counter() - t0
    results: dict = {}
    if samples is not None:
        shared: dict[str, Any] = dict(samples=samples, num_train=samples.num_train)
        sized: dict[str, Any] = dict(shared, num_eval=samples.num_eval)
        for name, fn, kwargs in (
            ("mig", mig, shared),
            ("dci", dci, dict(sized, model=dci_model)),
            ("sap", sap, sized),
            ("modularity", modularity_explicitness, sized),
            ("linear_r2", linear_r2, sized),
        ):
            if name in chosen:
                t0 = time.perf_counter()
                results[name] = fn(src, represent, rng_samples, **kwargs)
                times[name] = time.perf_counter() - t0
    parts = [r.timings for r in (km, hg, samples, *results.values()) if r is not None]
    timings = {
        key: sum(t.as_dict()[key] for t in parts) for key in ("read_s", "encode_s", "metric_s")
    }
    scores: dict = {}
    details: dict = {"preset": p.as_dict()}
    if km is not None:
        km.seed = seed
        scores.update(
            kim_mnih=km.score,
            # None (JSON null) where undefined: no vote moved the representation (always at K = 1)
            kim_mnih_weighted=km.weighted.as_dict()["score"],
            kim_mnih_train=km.train_accuracy,
            kim_mnih_active_dims=km.num_active_dims,
        )
        details["kim_mnih"] = km.as_dict()
    if hg is not None:
        hg.seed = seed
        scores.update(
            higgins=hg.score_raw,
            higgins_standardised=hg.score_standardised,
            higgins_train=hg.train_accuracy,
        )
        details["higgins"] = hg.as_dict()
    if "mig" in results:
        scores["mig"] = results["mig"].score
    if "dci" in results:
        d = results["dci"]
        scores.update(
            dci_disentanglement=d.disentanglement,
            dci_completeness=d.completeness,
            dci_informativeness=d.informativeness,
        )
    if "sap" in results:
        scores["sap"] = results["sap"].score
    if "modularity" in results:
        m = results["modularity"]
        scores.update(modularity=m.modularity, explicitness=m.explicitness)
    if "linear_r2" in results:
        r2 = results["linear_r2"]
        scores.update(linear_r2=r2.score, linear_r2_best_dim=r2.best_dim_score)
    details.update({name: r.as_dict() for name, r in results.items()})
    order = {key: i for i, key in enumerate(SCORE_KEYS)}
    scores = dict(sorted(scores.items(), key=lambda kv: order.get(kv[0], len(order))))
    return {
        **scores,
        "preset": p.name,
        "seed": seed,
        **timings,
        "times": times,
        "details": details,
    }
