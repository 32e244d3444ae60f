"""dSprites and 3dshapes readers on miniature files written in exactly the published layouts.

The miniature files (benchmark.datasets.testing) keep the published keys, dtypes, image sizes
and row order over a subset of each grid; each image spells its own row number, so the tests
can check that a factor vector fetches the row whose stored latents are that vector.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from benchmark.datasets import (
    DataSpec,
    checksums,
    open_data,
    open_dsprites,
    open_shapes3d,
    parse_data_spec,
    verify_checksum,
)
from benchmark.datasets.testing import (
    MINI_DSPRITES_SIZES,
    MINI_SHAPES3D_SIZES,
    read_barcodes,
    write_dsprites_hdf5,
    write_dsprites_npz,
    write_shapes3d,
)
from benchmark.metrics import evaluate
from spritegen.errors import DatasetError, SpecError

LAYOUTS = ("dsprites-npz", "dsprites-hdf5", "3dshapes")


def _write(kind: str, folder: Path) -> Path:
    if kind == "dsprites-npz":
        return write_dsprites_npz(folder / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz")
    if kind == "dsprites-hdf5":
        return write_dsprites_hdf5(folder / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5")
    return write_shapes3d(folder / "3dshapes.h5")


def _stored_latents(kind: str, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(values, classes) straight from the file, as its publisher documents them."""
    if kind == "dsprites-npz":
        with np.load(path) as npz:
            return npz["latents_values"], npz["latents_classes"]
    with h5py.File(path, "r") as fh:
        if kind == "dsprites-hdf5":
            return fh["latents/values"][()], fh["latents/classes"][()]
        return fh["labels"][()], None


def _open(kind: str, path: Path, **kw):
    return open_shapes3d(path, **kw) if kind == "3dshapes" else open_dsprites(path, **kw)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("published")
    return {kind: _write(kind, folder) for kind in LAYOUTS}


@pytest.mark.parametrize("kind", LAYOUTS)
def test_factor_vector_fetches_the_row_the_layout_says(kind: str, files: dict[str, Path]) -> None:
    path = files[kind]
    values, classes = _stored_latents(kind, path)
    with _open(kind, path) as oracle:
        rng = np.random.default_rng(1)
        factors = oracle.sample_factors(200, rng)
        rows = read_barcodes(oracle.render(factors))
        if classes is not None:  # dSprites: the stored classes of that row, colour column dropped
            np.testing.assert_array_equal(classes[rows][:, 1:], factors)
            np.testing.assert_array_equal(oracle.factor_values(factors), values[rows][:, 1:])
        else:  # 3dshapes stores values only: class k = rank of the value in its column
            for k in range(6):
                grid = np.unique(values[:, k])
                np.testing.assert_array_equal(np.searchsorted(grid, values[rows, k]), factors[:, k])
            np.testing.assert_allclose(oracle.factor_values(factors), values[rows])


@pytest.mark.parametrize("kind", LAYOUTS)
def test_oracle_protocol(kind: str, files: dict[str, Path]) -> None:
    with _open(kind, files[kind]) as oracle:
        if kind == "3dshapes":
            assert oracle.factor_names == (
                "floor_hue",
                "wall_hue",
                "object_hue",
                "scale",
                "shape",
                "orientation",
            )
            assert oracle.factors_num_classes == list(MINI_SHAPES3D_SIZES)
            assert oracle.observation_shape == (64, 64, 3)
        else:  # colour is constant: the five varying factors only
            assert oracle.factor_names == ("shape", "scale", "orientation", "posX", "posY")
            assert oracle.factors_num_classes == list(MINI_DSPRITES_SIZES[1:])
            assert oracle.observation_shape == (64, 64, 1)
        assert oracle.num_factors == len(oracle.factors_num_classes)
        rng = np.random.default_rng(0)
        factors = oracle.sample_factors(500, rng)
        assert factors.dtype == np.float32 and factors.shape == (500, oracle.num_factors)
        assert np.all(factors == np.round(factors))
        for k, n in enumerate(oracle.factors_num_classes):
            assert set(np.unique(factors[:, k]).astype(int)) == set(range(n))
            col = oracle.sample_column(k, 300, rng)
            assert col.dtype == np.float32 and col.min() >= 0 and col.max() <= n - 1
        images = oracle.render(factors[:10])
        assert images.dtype == np.uint8 and images.shape == (10,) + oracle.observation_shape
        if kind != "3dshapes":
            assert set(np.unique(images)) == {0, 255}


