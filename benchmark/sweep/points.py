"""Expanding a sweep spec into points, each with a stable run id.

A run id is a readable prefix (model, data, D, beta, seed, ...) plus a hash of every parameter
that changes what the run computes, including the dataset's definition. The same point always
gets the same id, so a sweep that is started again finds the runs it already finished, and two
experiments of one sweep that ask for the same run share it instead of training it twice.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.sweep.spec import HPARAM_KEYS, PLACEMENT_PARAMETERS, SweepSpec
from spritegen.errors import SpecError

# Readable abbreviations for the id prefix, in order.
_ID_PARTS = (
    ("model", ""),
    ("data", ""),
    ("factors", "K"),
    ("latent_dim", "D"),
    ("beta", "b"),
    ("beta_norm", "bn"),
    ("gamma", "g"),
    ("capacity_max", "C"),
    ("seed", "s"),
)


@dataclass
class Point:
    """One run of the sweep: its parameters, id, and the experiments that plot it."""

    id: str
    params: dict[str, Any]
    dataset: str | None  # name in the spec's datasets section, if the run uses one
    factors: int | None  # K, from the dataset or the factors parameter
    experiments: list[str] = field(default_factory=list)

    def axis_value(self, name: str) -> Any:
        """The value of a report axis: a run parameter, or the derived number of factors."""
        if name == "factors":
            return self.factors
        return self.params.get(name)


@dataclass(frozen=True)
class ExperimentPoint:
    """Where a point sits in one experiment's figures."""

    id: str
    x: Any
    line: tuple[Any, ...]
    seed: int


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _safe(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "-" for c in s)


def run_id(params: dict[str, Any], identity: dict[str, Any]) -> str:
    """Readable prefix from ``params`` plus a hash of ``identity`` (everything that matters)."""
    parts = []
    for key, abbrev in _ID_PARTS:
        if key in params:
            v = params[key]
            if key == "data":
                v = Path(str(v)).stem
            parts.append(abbrev + _safe(_fmt(v)))
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    return "_".join(parts + [digest])


def _combinations(grid: dict[str, list[Any]], zipped: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    combos = [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    if zipped:
        zkeys = list(zipped)
        rows = [dict(zip(zkeys, values)) for values in zip(*(zipped[k] for k in zkeys))]
        combos = [{**c, **r} for c in combos for r in rows]
    return combos


def data_argument(value: str, base_dir: Path) -> str | None:
    """The ``--data`` value bench run gets for a file given in a spec: ``[KIND:]ABSOLUTE_PATH``
    (KIND as ``benchmark.datasets.parse_data_spec`` reads it: dsprites, 3dshapes, ...), or None
    if the file does not exist."""
    from benchmark.datasets import parse_data_spec

    plain = base_dir / value
    if plain.is_file():  # a file name, even one with a colon in it
        return str(plain.resolve())
    parsed = parse_data_spec(value)
    path = parsed.path if parsed.path.is_absolute() else base_dir / parsed.path
    if not path.is_file():
        return None
    path = path.resolve()
    return f"{parsed.kind}:{path}" if parsed.kind else str(path)


def _resolve_data(spec: SweepSpec, where: str, value: str) -> tuple[str | None, dict[str, Any]]:
    """(dataset name or None, identity of the data) for a ``data`` value."""
    if value in spec.datasets:
        return value, {"dataset": value, "definition": spec.datasets[value].digest}
    try:
        arg = data_argument(value, spec.base_dir)
    except SpecError as exc:
        raise SpecError(f"{where}: data: {exc}") from None
    if arg is None:
        names = ", ".join(spec.datasets) or "none defined"
        raise SpecError(
            f"{where}: data: {value!r} is neither a dataset of datasets: ({names}) nor an "
            "existing file (a spritegen file, dsprites:PATH or 3dshapes:PATH)"
        )
    return None, {"file": arg}


class _ModelCheck:
    """Checks a point's model name and hyperparameters against the installed models, when the
    model registry can be imported (it needs torch); otherwise `bench run` checks them later."""

    def __init__(self) -> None:
        try:
            from benchmark.models.registry import discover, validate_hparams
        except ImportError:
            self.entries = None
            return
        self.entries = discover()
        self.validate = validate_hparams

    def __call__(self, where: str, params: dict[str, Any]) -> None:
        if self.entries is None:
            return
        model = params["model"]
        entry = self.entries.get(model)
        if entry is None:
            raise SpecError(
                f"{where}: model: unknown model {model!r}; installed: "
                f"{', '.join(sorted(self.entries))}"
            )
        if not entry.ok:
            raise SpecError(f"{where}: model: {model!r} is installed but broken: {entry.error}")
        try:
            self.validate(entry, {k: v for k, v in params.items() if k in HPARAM_KEYS})
        except SpecError as exc:
            raise SpecError(f"{where}: {exc}") from None


def expand(spec: SweepSpec) -> tuple[list[Point], dict[str, list[ExperimentPoint]]]:
    """All distinct points of the sweep in spec order, and each experiment's view of them."""
    points: dict[str, Point] = {}
    layout: dict[str, list[ExperimentPoint]] = {}
    check_model = _ModelCheck()
    for exp in spec.experiments:
        where = f"experiment {exp.name}"
        rows = (
            [{**exp.base, **c} for c in _combinations(exp.grid, exp.zip)]
            if (exp.grid or exp.zip)
            else []
        )
        if not rows and not exp.points:
            rows = [dict(exp.base)]
        rows += [{**exp.base, **p} for p in exp.points]
        seen: dict[tuple[Any, ...], dict[str, Any]] = {}
        layout[exp.name] = []
        for params in rows:
            if "model" not in params:
                raise SpecError(f"{where}: every point needs model (set it in set:, grid: or zip:)")
            check_model(where, params)
            if "data" not in params and "factors" not in params:
                raise SpecError(
                    f"{where}: every point needs data (a dataset name or file) or factors (K)"
                )
            if "data" in params and "factors" in params:
                raise SpecError(f"{where}: give data or factors, not both (the dataset fixes K)")
            identity = {k: v for k, v in params.items() if k not in PLACEMENT_PARAMETERS}
            dataset = None
            if "data" in params:
                dataset, identity["data"] = _resolve_data(spec, where, params["data"])
                factors = spec.datasets[dataset].factors if dataset else None
            else:
                factors = params["factors"]
            pid = run_id(params, identity)
            point = points.setdefault(pid, Point(pid, dict(params), dataset, factors))
            if exp.name not in point.experiments:
                point.experiments.append(exp.name)
            x = point.axis_value(exp.report.x)
            if x is None:
                raise SpecError(
                    f"{where}: a point has no {exp.report.x} (the report's x axis); set it in "
                    "set:, grid: or zip:"
                )
            line = tuple(point.axis_value(name) for name in exp.report.lines)
            seed = params.get("seed", 0)
            key = (x, line, seed)
            if key in seen and seen[key] != params:
                diff = sorted(
                    k for k in set(params) | set(seen[key]) if params.get(k) != seen[key].get(k)
                )
                raise SpecError(
                    f"{where}: points differing only in {', '.join(diff)} share "
                    f"{exp.report.x}={x}, "
                    f"{'/'.join(exp.report.lines)}={'/'.join(map(_fmt, line))}, seed={seed}; "
                    f"add {diff[0]} to report.lines or split the experiment"
                )
            if key not in seen:
                seen[key] = params
                layout[exp.name].append(ExperimentPoint(pid, x, line, seed))
    return list(points.values()), layout
