"""dSprites (Matthey et al., 2017) as a discrete ground-truth oracle, from the npz or its HDF5 twin.

The published layout: 737,280 binary 64x64 images of every combination of six latents, colour
(1 value), shape (3: square, ellipse, heart), scale (6), orientation (40), posX (32), posY (32),
stored in that mixed-radix order (posY fastest). Colour never varies, so the oracle's factors are
the five that do: shape, scale, orientation, posX, posY (K = 5), as in the published metric.

Files:
- ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``: ``imgs`` (N, 64, 64) uint8 0/1,
  ``latents_values`` (N, 6) float64, ``latents_classes`` (N, 6) int64, ``metadata`` (a pickled
  dict). The three arrays load without pickle; the metadata is never unpickled here (pickle can run
  code, and everything it says is in the arrays); ``read_npz_metadata`` does it on request.
  Memory: a compressed npz member cannot be read in part, so the first image request decompresses
  all of ``imgs`` into memory (737,280 x 4,096 bytes = 3.0 GB, the images' own size; converted to
  0/255 in place). Opening only reads the array headers and the latents (about 70 MB).
- ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5``: ``imgs``, ``latents/classes``,
  ``latents/values`` with the same arrays. Images are read lazily, by sorted row batches, unless
  ``in_memory`` asks for all of them (again 3.0 GB) on first use.

Images are returned as (n, 64, 64, 1) uint8 with values 0 and 255: one channel and the full
0..255 range, like every image in the project, so models and metrics need no special case.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from benchmark.datasets import checks
from benchmark.datasets.grid import GridOracle
from benchmark.datasets.stores import ArrayStore, H5Store
from spritegen.errors import DatasetError, check_flag

NPZ_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
HDF5_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5"
HOMEPAGE = "https://github.com/deepmind/dsprites-dataset"
ORIGIN = (
    f"dSprites comes from {HOMEPAGE} (Apache 2.0): download {NPZ_NAME} or its HDF5 twin "
    f"{HDF5_NAME} ({HOMEPAGE}/raw/master/{NPZ_NAME}) and give it as dsprites:PATH."
)  # no flag: bench run takes it as --data, bench score as its DATA argument

COLUMN_NAMES = ("color", "shape", "scale", "orientation", "posX", "posY")
PUBLISHED_SIZES = (1, 3, 6, 40, 32, 32)
FACTOR_COLUMNS = (1, 2, 3, 4, 5)
FACTOR_KINDS = ("categorical", "discrete", "discrete", "discrete", "discrete")
SHAPE_CLASSES = ("square", "ellipse", "heart")
#: Published dtypes (uint8, float64, int64). The check accepts any dtype of the same kind (u, f,
#: i/u) so that a faithful re-export with, say, int32 classes still opens.
NPZ_ARRAYS = {"imgs": "|u1", "latents_values": "<f8", "latents_classes": "<i8"}
_KINDS = {"imgs": "u", "latents_values": "f", "latents_classes": "iu"}
_PEEK_IMAGES = 64


def open_dsprites(path: str | Path, *, in_memory: bool = False, verify: bool = False) -> GridOracle:
    """Open the dSprites npz or HDF5 file at ``path`` (told apart by content, not by name).

    ``verify`` also hashes the file against the known published digest (see ``checksums``).
    Raises ``DatasetError`` with one line when the file is missing, truncated or not dSprites.
    """
    in_memory, verify = check_flag("in_memory", in_memory), check_flag("verify", verify)
    path = Path(path)
    checks.require_file(path, ORIGIN)
    kind = checks.sniff(path)
    if kind == "zip":
        oracle = _open_npz(path)
    elif kind == "hdf5":
        oracle = _open_hdf5(path, in_memory)
    else:
        raise DatasetError(
            f"{path}: expected the dSprites npz or HDF5 file, found "
            f"{checks.describe_other(path)}. {ORIGIN}"
        )
    if verify:
        _verify(path, "dsprites-npz" if kind == "zip" else "dsprites-hdf5", oracle)
    return oracle


def _verify(path: Path, kind: str, oracle: GridOracle) -> None:
    from benchmark.datasets.checksums import verify_checksum

    if oracle.grid_sizes != PUBLISHED_SIZES:
        oracle.close()
        raise DatasetError(
            f"{path}: cannot verify against the published checksum: the grid is "
            f"{oracle.grid_sizes}, the published one is {PUBLISHED_SIZES}"
        )
    report = verify_checksum(path, kind)
    if report.matched is False:
        oracle.close()
        raise DatasetError(f"{report.message}. {ORIGIN}")


# -- npz ---------------------------------------------------------------------------------------


def _npz_header(zf: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of an npz member from its .npy header, without decompressing the data."""
    with zf.open(member) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    return tuple(shape), dtype


def _peek_npz_images(zf: zipfile.ZipFile, shape: tuple[int, ...]) -> np.ndarray:
    """The first few images, streamed from the compressed member (the rest stays on disk)."""
    count = min(_PEEK_IMAGES, shape[0])
    per_image = int(np.prod(shape[1:]))
    with zf.open("imgs.npy") as fh:
        version = np.lib.format.read_magic(fh)
        reader = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        reader(fh)
        data = fh.read(count * per_image)
    return np.frombuffer(data, dtype=np.uint8).reshape((-1,) + shape[1:])