@pytest.mark.parametrize("kind", LAYOUTS)
def test_render_keeps_caller_order_with_repeats(kind: str, files: dict[str, Path]) -> None:
    """HDF5 fancy indexing needs increasing rows: the reader sorts, reads, and unsorts."""
    with _open(kind, files[kind]) as oracle:
        n = oracle.num_images
        rows = np.array([n - 1, 3, 3, 0, n - 1, 7, 2])
        got = read_barcodes(oracle.render(oracle.factors_at(rows)))
        np.testing.assert_array_equal(got, rows)


@pytest.mark.parametrize("kind", LAYOUTS)
def test_in_memory_gives_the_same_images(kind: str, files: dict[str, Path]) -> None:
    rng = np.random.default_rng(3)
    with _open(kind, files[kind]) as lazy, _open(kind, files[kind], in_memory=True) as eager:
        factors = lazy.sample_factors(50, rng)
        np.testing.assert_array_equal(lazy.render(factors), eager.render(factors))


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("flag", ["in_memory", "verify"])
@pytest.mark.parametrize("value", ["no", "False", 0, None])
def test_opening_names_a_flag_that_is_no_bool(kind, flag, value, files) -> None:
    """``in_memory="no"`` was truthy: the first image read loaded every image (3.0 GB for
    dSprites, 5.9 GB for 3dshapes); ``verify="no"`` hashed the whole file."""
    message = f"{flag} must be True or False, got {value!r}"
    with pytest.raises(SpecError, match=message):
        _open(kind, files[kind], **{flag: value})
    with pytest.raises(SpecError, match=message):
        open_data(f"{kind.split('-')[0]}:{files[kind]}", **{flag: value})


@pytest.mark.parametrize("kind", LAYOUTS)
def test_a_numpy_bool_in_memory_is_the_bool_it_holds(kind, files) -> None:
    rng = np.random.default_rng(3)
    with _open(kind, files[kind]) as lazy, _open(kind, files[kind], in_memory=np.True_) as eager:
        factors = lazy.sample_factors(50, rng)
        np.testing.assert_array_equal(lazy.render(factors), eager.render(factors))


@pytest.mark.parametrize("kind", LAYOUTS)
def test_training_set(kind: str, files: dict[str, Path]) -> None:
    with open_data(files[kind]) as source:
        assert source.is_grid and source.metric_source() is source.oracle()
        images, factors = source.read_training_set()
        assert images.shape == (source.oracle().num_images,) + source.observation_shape
        np.testing.assert_array_equal(read_barcodes(images), np.arange(len(images)))
        np.testing.assert_array_equal(source.oracle().index_of(factors), np.arange(len(images)))
        with pytest.raises(ValueError, match="rng"):
            source.read_training_set(limit=10)
        sub_images, sub_factors = source.read_training_set(limit=10, rng=np.random.default_rng(0))
        rows = read_barcodes(sub_images)
        assert len(set(rows.tolist())) == 10
        np.testing.assert_array_equal(source.oracle().index_of(sub_factors), rows)


def test_bad_factor_vectors_are_refused(files: dict[str, Path]) -> None:
    with open_dsprites(files["dsprites-hdf5"]) as oracle:
        with pytest.raises(ValueError, match="shape"):
            oracle.render(np.zeros((2, 6), np.float32))  # colour is not a factor
        with pytest.raises(ValueError, match="whole numbers"):
            oracle.render(np.full((1, 5), 0.5, np.float32))
        with pytest.raises(ValueError, match="'scale' must be in 0..2"):
            oracle.render(np.array([[0, 3, 0, 0, 0]], np.float32))


# -- the --data parser -----------------------------------------------------------------------


def test_parse_data_spec(tmp_path: Path) -> None:
    assert parse_data_spec("dsprites:/d/x.npz") == DataSpec("dsprites", Path("/d/x.npz"))
    assert parse_data_spec("3dshapes:3dshapes.h5") == DataSpec("3dshapes", Path("3dshapes.h5"))
    assert parse_data_spec("shapes3d:a.h5").kind == "3dshapes"
    assert parse_data_spec("spritegen:runs/a.h5") == DataSpec("spritegen", Path("runs/a.h5"))
    assert parse_data_spec("data/k5.h5") == DataSpec(None, Path("data/k5.h5"))
    assert parse_data_spec("C:\\data\\k5.h5").kind is None
    odd = tmp_path / "dsprites:odd.h5"
    odd.write_bytes(b"")
    assert parse_data_spec(str(odd)) == DataSpec(None, odd)
    with pytest.raises(SpecError, match="unknown dataset kind 'mnist'; allowed: spritegen, "):
        parse_data_spec("mnist:x.npz")
    with pytest.raises(SpecError, match="missing the path"):
        parse_data_spec("dsprites:")
    with pytest.raises(SpecError, match="empty"):
        parse_data_spec("  ")


