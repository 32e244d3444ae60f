"""The run parameters, declared once: `bench run`'s options, run validation, sweep validation,
run ids and report labels are all derived from ``RunConfig``'s fields.

Each field of ``RunConfig`` carries its checker, help text, flag name and report label in its
``metadata`` (built by ``param``), the way scikit-learn declares ``_parameter_constraints`` once
per estimator. A plain dataclass rather than pydantic: the messages must name the place of the
mistake in the caller's own terms (``--latent-dim`` on the command line, ``grid.latent_dim[2]``
in a sweep spec) on one line, and the table stays readable by mypy and free of a dependency.

Model hyperparameters are not listed here: they come from the model class itself (its
constructor's signature, see ``benchmark.models.registry``), for bundled and plugin models alike,
and are checked against its annotations by ``check_hparams``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmark.metrics.presets import RUN_PRESET_NAMES
from spritegen.errors import SpecError, line_breaking, quote
from spritegen.factors import MAX_FACTORS, MIN_FACTORS
from spritegen.spec import plain

#: Metric sizes a run may score with: the metrics' presets (quick, full, stored: all the file's
#: evaluation sets) and "none" (no scoring).
SCORE_PRESETS: tuple[str, ...] = RUN_PRESET_NAMES

Check = Callable[[Any], Any]


class BadValue(ValueError):
    """A value a checker refused; the text is the rule ("must be ..., got ...") without the
    place, which the caller adds (a flag, or a dotted path in a sweep spec)."""


def _got(v: Any) -> str:
    return f"got {quote(v)}"


def positive_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise BadValue(f"must be a positive integer, {_got(v)}")
    return v


def non_negative_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise BadValue(f"must be an integer >= 0, {_got(v)}")
    return v


#: The largest seed: ``torch.Generator.manual_seed`` takes an unsigned 64-bit integer, and a run
#: seeds its weights, shuffles and noise with it (numpy's generators take any size).
MAX_SEED = 2**64 - 1


def seed_int(v: Any) -> int:
    """A run seed: checked here so that a seed torch cannot take is one line before any work,
    not an ``Overflow when unpacking long long`` once the model is built."""
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_SEED:
        raise BadValue(f"must be an integer in 0..{MAX_SEED} (2**64 - 1), {_got(v)}")
    return v


#: The largest learning rate. Adam's first update moves a weight by up to lr / (1 - 0.9) = 10 lr,
#: a step size torch computes in float32 (at most 3.4e38): above that it raises an overflow error
#: inside the optimiser step, which was reported as a fault of the model. Rates up to this one
#: train, and a rate that large diverges as any other (the run stops as "diverged").
MAX_LR = 1e30


def learning_rate(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 < v <= MAX_LR):
        raise BadValue(f"must be a positive finite number, at most {MAX_LR:.0e}, {_got(v)}")
    return v


def factors_count(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not MIN_FACTORS <= v <= MAX_FACTORS:
        raise BadValue(f"must be an integer in {MIN_FACTORS}..{MAX_FACTORS}, {_got(v)}")
    return v


def text(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise BadValue(f"must be a non-empty string, {_got(v)}")
    return v


def output_path(v: Any) -> str:
    """A path the run writes: text without line breaks or control characters, so that every
    message naming its folder stays one line (``spritegen.errors.line_breaking``)."""
    v = text(v)
    bad = line_breaking(v)
    if bad is not None:
        raise BadValue(
            f"must be a path without line breaks or control characters (every message naming "
            f"it must stay one line), got {quote(v)} holding {bad!r}"
        )
    return v


def boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise BadValue(f"must be true or false, {_got(v)}")
    return v


def one_of(*allowed: str) -> Check:
    def check(v: Any) -> str:
        if v not in allowed:
            raise BadValue(f"must be one of {', '.join(allowed)}, {_got(v)}")
        return str(v)

    check.choices = allowed  # type: ignore[attr-defined]  # read by click_options
    return check


def optional(check: Check) -> Check:
    def check_optional(v: Any) -> Any:
        return None if v is None else check(v)

    check_optional.inner = check  # type: ignore[attr-defined]
    return check_optional


@dataclass(frozen=True)
class ParamInfo:
    """How a run parameter is written, checked and shown. ``key`` is the name users write in a
    sweep spec and (with dashes) as a flag; ``name`` is the RunConfig field and config.json key."""

    name: str
    key: str
    check: Check
    help: str
    default: Any
    cli: bool  # a `bench run` option
    sweep: bool  # settable in a sweep spec
    identity: bool  # changes what the run computes (resume identity, run ids)
    label: str  # report axis label
    symbol: str  # short form in legends and headings (D, K)
    id_prefix: str  # before the value in sweep run ids (D10, s0; empty for model and data)
    flag_kind: str  # "value", "switch" (a bool flag), "inverted" (--quiet sets progress False)
    flag_name: str

    @property
    def flag(self) -> str:
        return self.flag_name

    def validate(self, value: Any, where: str) -> Any:
        try:
            return self.check(value)
        except BadValue as exc:
            raise SpecError(f"{where}: {exc}") from None


def param(
    default: Any = dataclasses.MISSING,
    *,
    check: Check,
    help: str,
    key: str | None = None,
    cli: bool = True,
    sweep: bool = True,
    identity: bool = True,
    label: str | None = None,
    symbol: str | None = None,
    id_prefix: str | None = None,
    flag: str | None = None,
    flag_kind: str = "value",
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A ``RunConfig`` field with its row of the parameter table in ``metadata``."""
    meta = {
        "check": check,
        "help": help,
        "key": key,
        "cli": cli,
        "sweep": sweep,
        "identity": identity,
        "label": label,
        "symbol": symbol,
        "id_prefix": id_prefix,
        "flag": flag,
        "flag_kind": flag_kind,
    }
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def _hparams(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
        raise BadValue(f"must be a mapping of hyperparameter names to values, {_got(v)}")
    return v


def _device(v: Any) -> str:
    return text(v)


def _plain_setting(name: str, value: Any) -> Any:
    """A run setting as a script naturally holds it, taken as what it means: numpy scalars as
    Python numbers, a ``pathlib.Path`` for ``data`` or ``out`` and a ``torch.device`` as text."""
    value = plain(value)
    if name in ("data", "out") and isinstance(value, os.PathLike):
        return os.fspath(value)
    if name == "device" and type(value).__module__ == "torch" and hasattr(value, "type"):
        return str(value)
    return value


@dataclass
class RunConfig:
    """Everything that defines a run: the single table of run parameters (see module doc)."""

    model: str = param(check=text, help="Model name (see `bench models`).", id_prefix="")
    data: str | None = param(
        None,
        check=optional(text),
        help="A spritegen dataset file, or dsprites:PATH / 3dshapes:PATH.",
        label="dataset",
        id_prefix="",
    )
    factors: int | None = param(
        None,
        check=optional(factors_count),
        help="Use (building if needed) the default dataset with K factors.",
        label="number of generative factors K",
        symbol="K",
    )
    hparams: dict[str, Any] = param(
        check=_hparams,
        help="Model hyperparameters (from the model's constructor).",
        cli=False,
        sweep=False,
        default_factory=dict,
    )
    latent_dim: int = param(
        10, check=positive_int, help="Latent size D.", label="latent size D", symbol="D"
    )
    epochs: int | None = param(
        None,
        check=optional(positive_int),
        help="Default by factors: 1-2:10, 3:20, 4-5:30, 6-7:60.",
        label="epochs",
    )
    max_steps: int | None = param(
        None,
        check=optional(positive_int),
        help="Stop after this many steps (quick runs).",
        key="steps",
        label="steps",
    )
    seed: int = param(0, check=seed_int, help="Seed of weights, shuffle and noise.", id_prefix="s")
    device: str = param("auto", check=_device, help="auto, cpu, cuda or cuda:N.", identity=False)
    out: str | None = param(
        None,
        check=optional(output_path),
        help="Run folder (default results/...).",
        sweep=False,
        identity=False,
    )
    batch_size: int = param(64, check=positive_int, help="Mini-batch size.", label="batch size")
    lr: float = param(5e-4, check=learning_rate, help="Adam learning rate.", label="learning rate")
    amp: bool = param(
        False, check=boolean, help="bfloat16 mixed precision (CUDA only).", flag_kind="switch"
    )
    score_preset: str = param(
        "quick",
        check=one_of(*SCORE_PRESETS),
        help="Metric sizes after each epoch (stored: all the file's evaluation sets).",
    )
    final_preset: str = param("full", check=one_of(*SCORE_PRESETS), help="Metric sizes at the end.")
    score_every: int = param(
        1, check=non_negative_int, help="Score every N epochs (0: only at the end)."
    )
    checkpoint_every: int = param(
        0,
        check=non_negative_int,
        help="Also checkpoint every N steps (each epoch always).",
        identity=False,
    )
    force: bool = param(
        False,
        check=boolean,
        help="Replace a finished (or different) run in --out.",
        sweep=False,
        identity=False,
        flag_kind="switch",
    )
    progress: bool = param(
        True,
        check=boolean,
        help="No progress bar.",
        sweep=False,
        identity=False,
        flag="--quiet",
        flag_kind="inverted",
    )

    def __setattr__(self, name: str, value: Any) -> None:
        """Every setting is kept as what the checks and config.json expect, whether given to the
        constructor or assigned later (``cfg.seed = s`` in a loop over ``np.arange``): see
        ``_plain_setting``. Assigned values were refused before with a message that seemed to
        contradict itself (``--seed: must be an integer in 0..., got np.int64(1)``)."""
        super().__setattr__(name, _plain_setting(name, value))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunConfig:
        if not isinstance(d, Mapping):
            raise SpecError(
                f"a run config must be a RunConfig or a mapping of its settings "
                f"(e.g. {{'model': 'betavae', 'data': 'data.h5'}}), got {quote(d)}"
            )
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise SpecError(
                f"unknown run setting(s) {', '.join(unknown)}; allowed: {', '.join(names)}"
            )
        if "model" not in d:
            raise SpecError("run setting 'model' is missing: name the model (see `bench models`)")
        return cls(**d)


def _info(f: dataclasses.Field) -> ParamInfo:
    m = f.metadata
    key = m["key"] or f.name
    default = f.default if f.default is not dataclasses.MISSING else None
    return ParamInfo(
        name=f.name,
        key=key,
        check=m["check"],
        help=m["help"],
        default=default,
        cli=m["cli"],
        sweep=m["sweep"],
        identity=m["identity"],
        label=m["label"] or key.replace("_", " "),
        symbol=m["symbol"] or key,
        id_prefix=m["id_prefix"] if m["id_prefix"] is not None else (m["symbol"] or key),
        flag_kind=m["flag_kind"],
        flag_name=m["flag"] or "--" + key.replace("_", "-"),
    )


#: The table, in field order: RunConfig field name -> its row.
PARAMS: dict[str, ParamInfo] = {f.name: _info(f) for f in dataclasses.fields(RunConfig)}
#: The same rows by the name users write (sweep keys): "steps" -> max_steps's row.
BY_KEY: dict[str, ParamInfo] = {p.key: p for p in PARAMS.values()}
#: Run parameters a sweep may set, by the name written in the spec.
SWEEP_KEYS: tuple[str, ...] = tuple(p.key for p in PARAMS.values() if p.sweep)


def validate_config(cfg: RunConfig) -> None:
    """Check every field of ``cfg`` and the rules between fields; SpecError names the flag."""
    for p in PARAMS.values():
        p.validate(getattr(cfg, p.name), p.flag)
    if cfg.data is None and cfg.factors is None:
        raise SpecError("name the dataset: --data FILE or --factors K")
    if cfg.data is not None and cfg.factors is not None:
        raise SpecError("give --data FILE or --factors K, not both")


# --- model hyperparameters ---------------------------------------------------------------------


def _accepts(annotation: Any, value: Any) -> bool:
    """Does ``value`` fit a constructor annotation (int, float, str, bool, X | None, Any)?"""
    if annotation in (inspect.Parameter.empty, Any, object):
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    return True  # anything richer is the model's own business


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if annotation is type(None):
        return "null"
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def check_hparam(annotation: Any, value: Any) -> Any:
    """One hyperparameter value checked against its constructor annotation: of that type,
    finite if a number, and an integer made a float where the annotation declares float but
    not int (``_names_float``), so that ``--beta 8`` and ``beta: 8.0`` are one run. numpy
    scalars are taken as the Python numbers they hold (``plain``)."""
    value = plain(value)
    if not _accepts(annotation, value):
        raise BadValue(f"must be {_type_name(annotation)}, {_got(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadValue(f"must be finite, {_got(value)}")
    if isinstance(value, int) and not isinstance(value, bool):
        if _names_float(annotation) and not _admits_int(annotation):
            return float(value)
    return value


def _names_float(annotation: Any) -> bool:
    """Does the annotation declare ``float`` itself (alone or in a union)? Only then is an
    integer made a float. A richer annotation is the model's own business, like any value it
    takes: ``--depth 2`` for ``depth: Literal[1, 2, 3]`` (or a ``NewType`` of int) reached the
    constructor as 2.0, and ``range(depth)`` failed there."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_names_float(a) for a in typing.get_args(annotation))
    return annotation is float


def _admits_int(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_admits_int(a) for a in typing.get_args(annotation))
    return annotation in (int, inspect.Parameter.empty, Any, object)


def iter_cli_params() -> Iterator[ParamInfo]:
    return (p for p in PARAMS.values() if p.cli)