def _open_npz(path: Path) -> GridOracle:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(
            f"{path}: not a readable npz archive ({exc}); the file is truncated or "
            f"corrupt. {ORIGIN}"
        ) from None
    with zf:
        members = set(zf.namelist())
        missing = [k for k in NPZ_ARRAYS if f"{k}.npy" not in members]
        if missing:
            found = ", ".join(sorted(m.removesuffix(".npy") for m in members)) or "nothing"
            raise DatasetError(
                f"{path}: an npz without {', '.join(missing)} (found: {found}); "
                f"not the dSprites npz. {ORIGIN}"
            )
        try:
            headers = {k: _npz_header(zf, f"{k}.npy") for k in NPZ_ARRAYS}
            _check_shapes(
                path,
                {k: h[0] for k, h in headers.items()},
                {k: h[1] for k, h in headers.items()},
                "npz",
            )
            first = _peek_npz_images(zf, headers["imgs"][0])
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
            raise DatasetError(
                f"{path}: cannot read the npz arrays ({exc}); the file is truncated "
                f"or corrupt. {ORIGIN}"
            ) from None
    _check_binary(path, first)
    try:
        with np.load(path, allow_pickle=False) as npz:
            classes = npz["latents_classes"]
            values = npz["latents_values"]
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
        raise DatasetError(
            f"{path}: cannot read the latents ({exc}); the file is truncated or corrupt. {ORIGIN}"
        ) from None
    n, h, w = headers["imgs"][0]

    def load_images() -> np.ndarray:
        try:
            with np.load(path, allow_pickle=False) as npz:
                return npz["imgs"]
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
            raise DatasetError(
                f"{path}: cannot decompress imgs ({exc}); the file is truncated or "
                f"corrupt. {ORIGIN}"
            ) from None

    store = ArrayStore(load_images, n, (h, w, 1), binary=True)
    return _make_oracle(path, store, classes, values)


def read_npz_metadata(path: str | Path) -> dict:
    """The npz's ``metadata`` dict. Unpickles (Python 2 pickle: latin-1): only for trusted files."""
    with np.load(Path(path), allow_pickle=True, encoding="latin1") as npz:
        if "metadata" not in npz.files:
            raise DatasetError(f"{path}: the npz has no metadata member")
        return npz["metadata"][()]


# -- HDF5 --------------------------------------------------------------------------------------


def _open_hdf5(path: Path, in_memory: bool) -> GridOracle:
    import h5py

    fh = checks.open_hdf5(path, ORIGIN)
    with fh:
        if not (
            "imgs" in fh
            and isinstance(fh.get("latents"), h5py.Group)
            and "classes" in fh["latents"]
            and "values" in fh["latents"]
        ):
            raise DatasetError(
                f"{path}: an HDF5 file without imgs and latents/classes, latents/values (found: "
                f"{checks.describe_hdf5_keys(fh)}); not the dSprites HDF5 twin."
                f"{checks.hdf5_identity_hint(fh)} {ORIGIN}"
            )
        imgs, cls_ds, val_ds = fh["imgs"], fh["latents/classes"], fh["latents/values"]
        _check_shapes(
            path,
            {"imgs": imgs.shape, "latents_classes": cls_ds.shape, "latents_values": val_ds.shape},
            {"imgs": imgs.dtype, "latents_classes": cls_ds.dtype, "latents_values": val_ds.dtype},
            "HDF5",
        )
        try:
            _check_binary(path, imgs[:_PEEK_IMAGES])
            classes = cls_ds[()]
            values = val_ds[()]
        except OSError as exc:
            raise DatasetError(
                f"{path}: cannot read the arrays ({exc}); the file is truncated or "
                f"corrupt. {ORIGIN}"
            ) from None
        n, h, w = imgs.shape
    store = H5Store(path, "imgs", (h, w, 1), binary=True, in_memory=in_memory)
    return _make_oracle(path, store, classes, values)


# -- shared ------------------------------------------------------------------------------------


def _check_shapes(path: Path, shapes: dict, dtypes: dict, container: str) -> None:
    imgs = shapes["imgs"]
    for key, published in NPZ_ARRAYS.items():
        got = np.dtype(dtypes[key])
        if got.kind not in _KINDS[key] or (key == "imgs" and got != np.uint8):
            raise DatasetError(
                f"{path}: {key} has dtype {got}, dSprites' is "
                f"{np.dtype(published)}; not the dSprites {container}. {ORIGIN}"
            )
    if len(imgs) != 3:
        raise DatasetError(
            f"{path}: imgs has shape {imgs}, dSprites' is (N, 64, 64); not the "
            f"dSprites {container}. {ORIGIN}"
        )
    for key in ("latents_values", "latents_classes"):
        if tuple(shapes[key]) != (imgs[0], len(COLUMN_NAMES)):
            raise DatasetError(
                f"{path}: {key} has shape {tuple(shapes[key])}, expected "
                f"({imgs[0]}, 6) to match imgs {tuple(imgs)}. {ORIGIN}"
            )


def _check_binary(path: Path, first: np.ndarray) -> None:
    if first.size and first.max() > 1:
        raise DatasetError(
            f"{path}: imgs holds values up to {int(first.max())}; dSprites' images "
            f"are 0/1. {ORIGIN}"
        )


def _make_oracle(
    path: Path, store: ArrayStore | H5Store, classes: np.ndarray, values: np.ndarray
) -> GridOracle:
    what = "latents_classes"
    sizes = checks.grid_sizes_from_classes(classes, path, what)
    if sizes[0] != 1:
        raise DatasetError(
            f"{path}: colour takes {sizes[0]} values; the published dSprites has "
            f"one (white). Coloured variants are not supported. {ORIGIN}"
        )
    checks.check_grid_order(classes, sizes, COLUMN_NAMES, path, what)
    possible = checks.grid_values(values, classes, sizes, COLUMN_NAMES, path, "latents_values")
    return GridOracle(
        name="dsprites",
        store=store,
        grid_sizes=sizes,
        column_names=COLUMN_NAMES,
        factor_columns=FACTOR_COLUMNS,
        possible_values=possible,
        factor_kinds=FACTOR_KINDS,
        path=str(path),
    )
