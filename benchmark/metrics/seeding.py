"""Random states for the metrics: an int seed or an explicit numpy Generator, never global state."""

from __future__ import annotations

import numbers

import numpy as np

from spritegen.errors import SpecError


def as_generator(random_state: int | np.random.Generator) -> np.random.Generator:
    """An int seed gives a fresh ``default_rng(seed)``; a Generator is used (and advanced) as is."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if (
        isinstance(random_state, numbers.Integral)
        and not isinstance(random_state, bool)
        and int(random_state) >= 0
    ):
        return np.random.default_rng(int(random_state))
    raise SpecError(
        "random_state must be a non-negative int seed or a numpy.random.Generator, got "
        f"{random_state!r}"
    )


def seed_of(random_state: int | np.random.Generator) -> int | None:
    """The seed to record in results: the int if one was given, else None (a Generator)."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return None


def spawn(random_state: int | np.random.Generator, n: int) -> list[np.random.Generator]:
    """``n`` independent Generators derived from ``random_state``, one per metric, so that adding
    or skipping one metric never changes the batches another one draws."""
    if isinstance(random_state, np.random.Generator):
        return random_state.spawn(n)
    as_generator(random_state)  # validates
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(random_state)).spawn(n)]
