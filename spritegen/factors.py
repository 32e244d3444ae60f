"""The seven generative factors of the study and the space a dataset samples them from.

Factors are added cumulatively in the thesis' order; a dataset with K factors varies the first K
and holds every other factor at a fixed value that is recorded in its spec and its file. Keeping
the definitions in one table means the renderers, the file format, the oracle and the metrics all
agree on what column k of a factor array means.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

TWO_PI = 2.0 * math.pi


@dataclass(frozen=True)
class Factor:
    """One generative factor: its distribution when active and its value when not."""

    name: str
    kind: str  # "continuous" or "categorical"
    low: float = 0.0  # continuous: U[low, high); categorical: unused
    high: float = 1.0
    classes: tuple[str, ...] = ()  # categorical class names (3D names in classes_3d)
    classes_3d: tuple[str, ...] = ()
    default_fixed: float = 0.0
    description: str = ""
    period: float | None = None  # continuous factors that wrap around (rotations)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


FACTORS: tuple[Factor, ...] = (
    Factor(
        "pos_x",
        "continuous",
        0.0,
        1.0,
        default_fixed=0.5,
        description="horizontal position of the centroid inside the margin (0 left, 1 right)",
    ),
    Factor(
        "pos_y",
        "continuous",
        0.0,
        1.0,
        default_fixed=0.5,
        description="vertical position of the centroid inside the margin (0 top, 1 bottom)",
    ),
    Factor(
        "scale",
        "continuous",
        0.0,
        1.0,
        default_fixed=0.5,
        description="size, mapped linearly to [0.5, 1] of the largest size",
    ),
    Factor(
        "shape",
        "categorical",
        classes=("square", "ellipse", "triangle"),
        classes_3d=("cube", "ellipsoid", "pyramid"),
        default_fixed=0.0,
        description="shape class index",
    ),
    Factor(
        "rotation",
        "continuous",
        0.0,
        TWO_PI,
        default_fixed=0.0,
        period=TWO_PI,
        description="radians; 2D: in-plane rotation about the centroid; 3D: about the x axis",
    ),
    Factor(
        "hue",
        "continuous",
        0.0,
        1.0,
        default_fixed=0.0,
        description="colour HSV(hue, 1, 1); when inactive the shape is white",
    ),
    Factor(
        "rotation_y",
        "continuous",
        0.0,
        TWO_PI,
        default_fixed=0.0,
        period=TWO_PI,
        description="radians; 3D only: rotation about the y axis",
    ),
)
FACTOR_NAMES: tuple[str, ...] = tuple(f.name for f in FACTORS)
NUM_ALL_FACTORS = len(FACTORS)
#: Bounds of K, the number of factors a dataset varies (the first K of FACTORS): the one place
#: they are written; the spec, the CLIs and the benchmark's run and sweep checks read them here.
MIN_FACTORS = 1
MAX_FACTORS = NUM_ALL_FACTORS
NUM_FACTORS_RANGE = f"{MIN_FACTORS}..{MAX_FACTORS}"


def is_num_factors(k: object) -> bool:
    """Whether ``k`` is a valid K: an int (not a bool) in ``MIN_FACTORS..MAX_FACTORS``."""
    return isinstance(k, int) and not isinstance(k, bool) and MIN_FACTORS <= k <= MAX_FACTORS


HUE_INDEX = FACTOR_NAMES.index("hue")
SHAPE_INDEX = FACTOR_NAMES.index("shape")

# Symmetries of each shape, in radians, about the rotation axes: the smallest non-zero in-plane
# rotation (2D) that maps the shape onto itself. Recorded in every file so users can account for
# the fact that, e.g., a square at rotation r and r + pi/2 gives the same image.
SYMMETRY_2D = {"square": math.pi / 2, "ellipse": math.pi, "triangle": 2 * math.pi / 3}

# Symmetries under the two rotations (see docs/render3d.md). "rotation_period" is the smallest
# turn about x that maps the shape onto itself at any rotation_y; "rotation_y_period" likewise
# about y at any rotation; "joint" lists exact coincidences that involve both factors. Every shape
# has a half turn about its y axis among its symmetries, so for all three (r, ry) and
# (-r, ry + pi) give the same image: the pair of rotations covers each view twice.
SYMMETRY_3D: dict[str, dict[str, str | float]] = {
    "cube": {
        "rotation_period": math.pi / 2,
        "rotation_y_period": 2 * math.pi,
        "joint": "(r, ry) == (-r, ry + pi); ry has period pi/2 when r is a multiple of pi/2 "
        "and period pi when r is an odd multiple of pi/4",
    },
    "ellipsoid": {
        "rotation_period": math.pi,
        "rotation_y_period": 2 * math.pi,
        "joint": "(r, ry) == (-r, ry + pi); ry has period pi when r is a multiple of pi/2",
    },
    "pyramid": {
        "rotation_period": 2 * math.pi,
        "rotation_y_period": 2 * math.pi,
        "joint": "(r, ry) == (-r, ry + pi); ry has period pi/2 when r is a multiple of pi",
    },
}


@dataclass(frozen=True)
class FactorSpace:
    """The first ``num_active`` factors vary; the rest are held at ``fixed`` values.

    Factor arrays handed around the project have one column per *active* factor (shape (N, K),
    float32, categorical factors as class indices); ``expand`` turns them into the full seven
    columns a renderer needs.
    """

    num_active: int
    fixed: tuple[float, ...] = field(
        default_factory=lambda: tuple(f.default_fixed for f in FACTORS)
    )

    def __post_init__(self) -> None:
        if not is_num_factors(self.num_active):
            raise ValueError(f"num_active must be in {NUM_FACTORS_RANGE}, got {self.num_active}")
        if len(self.fixed) != NUM_ALL_FACTORS:
            raise ValueError(f"fixed must have {NUM_ALL_FACTORS} values")

    @property
    def factors(self) -> tuple[Factor, ...]:
        return FACTORS[: self.num_active]

    @property
    def names(self) -> tuple[str, ...]:
        return FACTOR_NAMES[: self.num_active]

    @property
    def coloured(self) -> bool:
        """Hue is a factor: images carry colour; otherwise the shape is white."""
        return self.num_active > HUE_INDEX

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` independent factor vectors, (n, K) float32.

        Values are drawn in float64 and rounded to float32 once, here: the stored float32 values
        are then exactly what was rendered, so re-rendering a stored vector reproduces its image.
        """
        out = np.empty((n, self.num_active), dtype=np.float64)
        for k, f in enumerate(self.factors):
            if f.kind == "categorical":
                out[:, k] = rng.integers(0, f.num_classes, size=n)
            else:
                out[:, k] = rng.uniform(f.low, f.high, size=n)
        out = out.astype(np.float32)
        # float32 rounding can land exactly on the open upper bound; fold it back.
        for k, f in enumerate(self.factors):
            if f.kind == "continuous":
                col = out[:, k]
                col[col >= np.float32(f.high)] = np.nextafter(np.float32(f.high), np.float32(0))
        return out

    def sample_column(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` values of active factor ``k`` alone (float32), as ``sample`` would."""
        f = self.factors[k]
        if f.kind == "categorical":
            col = rng.integers(0, f.num_classes, size=n).astype(np.float32)
        else:
            col = rng.uniform(f.low, f.high, size=n).astype(np.float32)
            col[col >= np.float32(f.high)] = np.nextafter(np.float32(f.high), np.float32(0))
        return col

    def expand(self, values: np.ndarray) -> np.ndarray:
        """(N, K) active values -> (N, 7) float64 full vectors with the inactive factors fixed."""
        values = np.asarray(values)
        if values.ndim != 2 or values.shape[1] != self.num_active:
            raise ValueError(
                f"factor array must have shape (N, {self.num_active}), got {values.shape}"
            )
        full = np.empty((values.shape[0], NUM_ALL_FACTORS), dtype=np.float64)
        full[:, : self.num_active] = values.astype(np.float32).astype(np.float64)
        full[:, self.num_active :] = np.asarray(self.fixed[self.num_active :], dtype=np.float64)
        return full


def class_index_faults(
    column: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indices, not_whole, out_of_range)`` of one factor's class (or grid) index column: the
    int64 indices (0 where not whole) and (n,) bool masks of the values that are no whole number
    (NaN included) and of the whole numbers outside 0..num_classes-1.

    The one definition of a valid index: ``check_class_indices`` raises on it, and the oracle
    uses the masks to say which rows of a stored file no image is rendered from.
    """
    col = np.asarray(column)
    if col.dtype.kind == "f":
        finite = np.isfinite(col)
        idx = np.where(finite, np.rint(np.where(finite, col, 0)), 0).astype(np.int64)
        not_whole = ~finite | (idx != col)
    else:
        idx = col.astype(np.int64)
        not_whole = np.zeros(col.shape, dtype=bool)
    out = ~not_whole & ((idx < 0) | (idx >= num_classes))
    return idx, not_whole, out


def check_class_indices(
    column: np.ndarray, num_classes: int, name: str, class_names: Sequence[str] = ()
) -> np.ndarray:
    """One factor's class (or grid) indices as int64, or a ValueError naming the factor.

    The one check of categorical values, shared by the oracle, the renderers, the grid datasets
    and the discretising adapter: a float that is not a whole number, a NaN or an index out of
    range is refused rather than rounded or wrapped into some class. ``class_names``, when
    given, are listed in the message.
    """
    col = np.asarray(column)
    idx, not_whole, out = class_index_faults(col, num_classes)
    if not_whole.any():
        raise ValueError(
            f"factors are indices and must be whole numbers; factor {name!r} got "
            f"{float(col[not_whole][0])}"
        )
    if out.any():
        named = ", ".join(f"{i} {c}" for i, c in enumerate(class_names))
        raise ValueError(
            f"index of factor {name!r} must be in 0..{num_classes - 1}"
            f"{f' ({named})' if named else ''}, got {int(idx[out][0])}"
        )
    return idx


@dataclass(frozen=True)
class FactorFault:
    """Rows of one factor's column that no image is rendered from, and why: ``non-finite``
    (NaN, infinite, or a finite float64 beyond float32, which the renderer is given), ``class``
    (no class index of a categorical factor) or ``range`` (a continuous, non-periodic value
    outside [low, high], ends included, compared in float32)."""

    k: int  # the factor's column
    kind: Literal["non-finite", "class", "range"]
    rows: np.ndarray  # (n,) bool

    def reason(self, space: FactorSpace) -> str:
        """The fault in a few words, for a line naming the rows that have it."""
        f = space.factors[self.k]
        if self.kind == "non-finite":
            return "NaN or infinite values"
        if self.kind == "class":
            return f"a '{f.name}' class index outside 0..{f.num_classes - 1}"
        return f"a '{f.name}' value outside [{f.low:g}, {f.high:g}]"


def factor_faults(space: FactorSpace, factors: np.ndarray) -> list[FactorFault]:
    """Every fault of an (n, K) array of real numbers, in column order and, within a column,
    non-finite rows first (a class or range fault is only looked for in finite rows).

    The one definition of "which rows can be rendered": ``check_renderable`` (the oracle, the
    renderers) raises on the first fault, ``verify`` names them all and re-renders the other
    rows.
    """
    with np.errstate(over="ignore"):
        rendered = factors.astype(np.float32)
    faults = []
    for k, f in enumerate(space.factors):
        finite = np.isfinite(rendered[:, k])
        if not finite.all():
            faults.append(FactorFault(k, "non-finite", ~finite))
        if f.kind == "categorical":
            _, not_whole, out = class_index_faults(factors[:, k], f.num_classes)
            wrong = finite & (not_whole | out)
            if wrong.any():
                faults.append(FactorFault(k, "class", wrong))
        elif f.period is None:
            col = rendered[:, k]
            out = finite & ((col < np.float32(f.low)) | (col > np.float32(f.high)))
            if out.any():
                faults.append(FactorFault(k, "range", out))
    return faults


def check_renderable(
    space: FactorSpace, factors: np.ndarray, class_names: Sequence[str] = ()
) -> None:
    """A ValueError naming the factor, the row and what is allowed, for the first row of an
    (n, K) array of real numbers that no image can be drawn from (``factor_faults``).

    Checked on the float32 values renderers draw: a finite float64 beyond float32's range is inf
    there, and cairo, given one non-invertible matrix, refuses every later drawing on its
    context. A continuous factor must lie in its range, ends included (outside it cairo drew an
    empty canvas or a shape no dataset holds, silently); rotations take any finite angle; a
    categorical factor takes its class indices (``class_names`` listed in the message).
    """
    faults = factor_faults(space, factors)
    if not faults:
        return
    fault = faults[0]
    f = space.factors[fault.k]
    row = int(np.flatnonzero(fault.rows)[0])
    value = float(factors[row, fault.k])
    if fault.kind == "non-finite":
        raise ValueError(
            f"factors contain NaN or infinite values: factor {f.name!r} is {value!r} "
            f"in row {row}"
            + (", beyond float32 (what the renderer takes)" if np.isfinite(value) else "")
        )
    if fault.kind == "class":
        check_class_indices(factors[:, fault.k], f.num_classes, f.name, class_names)
    raise ValueError(
        f"factor {f.name!r} must be in [{f.low:g}, {f.high:g}], got {value!r} in row {row}"
    )


def as_class_indices(
    factors: np.ndarray, sizes: Sequence[int] | np.ndarray, names: Sequence[str]
) -> np.ndarray:
    """Validate an (n, K) array of class/grid indices against ``sizes``; return it as int64.

    Grid datasets and the discretising adapter address every factor by index.
    """
    f = np.asarray(factors)
    sizes = np.asarray(sizes, dtype=np.int64)
    if f.ndim != 2 or f.shape[1] != len(sizes):
        raise ValueError(
            f"factors must have shape (n, {len(sizes)}) ({', '.join(names)}), got {f.shape}"
        )
    idx = np.empty(f.shape, dtype=np.int64)
    for k in range(f.shape[1]):
        idx[:, k] = check_class_indices(f[:, k], int(sizes[k]), names[k])
    return idx
