"""Reading dataset files: the one place that knows how to tell a good file from a bad one.

A file is accepted only when it says it is a spritegen dataset of a format version this package
reads *and* its build completed. Everything else gets a one-line ``DatasetError`` naming what was
found, so that a foreign HDF5 file, an interrupted build or a newer format never reaches the
training loop or the metrics as if it were data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import json
import math
import os
import re
import stat
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from spritegen.errors import DatasetBusyError, DatasetError, SpecError, SpritegenWarning, quote
from spritegen.evalsets import stored_image_sets
from spritegen.factors import FACTOR_NAMES, FACTORS, SHAPE_INDEX, SYMMETRY_2D, SYMMETRY_3D
from spritegen.memory import check_fits
from spritegen.render import RENDERER_KINDS
from spritegen.spec import DatasetSpec, parse_spec_text, plain

if TYPE_CHECKING:
    import h5py

FORMAT_NAME = "spritegen-dataset"
#: 2 added the i.i.d. sample sets /eval/random/{train,eval}; version-1 files stay readable.
FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)


def dataset_path(path: Any, caller: str, also: str = "") -> Path:
    """``path`` as a Path, or a TypeError naming ``caller`` and what it takes (``also``: more
    that it takes). None and bytes failed inside pathlib ("expected str, bytes or os.PathLike
    object, not NoneType"; bytes "should be a str object"), naming bytes as allowed and not
    the function that was called; h5py would open bytes, but every message names paths as text."""
    if isinstance(path, (str, os.PathLike)) and isinstance(os.fspath(path), str):
        return Path(path)
    raise TypeError(
        f"{caller} takes the path of a dataset file, as str or pathlib.Path{also}; got "
        f"{quote(path) if isinstance(path, bytes) else type(path).__name__}"
    )


def open_dataset(
    path: str | os.PathLike[str], require_complete: bool = True, check_arrays: bool = True
) -> h5py.File:
    """Open a dataset read-only after checking its format, version and completion flag, and,
    for a complete file, that its attributes, metadata, arrays and stored spec agree.

    ``check_arrays=False`` leaves the image sets' shapes, row counts and agreement with the
    stored spec, and the ``/metadata`` tables' agreement with it, unchecked:
    ``spritegen verify`` reports each of those as a FAIL line among the
    file's other problems, where every other reader refuses the file at the first one."""
    path = dataset_path(path, "open_dataset")
    _check_regular_file(path)
    f = _open_hdf5(path)
    try:
        check_dataset(f, path, require_complete, check_arrays)
    except BaseException:
        f.close()
        raise
    return f


def check_dataset(
    f: h5py.File,
    path: str | os.PathLike[str] | None = None,
    require_complete: bool = True,
    check_arrays: bool = True,
) -> None:
    """The checks ``open_dataset`` makes, for a file the caller opened with h5py itself, so that
    a file handed over open is refused for the same reasons, in the same words, as its path."""
    path = Path(path) if path is not None else Path(f.filename)
    with damaged_structure(path):
        _check_dataset(f, path, require_complete, check_arrays)


def _check_dataset(f: h5py.File, path: Path, require_complete: bool, check_arrays: bool) -> None:
    import h5py

    fmt = f.attrs.get("format")
    if _text(fmt) != FORMAT_NAME:
        raise DatasetError(
            f"{path}: not a spritegen dataset (attribute 'format' is "
            f"{quote(plain_value(fmt))}, expected {FORMAT_NAME!r}); bench reads dSprites and "
            f"3dshapes given as dsprites:PATH or 3dshapes:PATH"
        )
    version = f.attrs.get("format_version", None)
    if not _is_int(version) or int(version) not in SUPPORTED_VERSIONS:
        raise DatasetError(
            f"{path}: format version {quote(plain_value(version))} is not supported by this "
            f"spritegen (reads {', '.join(map(str, SUPPORTED_VERSIONS))})"
        )
    if require_complete:
        _check_complete(path, f)
    for name in ("images", "factors"):
        if name not in f:
            raise DatasetError(f"{path}: dataset '/{name}' is missing")
        if not isinstance(f[name], h5py.Dataset):
            raise DatasetError(
                f"{path}: '/{name}' is a group, not a dataset; not a file written by "
                "'spritegen build' (rebuild it)"
            )
    if require_complete:
        _check_structure(path, f, check_arrays)


def raised_by_hdf5(exc: BaseException) -> bool:
    """Whether ``exc`` comes from HDF5 itself: h5py turns HDF5's error stack into a plain
    RuntimeError, KeyError, OSError or ValueError, told from a bug of ours only by being raised
    inside h5py's own code (its Cython ``.pyx`` frames or its Python package)."""
    tb = exc.__traceback__
    if tb is None or not isinstance(exc, (RuntimeError, KeyError, OSError, ValueError)):
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return "h5py" in Path(tb.tb_frame.f_code.co_filename).parts


def hdf5_message(exc: BaseException) -> str:
    """HDF5's words for an error ``raised_by_hdf5``, as one short line (a KeyError's text without
    the quotes its ``str`` adds)."""
    detail = " ".join(str(exc.args[0] if exc.args else exc).split())
    return detail if len(detail) <= 120 else detail[:117] + "..."


def damaged_file_error(path: str | os.PathLike[str], exc: BaseException) -> DatasetError:
    """The one line for a file HDF5 opened but cannot walk (a flipped bit in a B-tree, a heap or
    an object header): HDF5's own words and what repairs it."""
    return DatasetError(
        f"{path}: the file is damaged: HDF5 cannot read its structure ({hdf5_message(exc)}); "
        "rebuild it with 'spritegen build'"
    )


@contextlib.contextmanager
def damaged_structure(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn an error HDF5 raises while the file's objects are looked up or read into
    ``damaged_file_error``: one bit flipped in a file's metadata made ``info``, ``verify`` and
    ``show`` end in an h5py traceback (``RuntimeError: B-tree iteration failed``, ``KeyError:
    Unable to synchronously open object (message not aligned)``). Errors handled closer to the
    read (a corrupt chunk, ``read_rows``) are named there first."""
    try:
        yield
    except (RuntimeError, KeyError, OSError, ValueError) as exc:
        if not raised_by_hdf5(exc):
            raise
        raise damaged_file_error(path, exc) from None


def _check_regular_file(path: Path) -> None:
    """Refuse what HDF5 cannot open as a dataset, by what it is: a missing path, a folder, or
    something that is not a regular file (``/dev/null``, a FIFO, a socket), which is not "missing"
    even though it holds no dataset."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise DatasetError(f"{path}: no such file") from None
    except OSError as exc:  # e.g. a name too long for the file system, a folder we cannot enter
        raise DatasetError(f"{quote(str(path))}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise DatasetError(f"{path}: a folder, not a dataset file")
    if not stat.S_ISREG(mode):
        raise DatasetError(
            f"{path}: not a regular file (a device, pipe or socket); give a dataset file written "
            "by 'spritegen build'"
        )


def _open_hdf5(path: Path) -> h5py.File:
    """``h5py.File(path, "r")``, with HDF5's one error for every failure told apart: a file that
    another process holds open for writing is good, and calling it corrupt would invite deleting
    it."""
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        if _is_lock_error(exc):
            raise DatasetBusyError(
                f"{path}: in use by another process (HDF5 could not lock it: a program has it "
                "open for writing); try again when that program finishes, or set "
                "HDF5_USE_FILE_LOCKING=FALSE if the file system does not support locks"
            ) from None
        if exc.errno == errno.EACCES:
            raise DatasetError(f"{path}: permission denied; cannot read it") from None
        raise DatasetError(f"{path}: not an HDF5 file (or it is truncated or corrupt)") from None


def _is_lock_error(exc: OSError) -> bool:
    """HDF5 locks a file while it is open (shared to read, exclusive to write) and says
    "unable to lock file, errno = 11" when another process holds the lock; h5py raises that as
    BlockingIOError (EAGAIN)."""
    return (
        isinstance(exc, BlockingIOError)
        or exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
        or "unable to lock file" in str(exc)
    )


#: What every complete file holds besides /images and /factors (docs/format.md); checked on
#: open so that ``info``, ``verify``, ``show`` and training never meet a half-formed file.
REQUIRED_ATTRS = (
    "spec",
    "dataset_id",
    "content_sha256",
    "renderer",
    "seed",
    "package_version",
    "renderer_info",
    "library_versions",
)
REQUIRED_DATASETS = (
    "checksums/images",
    "metadata/factor_names",
    "metadata/factor_kinds",
    "metadata/factor_low",
    "metadata/factor_high",
    "metadata/class_names/shape",
    "metadata/inactive_factor_names",
    "metadata/inactive_factor_values",
)


@dataclasses.dataclass(frozen=True)
class MetadataTable:
    """One dataset of ``/metadata``: its name below the group, the values a build of the spec
    writes there (h5py variable-length strings or float64) and the ``note`` attribute, if any."""

    name: str
    data: np.ndarray
    note: str | None = None

    @property
    def is_text(self) -> bool:
        return self.data.dtype.kind == "O"


def metadata_tables(spec: DatasetSpec) -> list[MetadataTable]:
    """The ``/metadata`` tables a build of ``spec`` writes, in the order it writes them: the one
    definition of what they hold, which the build writes and ``verify`` and ``open_dataset``
    compare a file's tables with (a reader using h5py alone relies on them, docs/format.md)."""
    import h5py

    def text(values: Iterable[str]) -> np.ndarray:
        return np.array(list(values), dtype=h5py.string_dtype())

    def numbers(values: Iterable[Any]) -> np.ndarray:
        return np.array(list(values), dtype=np.float64)

    active, inactive = FACTORS[: spec.factors], FACTORS[spec.factors :]
    shape = FACTORS[SHAPE_INDEX]
    fixed = spec.space.fixed
    tables = [
        MetadataTable("factor_names", text(f.name for f in active)),
        MetadataTable("factor_kinds", text(f.kind for f in active)),
        MetadataTable("factor_low", numbers(f.low for f in active)),
        MetadataTable(
            "factor_high",
            numbers(f.high if f.kind == "continuous" else f.num_classes for f in active),
        ),
        MetadataTable("factor_descriptions", text(f.description for f in active)),
        MetadataTable(
            "class_names/shape", text(shape.classes_3d if spec.renderer == "3d" else shape.classes)
        ),
        MetadataTable("inactive_factor_names", text(f.name for f in inactive)),
        MetadataTable(
            "inactive_factor_values",
            numbers(
                np.nan if f.name == "hue" else fixed[FACTOR_NAMES.index(f.name)] for f in inactive
            ),
            "hue NaN: an inactive hue means white",
        ),
    ]
    if spec.renderer == "2d":
        tables.append(
            MetadataTable(
                "symmetry_radians",
                numbers(SYMMETRY_2D[c] for c in shape.classes),
                "smallest in-plane rotation mapping each shape (class order) onto itself",
            )
        )
    else:
        periods = [SYMMETRY_3D[c] for c in shape.classes_3d]
        tables.append(
            MetadataTable(
                "symmetry_radians",
                numbers([t["rotation_period"], t["rotation_y_period"]] for t in periods),
                "per shape (class order): period of rotation (about x) and of rotation_y alone",
            )
        )
        tables.append(MetadataTable("symmetry_notes", text(str(t["joint"]) for t in periods)))
    return tables


def metadata_faults(f, spec: DatasetSpec, required_only: bool = False) -> list[str]:
    """How the file's ``/metadata`` tables differ from those a build of ``spec`` writes, one
    phrase per table (``/metadata/factor_names is ['foo', 'bar']; the stored spec gives
    ['pos_x', 'pos_y']``). An edited table showed wrong names or ranges in ``info`` and ``show``
    and to any h5py reader while ``verify`` said OK.

    A 3D file's symmetry tables are compared when present (3D files built before they existed
    lack them); ``required_only`` compares only ``REQUIRED_DATASETS``, the tables every reader
    relies on."""
    import h5py

    faults = []
    tables = metadata_tables(spec)
    for table in tables:
        path = f"metadata/{table.name}"
        required = path in REQUIRED_DATASETS
        if required_only and not required:
            continue
        found = f.get(path)
        if not isinstance(found, h5py.Dataset):
            # 3D files built before the 3D symmetry tables existed lack them
            older = spec.renderer == "3d" and table.name.startswith("symmetry_")
            if found is not None or not older:
                what = "missing" if found is None else "not a dataset"
                faults.append(f"/{path} is {what}; the stored spec gives {_shown(table.data)}")
            continue
        values = found[()]
        if table.is_text:
            same = found.dtype.kind in "OS" and values.shape == table.data.shape
            same = same and read_strings(found) == table.data.tolist()
        else:
            same = found.dtype.kind == "f" and values.shape == table.data.shape
            same = same and np.array_equal(values, table.data, equal_nan=True)
        if not same:
            faults.append(
                f"/{path} is {_shown(values)}; the stored spec gives {_shown(table.data)}"
            )
    meta = f.get("metadata")
    if not required_only and isinstance(meta, h5py.Group):
        known = {table.name for table in tables}
        extra: list[str] = []

        def note_extra(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Dataset) and name not in known:
                extra.append(name)

        meta.visititems(note_extra)
        faults += [f"/metadata/{name} is not a table the build writes" for name in extra]
    return faults


def _shown(values: Any) -> str:
    """A table's values in a fault line: text decoded, numbers as Python shows them, cut to 80
    characters."""
    value = plain_value(values)
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        value = [v.decode(errors="replace") for v in value]
    return quote(value)


def group_attr_fault(f, group: str, key: str, expected: object) -> str | None:
    """``/GROUP attribute 'KEY' is FOUND; the stored spec gives EXPECTED`` when an evaluation
    group's attribute is not what the build writes, else None: the words of ``verify``'s FAIL
    line and of a metric source's refusal (a ``batch_size`` of 'x' was a ValueError traceback
    when scored)."""
    import h5py

    obj = f.get(group)
    found = plain_value(obj.attrs.get(key)) if isinstance(obj, h5py.Group) else None
    if isinstance(found, bool) or found != expected:
        return f"/{group} attribute '{key}' is {quote(found)}; the stored spec gives {expected}"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _text(value: Any) -> str | None:
    """An attribute's value as text, or None when it is not text. h5py returns ``str`` for the
    strings the build writes and ``bytes`` for fixed-length ones; anything else (an array, a
    number, opaque bytes) is not text, and comparing it with a string must not be attempted
    (an array compares element-wise, and its truth value is an error)."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


def plain_value(value: Any) -> Any:
    """A value as Python shows it best in an error line: text decoded, numpy values unwrapped."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    return plain(value)


def _check_complete(path: Path, f) -> None:
    """The completion flag must be a boolean: ``bool("no")`` is True, so a string or a number
    read as a flag would pass any file off as finished."""
    done = f.attrs.get("complete", False)
    if not isinstance(done, (bool, np.bool_)):
        raise DatasetError(
            f"{path}: attribute 'complete' is {quote(plain_value(done))}; expected a boolean (True "
            "once the build finished); not a file written by 'spritegen build' (rebuild it)"
        )
    if not done:
        raise DatasetError(
            f"{path}: the build of this file did not complete; run the same "
            "'spritegen build' command again to finish it"
        )


def _is_hex(digits: int) -> Callable[[Any], bool]:
    return lambda value: re.fullmatch(f"[0-9a-f]{{{digits}}}", _text(value) or "") is not None


def _is_json_object(value: Any) -> bool:
    try:
        return isinstance(json.loads(_text(value) or ""), dict)
    except ValueError:
        return False


#: What each required attribute must hold, and how an error line names what is allowed: every
#: reader (info, info --json, verify, show, training) can then use them without a type check.
ATTR_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "spec": (lambda v: _text(v) is not None, "YAML text"),
    "dataset_id": (_is_hex(12), "12 lowercase hexadecimal digits"),
    "content_sha256": (_is_hex(64), "64 lowercase hexadecimal digits (a SHA-256)"),
    "renderer": (
        lambda v: _text(v) in RENDERER_KINDS,
        " or ".join(map(repr, RENDERER_KINDS)),
    ),
    "seed": (lambda v: _is_int(v) and int(v) >= 0, "an integer >= 0"),
    "package_version": (lambda v: _text(v) is not None, "text"),
    "renderer_info": (_is_json_object, "a JSON object"),
    "library_versions": (_is_json_object, "a JSON object"),
}


def _check_structure(path: Path, f, check_arrays: bool = True) -> None:
    import h5py

    for key in REQUIRED_ATTRS:
        if key not in f.attrs:
            raise DatasetError(
                f"{path}: attribute '{key}' is missing; not a complete file written by "
                "'spritegen build' (rebuild it)"
            )
        valid, allowed = ATTR_RULES[key]
        if not valid(f.attrs[key]):
            raise DatasetError(
                f"{path}: attribute '{key}' is not {allowed} (found "
                f"{quote(plain_value(f.attrs[key]))}); rebuild the file"
            )
    present = [f"checksums/{images_path}" for images_path, _ in stored_image_sets(f)]
    for name in REQUIRED_DATASETS + tuple(present):
        if not isinstance(f.get(name), h5py.Dataset):
            raise DatasetError(
                f"{path}: dataset '/{name}' is missing; not a complete file written by "
                "'spritegen build' (rebuild it)"
            )
    for name in present:
        if f[name].ndim != 2 or f[name].shape[1] != 32:
            raise DatasetError(
                f"{path}: dataset '/{name}' has shape {f[name].shape}; expected (chunks, 32) "
                "SHA-256 digests (rebuild the file)"
            )
    k = f["factors"].shape[1] if f["factors"].ndim == 2 else -1
    for name in ("factor_names", "factor_kinds", "factor_low", "factor_high"):
        if f[f"metadata/{name}"].shape != (k,):
            raise DatasetError(
                f"{path}: dataset '/metadata/{name}' has shape {f[f'metadata/{name}'].shape}; "
                f"expected one entry per factor column of /factors ({k})"
            )
    if check_arrays:
        spec = stored_spec(path, f)
        _check_image_sets(path, f, spec)
        faults = metadata_faults(f, spec, required_only=True)
        if faults:  # info, show and training labelled factors by an edited table
            raise DatasetError(
                f"{path}: {faults[0]}; the file was changed since the build: run "
                f"`spritegen verify {path}` and rebuild it"
            )


def stored_spec(path: str | os.PathLike[str], f) -> DatasetSpec:
    """The spec a file was built from (its ``spec`` attribute), parsed and validated.

    Warnings about how a spec was written (sizes left to a preset) concern the build, which is
    over; they are not repeated to every reader of the file.
    """
    text = _text(f.attrs.get("spec"))
    if text is None:
        raise DatasetError(
            f"{path}: attribute 'spec' is not YAML text (found "
            f"{quote(plain_value(f.attrs.get('spec')))}); rebuild the file"
        )
    return _parse_stored_spec(text, str(path))


@functools.lru_cache(maxsize=8)
def _parse_stored_spec(text: str, path: str) -> DatasetSpec:
    """Kept for the next reader of the same text: open_dataset parses a file's spec to check its
    arrays, and whoever opened the file (``Oracle.from_file``, ``show``, a metrics source) asks
    for it again. A spec is frozen; an unreadable one is not kept (its error is raised anew)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpritegenWarning)
            return parse_spec_text(text, source=f"{path} (stored spec)", built=True)
    except SpecError as exc:
        raise DatasetError(f"{path}: its stored spec is unreadable: {exc}") from None


def _check_image_sets(path: Path, f, spec: DatasetSpec) -> None:
    """Every image set's arrays agree with each other and with the stored spec.

    Readers index /factors by the rows they drew from /images and render the spec's factors
    into the image shape; a file where the row counts, the factor count or the image size
    disagree (edited, or assembled from parts of different builds) would fail deep inside
    them with an IndexError, or show wrong pictures, instead of being named here.
    """
    import h5py

    images = f["images"]
    if images.ndim != 4 or images.dtype != np.uint8:
        raise DatasetError(
            f"{path}: dataset '/images' has shape {images.shape} and type {images.dtype}; "
            "expected (N, H, W, C) uint8 (rebuild the file)"
        )
    for images_path, factors_path in stored_image_sets(f):
        imgs, facs = f[images_path], f.get(factors_path)
        if not isinstance(facs, h5py.Dataset) or facs.ndim != 2:
            found = "missing" if facs is None else f"of shape {getattr(facs, 'shape', 'none')}"
            raise DatasetError(
                f"{path}: dataset '/{factors_path}' is {found}; expected (rows of "
                f"/{images_path}, K) factor values (rebuild the file)"
            )
        if not isinstance(imgs, h5py.Dataset) or imgs.shape[1:] != spec.image_shape:
            raise DatasetError(
                f"{path}: dataset '/{images_path}' has shape {getattr(imgs, 'shape', None)}; "
                f"the stored spec makes images of (H, W, C) = {spec.image_shape} (the file is "
                "inconsistent; rebuild it)"
            )
        if imgs.shape[0] != facs.shape[0]:
            raise DatasetError(
                f"{path}: dataset '/{images_path}' has {imgs.shape[0]} rows but "
                f"'/{factors_path}' has {facs.shape[0]}; expected one factor row per image "
                "(the file is inconsistent; rebuild it)"
            )
        if facs.shape[1] != spec.factors:
            raise DatasetError(
                f"{path}: dataset '/{factors_path}' has {facs.shape[1]} factor columns but the "
                f"stored spec has factors: {spec.factors} (the file is inconsistent; rebuild it)"
            )
    if images.shape[0] != spec.n:
        raise DatasetError(
            f"{path}: dataset '/images' has {images.shape[0]} rows but the stored spec has "
            f"n: {spec.n} (the file is inconsistent; rebuild it)"
        )


def read_attrs(f) -> dict[str, Any]:
    """The root attributes as JSON-ready Python values (``info --json`` prints them).

    The required ones are checked by ``open_dataset``; any other attribute may hold whatever
    HDF5 can store (opaque bytes, compound or complex numbers), which becomes text here rather
    than a crash of the one command meant for looking at a file.
    """
    out = {key: _json_ready(value) for key, value in f.attrs.items()}
    for key in ("renderer_info", "library_versions"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out


def _json_ready(value: Any) -> Any:
    """``value`` as str, int, float, bool, None or lists of them: bytes decoded as UTF-8 (or
    written as hex when they are not text), numpy scalars and arrays unwrapped, the rest str()."""
    if isinstance(value, (np.ndarray, np.generic)):
        value = value.tolist() if isinstance(value, np.ndarray) else value.item()
    if isinstance(value, bytes):
        text = _text(value)
        return text if text is not None else value.hex()
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def read_strings(dataset) -> list[str]:
    return [s.decode() if isinstance(s, bytes) else str(s) for s in dataset[()]]


def read_rows(path: str | os.PathLike[str], dset, rows: np.ndarray) -> np.ndarray:
    """``dset[rows]`` (rows sorted, without repeats); a chunk HDF5 cannot inflate is a
    DatasetError naming its rows and chunk, worded like training's and ``bench score``'s.

    HDF5 says only "filter returned failure during read", for any of the chunks a selection
    touches; on that failure each chunk touched is read alone to find the one to name.
    """
    try:
        return dset[rows]
    except OSError:
        raise corrupt_chunk_error(path, dset, rows) from None


def corrupt_chunk_error(path: str | os.PathLike[str], dset, rows: Iterable[int]) -> DatasetError:
    """The error for a read of ``rows`` that HDF5 refused: each chunk holding them is read alone,
    and the first that cannot be inflated is named by its rows, the same words wherever a
    dataset is read (training, scoring, ``show``)."""
    chunk_rows = dset.chunks[0] if dset.chunks else dset.shape[0]
    for lo in sorted({int(r) - int(r) % chunk_rows for r in rows}):
        hi = min(lo + chunk_rows, dset.shape[0])
        try:
            dset[lo:hi]
        except OSError:
            return DatasetError(
                f"{path}: {dset.name} rows {lo}..{hi - 1} (chunk {lo // chunk_rows}) cannot be "
                f"read (corrupt compressed data); run `spritegen verify {path}` to list every "
                "damaged chunk, and rebuild the file"
            )
    return DatasetError(f"{path}: {dset.name} cannot be read; run `spritegen verify {path}`")


def read_images(dset, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Read rows [start, stop) of an images dataset into memory.

    HDF5 decompresses one chunk at a time on one core; here the stored chunks are read raw and
    inflated by a thread pool (zlib releases the GIL), which loads a large set about as many
    times faster as there are cores.
    """
    from concurrent.futures import ThreadPoolExecutor

    stop = dset.shape[0] if stop is None else min(stop, dset.shape[0])
    out = np.empty((stop - start,) + dset.shape[1:], dtype=dset.dtype)
    rows = dset.chunks[0] if dset.chunks else 0
    if dset.compression not in ("gzip", None) or not rows or dset.shuffle or dset.fletcher32:
        dset.read_direct(out, np.s_[start:stop], np.s_[0 : stop - start])
        return out
    flat = out.reshape(len(out), -1)
    first = start - start % rows

    def load(chunk_start: int) -> None:
        _, stored = dset.id.read_direct_chunk((chunk_start,) + (0,) * (dset.ndim - 1))
        raw = zlib.decompress(stored) if dset.compression == "gzip" else stored
        block = np.frombuffer(raw, dtype=dset.dtype).reshape(rows, -1)
        lo, hi = max(chunk_start, start), min(chunk_start + rows, stop)
        flat[lo - start : hi - start] = block[lo - chunk_start : hi - chunk_start]

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(load, range(first, stop, rows)))
    return out


def read_training_set(path: str | Path, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The training images (N, H, W, C) uint8 and factors (N, K) float32, in memory.

    Random mini-batches read straight from HDF5 cost 90-500 ms each (design section 7); a whole
    set loads in seconds, after which a batch costs microseconds. Training reads it once.
    """
    with open_dataset(path) as f:
        n = f["images"].shape[0] if limit is None else min(limit, f["images"].shape[0])
        check_fits(n * math.prod(f["images"].shape[1:]), f"{path}: the training set ({n:,} images)")
        images = read_images(f["images"], 0, n)
        factors = f["factors"][:n].astype(np.float32)
    return images, factors
