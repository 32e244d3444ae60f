"""Score many models on the same evaluation images: read each image once, encode it by all.

The metrics see a model only through ``represent(images) -> latents``. Scoring G members that
would be shown the same images (a dataset file that stores every evaluation set, which then do not
depend on the seed; or a live oracle with the same seed) is done as G ordinary metric calls:

1. the first member's call reads the images; its ``represent`` converts each chunk to floats once
   and encodes it by every member (inference mode), keeping the others' latents in order;
2. every other member's call runs the same metric code on a source whose image streams are blank
   placeholders (nothing read or rendered) and whose ``represent`` hands back the kept latents
   of exactly the images it asks for (which set, which rows); a member whose metric asks for
   images the first one never encoded (a representation-dependent path) is scored alone.

So the metric arithmetic is the metric's own, untouched, for every member, and any metric
``benchmark.metrics.evaluate`` runs (present or added later) is batched as long as it gets its
images from the source's streams. The latents equal ``make_represent``'s bit for bit (both are
``benchmark.encode.encode_all``: same chunks, same model calls), so each member's scores equal
scoring it alone.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Hashable, Sequence

import numpy as np
import torch

from benchmark.encode import encode_all, make_represent
from benchmark.metrics.sources import ImageStream, OracleSource, StoredSource, open_source
from benchmark.models.base import Model
from benchmark.train import Scorer, TrainingStopped


class _Unshared(Exception):
    """A member asked for images the leader did not encode (its metric took another path)."""


class _Position:
    """Which images are being encoded: (set, role, first row) of the slice ``represent`` gets.

    Streams set the set and chunk when a chunk is read; ``represent`` is then called on slices
    of the chunk in order, so the first row of each slice follows from the slice lengths."""

    def __init__(self) -> None:
        self.key: Hashable = None
        self.row = 0

    def take(self, n: int) -> Hashable:
        key = (self.key, self.row)
        self.row += n
        return key


def _tagged(stream: ImageStream, key: Hashable, at: _Position, blank: bool) -> ImageStream:
    def read(a: int, b: int) -> np.ndarray:
        at.key, at.row = key, a
        return np.empty((b - a, 1), np.uint8) if blank else stream.read(a, b)

    return ImageStream(total=stream.total, read=read)


def _tagged_source(
    inner: StoredSource | OracleSource, at: _Position, blank: bool
) -> StoredSource | OracleSource:
    """``inner`` whose image streams say which images they hand out (``at``); with ``blank``,
    placeholders instead of images (nothing read or rendered), the sets' layout unchanged."""
    base = type(inner)

    class Tagged(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:  # inner is already open and checked
            pass

        def __getattr__(self, name: str):
            return getattr(inner, name)

        def close(self) -> None:
            pass

        def variance_images(self, n, rng=None):
            return _tagged(inner.variance_images(n, rng), ("variance", n), at, blank)

        def kim_mnih_votes(self, split, n, batch_size, rng=None):
            vs = inner.kim_mnih_votes(split, n, batch_size, rng)
            key = ("kim_mnih", split, n, batch_size)
            return dataclasses.replace(vs, images=_tagged(vs.images, key, at, blank))

        def random_samples(self, split, n, rng):
            ss = inner.random_samples(split, n, rng)
            key = ("random", split, n)
            return dataclasses.replace(ss, images=_tagged(ss.images, key, at, blank))

        def higgins_pairs(self, split, n, batch_size, rng=None):
            ps = inner.higgins_pairs(split, n, batch_size, rng)
            key = ("higgins", split, n, batch_size)
            return dataclasses.replace(
                ps,
                images_a=_tagged(ps.images_a, key + ("a",), at, blank),
                images_b=_tagged(ps.images_b, key + ("b",), at, blank),
            )

    return Tagged()


def _parts(scorer: Scorer) -> tuple[Callable, object, tuple, dict] | None:
    """(metric function, source, other args, keywords) of a ``partial(evaluate, source, ...)``."""
    if isinstance(scorer, functools.partial) and scorer.args:
        return scorer.func, scorer.args[0], scorer.args[1:], dict(scorer.keywords)
    return None


def score_shared(
    scorers: Sequence[Scorer], models: Sequence[Model], device
) -> list[dict | TrainingStopped]:
    """Scores of each model by its scorer, or the ``TrainingStopped`` its encode raised (a
    ``ModelFailed``, or ``TrainingDiverged`` for unusable latents: it fails as
    scored alone, and the others are scored as without it); all scorers must show the same
    images (see module).

    The first member's metric call reads the images and encodes them by every member; each
    other member's call gets its latents by the identity of the images it asks for (set, role,
    first row). A metric whose requests depend on the representation (Kim-Mnih stops before its
    votes when every dimension of the first member is pruned) can make a member ask for images
    the first one never encoded: that member's call is then run again from the source itself,
    encoding for the members after it as the first did, so every score always equals scoring
    the member alone. So is the call of a member whose encode failed on images another member's
    metric asked for: it fails (or not) on the images its own metric asks for."""
    parts = [p for p in map(_parts, scorers) if p is not None]
    if len(models) == 1 or len(parts) < len(scorers):
        return [_scored_alone(s, m, device) for s, m in zip(scorers, models)]
    kept: list[dict[Hashable, np.ndarray]] = [{} for _ in models]
    failed: dict[int, TrainingStopped] = {}  # members whose encode failed while another led
    at = _Position()

    def record(first: int) -> Callable[[np.ndarray], np.ndarray]:
        """Member ``first``'s represent, encoding every image for the members after it too."""

        def represent(images: np.ndarray) -> np.ndarray:
            key = at.take(len(images))
            # a member that leads after a first one took another path skips what is kept
            others = [
                k for k in range(first + 1, len(models)) if key not in kept[k] and k not in failed
            ]
            order = [first, *others]
            lost: dict[int, TrainingStopped] = {}
            outs = encode_all([models[k] for k in order], images, device, failed=lost)
            failed.update((order[pos], exc) for pos, exc in lost.items())
            if first in failed:  # its own metric cannot go on
                raise failed.pop(first)
            for k, z in zip(others, outs[1:]):
                if k not in failed:
                    kept[k][key] = z
            return outs[0]

        return represent

    def replay(store: dict[Hashable, np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
        def represent(images: np.ndarray) -> np.ndarray:
            z = store.pop(at.take(len(images)), None)
            if z is None or len(z) != len(images):
                raise _Unshared
            return z

        return represent

    with open_source(parts[0][1]) as src:
        reading = _tagged_source(src, at, blank=False)
        replayed = _tagged_source(src, at, blank=True)
        results: list[dict | TrainingStopped] = []
        for j, (func, _source, args, keywords) in enumerate(parts):
            if j > 0 and j not in failed:
                try:
                    results.append(func(replayed, replay(kept[j]), *args, **keywords))
                    kept[j].clear()  # latents of images this member's metric did not ask for
                    continue
                except _Unshared:
                    pass
            # the first member, one that took another path or one whose encode failed while
            # another led: it reads and leads the rest
            kept[j].clear()
            failed.pop(j, None)
            try:
                results.append(func(reading, record(j), *args, **keywords))
            except TrainingStopped as exc:
                results.append(exc)
    return results


def _scored_alone(scorer: Scorer, model: Model, device) -> dict | TrainingStopped:
    try:
        return scorer(make_represent(model, device))
    except TrainingStopped as exc:
        return exc


def batched_scorer(
    scorers: Sequence[Scorer | None],
    share_keys: Sequence[Hashable | None],
    device: torch.device,
) -> Callable[[list[int], list[Model]], list[dict | TrainingStopped]]:
    """``score(indices, models)`` for the trainer: members with equal share keys are scored
    together (shared images), a None key or scorer alone; members without a scorer get {}, a
    member whose encode failed its ``ModelFailed`` (or ``TrainingDiverged``)."""

    def score(indices: list[int], models: list[Model]) -> list[dict | TrainingStopped]:
        results: dict[int, dict | TrainingStopped] = {}
        groups: dict[Hashable, list[tuple[int, Scorer]]] = {}  # key -> (position, its scorer)
        for pos, i in enumerate(indices):
            scorer = scorers[i]
            if scorer is None:
                results[pos] = {}
            else:
                key = share_keys[i] if share_keys[i] is not None else ("alone", i)
                groups.setdefault(key, []).append((pos, scorer))
        for group in groups.values():
            positions = [p for p, _ in group]
            scores = score_shared([s for _, s in group], [models[p] for p in positions], device)
            results.update(zip(positions, scores))
        return [results[p] for p in range(len(indices))]

    return score


def share_key(scorer: Scorer | None, seed: int) -> Hashable | None:
    """Which members may share images: a stored file's sets are the same for every seed (and
    preset); a live source draws from the seed, so only members with the same seed share."""
    parts = _parts(scorer) if scorer is not None else None
    if parts is None:
        return None
    func, source, args, keywords = parts
    # everything but the seed: same metrics, same preset, same sizes
    rest = repr((args, sorted((k, v) for k, v in keywords.items() if k != "random_state")))
    if (isinstance(source, (str, bytes)) or hasattr(source, "__fspath__")) and _seed_free(source):
        return (func, "stored", str(source), rest)
    kind = str(source) if isinstance(source, str) else type(source).__name__
    return (func, "live", kind, seed, rest)


def _seed_free(path) -> bool:
    """A file whose evaluation sets are all stored: no metric falls back to rendering them live
    from the seed (a file without /eval/random renders MIG/DCI/SAP samples from the seed)."""
    try:
        src = StoredSource.open(path)
    except Exception:
        return False
    try:
        return src.random_sizes() is not None
    finally:
        src.close()
