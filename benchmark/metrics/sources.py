"""Where the metrics get their images: a dataset file's stored evaluation sets, or a live oracle.

Both kinds of source hand the metric code the same three things, so the metric arithmetic is
written once:

- ``variance_images(n, rng)``: n random images (Kim–Mnih's global variance);
- ``kim_mnih_votes(split, n, L, rng)``: n votes of L images, every image of vote v sharing the
  value of factor ``factor_index[v]``, the other factors random;
- ``higgins_pairs(split, n, L, rng)``: n pairs of L-image batches, row i of batch a and row i of
  batch b sharing the value of factor ``factor_index[p]``;
- ``random_samples(split, n, rng)``: n i.i.d. random images with their factor values (MIG, DCI,
  SAP, modularity). A stored file without these sets (format version 1) renders them live from
  the oracle its stored spec describes, drawing from ``rng``.

Images come as an ``ImageStream`` read (or rendered) chunk by chunk, so that the 640,000 images
of a full Kim–Mnih train set need not sit in memory at once. A stored set that fits the budget of
``benchmark.metrics.setcache`` is read whole instead and kept for the next evaluation of the same
file (a run scores after every epoch; a sweep's ensembles score one after another).

A stored source reads the first n votes/points of the file's sets (``docs/format.md``); the
random state is not used, so a stored file gives the same score for every seed. A live source
samples its own batches from the random state with the build's sampler
(``spritegen.evalsets.kim_mnih_factors``/``higgins_factors``), so the same seed gives the same
batches, drawn exactly as a build would store them.

"Source" here means one thing: what the metrics read (stored sets or a live oracle). The ground
truth behind a live source is an *oracle* (``spritegen.groundtruth``); an opened ``--data`` value
is a ``benchmark.datasets.DataHandle``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.datasets.verified import check_content, read_verified_rows
from benchmark.metrics.presets import METRIC_MINIMUMS, Preset
from benchmark.metrics.setcache import EVAL_SETS, file_identity
from spritegen.datafile import (
    check_dataset,
    group_attr_fault,
    open_dataset,
    stored_spec,
)
from spritegen.errors import DatasetError, SpecError
from spritegen.evalsets import (
    IMAGE_SET_PATHS,
    INDEX_PATHS,
    factors_path,
    higgins_factors,
    kim_mnih_factors,
)
from spritegen.groundtruth import check_ground_truth, draw_factors

SPLITS = ("train", "eval")


def _stored_sets() -> dict[str, tuple[str, ...]]:
    """Each evaluation set a StoredSource reads, by group, and the datasets it reads there: the
    images and factor indices ``spritegen.evalsets`` lays out, and the factors of the i.i.d.
    sample sets (the only stored factors the metrics read). The spec size that makes a build
    write a group is its name below /eval (``eval/kim_mnih/train``: ``kim_mnih_train``)."""
    images = [p for p in IMAGE_SET_PATHS if p.startswith("eval/")]
    sample_factors = [factors_path(p) for p in images if "/random/" in p]
    sets: dict[str, tuple[str, ...]] = {}
    for path in images + [*INDEX_PATHS] + sample_factors:
        group, name = path.rsplit("/", 1)
        sets[group] = sets.get(group, ()) + (name,)
    return sets


STORED_SETS = _stored_sets()
#: The stored evaluation sets each metric reads. A spec may set any of their sizes to 0 (the
#: build then writes no such group); the metrics that need it cannot be scored from the file.
#: The i.i.d. sample metrics have none here: a file without /eval/random renders them live.
METRIC_SETS: dict[str, tuple[str, ...]] = {
    "kim_mnih": ("eval/variance", "eval/kim_mnih/train", "eval/kim_mnih/eval"),
    "higgins": ("eval/higgins/train", "eval/higgins/eval"),
}


#: Each ``stored_preset`` size as the spec field (``EvalSizes``) behind it, for the metric
#: reading it, and in words.
_SIZE_FIELDS: dict[str, tuple[str, str]] = {
    "batch_size": ("batch_size", "images per vote or batch (L)"),
    "num_train": ("{metric}_train", "training votes or points"),
    "num_eval": ("{metric}_eval", "evaluation votes or points"),
    "num_variance": ("variance", "images for its global variance"),
    "num_samples_train": ("random_train", "i.i.d. training samples"),
    "num_samples_eval": ("random_eval", "i.i.d. evaluation samples"),
}


@dataclass
class ImageStream:
    """``total`` images in a fixed order, produced by ``read(start, stop)`` a chunk at a time."""

    total: int
    read: Callable[[int, int], np.ndarray]

    def chunks(self, chunk_size: int) -> Iterator[np.ndarray]:
        for start in range(0, self.total, chunk_size):
            yield self.read(start, min(start + chunk_size, self.total))


@dataclass
class VoteSet:
    """Kim–Mnih votes: vote v is rows ``v*L:(v+1)*L`` of ``images``."""

    factor_index: np.ndarray  # (V,) int64
    batch_size: int
    images: ImageStream
    info: dict = field(default_factory=dict)


@dataclass
class PairSet:
    """Higgins points: point p is rows ``p*L:(p+1)*L`` of ``images_a`` and of ``images_b``."""

    factor_index: np.ndarray  # (P,) int64
    batch_size: int
    images_a: ImageStream
    images_b: ImageStream
    info: dict = field(default_factory=dict)


@dataclass
class SampleSet:
    """n i.i.d. random images, row i rendered from ``factors[i]`` (MIG, DCI, SAP, modularity)."""

    factors: np.ndarray  # (n, K)
    images: ImageStream
    info: dict = field(default_factory=dict)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise SpecError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")


def _check_sizes(n: object, batch_size: object = 1) -> None:
    """A source's sizes are whole numbers, n >= 0 and batch_size >= 1: a negative n sliced
    ``[:n]`` and gave all but the last rows of a stored set, and L = 0 votes of nothing."""
    for name, value, low in (("n", n, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise SpecError(f"{name} must be a whole number >= {low}, got {value!r}")


# --------------------------------------------------------------------------------------------
# Stored evaluation sets


class StoredSource:
    """The evaluation sets precomputed in a spritegen dataset file (``/eval/...``).

    Pass a path (opened read-only through ``spritegen.datafile.open_dataset``, which checks that
    the build completed and the format version is supported) or an already open ``h5py.File``.
    """

    kind = "stored"

    def __init__(self, file, *, path: str | None = None, owned: bool = False) -> None:
        self._file = file
        self._owned = owned
        self._live: object | None = None  # an Oracle, made only if a set must be rendered live
        self.path = path if path is not None else getattr(file, "filename", "<h5py file>")
        if not owned:  # opened by the caller: the checks open_dataset makes on a path
            check_dataset(file, self.path)
        if "eval" not in file:
            self.close()
            raise DatasetError(
                f"{self.path}: no evaluation sets (/eval) in this file; rebuild it with "
                "'spritegen build' and an evaluation preset other than none (which writes them)"
            )
        try:
            self._check_sets()
            check_content(file, Path(self.path))
            self.num_factors = self._num_factors()
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(cls, path: str | os.PathLike) -> StoredSource:
        return cls(open_dataset(path), path=os.fspath(path), owned=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.close()  # type: ignore[attr-defined]
            self._live = None
        if self._owned:
            self._owned = False
            self._file.close()

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.path)}

    def stored_preset(self):
        """Sizes of everything this file holds, as a Preset named "stored".

        A file without the i.i.d. sample sets (format version 1) gets the ``full`` sample sizes,
        rendered live by its oracle. Sets the spec left out (size 0) count as 0; the metrics that
        read them are refused by ``check_metrics``, so the others can still be scored.
        """

        def points(*groups: str) -> int:
            held = [self._file[g]["factor_index"].shape[0] for g in groups if g in self._file]
            return min(held) if held else 0

        variance = self._file["eval/variance/images"] if "eval/variance" in self._file else None
        return Preset(
            "stored",
            batch_size=self._batch_size,
            num_train=points("eval/kim_mnih/train", "eval/higgins/train"),
            num_eval=points("eval/kim_mnih/eval", "eval/higgins/eval"),
            num_variance=variance.shape[0] if variance is not None else 0,
            **self._random_preset_sizes(),
        )

    def check_metrics(self, metrics, choosable: bool = True) -> None:
        """Refuse, before anything is encoded, a metric whose stored sets the file lacks because
        its spec set their size to 0, naming the metric, the spec field and the metrics to leave
        out (such a file was refused for every metric: "/eval/higgins/train is missing").
        ``choosable=False`` leaves out the advice to score without it (``bench run`` scores a
        fixed set of metrics)."""
        for metric in metrics:
            for group in METRIC_SETS.get(metric, ()):
                self._group(group, metric, choosable)

    def check_stored_sizes(self, metrics, choosable: bool = True) -> None:
        """Refuse, before anything is encoded, a metric that preset "stored" cannot score because
        the file's sets are smaller than it needs (``METRIC_MINIMUMS``), naming the spec field
        that made them so: ``variance: 1`` was "num_variance must be an integer >= 2, got 1",
        which named neither the file nor the spec, and ``bench run`` said it after its first
        epoch."""
        held = self.stored_preset().as_dict()
        short = [
            (metric, size, low)
            for metric in dict.fromkeys(metrics)
            for size, low in METRIC_MINIMUMS.get(metric, {}).items()
            if held[size] < low
        ]
        if not short:
            return
        metric, size, low = short[0]
        key, words = _SIZE_FIELDS[size]
        field = f"evaluation.{key.format(metric=metric)}"
        left_out = ", ".join(dict.fromkeys(m for m, _, _ in short))
        advice = f"score without {left_out}, or " if choosable else ""
        raise DatasetError(
            f"{self.path}: metric '{metric}' needs at least {low} {words}, but this "
            f"file holds {held[size]} (its spec's {field}); {advice}rebuild with {field} of at "
            f"least {low}"
        )

    def _unscorable(self) -> list[str]:
        """The metrics whose stored sets this file lacks, in ``METRIC_SETS`` order."""
        return [m for m, sets in METRIC_SETS.items() if any(g not in self._file for g in sets)]

    def _random_preset_sizes(self) -> dict[str, int]:
        sizes = self.random_sizes()
        if sizes is None:  # version 1: the defaults, the full sizes, rendered live
            return {}
        return {"num_samples_train": sizes[0], "num_samples_eval": sizes[1]}

    def random_sizes(self) -> tuple[int, int] | None:
        """(train, eval) sizes of the stored i.i.d. sample sets, or None when the file has none."""
        if "eval/random/train" not in self._file or "eval/random/eval" not in self._file:
            return None
        train, ev = (self._file[f"eval/random/{split}/images"].shape[0] for split in SPLITS)
        return int(train), int(ev)

    def random_samples(self, split: str, n: int, rng: np.random.Generator) -> SampleSet:
        """The first n rows of ``/eval/random/<split>``; rendered live when the file lacks it."""
        _check_split(split)
        _check_sizes(n)
        name = f"eval/random/{split}"
        if name not in self._file:
            if self._live is None:
                from spritegen.oracle import Oracle

                self._live = Oracle.from_file(self.path)
            live = OracleSource(self._live).random_samples(split, n, rng)
            live.info["fallback"] = f"/{name} not stored: rendered by the live oracle"
            return live
        group = self._file[name]
        ds, fs = group["images"], group["factors"]
        if ds.shape[0] < n or fs.shape[0] < n:
            raise DatasetError(
                f"{self.path}: /{name} holds {min(ds.shape[0], fs.shape[0])} images but {n} were "
                "asked for; use a smaller preset (or preset 'stored': all the file holds) or "
                "rebuild with larger evaluation sets"
            )
        factors = np.asarray(fs[:n])
        if factors.ndim != 2 or factors.shape[1] != self.num_factors:
            raise DatasetError(
                f"{self.path}: /{name}/factors must be (n, {self.num_factors}), got {fs.shape}"
            )
        return SampleSet(factors, self._stream(ds, n))

    def _check_sets(self) -> None:
        """Every evaluation set the build wrote is whole: its datasets present, its images shaped
        like /images. Checked when the source is made, before a run trains or a score encodes
        anything: a set deleted or replaced with h5py was a KeyError or a shape error at scoring
        time, after the first epoch. Rows and values are checked where they are read.

        Every image set's (H, W, C) has been compared with the stored spec by ``check_dataset``,
        which does not check their type."""
        import h5py

        f = self._file
        expected = self._expected_sets()
        image_shape = f["images"].shape[1:]
        for group, names in STORED_SETS.items():
            size_key = group.removeprefix("eval/").replace("/", "_")
            if group not in f:
                if size_key in expected:
                    raise DatasetError(
                        f"{self.path}: evaluation set /{group} is missing, but the stored spec "
                        f"has {size_key}: {expected[size_key]}; the file is damaged: run "
                        f"`spritegen verify {self.path}` and rebuild it"
                    )
                continue
            for key in names:
                ds = f[group].get(key) if isinstance(f[group], h5py.Group) else None
                if not isinstance(ds, h5py.Dataset):
                    raise DatasetError(
                        f"{self.path}: evaluation set /{group} has no dataset '{key}'; the file "
                        f"is damaged: run `spritegen verify {self.path}` and rebuild it"
                    )
                if key.startswith("images") and (ds.ndim != 4 or ds.dtype != np.uint8):
                    dims = ", ".join(map(str, image_shape))
                    raise DatasetError(
                        f"{self.path}: evaluation set /{group}/{key} has shape {ds.shape} "
                        f"{ds.dtype}; expected (N, {dims}) "
                        f"uint8 like /images; the file is damaged: rebuild it"
                    )

        self._batch_size = self._check_batch_sizes()

    def _check_batch_sizes(self) -> int:
        """L, the stored spec's batch size, which every Kim–Mnih and Higgins group must give as
        its ``batch_size`` attribute (the check ``spritegen verify`` makes, in its words): a
        value of 'x' or [16, 16] was a ValueError or TypeError traceback when scored, 0 an error
        naming neither the file nor the group."""
        batch_size = stored_spec(self.path, self._file).evaluation.batch_size
        for group in STORED_SETS:
            if group in self._file and "factor_index" in STORED_SETS[group]:
                fault = group_attr_fault(self._file, group, "batch_size", batch_size)
                if fault:
                    raise DatasetError(
                        f"{self.path}: {fault}; the file is damaged: run `spritegen verify "
                        f"{self.path}` and rebuild it"
                    )
        return batch_size

    def _expected_sets(self) -> dict[str, int]:
        """The evaluation sizes the stored spec made the build write. Version-1 files have no
        i.i.d. sample sets."""
        sizes = dataclasses.asdict(stored_spec(self.path, self._file).evaluation)
        version = self._file.attrs.get("format_version", 1)
        return {
            key: int(value)
            for key, value in sizes.items()
            if isinstance(value, int) and value > 0 and (version >= 2 or "random" not in key)
        }

    def _group(self, name: str, metric: str | None = None, choosable: bool = True):
        """The evaluation group ``name``, or a DatasetError naming the metric that needs it and
        the spec field that left it out (a missing group the spec plans was refused when the
        source was made, as damage)."""
        if name not in self._file:
            metric = metric or next(m for m, sets in METRIC_SETS.items() if name in sets)
            size_key = name.removeprefix("eval/").replace("/", "_")
            left_out = " and ".join(dict.fromkeys([metric, *self._unscorable()]))
            advice = f"score without {left_out}, or " if choosable else ""
            raise DatasetError(
                f"{self.path}: metric '{metric}' needs the evaluation set /{name}, which this "
                f"file does not hold: its spec sets evaluation.{size_key} to 0; {advice}rebuild "
                f"with evaluation.{size_key} above 0"
            )
        return self._file[name]

    def _num_factors(self) -> int:
        for name in ("eval/kim_mnih/train/factors", "eval/higgins/train/factors_a", "factors"):
            if name in self._file:
                shape = self._file[name].shape
                if len(shape) == 2:
                    return int(shape[1])
        raise DatasetError(f"{self.path}: cannot tell the number of factors (no factor arrays)")

    def _stream(self, ds, rows: int) -> ImageStream:
        if ds.ndim != 4 or ds.dtype != np.uint8:
            raise DatasetError(
                f"{self.path}: {ds.name} must be (N, H, W, C) uint8, got {ds.shape} {ds.dtype}"
            )
        identity = file_identity(self.path)
        if identity is None:
            return ImageStream(total=rows, read=lambda a, b: self._read(ds, a, b))
        nbytes = rows * int(np.prod(ds.shape[1:]))
        whole: list[np.ndarray | None] = []  # the kept set, or None to stream; asked once

        def read(a: int, b: int) -> np.ndarray:
            if not whole:  # first read: the whole set, kept if it fits (setcache)
                load = functools.partial(self._read, ds, 0, rows)
                whole.append(EVAL_SETS.get(identity, ds.name, rows, nbytes, load))
            kept = whole[0]
            return self._read(ds, a, b) if kept is None else kept[a:b].copy()

        return ImageStream(total=rows, read=read)

    def _read(self, ds, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of ``ds``, each chunk checked against the build's checksum; a
        corrupt or altered chunk is a DatasetError naming its rows."""
        return read_verified_rows(self._file, Path(self.path), ds.name, start, stop)

    def _take(self, group, n: int, batch_size: int, what: str, keys: tuple[str, ...]):
        stored_l = self._batch_size  # every group's attribute, checked when the source was made
        if stored_l != batch_size:
            raise DatasetError(
                f"{self.path}: {group.name} stores batches of L={stored_l} images but "
                f"batch_size={batch_size} was asked for; use preset 'stored', which takes L "
                "from the file"
            )
        fi = group["factor_index"]
        if fi.shape[0] < n:
            raise DatasetError(
                f"{self.path}: {group.name} holds {fi.shape[0]} {what} but {n} were asked for; "
                "use a smaller preset (or preset 'stored': all the file holds) or rebuild with "
                "larger evaluation sets"
            )
        factor_index = np.asarray(fi[:n], dtype=np.int64)
        if factor_index.size and (factor_index.min() < 0 or factor_index.max() >= self.num_factors):
            raise DatasetError(
                f"{self.path}: {group.name}/factor_index has values outside "
                f"0..{self.num_factors - 1}"
            )
        streams = []
        for key in keys:
            ds = group[key]
            if ds.shape[0] < n * batch_size:
                raise DatasetError(
                    f"{self.path}: {ds.name} has {ds.shape[0]} rows, fewer than "
                    f"{fi.shape[0]} {what} x L={batch_size}"
                )
            streams.append(self._stream(ds, n * batch_size))
        return factor_index, streams

    def variance_images(self, n: int, rng: np.random.Generator | None = None) -> ImageStream:
        _check_sizes(n)
        ds = self._group("eval/variance")["images"]
        if ds.shape[0] < n:
            raise DatasetError(
                f"{self.path}: /eval/variance holds {ds.shape[0]} images but {n} were asked for; "
                "use a smaller preset (or preset 'stored': all the file holds) or rebuild with "
                "larger evaluation sets"
            )
        return self._stream(ds, n)

    def kim_mnih_votes(
        self, split: str, n: int, batch_size: int, rng: np.random.Generator | None = None
    ) -> VoteSet:
        _check_split(split)
        _check_sizes(n, batch_size)
        group = self._group(f"eval/kim_mnih/{split}")
        factor_index, (images,) = self._take(group, n, batch_size, "votes", ("images",))
        return VoteSet(factor_index, batch_size, images)

    def higgins_pairs(
        self, split: str, n: int, batch_size: int, rng: np.random.Generator | None = None
    ) -> PairSet:
        _check_split(split)
        _check_sizes(n, batch_size)
        group = self._group(f"eval/higgins/{split}")
        factor_index, (a, b) = self._take(group, n, batch_size, "points", ("images_a", "images_b"))
        return PairSet(factor_index, batch_size, a, b)


