"""The factor vectors of everything a build renders: the training set and the oracle's sets.

Planning is separate from rendering so that it can happen once, in one process, from the seed
alone: every worker then renders its slice of a fixed plan, which is what makes the bytes
independent of the number of workers and lets an interrupted build resume.

Each part draws from its own child of ``SeedSequence(spec.seed)``, so the evaluation sets are
independent of the training set, and changing one set's size never changes another's contents.
The i.i.d. sample sets of format version 2 (``eval/random/{train,eval}``) use new children (6, 7)
and are planned and rendered after every older set, so a version-2 file holds the same training
images and the same older evaluation sets, byte for byte, as a version-1 file of the same spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spritegen.groundtruth import FactorSampler, draw_factors
from spritegen.oracle import Oracle
from spritegen.spec import DatasetSpec

# Children of SeedSequence(seed) used by each part; fixed forever (changing them changes data).
SEED_KEYS = {
    "training": 0,
    "variance": 1,
    "kim_mnih/train": 2,
    "kim_mnih/eval": 3,
    "higgins/train": 4,
    "higgins/eval": 5,
    "random/train": 6,  # format version 2: new children, so no older stream moves
    "random/eval": 7,
}


#: Every image set a file can hold, in the order a build renders and checksums them.
IMAGE_SET_PATHS = (
    "images",
    "eval/variance/images",
    "eval/kim_mnih/train/images",
    "eval/kim_mnih/eval/images",
    "eval/higgins/train/images_a",
    "eval/higgins/train/images_b",
    "eval/higgins/eval/images_a",
    "eval/higgins/eval/images_b",
    "eval/random/train/images",
    "eval/random/eval/images",
)
INDEX_PATHS = (
    "eval/kim_mnih/train/factor_index",
    "eval/kim_mnih/eval/factor_index",
    "eval/higgins/train/factor_index",
    "eval/higgins/eval/factor_index",
)


def factors_path(images_path: str) -> str:
    """Where the factor vectors an image set is rendered from are stored (``images``:
    ``factors``; ``eval/higgins/train/images_a``: ``eval/higgins/train/factors_a``)."""
    return images_path.replace("images", "factors")


def stored_image_sets(f) -> list[tuple[str, str]]:
    """(images, factors) paths of the image sets an open file holds, in the order the build
    writes them."""
    return [(p, factors_path(p)) for p in IMAGE_SET_PATHS if p in f]


@dataclass
class ImageSet:
    """One images dataset in the file and the factor vectors it is rendered from."""

    images_path: str
    factors_path: str
    factors: np.ndarray  # (M, K) float32


@dataclass
class BuildPlan:
    image_sets: list[ImageSet]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # extra datasets (factor_index)
    group_attrs: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def total_images(self) -> int:
        return sum(len(s.factors) for s in self.image_sets)


def rng_for(seed: int, part: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SEED_KEYS[part],)))


def kim_mnih_factors(
    sampler: FactorSampler, votes: int, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Votes of ``batch_size`` vectors sharing the value of one factor k (k uniform).

    Returns factors (votes·L, K) and factor_index (votes,). Rows v·L..(v+1)·L form vote v. The
    one sampler of Kim–Mnih votes: the build's stored sets and the metrics' live oracle both call
    it, so a live oracle draws its votes exactly as a build of the same oracle stores them.
    The order of draws from ``rng`` is fixed forever (changing it changes built files).
    """
    K = sampler.num_factors
    index = rng.integers(0, K, size=votes)
    batches = draw_factors(sampler, votes * batch_size, rng).reshape(votes, batch_size, K)
    shared = draw_factors(sampler, votes, rng)
    rows = np.arange(votes)
    batches[rows, :, index] = shared[rows, index][:, None]
    return batches.reshape(votes * batch_size, K), index.astype(np.int64)


def higgins_factors(
    sampler: FactorSampler, points: int, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of batches whose rows share the value of one factor k (k uniform per point).

    Returns factors_a, factors_b (points·L, K) and factor_index (points,). The one sampler of
    Higgins pairs, shared by the build and the live oracle like ``kim_mnih_factors``.
    """
    K = sampler.num_factors
    index = rng.integers(0, K, size=points)
    a = draw_factors(sampler, points * batch_size, rng).reshape(points, batch_size, K)
    b = draw_factors(sampler, points * batch_size, rng).reshape(points, batch_size, K)
    rows = np.arange(points)
    b[rows, :, index] = a[rows, :, index]
    return (a.reshape(-1, K), b.reshape(-1, K), index.astype(np.int64))


def plan_build(spec: DatasetSpec) -> BuildPlan:
    space, sizes, L = spec.space, spec.evaluation, spec.evaluation.batch_size
    oracle = Oracle.from_spec(spec)  # samples as ``space`` does; it renders nothing here
    training = space.sample(spec.n, rng_for(spec.seed, "training"))
    plan = BuildPlan([ImageSet("images", "factors", training)])
    if sizes.variance:
        variance = space.sample(sizes.variance, rng_for(spec.seed, "variance"))
        plan.image_sets.append(ImageSet("eval/variance/images", "eval/variance/factors", variance))
    for split in ("train", "eval"):
        votes = getattr(sizes, f"kim_mnih_{split}")
        if votes:
            group = f"eval/kim_mnih/{split}"
            factors, index = kim_mnih_factors(
                oracle, votes, L, rng_for(spec.seed, f"kim_mnih/{split}")
            )
            plan.image_sets.append(ImageSet(f"{group}/images", f"{group}/factors", factors))
            plan.arrays[f"{group}/factor_index"] = index
            plan.group_attrs[group] = {"batch_size": L, "num_points": votes}
    for split in ("train", "eval"):
        points = getattr(sizes, f"higgins_{split}")
        if points:
            group = f"eval/higgins/{split}"
            a, b, index = higgins_factors(oracle, points, L, rng_for(spec.seed, f"higgins/{split}"))
            plan.image_sets.append(ImageSet(f"{group}/images_a", f"{group}/factors_a", a))
            plan.image_sets.append(ImageSet(f"{group}/images_b", f"{group}/factors_b", b))
            plan.arrays[f"{group}/factor_index"] = index
            plan.group_attrs[group] = {"batch_size": L, "num_points": points}
    for split in ("train", "eval"):
        count = getattr(sizes, f"random_{split}")
        if count:
            group = f"eval/random/{split}"
            factors = space.sample(count, rng_for(spec.seed, f"random/{split}"))
            plan.image_sets.append(ImageSet(f"{group}/images", f"{group}/factors", factors))
            plan.group_attrs[group] = {"num_points": count}
    return plan
