"""Encoded i.i.d. samples and the discretisation that MIG, DCI, SAP and modularity share.

Those four metrics (Locatello et al. 2019's suite) need no structured batches: only random
(factors, image) pairs, a train part and an eval part. ``encode_samples`` reads (or renders) and
encodes them once, so that every metric of one evaluation can reuse the same latents (the
definitions allow it; disentanglement_lib draws a fresh set per metric, which changes nothing in
expectation and costs one encoding pass each).

Discretisation (disentanglement_lib's ``histogram_discretizer`` with the study's 20 bins):

- **latents**: each dimension is cut into ``num_bins`` equal-width bins spanning its train
  sample's minimum to maximum (``np.histogram`` edges), exactly as disentanglement_lib does;
- **factors**: a factor taking at most ``num_bins`` distinct values in the train sample
  (spritegen's ``shape``; most grid factors) keeps its values as classes; a factor with more
  values (every continuous spritegen factor) is cut like a latent, into ``num_bins`` equal-width
  bins over its train sample's range. Eval values use the train bins (values outside fall in the
  first or last bin). disentanglement_lib needs no factor discretisation because its datasets are
  grids; this is the documented extension to continuous factors (docs/metrics.md).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from benchmark.metrics.encode import (
    DEFAULT_ENCODE_BATCH_SIZE,
    Represent,
    Timings,
    encode,
    to_latents,
)
from benchmark.metrics.presets import count
from benchmark.metrics.seeding import as_generator, seed_of
from benchmark.metrics.sources import Source, open_source
from spritegen.errors import SpecError, check_flag

#: disentanglement_lib's study configuration: ``discretizer.num_bins = 20``.
NUM_BINS = 20


@dataclass
class EncodedSamples:
    """Latents and factor values of random images: ``z_*`` (n, D) float64, ``y_*`` (n, K)."""

    z_train: np.ndarray
    y_train: np.ndarray
    z_eval: np.ndarray
    y_eval: np.ndarray
    seed: int | None
    source: dict
    timings: Timings = field(default_factory=Timings)

    def __post_init__(self) -> None:
        """Samples made by hand (latents encoded elsewhere, passed as ``samples=``) are held to
        what ``encode_samples`` gives: finite (n, D) latents as ``represent``'s output is, one
        factor row per latent row, the same D and K in both parts. A mismatch was a silent
        wrong score (MIG cut both parts to the first rows) or an IndexError inside a metric."""
        parts = {}
        for split in ("train", "eval"):
            z, y = getattr(self, f"z_{split}"), getattr(self, f"y_{split}")
            shape = tuple(np.shape(z))
            if len(shape) != 2:
                raise SpecError(f"samples.z_{split} has shape {shape}; expected (n, D) latents")
            name = f"samples.z_{split}"
            z = to_latents(z, shape[0], name=name) if shape[0] else np.asarray(z, np.float64)
            y = np.asarray(y, dtype=np.float64)
            if y.ndim != 2 or y.shape[0] != len(z):
                raise SpecError(
                    f"samples.y_{split} has shape {y.shape}; expected ({len(z)}, K): one factor "
                    f"row for each of the {len(z)} rows of samples.z_{split}"
                )
            if not np.isfinite(y).all():
                raise SpecError(f"samples.y_{split} holds NaN or infinite factor values")
            parts[split] = (z, y)
        (z_tr, y_tr), (z_ev, y_ev) = parts["train"], parts["eval"]
        if len(z_ev) and z_ev.shape[1] != z_tr.shape[1]:
            raise SpecError(
                f"samples.z_eval has shape {z_ev.shape} and samples.z_train {z_tr.shape}; both "
                "parts need the same latent dimensions D"
            )
        if y_ev.shape[1] != y_tr.shape[1]:
            raise SpecError(
                f"samples.y_eval has {y_ev.shape[1]} factor columns and samples.y_train "
                f"{y_tr.shape[1]}; both parts need the same factors K"
            )
        self.z_train, self.y_train, self.z_eval, self.y_eval = z_tr, y_tr, z_ev, y_ev

    @property
    def num_train(self) -> int:
        return int(self.z_train.shape[0])

    @property
    def num_eval(self) -> int:
        return int(self.z_eval.shape[0])

    @property
    def num_latents(self) -> int:
        return int(self.z_train.shape[1])

    @property
    def num_factors(self) -> int:
        return int(self.y_train.shape[1])


def encode_samples(
    source: Source | object,
    represent: Represent,
    random_state: int | np.random.Generator,
    *,
    num_train: int,
    num_eval: int,
    encode_batch_size: int = DEFAULT_ENCODE_BATCH_SIZE,
    progress: bool = False,
) -> EncodedSamples:
    """Read (stored ``/eval/random`` sets) or render (live oracle) random images and encode them.

    The train part is drawn before the eval part from the one Generator, so the same seed gives
    the same samples. ``num_eval`` may be 0 for a metric that needs no eval part (MIG).
    """
    num_train, num_eval = count("num_train", num_train, 2), count("num_eval", num_eval, 0)
    progress = check_flag("progress", progress)
    rng = as_generator(random_state)
    timings = Timings()
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    num_latents = None
    notes: dict[str, str] = {}
    with open_source(source) as src:
        for split, n in (("train", num_train), ("eval", num_eval)):
            if n == 0:
                width = int(num_latents or 0)
                out[split] = (np.empty((0, width)), np.empty((0, src.num_factors)))
                continue
            t0 = time.perf_counter()
            ss = src.random_samples(split, n, rng)
            timings.read += time.perf_counter() - t0
            if "fallback" in ss.info:
                notes[f"{split}_fallback"] = ss.info["fallback"]
            z = encode(
                ss.images.chunks(encode_batch_size),
                ss.images.total,
                represent,
                batch_size=encode_batch_size,
                timings=timings,
                expected_dim=num_latents,
                progress=progress,
                desc=f"samples {split}",
            )
            num_latents = z.shape[1]
            out[split] = (z, np.asarray(ss.factors, dtype=np.float64))
        describe = {**src.describe(), **notes}
    if num_eval == 0:
        out["eval"] = (np.empty((0, int(num_latents or 0))), out["eval"][1])
    return EncodedSamples(
        z_train=out["train"][0],
        y_train=out["train"][1],
        z_eval=out["eval"][0],
        y_eval=out["eval"][1],
        seed=seed_of(random_state),
        source=describe,
        timings=timings,
    )


def histogram_discretize(x: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    """(n, D) values -> (n, D) bin indices 0..num_bins-1, equal-width bins per column.

    The edges are ``np.histogram``'s over the column's own range (as disentanglement_lib's
    ``_histogram_discretize``; its labels are these plus one). A constant column lands in one bin.
    """
    num_bins = count("num_bins", num_bins, 2)
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.shape, dtype=np.int64)
    for d in range(x.shape[1]):
        out[:, d] = _digitize_column(x[:, d], num_bins)
    return out


def _digitize_column(col: np.ndarray, num_bins: int) -> np.ndarray:
    """One column's bin indices: numpy's edges over its range, as disentanglement_lib.

    numpy refuses a range narrower than ``num_bins`` steps of float resolution at the column's
    magnitude (a constant 1e20, or 1e6 plus noise of 1e-12); such a column is then binned
    relative to its minimum, where the subtraction is exact and the same equal-width bins exist.
    Columns numpy can bin never reach the fallback, so their bins are bit for bit the reference's.
    """
    try:
        edges = np.histogram_bin_edges(col, num_bins)
    except ValueError:
        col = col - col.min()
        try:
            edges = np.histogram_bin_edges(col, num_bins)
        except ValueError:  # a spread of a few subnormals: one bin, as a constant column
            return np.zeros(col.shape, dtype=np.int64)
    return np.digitize(col, edges[1:-1])


@dataclass
class FactorBins:
    """How each factor was turned into class labels: ``kinds[k]`` is "values" or "bins"."""

    kinds: list[str]
    num_classes: list[int]

    def as_dict(self) -> dict:
        return {"kinds": self.kinds, "num_classes": self.num_classes}


def discretize_factors(
    y_train: np.ndarray, y_eval: np.ndarray | None = None, num_bins: int = NUM_BINS
) -> tuple[np.ndarray, np.ndarray | None, FactorBins]:
    """Factor values -> integer class labels (train, eval), learned on the train part only.

    A factor with at most ``num_bins`` distinct train values keeps them as classes (an eval value
    maps to the nearest one); otherwise ``num_bins`` equal-width bins over its train range.
    """
    num_bins = count("num_bins", num_bins, 2)
    y_train = np.asarray(y_train, dtype=np.float64)
    tr = np.empty(y_train.shape, dtype=np.int64)
    ev = None if y_eval is None else np.empty(np.shape(y_eval), dtype=np.int64)
    kinds, counts = [], []
    for k in range(y_train.shape[1]):
        values = np.unique(y_train[:, k])
        if values.size <= num_bins:
            cuts = (values[:-1] + values[1:]) / 2  # midpoints: nearest stored value
            kinds.append("values")
            counts.append(int(values.size))
        else:
            cuts = np.histogram_bin_edges(y_train[:, k], num_bins)[1:-1]
            kinds.append("bins")
            counts.append(num_bins)
        tr[:, k] = np.digitize(y_train[:, k], cuts)
        if ev is not None:
            ev[:, k] = np.digitize(np.asarray(y_eval, dtype=np.float64)[:, k], cuts)
    return tr, ev, FactorBins(kinds, counts)


def mutual_information(codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(n, D) and (n, K) integer labels -> (D, K) mutual information in nats.

    scikit-learn's ``mutual_info_score`` (disentanglement_lib's ``discrete_mutual_info``).
    """
    from sklearn.metrics import mutual_info_score

    m = np.zeros((codes.shape[1], labels.shape[1]))
    for d in range(codes.shape[1]):
        for k in range(labels.shape[1]):
            m[d, k] = mutual_info_score(labels[:, k], codes[:, d])
    return m