# --------------------------------------------------------------------------------------------
# Live oracle


class OracleSource:
    """Samples and renders evaluation batches on the fly from a ground-truth oracle.

    The oracle is anything implementing ``spritegen.groundtruth.GroundTruth`` (checked once,
    here): ``spritegen.oracle.Oracle``, the dSprites/3dshapes grid oracles, the discretising
    adapter, or a user's own simulator. Votes and pairs come from the same sampler a build uses
    for its stored sets (``spritegen.evalsets``): a factor k uniformly, L independent factor
    vectors, then factor k overwritten with one shared value (Kim–Mnih) or copied row by row
    from batch a into batch b (Higgins), as disentanglement_lib draws them.
    """

    kind = "oracle"

    def __init__(self, oracle: object) -> None:
        self.oracle = check_ground_truth(oracle, "live oracle")
        self.num_factors = int(self.oracle.num_factors)

    def close(self) -> None:
        pass

    def describe(self) -> dict:
        return {"kind": self.kind, "oracle": type(self.oracle).__name__}

    def _stream(self, factors: np.ndarray) -> ImageStream:
        def read(a: int, b: int) -> np.ndarray:
            images = np.asarray(self.oracle.render(factors[a:b]))
            if images.ndim != 4 or images.shape[0] != b - a or images.dtype != np.uint8:
                raise SpecError(
                    f"oracle.render must return ({b - a}, H, W, C) uint8 images, got "
                    f"{images.shape} {images.dtype}"
                )
            return images

        return ImageStream(total=len(factors), read=read)

    def variance_images(self, n: int, rng: np.random.Generator) -> ImageStream:
        _check_sizes(n)
        return self._stream(draw_factors(self.oracle, n, rng))

    def kim_mnih_votes(
        self, split: str, n: int, batch_size: int, rng: np.random.Generator
    ) -> VoteSet:
        _check_split(split)
        _check_sizes(n, batch_size)
        factors, factor_index = kim_mnih_factors(self.oracle, n, batch_size, rng)
        return VoteSet(factor_index, batch_size, self._stream(factors), {"factors": factors})

    def higgins_pairs(
        self, split: str, n: int, batch_size: int, rng: np.random.Generator
    ) -> PairSet:
        _check_split(split)
        _check_sizes(n, batch_size)
        fa, fb, factor_index = higgins_factors(self.oracle, n, batch_size, rng)
        return PairSet(
            factor_index,
            batch_size,
            self._stream(fa),
            self._stream(fb),
            {"factors_a": fa, "factors_b": fb},
        )

    def random_samples(self, split: str, n: int, rng: np.random.Generator) -> SampleSet:
        _check_split(split)
        _check_sizes(n)
        factors = draw_factors(self.oracle, n, rng)
        return SampleSet(factors, self._stream(factors))