@pytest.mark.parametrize("kind", LAYOUTS)
def test_plain_path_is_recognised_by_content(
    kind: str, files: dict[str, Path], tmp_path: Path
) -> None:
    renamed = tmp_path / "renamed.h5"  # a misleading name: content decides
    renamed.write_bytes(files[kind].read_bytes())
    with open_data(str(renamed)) as source:
        assert source.kind == kind.split("-")[0]


# -- wrong, missing and truncated files --------------------------------------------------------


@pytest.mark.parametrize(
    "spec, url",
    [
        ("dsprites:{}/missing.npz", "https://github.com/deepmind/dsprites-dataset"),
        ("3dshapes:{}/3dshapes.h5", "https://storage.googleapis.com/3d-shapes/3dshapes.h5"),
    ],
)
def test_missing_file_says_where_it_comes_from(spec: str, url: str, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file") as info:
        open_data(spec.format(tmp_path))
    assert url in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("kind", LAYOUTS)
def test_truncated_file(kind: str, files: dict[str, Path], tmp_path: Path) -> None:
    data = files[kind].read_bytes()
    cut = tmp_path / files[kind].name
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated or corrupt") as info:
        _open(kind, cut)
    assert "github.com/deepmind" in str(info.value)


def test_spritegen_file_as_a_source(tmp_path: Path) -> None:
    from spritegen.build import build
    from spritegen.spec import default_spec, with_overrides

    spec = with_overrides(default_spec(3), {"n": 32, "eval_preset": "tiny"})
    path = build(spec, tmp_path / "k3.h5", workers=1, progress=False)
    for text in (str(path), f"spritegen:{path}"):
        with open_data(text) as source:
            assert source.kind == "spritegen" and not source.is_grid
            assert source.metric_source() == str(path)  # the metrics use the stored sets
            images, factors = source.read_training_set(limit=8)
            assert images.shape == (8, 64, 64, 1) and factors.shape == (8, 3)
            assert source.factor_names == ("pos_x", "pos_y", "scale")
            assert source.observation_shape == (64, 64, 1)
            with h5py.File(path, "r") as fh:
                digests = {k: fh.attrs[k] for k in ("dataset_id", "content_sha256")}
            assert source.identity() == {"kind": "spritegen", **digests}
    with pytest.raises(DatasetError, match="looks like a spritegen dataset"):
        open_data(f"dsprites:{path}")


def test_missing_spritegen_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such spritegen dataset; make one with `spritegen"):
        open_data(str(tmp_path / "k5.h5"))


def test_home_folder_is_expanded(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(files["3dshapes"].parent))
    with open_data("~/3dshapes.h5") as source:
        assert source.kind == "3dshapes" and source.path == files["3dshapes"]


def test_foreign_files_are_named(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="looks like 3dshapes: pass 3dshapes:PATH"):
        open_data(f"dsprites:{files['3dshapes']}")
    with pytest.raises(DatasetError, match="looks like dSprites: pass dsprites:PATH"):
        open_data(f"3dshapes:{files['dsprites-hdf5']}")
    spritegen_like = tmp_path / "k5.h5"
    with h5py.File(spritegen_like, "w") as fh:
        fh["images"] = np.zeros((4, 64, 64, 1), np.uint8)
        fh["factors"] = np.zeros((4, 5), np.float32)
    with pytest.raises(DatasetError, match="looks like a spritegen dataset"):
        open_data(f"3dshapes:{spritegen_like}")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(DatasetError, match="neither HDF5 nor npz"):
        open_data(f"dsprites:{text}")
    with pytest.raises(DatasetError, match="found a zip"):
        open_data(f"3dshapes:{files['dsprites-npz']}")
    other_npz = tmp_path / "other.npz"
    np.savez(other_npz, x=np.zeros(3))
    with pytest.raises(DatasetError, match="without imgs, latents_values, latents_classes"):
        open_data(f"dsprites:{other_npz}")


def _rewrite_shapes3d(
    src: Path, dst: Path, labels: np.ndarray | None = None, images: np.ndarray | None = None
) -> Path:
    with h5py.File(src, "r") as fh:
        old_images, old_labels = fh["images"][()], fh["labels"][()]
    with h5py.File(dst, "w") as fh:
        fh["images"] = old_images if images is None else images
        fh["labels"] = old_labels if labels is None else labels
    return dst


def test_rows_out_of_grid_order_are_refused(files: dict[str, Path], tmp_path: Path) -> None:
    with h5py.File(files["3dshapes"], "r") as fh:
        labels = fh["labels"][()]
    swapped = labels.copy()
    swapped[[5, 6]] = swapped[[6, 5]]
    path = _rewrite_shapes3d(files["3dshapes"], tmp_path / "swapped.h5", labels=swapped)
    with pytest.raises(DatasetError, match="not in the published grid order: row 5"):
        open_shapes3d(path)
    short = _rewrite_shapes3d(
        files["3dshapes"], tmp_path / "short.h5", labels=labels[:-1], images=None
    )
    with pytest.raises(DatasetError, match="expected"):
        open_shapes3d(short)


def test_wrong_dtypes_are_refused(files: dict[str, Path], tmp_path: Path) -> None:
    with h5py.File(files["3dshapes"], "r") as fh:
        labels = fh["labels"][()]
    path = _rewrite_shapes3d(
        files["3dshapes"], tmp_path / "int.h5", labels=np.rint(labels * 100).astype(np.int64)
    )
    with pytest.raises(DatasetError, match="float64"):
        open_shapes3d(path)
    path = _rewrite_shapes3d(
        files["3dshapes"], tmp_path / "f32.h5", labels=labels.astype(np.float32)
    )  # a faithful re-export opens
    with open_shapes3d(path) as oracle:
        assert oracle.factors_num_classes == list(MINI_SHAPES3D_SIZES)
    with h5py.File(files["dsprites-hdf5"], "r") as fh:
        imgs = fh["imgs"][()]
        classes, values = fh["latents/classes"][()], fh["latents/values"][()]
    float_imgs = tmp_path / "float_imgs.hdf5"
    with h5py.File(float_imgs, "w") as fh:
        fh["imgs"] = imgs.astype(np.float32)
        fh["latents/classes"] = classes
        fh["latents/values"] = values
    with pytest.raises(DatasetError, match="imgs has dtype float32, dSprites' is uint8"):
        open_dsprites(float_imgs)
    grey = tmp_path / "grey.hdf5"
    with h5py.File(grey, "w") as fh:
        fh["imgs"] = imgs * 255
        fh["latents/classes"] = classes
        fh["latents/values"] = values
    with pytest.raises(DatasetError, match="0/1"):
        open_dsprites(grey)
    values_bad = values.copy()
    values_bad[10, 2] += 0.05
    bad = tmp_path / "bad_values.hdf5"
    with h5py.File(bad, "w") as fh:
        fh["imgs"] = imgs
        fh["latents/classes"] = classes
        fh["latents/values"] = values_bad
    with pytest.raises(DatasetError, match="row 10 has scale"):
        open_dsprites(bad)


def test_npz_metadata_is_not_unpickled_on_open(files: dict[str, Path], tmp_path: Path) -> None:
    """Opening needs no pickle: an npz whose metadata would fail to unpickle still opens."""
    path = tmp_path / "broken_metadata.npz"
    with zipfile.ZipFile(files["dsprites-npz"]) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "metadata.npy":
                data = data[:-20]  # a pickle stream cut short
            dst.writestr(name, data)
    with open_dsprites(path) as oracle:
        assert oracle.num_factors == 5
    from benchmark.datasets.dsprites import read_npz_metadata

    meta = read_npz_metadata(files["dsprites-npz"])
    assert list(meta["latents_sizes"]) == list(MINI_DSPRITES_SIZES)


def test_checksums(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    report = verify_checksum(files["3dshapes"], "3dshapes")
    assert report.matched is False and "267573662 bytes" in report.message
    with pytest.raises(DatasetError, match="cannot verify"):
        open_shapes3d(files["3dshapes"], verify=True)  # a miniature grid is not the published one
    import hashlib

    digest = hashlib.sha256(files["3dshapes"].read_bytes()).hexdigest()
    size = files["3dshapes"].stat().st_size
    monkeypatch.setitem(
        checksums.KNOWN_DIGESTS,
        "3dshapes",
        (checksums.KnownDigest("sha256", digest, size, "test"),),
    )
    assert verify_checksum(files["3dshapes"], "3dshapes").matched is True
    monkeypatch.setitem(
        checksums.KNOWN_DIGESTS,
        "3dshapes",
        (checksums.KnownDigest("sha256", "0" * 64, size, "test"),),
    )
    assert verify_checksum(files["3dshapes"], "3dshapes").matched is False
    assert verify_checksum(files["3dshapes"], "unknown").matched is None


# -- metrics on the grid oracles ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["dsprites-hdf5", "3dshapes"])
def test_identity_representation_scores_high(kind: str, files: dict[str, Path]) -> None:
    with open_data(files[kind], in_memory=True) as source:
        oracle = source.oracle()

        def identity(images: np.ndarray) -> np.ndarray:
            return oracle.factors_at(read_barcodes(images))

        result = evaluate(
            source.metric_source(), identity, np.random.default_rng(0), preset="quick"
        )
        assert result["kim_mnih"] >= 0.9
        assert result["higgins"] >= 0.9
