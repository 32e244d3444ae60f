"""Datasets the benchmark trains and scores on: spritegen files and the field's standard grids.

``open_data("dsprites:PATH")``, ``open_data("3dshapes:PATH")`` or ``open_data("PATH.h5")``
(a spritegen dataset) give a ``DataHandle`` with what ``bench run`` and ``bench score`` need: a
training set in memory, the source the metrics read (``metric_source``), and a live oracle.
(``open_source``/``DataSource`` are the former names, kept as aliases.) A plain path whose
content is dSprites or 3dshapes is recognised as such. Nothing is downloaded: a missing or wrong
file gets one ``DatasetError`` line saying where the file comes from.

The readers are imported lazily, so ``import benchmark.datasets`` costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from spritegen.datafile import dataset_path
from spritegen.errors import DatasetError, SpecError, check_flag

if TYPE_CHECKING:
    from benchmark.datasets.grid import GridOracle
    from spritegen.groundtruth import GroundTruth
    from spritegen.oracle import Oracle

__all__ = [
    "DATASET_KINDS",
    "DataSpec",
    "DataHandle",
    "parse_data_spec",
    "open_data",
    "open_dsprites",
    "open_shapes3d",
    "GridOracle",
    "verify_checksum",
]

DATASET_KINDS = ("spritegen", "dsprites", "3dshapes")
_ALIASES = {"shapes3d": "3dshapes", "3d-shapes": "3dshapes", "dsprite": "dsprites"}
_LAZY = {
    "open_dsprites": ("benchmark.datasets.dsprites", "open_dsprites"),
    "open_shapes3d": ("benchmark.datasets.shapes3d", "open_shapes3d"),
    "GridOracle": ("benchmark.datasets.grid", "GridOracle"),
    "verify_checksum": ("benchmark.datasets.checksums", "verify_checksum"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class DataSpec:
    """A parsed ``--data`` value. ``kind`` None means "decide from the file's content"."""

    kind: str | None
    path: Path


def parse_data_spec(spec: str | Path, flag: str = "--data") -> DataSpec:
    """``KIND:PATH`` with KIND in spritegen, dsprites, 3dshapes (alias shapes3d), or a plain path.

    A string that names an existing file is always a path, even with a colon in it. ``flag``
    names the value in messages as the command takes it (``bench score``'s positional DATA).
    """
    if isinstance(spec, Path):
        return DataSpec(None, spec)
    text = str(spec).strip()
    if not text:
        raise SpecError(
            f"{flag} is empty; give a spritegen dataset path, dsprites:PATH or 3dshapes:PATH"
        )
    head, sep, rest = text.partition(":")
    if not sep or Path(text).exists() or "/" in head or "\\" in head or len(head) == 1:
        return DataSpec(None, Path(text))  # a plain path (a one-letter head is a drive letter)
    kind = _ALIASES.get(head.lower(), head.lower())
    if kind not in DATASET_KINDS:
        raise SpecError(
            f"{flag} {text!r}: unknown dataset kind {head!r}; allowed: "
            f"{', '.join(DATASET_KINDS)} (as KIND:PATH), or a plain spritegen path"
        )
    if not rest:
        raise SpecError(f"{flag} {text!r}: missing the path after '{head}:'")
    return DataSpec(kind, Path(rest))


def _detect_kind(path: Path) -> str:
    """Which dataset a plain path holds, from its content (spritegen unless it is a known grid)."""
    from benchmark.datasets import checks

    if not path.is_file():
        return "spritegen"  # let the spritegen reader give its own "no such file" message
    container = checks.sniff(path)
    if container == "zip":
        import zipfile

        try:
            with zipfile.ZipFile(path) as zf:
                if "imgs.npy" in zf.namelist():
                    return "dsprites"
        except zipfile.BadZipFile:
            pass
        return "dsprites" if path.suffix == ".npz" else "spritegen"
    if container == "hdf5":
        import h5py

        try:
            with h5py.File(path, "r") as fh:
                keys = set(fh.keys())
        except OSError:
            return "spritegen"
        if "factors" not in keys and {"images", "labels"} <= keys:
            return "3dshapes"
        if {"imgs", "latents"} <= keys:
            return "dsprites"
    return "spritegen"


class DataHandle:
    """One opened ``--data`` value: training images, the metrics' source, and a live oracle.

    For dSprites and 3dshapes the metrics' source is the grid oracle itself (they are scored
    live, fixing a factor by fixing its grid index). For a spritegen file it is the path, so the
    metrics use the evaluation sets stored in the file.
    """

    def __init__(
        self,
        kind: str,
        path: Path,
        grid: GridOracle | None = None,
        digests: dict[str, str] | None = None,
    ) -> None:
        self.kind = kind
        self.path = path
        self._grid = grid
        self._digests = digests or {}  # a spritegen file's, read by open_data (identity)
        self._live: Oracle | None = None

    @property
    def is_grid(self) -> bool:
        return self._grid is not None

    def oracle(self) -> GroundTruth:
        """A live oracle: the grid oracle, or ``spritegen.oracle.Oracle.from_file(path)``."""
        if self._grid is not None:
            return self._grid
        if self._live is None:
            from spritegen.oracle import Oracle

            self._live = Oracle.from_file(self.path)
        return self._live

    def metric_source(self) -> str | GroundTruth:
        """What to pass as ``source`` to ``benchmark.metrics`` functions: the file (its stored
        evaluation sets) or, for a grid dataset, its oracle (scored live)."""
        return self._grid if self._grid is not None else str(self.path)

    def read_training_set(
        self, limit: int | None = None, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(images (N, H, W, C) uint8, factors (N, K) float32), in memory.

        Grid datasets return grid indices as factors; a ``limit`` below their size draws a random
        subset with ``rng`` (their rows are in grid order). spritegen files return their first
        ``limit`` rows (already a random sample), checked against the build's checksums, and
        ignore ``rng``.
        """
        if self._grid is not None:
            return self._grid.read_training_set(limit, rng)
        from benchmark.datasets.verified import read_verified_training_set

        return read_verified_training_set(self.path, limit=limit)

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return tuple(self.oracle().observation_shape)  # type: ignore[return-value]

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(self.oracle().factor_names)

    @property
    def num_factors(self) -> int:
        return int(self.oracle().num_factors)

    def describe(self) -> dict[str, Any]:
        """JSON-ready facts for a run's config.json."""
        info: dict[str, Any] = {"kind": self.kind, "path": str(self.path)}
        if self._grid is not None:
            info["factor_names"] = list(self._grid.factor_names)
            info["factors_num_classes"] = self._grid.factors_num_classes
            info["num_images"] = self._grid.num_images
        return info

    def identity(self) -> dict[str, Any]:
        """What the data a run trains on are, beyond their path: recorded in config.json and
        in every checkpoint, so a resume on a file rebuilt or replaced at the same path is
        refused. A spritegen file has its build's content digest (``content_sha256``, checked
        against the chunks when the training set is read) and ``dataset_id``; dSprites and
        3dshapes have no digest of their own, so their grid and file size stand for them (hashing
        hundreds of MB on every start is what ``open_data(verify=True)`` does on request).
        A spritegen file's are read when ``open_data`` checks the file, not by opening it again."""
        if self._grid is not None:
            return {
                "kind": self.kind,
                "factors_num_classes": list(self._grid.factors_num_classes),
                "num_images": int(self._grid.num_images),
                "file_bytes": self.path.stat().st_size,
            }
        return {"kind": self.kind, **self._digests}

    def close(self) -> None:
        for obj in (self._grid, self._live):
            if obj is not None and hasattr(obj, "close"):
                obj.close()

    def __enter__(self) -> DataHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<DataHandle {self.kind}:{self.path}>"


