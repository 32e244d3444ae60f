"""Each factor changes only what it names: measured on real cairo renders."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spritegen.factors import FactorSpace
from spritegen.render.cairo2d import CairoRenderer

SIZE = 64


def coverage(images: np.ndarray) -> np.ndarray:
    """Per-pixel coverage in [0, 1]: the brightest channel (HSV value is 1 for every hue)."""
    return images.max(axis=-1).astype(np.float64) / 255.0


def centroid(images: np.ndarray) -> np.ndarray:
    cov = coverage(images)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    mass = cov.sum(axis=(1, 2))
    return np.stack([(cov * xs).sum(axis=(1, 2)) / mass, (cov * ys).sum(axis=(1, 2)) / mass], 1)


def area(images: np.ndarray) -> np.ndarray:
    return coverage(images).sum(axis=(1, 2))


def full(rows: list[dict], coloured: bool = False) -> np.ndarray:
    base = {"pos_x": 0.5, "pos_y": 0.5, "scale": 0.5, "shape": 0, "rotation": 0.0, "hue": 0.0}
    space = FactorSpace(6 if coloured else 5)
    values = np.array([[{**base, **r}[n] for n in space.names] for r in rows], dtype=np.float32)
    return space.expand(values)


@pytest.fixture(scope="module")
def grey() -> CairoRenderer:
    return CairoRenderer(SIZE, coloured=False)


@pytest.fixture(scope="module")
def colour() -> CairoRenderer:
    return CairoRenderer(SIZE, coloured=True)


@pytest.mark.parametrize("axis,name", [(0, "pos_x"), (1, "pos_y")])
@pytest.mark.parametrize("shape", [0, 1, 2])
def test_position_moves_centroid_linearly(grey, axis, name, shape):
    pos = np.linspace(0.0, 0.999, 12)
    images = grey.render(full([{name: p, "shape": shape, "rotation": 0.7} for p in pos]))
    c = centroid(images)
    slope, intercept = np.polyfit(pos, c[:, axis], 1)
    residual = c[:, axis] - (slope * pos + intercept)
    assert slope > 0.5 * SIZE * 0.4  # the shape crosses a large part of the canvas
    assert np.abs(residual).max() < 0.05
    assert np.ptp(c[:, 1 - axis]) < 0.05  # the other coordinate stays put


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_rotation_and_scale_keep_the_centroid(grey, shape):
    rows = [
        {"rotation": r, "shape": shape, "pos_x": 0.3, "pos_y": 0.8}
        for r in np.linspace(0, 2 * math.pi, 17)
    ]
    rows += [{"scale": s, "shape": shape, "pos_x": 0.3, "pos_y": 0.8} for s in np.linspace(0, 1, 9)]
    c = centroid(grey.render(full(rows)))
    assert np.abs(c - c[0]).max() < 0.15


def test_shape_keeps_centroid_and_area(grey):
    for scale in (0.0, 0.5, 1.0):
        images = grey.render(
            full([{"shape": s, "scale": scale, "rotation": 0.4} for s in (0, 1, 2)])
        )
        c, a = centroid(images), area(images)
        assert np.abs(c - c[0]).max() < 0.15
        assert np.abs(a / a.mean() - 1).max() < 0.02  # equal area at equal scale


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_scale_grows_area_monotonically_and_rotation_keeps_it(grey, shape):
    images = grey.render(full([{"scale": s, "shape": shape} for s in np.linspace(0, 1, 11)]))
    a = area(images)
    assert (np.diff(a) > 0).all()
    assert a[-1] / a[0] == pytest.approx(4.0, rel=0.05)  # size 0.5 -> 1 quadruples the area
    rotated = area(
        grey.render(full([{"rotation": r, "shape": shape} for r in np.linspace(0, 6, 13)]))
    )
    assert np.ptp(rotated) / rotated.mean() < 0.01


def test_rotation_changes_asymmetric_shapes_and_respects_symmetry(grey):
    for shape, period in ((0, math.pi / 2), (1, math.pi), (2, 2 * math.pi / 3)):
        a, b, c = grey.render(
            full([{"shape": shape, "rotation": r} for r in (0.3, 0.3 + period / 2, 0.3 + period)])
        )
        assert np.abs(a.astype(int) - b).max() > 100  # half a symmetry period looks different
        assert np.abs(a.astype(int) - c).mean() < 0.5  # a whole period looks the same


def test_hue_changes_colour_never_the_silhouette(colour):
    hues = np.linspace(0, 0.95, 9)
    images = colour.render(
        full([{"hue": h, "shape": 2, "rotation": 1.0} for h in hues], coloured=True)
    )
    silhouettes = coverage(images)
    assert np.abs(silhouettes - silhouettes[0]).max() <= 1 / 255 + 1e-9
    mean_colours = images.reshape(len(hues), -1, 3).max(axis=1)
    assert len({tuple(c) for c in mean_colours}) == len(hues)


def test_inactive_hue_is_white_single_channel(grey):
    images = grey.render(full([{}]))
    assert images.shape == (1, SIZE, SIZE, 1) and images.max() == 255


def test_same_factors_same_pixels_in_another_renderer(grey):
    rng = np.random.default_rng(3)
    space = FactorSpace(5)
    vectors = space.expand(space.sample(64, rng))
    assert np.array_equal(grey.render(vectors), CairoRenderer(SIZE).render(vectors))


@pytest.mark.parametrize(
    "column, value, message",
    [
        (2, -1.0, "factor 'scale' must be in [0, 1], got -1.0 in row 1"),
        (0, np.nan, "factor 'pos_x' is nan in row 1"),
        (4, 1e300, "factor 'rotation' is 1e+300 in row 1, beyond float32"),
        (3, 7.0, "index of factor 'shape' must be in 0..2, got 7"),
        (5, 2.0, "factor 'hue' must be in [0, 1], got 2.0 in row 1"),
    ],
)
def test_a_vector_it_cannot_draw_is_refused_and_the_renderer_still_draws(column, value, message):
    """One non-invertible matrix used to leave cairo's context in error: every later render of
    that renderer, good vectors included, raised 'invalid matrix (not invertible)'."""
    renderer = CairoRenderer(SIZE)
    vectors = full([{}, {}])
    vectors[1, column] = value
    with pytest.raises(ValueError) as refused:
        renderer.render(vectors)
    assert message in str(refused.value)
    good = full([{"scale": 0.7, "rotation": 0.3}])
    assert np.array_equal(renderer.render(good), CairoRenderer(SIZE).render(good))
