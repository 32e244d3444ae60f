"""The 3D renderer on real renders: each factor changes only what it names, and bytes repeat.

Every test measures pixels of images that ``PyrenderRenderer`` actually drew (headless EGL; Mesa
llvmpipe on a CPU). Mesa's shader cache is pointed at a temporary folder.
"""

from __future__ import annotations

import colorsys
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

W = 64
SHAPES = (0, 1, 2)  # cube, ellipsoid, pyramid


@pytest.fixture(scope="module")
def shader_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mesa_shader_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MESA_SHADER_CACHE_DIR", str(path))
        mp.setenv("PYOPENGL_PLATFORM", os.environ.get("PYOPENGL_PLATFORM", "egl"))
        yield path


@pytest.fixture(scope="module")
def r3d(shader_cache: Path):
    from spritegen.render.pyrender3d import PyrenderRenderer

    renderer = PyrenderRenderer(image_size=W, coloured=True)
    yield renderer
    renderer.close()


@pytest.fixture(scope="module")
def r3d_white(shader_cache: Path):
    from spritegen.render.pyrender3d import PyrenderRenderer

    renderer = PyrenderRenderer(image_size=W, coloured=False)
    yield renderer
    renderer.close()


def vectors(n: int, rng: np.random.Generator, **fixed: float) -> np.ndarray:
    """(n, 7) random full factor vectors; keyword arguments pin columns by name."""
    names = ("pos_x", "pos_y", "scale", "shape", "rotation", "hue", "rotation_y")
    full = np.column_stack(
        [
            rng.uniform(size=n),
            rng.uniform(size=n),
            rng.uniform(size=n),
            rng.integers(0, 3, size=n).astype(np.float64),
            rng.uniform(0, 2 * math.pi, size=n),
            rng.uniform(size=n),
            rng.uniform(0, 2 * math.pi, size=n),
        ]
    )
    for name, value in fixed.items():
        full[:, names.index(name)] = value
    return full


def mask(images: np.ndarray) -> np.ndarray:
    """Silhouette: every pixel the shape touches (the background is exactly black)."""
    return images.max(axis=-1) > 0


def centroids(images: np.ndarray) -> np.ndarray:
    """(N, 2) silhouette centroids as (x, y) in pixels, y growing downwards."""
    m = mask(images).astype(np.float64)
    rows, cols = np.indices(m.shape[1:]) + 0.5
    area = m.sum(axis=(1, 2))
    return np.column_stack([(m * cols).sum(axis=(1, 2)) / area, (m * rows).sum(axis=(1, 2)) / area])


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference in 8-bit levels over the pixels either image covers."""
    either = mask(a[None])[0] | mask(b[None])[0]
    return float(np.abs(a.astype(int) - b.astype(int))[either].mean())


def expected_centre(renderer, pos_x: float, pos_y: float) -> np.ndarray:
    x, y = renderer.centre(pos_x, pos_y)
    return np.array([(x + 0.5) * W, (0.5 - y) * W])


def pyramid_height_px(scale: float) -> float:
    from spritegen.render.pyrender3d import build_meshes, shape_size

    heights = build_meshes()["pyramid"].vertices[:, 1]
    return float(heights.max() - heights.min()) * shape_size(scale) * W


def test_meshes_are_unit_volume_and_centred() -> None:
    from spritegen.render.pyrender3d import build_meshes

    meshes = build_meshes()
    for name, m in meshes.items():
        assert m.is_watertight, name
        assert m.volume == pytest.approx(1.0, rel=1e-9), name
        assert np.allclose(m.center_mass, 0.0, atol=1e-9), name
    ext = meshes["ellipsoid"].extents
    assert len({round(e, 6) for e in ext}) == 3  # three distinct axes
    # the pyramid's apex is up (+y) and its centroid is a quarter of the height above the base
    ys = meshes["pyramid"].vertices[:, 1]
    assert ys.max() == pytest.approx(3 * (ys.max() - ys.min()) / 4)


def test_output_is_rgb_uint8_on_black(r3d) -> None:
    from spritegen.render import make_renderer

    images = r3d.render(vectors(5, np.random.default_rng(0)))
    assert images.shape == (5, W, W, 3) and images.dtype == np.uint8
    assert r3d.channels == 3
    assert (images[:, 0, 0] == 0).all()
    assert mask(images).sum(axis=(1, 2)).min() > 50
    assert images.max() < 255  # the lighting never clips
    other = make_renderer("3d", image_size=32, coloured=False)
    try:
        assert other.channels == 3 and other.render(vectors(1, np.random.default_rng(0))).shape == (
            1,
            32,
            32,
            3,
        )
    finally:
        other.close()


@pytest.mark.parametrize("shape", SHAPES)
def test_position_moves_centroid_monotonically(r3d, shape: int) -> None:
    rng = np.random.default_rng(10 + shape)
    steps = np.linspace(0.0, 1.0, 9)
    for column, axis in (("pos_x", 0), ("pos_y", 1)):
        base = vectors(1, rng, shape=shape, scale=1.0)
        full = np.repeat(base, len(steps), axis=0)
        full[:, axis] = steps
        c = centroids(r3d.render(full))
        assert (np.diff(c[:, axis]) > 1.0).all(), (column, c[:, axis])
        # the other coordinate stays put
        assert np.ptp(c[:, 1 - axis]) < 0.5, (column, c[:, 1 - axis])


@pytest.mark.parametrize("shape", SHAPES)
def test_shape_stays_in_frame_at_the_edges(r3d, shape: int) -> None:
    """At scale 1, any rotation and an extreme position, nothing reaches the outermost pixels
    (a shape cut off by the image edge would cover them)."""
    rng = np.random.default_rng(20 + shape)
    n = 24
    for px, py in ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)):
        m = mask(r3d.render(vectors(n, rng, shape=shape, scale=1.0, pos_x=px, pos_y=py)))
        border = (
            m[:, 0].any(axis=1)
            | m[:, -1].any(axis=1)
            | m[:, :, 0].any(axis=1)
            | m[:, :, -1].any(axis=1)
        )
        assert not border.any(), (px, py)


def test_rotations_and_shape_keep_the_centroid(r3d) -> None:
    """Cube and ellipsoid are centrally symmetric: their silhouette centroid is the projected
    volume centroid. The pyramid's silhouette centroid wanders around it by at most ~0.144 h."""
    rng = np.random.default_rng(3)
    n = 40
    for shape, tolerance in ((0, 0.5), (1, 0.5), (2, 0.15 * pyramid_height_px(1.0) + 0.5)):
        full = vectors(n, rng, shape=shape, pos_x=0.3, pos_y=0.7, scale=1.0)
        dist = np.linalg.norm(centroids(r3d.render(full)) - expected_centre(r3d, 0.3, 0.7), axis=1)
        assert dist.max() < tolerance, (shape, dist.max())
    # scale keeps the centroid too
    full = vectors(8, rng, shape=0, pos_x=0.8, pos_y=0.2)
    full[:, 2] = np.linspace(0.0, 1.0, 8)
    dist = np.linalg.norm(centroids(r3d.render(full)) - expected_centre(r3d, 0.8, 0.2), axis=1)
    assert dist.max() < 0.5