def entropy(labels: np.ndarray) -> np.ndarray:
    """(n, K) integer labels -> (K,) entropy in nats (``H(v) = I(v; v)``)."""
    from sklearn.metrics import mutual_info_score

    return np.array([mutual_info_score(labels[:, k], labels[:, k]) for k in range(labels.shape[1])])


def prepare(
    samples: EncodedSamples | None,
    source: Source | object,
    represent: Represent,
    random_state: int | np.random.Generator,
    *,
    num_train: int,
    num_eval: int,
    encode_batch_size: int,
    progress: bool,
    metric: str,
    min_eval: int = 1,
) -> EncodedSamples:
    """``samples`` if given (checked to be large enough), else freshly encoded ones.

    Given samples larger than asked are cut to the first ``num_train`` / ``num_eval`` rows.
    ``min_eval`` is the fewest eval rows ``metric`` can score on (MIG needs none; the
    classifiers of DCI and SAP at least one, explicitness's ROC-AUC two): checked before
    anything is encoded, where scikit-learn otherwise refused an empty eval part from deep
    inside the metric.
    """
    num_train = count("num_train", num_train, 2, metric)
    num_eval = count("num_eval", num_eval, min_eval, metric)
    progress = check_flag("progress", progress)
    if samples is None:
        return encode_samples(
            source,
            represent,
            random_state,
            num_train=num_train,
            num_eval=num_eval,
            encode_batch_size=encode_batch_size,
            progress=progress,
        )
    if not isinstance(samples, EncodedSamples):
        raise SpecError(
            f"{metric}: samples must be an EncodedSamples (from encode_samples), got "
            f"{type(samples).__name__}"
        )
    if samples.num_train < num_train or samples.num_eval < num_eval:
        raise SpecError(
            f"samples hold {samples.num_train} train / {samples.num_eval} eval points but "
            f"{num_train} / {num_eval} were asked for"
        )
    return EncodedSamples(
        samples.z_train[:num_train],
        samples.y_train[:num_train],
        samples.z_eval[:num_eval],
        samples.y_eval[:num_eval],
        samples.seed,
        samples.source,
        Timings(),  # reading and encoding were paid (and timed) by whoever made them
    )


@dataclass(kw_only=True)
class SampleMetricResult:
    """What every metric computed on the shared i.i.d. samples reports about its inputs (MIG,
    DCI, SAP, modularity/explicitness, linear R²); each result adds its own scores."""

    num_train: int
    num_factors: int
    num_latents: int
    seed: int | None
    source: dict
    timings: Timings = field(default_factory=Timings)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["timings"] = self.timings.as_dict()
        return d