def open_data(
    spec: str | Path | DataSpec,
    *,
    in_memory: bool = False,
    verify: bool = False,
    flag: str = "--data",
) -> DataHandle:
    """Open a ``--data`` value (see ``parse_data_spec``); errors are one-line ``DatasetError``s.

    ``in_memory`` reads a grid dataset's images into memory on first use (fast sampling, costs
    the images' size); ``verify`` hashes a published file against its known digest.
    """
    # read by truth value, in_memory="no" loaded every image (3.0 GB for dSprites, 5.9 GB for
    # 3dshapes) and verify="no" hashed the whole file
    in_memory, verify = check_flag("in_memory", in_memory), check_flag("verify", verify)
    if not isinstance(spec, DataSpec):  # None or bytes were "None: no such spritegen dataset"
        dataset_path(
            spec, "open_data", " (dsprites:PATH or 3dshapes:PATH for those), or a DataSpec"
        )
    parsed = spec if isinstance(spec, DataSpec) else parse_data_spec(spec, flag)
    path = parsed.path.expanduser()
    kind = parsed.kind or _detect_kind(path)
    if kind == "dsprites":
        from benchmark.datasets.dsprites import open_dsprites

        return DataHandle(kind, path, open_dsprites(path, in_memory=in_memory, verify=verify))
    if kind == "3dshapes":
        from benchmark.datasets.shapes3d import open_shapes3d

        return DataHandle(kind, path, open_shapes3d(path, in_memory=in_memory, verify=verify))
    if not path.exists():  # a folder or a device is named as such by open_dataset
        raise DatasetError(
            f"{path}: no such spritegen dataset; make one with `spritegen build`, "
            "or pass dsprites:PATH / 3dshapes:PATH for the published datasets"
        )
    from spritegen.datafile import open_dataset, plain_value

    with open_dataset(path) as f:  # validates: complete spritegen file of a supported version
        digests = {k: str(plain_value(f.attrs[k])) for k in ("dataset_id", "content_sha256")}
    return DataHandle("spritegen", path, digests=digests)


# Former names (before "source" was kept for the metrics' input alone).
DataSource = DataHandle
open_source = open_data