@pytest.mark.parametrize("shape", SHAPES)
def test_scale_grows_the_silhouette(r3d, shape: int) -> None:
    rng = np.random.default_rng(30 + shape)
    full = np.repeat(vectors(1, rng, shape=shape), 6, axis=0)
    full[:, 2] = np.linspace(0.0, 1.0, 6)
    area = mask(r3d.render(full)).sum(axis=(1, 2))
    assert (np.diff(area) > 0).all(), area
    # size doubles from scale 0 to 1, so the area grows about four times
    assert 3.3 < area[-1] / area[0] < 4.7, area


def test_hue_changes_colour_not_silhouette(r3d, r3d_white) -> None:
    rng = np.random.default_rng(4)
    for base in vectors(6, rng):
        full = np.repeat(base[None], 6, axis=0)
        full[:, 5] = np.arange(6) / 6.0  # red, yellow, green, cyan, blue, magenta
        images = r3d.render(full).astype(int)
        m = mask(images)
        assert (m == m[0]).all()
        # the brightest channel carries the shading alone, whatever the hue
        assert np.abs(images.max(axis=-1) - images[0].max(axis=-1)).max() <= 1
        # the mean colour has the hue asked for (primaries and secondaries survive the gamma)
        for hue, colour in zip(full[:, 5], images[:, m[0]].mean(axis=1) / 255.0):
            measured = colorsys.rgb_to_hsv(*colour)[0]
            assert min(abs(measured - hue), 1 - abs(measured - hue)) < 0.01, (hue, colour)
    white = r3d_white.render(vectors(4, rng))
    assert (white[..., 0] == white[..., 1]).all() and (white[..., 1] == white[..., 2]).all()


@pytest.mark.parametrize("shape", SHAPES)
def test_each_rotation_changes_the_image_and_the_two_differ(r3d, shape: int) -> None:
    base = np.array([0.5, 0.5, 1.0, shape, 0.0, 0.3, 0.0])
    for angle in (0.3, 1.0, 2.0):
        about_x, about_y = base.copy(), base.copy()
        about_x[4], about_y[6] = angle, angle
        rest, rx, ry = r3d.render(np.stack([base, about_x, about_y]))
        assert difference(rx, rest) > 5.0, (shape, angle)
        assert difference(ry, rest) > 5.0, (shape, angle)
        assert difference(rx, ry) > 5.0, (shape, angle)


