"""Named sample sizes for the metrics, derived from the build's evaluation-set presets.

``spritegen.spec.EVAL_PRESETS`` is the one table: ``full`` is disentanglement_lib's published
study configuration (Locatello et al., 2019), so scores are comparable with the literature;
``quick`` is 20 times smaller (5 times for the i.i.d. samples of MIG, DCI, SAP and modularity),
for scoring a model after every epoch. A metric preset is the
build preset of the same name read as metric sizes, so a file built with a preset can always be
scored with it. Kim–Mnih and Higgins share one L and the same numbers of train and eval points
(so a build preset the metrics use must have equal Kim–Mnih and Higgins counts).
``"stored"`` (stored sources only) means: everything the file holds; ``"none"`` (runs, sweeps)
means: do not score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from spritegen.errors import SpecError
from spritegen.spec import EVAL_PRESETS


@dataclass(frozen=True)
class Preset:
    """Sample sizes of one scoring run.

    batch_size: L, the images per Kim–Mnih vote and per Higgins batch.
    num_train / num_eval: votes (Kim–Mnih) or points (Higgins) to fit on / to score on.
    num_variance: images for Kim–Mnih's global variance.
    num_samples_train / num_samples_eval: i.i.d. random images shared by MIG (train part only),
    DCI, SAP and modularity/explicitness (disentanglement_lib's num_train / num_test).
    """

    name: str
    batch_size: int
    num_train: int
    num_eval: int
    num_variance: int
    num_samples_train: int = EVAL_PRESETS["full"]["random_train"]
    num_samples_eval: int = EVAL_PRESETS["full"]["random_eval"]

    def as_dict(self) -> dict:
        return asdict(self)


def preset_from_eval_sizes(name: str, sizes: Mapping[str, int]) -> Preset:
    """A build's evaluation-set sizes (an ``EVAL_PRESETS`` entry) as the metrics' sample sizes."""
    if (sizes["kim_mnih_train"], sizes["kim_mnih_eval"]) != (
        sizes["higgins_train"],
        sizes["higgins_eval"],
    ):
        raise ValueError(f"preset {name!r}: the metrics need equal Kim–Mnih and Higgins counts")
    return Preset(
        name,
        batch_size=sizes["batch_size"],
        num_train=sizes["kim_mnih_train"],
        num_eval=sizes["kim_mnih_eval"],
        num_variance=sizes["variance"],
        num_samples_train=sizes["random_train"],
        num_samples_eval=sizes["random_eval"],
    )


#: The build presets the metrics score with ("tiny" is for tests, "none" stores nothing).
SCORING_PRESETS = ("quick", "full")
PRESETS: dict[str, Preset] = {
    name: preset_from_eval_sizes(name, EVAL_PRESETS[name]) for name in SCORING_PRESETS
}

#: Names accepted by ``evaluate`` and ``bench score``; "stored" is resolved by the source.
PRESET_NAMES = (*SCORING_PRESETS, "stored")
#: Names accepted where scoring may be switched off (``bench run``'s score/final presets, sweeps).
RUN_PRESET_NAMES = (*PRESET_NAMES, "none")


def get_preset(preset: str | Preset) -> Preset:
    """Resolve a preset name (or pass a ``Preset`` through), with a clear error for bad names."""
    if isinstance(preset, Preset):
        return preset
    try:
        return PRESETS[preset]
    except (KeyError, TypeError):
        raise SpecError(
            f"unknown metric preset {preset!r}; allowed: {', '.join(PRESET_NAMES)}"
        ) from None


def count(name: str, value: object, low: int, metric: str = "") -> int:
    """``value`` as an int >= ``low``, or a SpecError naming it (and ``metric``, when given).

    numpy integers are the ints they hold: a size computed from an array (``len(z) // 2`` of a
    shape is an int, ``n.sum()`` an ``np.int64``) was refused as "must be an integer >= 1, got
    np.int64(500)", and kept as numpy it would end in results that ``json.dumps`` refuses.
    """
    if isinstance(value, np.integer):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        where = f"{metric}: " if metric else ""
        raise SpecError(f"{where}{name} must be an integer >= {low}, got {value!r}")
    return value


#: The fewest of each ``Preset`` size a metric can score with. Kim–Mnih's L and its global
#: variance need 2 images (variances with ddof=1); the i.i.d. sample metrics fit on at least 2
#: rows and score on as many eval rows as their estimator needs (MIG none, the classifiers of DCI
#: and SAP one, explicitness's ROC-AUC and the R² two). The metrics check their arguments with
#: these, and ``StoredSource.check_stored_sizes`` a file's sets, naming the spec field, before
#: anything is encoded.
METRIC_MINIMUMS: dict[str, dict[str, int]] = {
    "kim_mnih": {"batch_size": 2, "num_train": 1, "num_eval": 1, "num_variance": 2},
    "higgins": {"batch_size": 2, "num_train": 1, "num_eval": 1},
    "mig": {"num_samples_train": 2, "num_samples_eval": 0},
    "dci": {"num_samples_train": 2, "num_samples_eval": 1},
    "sap": {"num_samples_train": 2, "num_samples_eval": 1},
    "modularity": {"num_samples_train": 2, "num_samples_eval": 2},
    "linear_r2": {"num_samples_train": 2, "num_samples_eval": 2},
}


def check_sizes(
    *, batch_size: int, num_train: int, num_eval: int, num_variance: int | None = None
) -> tuple[int, ...]:
    """The sample sizes as ints, in this order (``num_variance`` only when given), or a
    SpecError naming the field and the allowed range (``METRIC_MINIMUMS``: Kim–Mnih's, which
    Higgins shares but for the variance)."""
    sizes = {"batch_size": batch_size, "num_train": num_train, "num_eval": num_eval}
    if num_variance is not None:
        sizes["num_variance"] = num_variance
    lows = METRIC_MINIMUMS["kim_mnih"]
    return tuple(count(name, value, lows[name]) for name, value in sizes.items())