Source = StoredSource | OracleSource


def _is_h5py(obj) -> bool:
    return type(obj).__module__.split(".")[0] == "h5py"


@contextlib.contextmanager
def open_source(obj) -> Iterator[Source]:
    """Turn what a user passed as ``source`` into a Source, closing it afterwards if we opened it.

    Accepted: a StoredSource/OracleSource; a dataset path (str or os.PathLike); an open
    ``h5py.File``; a ``benchmark.datasets.DataHandle`` (its ``metric_source()``); any live
    oracle (``spritegen.groundtruth.GroundTruth``).
    """
    if isinstance(obj, (StoredSource, OracleSource)):
        yield obj
        return
    metric_source = getattr(obj, "metric_source", None)
    if callable(metric_source):  # a benchmark.datasets.DataHandle: its stored sets or its oracle
        obj = metric_source()
    if isinstance(obj, (str, os.PathLike)):
        source = StoredSource.open(obj)
        try:
            yield source
        finally:
            source.close()
        return
    if _is_h5py(obj):
        if not obj:  # h5py's own error was "Not a file or file object", from deep inside
            raise DatasetError(
                "the h5py file given as source is closed; pass the dataset's path, or a file "
                "that is still open"
            )
        yield StoredSource(obj)
        return
    yield OracleSource(obj)