def test_documented_symmetries_hold(r3d) -> None:
    """docs/render3d.md: cube r ~ r + pi/2, ellipsoid r ~ r + pi, pyramid no period in r; all three
    (r, ry) ~ (-r, ry + pi) (each has a half turn about its y axis among its symmetries)."""
    rng = np.random.default_rng(5)

    def diffs(a: np.ndarray, b: np.ndarray) -> list[float]:
        return [difference(x, y) for x, y in zip(r3d.render(a), r3d.render(b))]

    for shape, period in ((0, math.pi / 2), (1, math.pi), (2, None)):
        full = vectors(6, rng, shape=shape, scale=1.0)
        turned, mirrored = full.copy(), full.copy()
        turned[:, 4] += period or math.pi
        mirrored[:, 4] *= -1.0
        mirrored[:, 6] += math.pi
        if period is None:
            assert min(diffs(full, turned)) > 5.0
        else:
            assert max(diffs(full, turned)) < 0.5, shape
        assert max(diffs(full, mirrored)) < 0.5, shape
    # special angles: at r = pi/4 the cube repeats in ry every pi, at r = pi/2 every pi/2
    for r, step in ((math.pi / 4, math.pi), (math.pi / 2, math.pi / 2)):
        full = vectors(4, rng, shape=0, scale=1.0, rotation=r)
        turned = full.copy()
        turned[:, 6] += step
        assert max(diffs(full, turned)) < 0.5
        turned[:, 6] -= step / 2  # half the step is not a symmetry
        assert min(diffs(full, turned)) > 5.0
    # the cube's half-period in r does not carry over to the other shapes
    full = vectors(6, rng, shape=1, scale=1.0)
    turned = full.copy()
    turned[:, 4] += math.pi / 2
    assert min(diffs(full, turned)) > 5.0


def test_same_vector_same_bytes_in_any_batch(r3d) -> None:
    full = vectors(10, np.random.default_rng(6))
    once = r3d.render(full)
    assert once.tobytes() == r3d.render(full).tobytes()
    # order and batch boundaries do not matter (what makes worker counts irrelevant)
    assert r3d.render(full[::-1])[::-1].tobytes() == once.tobytes()
    assert r3d.render(full[3:4]).tobytes() == once[3:4].tobytes()


def test_separate_process_gives_identical_bytes(r3d, tmp_path: Path) -> None:
    """A fresh process with a cold shader cache and one llvmpipe thread draws the same bytes."""
    full = vectors(10, np.random.default_rng(7))
    np.save(tmp_path / "full.npy", full)
    code = (
        "import sys, numpy as np\n"
        "from spritegen.render.pyrender3d import PyrenderRenderer\n"
        "r = PyrenderRenderer(image_size=64, coloured=True)\n"
        "np.save(sys.argv[2], r.render(np.load(sys.argv[1])))\n"
        "r.close()\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
        MESA_SHADER_CACHE_DIR=str(tmp_path / "cold"),
        LP_NUM_THREADS="1",
    )
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "full.npy"), str(tmp_path / "out.npy")],
        check=True,
        env=env,
        timeout=120,
    )
    assert np.load(tmp_path / "out.npy").tobytes() == r3d.render(full).tobytes()


def test_bad_input_gets_a_clear_message(r3d) -> None:
    with pytest.raises(ValueError, match=r"shape \(N, 7\)"):
        r3d.render(np.zeros((2, 5)))
    bad = vectors(2, np.random.default_rng(8))
    bad[1, 3] = 3.0
    with pytest.raises(ValueError, match="cube.*ellipsoid.*pyramid"):
        r3d.render(bad)


def test_info_names_renderer_libraries_and_gl_driver(r3d) -> None:
    info = r3d.info()
    for key in (
        "renderer",
        "renderer_version",
        "pyrender",
        "trimesh",
        "PyOpenGL",
        "gl_vendor",
        "gl_renderer",
        "gl_version",
    ):
        assert info[key], key
    assert info["renderer"] == "pyrender3d"


def test_close_is_idempotent_and_final(shader_cache: Path) -> None:
    from spritegen.render.pyrender3d import PyrenderRenderer

    renderer = PyrenderRenderer(image_size=16, coloured=False)
    renderer.close()
    renderer.close()
    with pytest.raises(RuntimeError, match="closed"):
        renderer.render(vectors(1, np.random.default_rng(0)))


def _make_renderer_in_child() -> str:
    from spritegen.render.pyrender3d import PyrenderRenderer

    try:
        PyrenderRenderer(image_size=16, coloured=False).close()
    except RuntimeError as error:
        return str(error)
    return "created"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_worker_gets_a_clear_error_not_a_hang(r3d) -> None:
    """Mesa hangs in a child forked after the parent used GL; the renderer refuses instead."""
    import multiprocessing

    r3d.render(vectors(1, np.random.default_rng(9)))  # this process has used GL
    with multiprocessing.get_context("fork").Pool(1) as pool:
        message = pool.apply_async(_make_renderer_in_child).get(timeout=60)
    assert "spawn" in message and "forked" in message


def test_a_vector_it_cannot_draw_is_refused(r3d) -> None:
    """pyrender drew NaN positions and negative scales without a word."""
    vectors = np.array([[0.5, 0.5, 0.5, 0, 0.0, 0.0, 0.0]] * 2)
    vectors[1, 2] = -0.5
    with pytest.raises(ValueError, match=r"factor 'scale' must be in \[0, 1\], got -0.5 in row 1"):
        r3d.render(vectors)
    vectors[1, 2], vectors[1, 0] = 0.5, np.nan
    with pytest.raises(ValueError, match="factor 'pos_x' is nan in row 1"):
        r3d.render(vectors)
