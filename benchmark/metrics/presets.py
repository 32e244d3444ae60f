"""Named sample sizes for the metrics.

``full`` is disentanglement_lib's published study configuration (Locatello et al., 2019), so
scores are comparable with the literature; ``quick`` is 20 times smaller (5 times for the i.i.d.
samples of MIG, DCI, SAP and modularity), for scoring a model after every epoch; ``tiny`` is for
tests and smoke runs only. All three match the evaluation-set presets of the same names that
``spritegen build`` writes (``spritegen.spec.EVAL_PRESETS``), so a file built with a preset can
be scored with it. Kim–Mnih and Higgins share L and the numbers of train and eval points.
``"stored"`` (stored sources only) means: everything the file holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from spritegen.errors import SpecError


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
    num_samples_train: int = 10_000
    num_samples_eval: int = 5_000

    def as_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Preset] = {
    "full": Preset("full", batch_size=64, num_train=10_000, num_eval=5_000, num_variance=10_000),
    "quick": Preset(
        "quick",
        batch_size=64,
        num_train=500,
        num_eval=250,
        num_variance=2_000,
        num_samples_train=2_000,
        num_samples_eval=1_000,
    ),
    "tiny": Preset(
        "tiny",
        batch_size=16,
        num_train=60,
        num_eval=40,
        num_variance=300,
        num_samples_train=300,
        num_samples_eval=200,
    ),
}

#: Names accepted by ``evaluate`` and ``bench score``; "stored" is resolved by the source.
PRESET_NAMES = ("quick", "full", "tiny", "stored")


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


def check_sizes(
    *, batch_size: int, num_train: int, num_eval: int, num_variance: int | None = None
) -> None:
    """Reject sample sizes the metrics cannot work with, naming the field and the allowed range.

    L must be at least 2 because Kim–Mnih's within-batch variance uses ddof=1; the global
    variance needs at least 2 images for the same reason.
    """
    checks = [("batch_size", batch_size, 2), ("num_train", num_train, 1), ("num_eval", num_eval, 1)]
    if num_variance is not None:
        checks.append(("num_variance", num_variance, 2))
    for name, value, low in checks:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise SpecError(f"{name} must be an integer >= {low}, got {value!r}")
