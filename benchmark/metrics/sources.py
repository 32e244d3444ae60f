"""Where the metrics get their images: a dataset file's stored evaluation sets, or a live oracle.

Both kinds of source hand the metric code the same three things, so the metric arithmetic is
written once:

- ``variance_images(n, rng)``: n random images (Kim–Mnih's global variance);
- ``kim_mnih_votes(split, n, L, rng)``: n votes of L images, every image of vote v sharing the
  value of factor ``factor_index[v]``, the other factors random;
- ``higgins_pairs(split, n, L, rng)``: n pairs of L-image batches, row i of batch a and row i of
  batch b sharing the value of factor ``factor_index[p]``.

Images come as an ``ImageStream`` read (or rendered) chunk by chunk, so that the 640,000 images
of a full Kim–Mnih train set never sit in memory at once.

A stored source reads the first n votes/points of the file's sets (``docs/format.md``); the
random state is not used, so a stored file gives the same score for every seed. A live source
samples its own batches from the random state, so the same seed gives the same batches.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from spritegen.errors import DatasetError, SpecError

SPLITS = ("train", "eval")


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


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise SpecError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")


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
        self.path = path if path is not None else getattr(file, "filename", "<h5py file>")
        if "eval" not in file:
            self.close()
            raise DatasetError(
                f"{self.path}: no evaluation sets (/eval) in this file; rebuild it with "
                "'spritegen build' (which writes them) or score against a live oracle"
            )
        self.num_factors = self._num_factors()

    @classmethod
    def open(cls, path: str | os.PathLike) -> StoredSource:
        from spritegen.datafile import open_dataset

        return cls(open_dataset(path), path=os.fspath(path), owned=True)

    def close(self) -> None:
        if self._owned:
            self._owned = False
            self._file.close()

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.path)}

    def stored_preset(self):
        """Sizes of everything this file holds, as a Preset named "stored"."""
        from benchmark.metrics.presets import Preset

        km_tr, km_ev = self._group("eval/kim_mnih/train"), self._group("eval/kim_mnih/eval")
        hg_tr, hg_ev = self._group("eval/higgins/train"), self._group("eval/higgins/eval")
        sizes = {int(g.attrs.get("batch_size", 0)) for g in (km_tr, km_ev, hg_tr, hg_ev)}
        if len(sizes) != 1:
            raise DatasetError(
                f"{self.path}: evaluation sets use different batch sizes {sorted(sizes)}"
            )
        return Preset(
            "stored",
            batch_size=sizes.pop(),
            num_train=min(km_tr["factor_index"].shape[0], hg_tr["factor_index"].shape[0]),
            num_eval=min(km_ev["factor_index"].shape[0], hg_ev["factor_index"].shape[0]),
            num_variance=self._group("eval/variance")["images"].shape[0],
        )

    def _group(self, name: str):
        if name not in self._file:
            raise DatasetError(
                f"{self.path}: evaluation set /{name} is missing; rebuild the file with "
                "'spritegen build' to get complete evaluation sets"
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
        return ImageStream(total=rows, read=lambda a, b: self._read(ds, a, b))

    def _read(self, ds, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of ``ds``; a corrupt chunk is a DatasetError naming its rows."""
        try:
            return ds[start:stop]
        except OSError:
            pass
        rows = ds.chunks[0] if ds.chunks else stop - start
        for lo in range(start - start % rows, stop, rows):  # find the chunk that fails
            hi = min(lo + rows, ds.shape[0])
            try:
                ds[lo:hi]
            except OSError:
                raise DatasetError(
                    f"{self.path}: {ds.name} rows {lo}..{hi - 1} (chunk {lo // rows}) cannot be "
                    f"read (corrupt compressed data); run `spritegen verify {self.path}` to list "
                    f"every damaged chunk, and rebuild the file"
                ) from None
        raise DatasetError(f"{self.path}: {ds.name} rows {start}..{stop - 1} cannot be read")

    def _take(self, group, n: int, batch_size: int, what: str, keys: tuple[str, ...]):
        stored_l = int(group.attrs.get("batch_size", 0))
        if stored_l != batch_size:
            raise DatasetError(
                f"{self.path}: {group.name} stores batches of L={stored_l} images but "
                f"batch_size={batch_size} was asked for; use batch_size={stored_l} or a live "
                "oracle"
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
        group = self._group(f"eval/kim_mnih/{split}")
        factor_index, (images,) = self._take(group, n, batch_size, "votes", ("images",))
        return VoteSet(factor_index, batch_size, images)

    def higgins_pairs(
        self, split: str, n: int, batch_size: int, rng: np.random.Generator | None = None
    ) -> PairSet:
        _check_split(split)
        group = self._group(f"eval/higgins/{split}")
        factor_index, (a, b) = self._take(group, n, batch_size, "points", ("images_a", "images_b"))
        return PairSet(factor_index, batch_size, a, b)


# --------------------------------------------------------------------------------------------
# Live oracle


class OracleSource:
    """Samples and renders evaluation batches on the fly from a ground-truth oracle.

    The oracle is anything with ``sample_factors(n, rng) -> (n, K)`` and
    ``render(factors (n, K)) -> (n, H, W, C) uint8`` (``spritegen.oracle.Oracle``, or a user's own
    simulator); ``num_factors`` and ``sample_column(k, n, rng)`` are used when present. Batches
    are drawn the way disentanglement_lib draws them: a factor k uniformly, L independent factor
    vectors, then factor k overwritten with one shared value (Kim–Mnih) or copied row by row from
    batch a into batch b (Higgins).
    """

    kind = "oracle"

    def __init__(self, oracle) -> None:
        if not (
            callable(getattr(oracle, "sample_factors", None))
            and callable(getattr(oracle, "render", None))
        ):
            raise SpecError(
                "source must be a dataset path, an open dataset file or a live oracle with "
                f"sample_factors(n, rng) and render(factors); got {type(oracle).__name__}"
            )
        self.oracle = oracle
        k = getattr(oracle, "num_factors", None)
        if k is None:
            k = self._sample(1, np.random.default_rng(0)).shape[1]
        self.num_factors = int(k)
        if self.num_factors < 1:
            raise SpecError(f"oracle must have at least 1 factor, got {self.num_factors}")

    def close(self) -> None:
        pass

    def describe(self) -> dict:
        return {"kind": self.kind, "oracle": type(self.oracle).__name__}

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        f = np.array(self.oracle.sample_factors(n, rng), copy=True)
        if f.ndim != 2 or f.shape[0] != n:
            raise SpecError(
                f"oracle.sample_factors({n}, rng) must return shape ({n}, K), got {f.shape}"
            )
        return f

    def _column(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        sample_column = getattr(self.oracle, "sample_column", None)
        if callable(sample_column):
            return np.asarray(sample_column(k, n, rng))
        return self._sample(n, rng)[:, k]

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

    def _factor_index(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, self.num_factors, size=n).astype(np.int64)

    def variance_images(self, n: int, rng: np.random.Generator) -> ImageStream:
        return self._stream(self._sample(n, rng))

    def kim_mnih_votes(
        self, split: str, n: int, batch_size: int, rng: np.random.Generator
    ) -> VoteSet:
        _check_split(split)
        factor_index = self._factor_index(n, rng)
        factors = self._sample(n * batch_size, rng)
        votes = factors.reshape(n, batch_size, -1)
        for k in range(self.num_factors):  # a loop over factors, not over votes
            chosen = np.flatnonzero(factor_index == k)
            if chosen.size:
                votes[chosen, :, k] = self._column(k, chosen.size, rng)[:, None]
        return VoteSet(factor_index, batch_size, self._stream(factors), {"factors": factors})

    def higgins_pairs(
        self, split: str, n: int, batch_size: int, rng: np.random.Generator
    ) -> PairSet:
        _check_split(split)
        factor_index = self._factor_index(n, rng)
        fa = self._sample(n * batch_size, rng)
        fb = self._sample(n * batch_size, rng)
        a3 = fa.reshape(n, batch_size, -1)
        b3 = fb.reshape(n, batch_size, -1)
        for k in range(self.num_factors):
            chosen = np.flatnonzero(factor_index == k)
            b3[chosen, :, k] = a3[chosen, :, k]
        return PairSet(
            factor_index,
            batch_size,
            self._stream(fa),
            self._stream(fb),
            {"factors_a": fa, "factors_b": fb},
        )


Source = StoredSource | OracleSource


def _is_h5py(obj) -> bool:
    return type(obj).__module__.split(".")[0] == "h5py"


@contextlib.contextmanager
def open_source(obj) -> Iterator[Source]:
    """Turn what a user passed as ``source`` into a Source, closing it afterwards if we opened it.

    Accepted: a StoredSource/OracleSource; a dataset path (str or os.PathLike); an open
    ``h5py.File``; any live oracle (``sample_factors`` and ``render``).
    """
    if isinstance(obj, (StoredSource, OracleSource)):
        yield obj
        return
    if isinstance(obj, (str, os.PathLike)):
        source = StoredSource.open(obj)
        try:
            yield source
        finally:
            source.close()
        return
    if _is_h5py(obj):
        yield StoredSource(obj)
        return
    yield OracleSource(obj)
