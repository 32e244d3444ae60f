"""Planning a sweep: the spec expanded once into points, each with a stable run id.

``plan_sweep(spec)`` checks the rules across fields (data names, models and their
hyperparameters, one point per x/line/seed) and returns a ``SweepPlan``; `bench sweep` stores it
in the sweep folder (sweep.json) and executes it; `bench report` reads it back.

A run id is a readable prefix (model, data, K, D, the model's hyperparameters, seed) plus a hash
of every parameter that changes what the run computes, including the data: a dataset of the
spec's ``datasets:`` by its definition, a data file by its content (``DataHandle.identity``: a
spritegen file's stored digests, a dSprites/3dshapes file's grid and size, with the kind the spec
gives) and never by its path. The same point always gets the same id, wherever the project lies,
so a sweep that is started again finds the runs it already finished, and two experiments of one
sweep that ask for the same run share it instead of training it twice.

Earlier versions named a data file by its absolute path and wrote a ``+`` as ``-`` in the prefix
(``beta1e-06`` for 1e+06). Each point keeps the id(s) they gave it (``Point.legacy_ids``, from
``legacy_run_id``); ``benchmark.sweep.runner.adopt_legacy_ids`` gives a point its legacy id where
the sweep folder's manifest records that id and not the new one, so an upgrade never orphans a
sweep folder.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.datasets import open_data, parse_data_spec
from benchmark.params import BY_KEY
from benchmark.sweep.spec import Experiment, SweepSpec, load_sweep_spec
from spritegen.errors import DatasetError, SpecError, quote
from spritegen.spec import default_spec

if TYPE_CHECKING:
    from benchmark.models.registry import ModelEntry

# Run parameters named in the id prefix before the model's hyperparameters, and after them.
_ID_HEAD = ("model", "data", "factors", "latent_dim")
_ID_TAIL = ("seed",)


@dataclass
class Point:
    """One run of the sweep: its parameters, id, and the experiments that plot it."""

    id: str
    params: dict[str, Any]
    dataset: str | None  # name in the spec's datasets section, if the run uses one
    factors: int | None  # K, from the dataset or the factors parameter
    experiments: list[str] = field(default_factory=list)
    # the ids earlier versions gave this point (``legacy_run_id``), where they differ from ``id``
    legacy_ids: list[str] = field(default_factory=list)

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
    """``s`` for a file name: a ``+`` dropped (1e+38 reads 1e38, not 1e-38), any other character
    but letters, digits, ``-`` and ``.`` written ``-``."""
    return "".join(c if c.isalnum() or c in "-." else "-" for c in s.replace("+", ""))


def _legacy_safe(s: str) -> str:
    """``_safe`` before it dropped ``+``: 1e+38 read 1e-38 (for ``legacy_run_id``)."""
    return "".join(c if c.isalnum() or c in "-." else "-" for c in s)


def is_hparam(key: str) -> bool:
    """A sweep key that is not a run parameter is one of the model's hyperparameters."""
    return key not in BY_KEY


def run_id(
    params: dict[str, Any], identity: dict[str, Any], safe: Callable[[str], str] = _safe
) -> str:
    """Readable prefix from ``params`` plus a hash of ``identity`` (everything that matters):
    model, data, K, D, every model hyperparameter by its own name (beta4), then the seed."""
    keys = [*_ID_HEAD, *sorted(k for k in params if is_hparam(k)), *_ID_TAIL]
    parts = []
    for key in keys:
        if key in params:
            v = params[key]
            if key == "data":
                v = Path(str(v)).stem
            prefix = BY_KEY[key].id_prefix if key in BY_KEY else key
            parts.append(prefix + safe(_fmt(v)))
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    return "_".join(parts + [digest])


def legacy_run_id(params: dict[str, Any], legacy_identity: dict[str, Any]) -> str:
    """The id versions before content ids gave a point: ``+`` written ``-`` in the prefix, and
    ``legacy_identity`` naming a data file by its absolute path (``_resolve_data``)."""
    return run_id(params, legacy_identity, safe=_legacy_safe)


def _combinations(grid: dict[str, list[Any]], zipped: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    combos = [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    if zipped:
        zkeys = list(zipped)
        rows = [dict(zip(zkeys, values)) for values in zip(*(zipped[k] for k in zkeys))]
        combos = [{**c, **r} for c in combos for r in rows]
    return combos


def _data_file_kind(value: str, base_dir: Path) -> tuple[str | None, Path] | None:
    """(KIND or None, absolute path) of a file given in a spec, or None if it does not exist."""
    plain = base_dir / value
    if plain.is_file():  # a file name, even one with a colon in it
        return None, plain.resolve()
    parsed = parse_data_spec(value)
    path = parsed.path if parsed.path.is_absolute() else base_dir / parsed.path
    if not path.is_file():
        return None
    return parsed.kind, path.resolve()


def data_argument(value: str, base_dir: Path) -> str | None:
    """The ``--data`` value bench run gets for a file given in a spec: ``[KIND:]ABSOLUTE_PATH``
    (KIND as ``benchmark.datasets.parse_data_spec`` reads it: dsprites, 3dshapes, ...), or None
    if the file does not exist."""
    found = _data_file_kind(value, base_dir)
    if found is None:
        return None
    kind, path = found
    return f"{kind}:{path}" if kind else str(path)


@dataclass(frozen=True)
class _DataFile:
    """What planning reads from a data file named in a spec, opened once: its image shape and
    its content identity (``DataHandle.identity``)."""

    shape: tuple[int, int, int]  # (C, H, W)
    identity: dict[str, Any]


def _resolve_data(
    spec: SweepSpec, where: str, value: str, files: dict[str, _DataFile]
) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """(dataset name or None, identity of the data, its legacy identity) for a ``data`` value.

    A dataset of ``datasets:`` is its definition (both identities). A file is its kind as the
    spec gives it (``dsprites:``; None for a plain path) and its content, read when
    ``_data_file`` opened it; its legacy identity is its ``data_argument`` (absolute path)."""
    if value in spec.datasets:
        ident = {"dataset": value, "definition": spec.datasets[value].digest}
        return value, ident, ident
    try:
        arg = data_argument(value, spec.base_dir)
    except SpecError as exc:
        raise SpecError(f"{where}: data: {exc}") from None
    if arg is None:
        names = ", ".join(spec.datasets) or "none defined"
        relative = not parse_data_spec(value).path.is_absolute()
        raise SpecError(
            f"{where}: data: {value!r} is neither a dataset of datasets: ({names}) nor an "
            "existing file (a spritegen file, dsprites:PATH or 3dshapes:PATH)"
            + (f"; relative paths are resolved from {spec.base_dir}" if relative else "")
        )
    data_file = _data_file(spec, value, files)
    assert data_file is not None  # the file exists, as arg says
    return None, {"file": data_file.identity}, {"file": arg}


# The image shape and latent size a hyperparameter value is tried with where it is written.
DRY_SHAPE, DRY_LATENT = (1, 64, 64), 10


def _rule(exc: SpecError, model: str, key: str) -> str:
    """The model's complaint about one value, without the parts the location already says."""
    text = str(exc).removeprefix(f"model {model!r}: ")
    return text.removeprefix(f"{key}: ")


class _ModelCheck:
    """Checks a point's model and hyperparameters against the installed models (bundled and
    plugins), each value against the type its constructor declares."""

    def __init__(self) -> None:
        # the registry imports torch: only when a sweep is planned, so `bench --help` stays light
        from benchmark.models import registry

        self.entries = registry.discover()
        self.validate, self.dry_build = registry.validate_hparams, registry.dry_build
        self.built: set[tuple[Any, ...]] = set()

    def entry(self, where: str, model: Any) -> ModelEntry:
        entry = self.entries.get(model)
        if entry is None:
            raise SpecError(
                f"{where}: model: unknown model {model!r}; installed: "
                f"{', '.join(sorted(self.entries))}"
            )
        if not entry.ok:
            raise SpecError(f"{where}: model: {model!r} is installed but broken: {entry.error}")
        return entry

    def experiment(self, exp: Experiment) -> None:
        """Check every hyperparameter value where it is written (``grid.beta[1]``), against each
        model of the experiment that takes it; a key no model takes is an unknown field."""
        models = [exp.base.get("model"), *exp.grid.get("model", []), *exp.zip.get("model", [])]
        models += [p.get("model") for p in exp.points]
        entries = [self.entry(f"experiment {exp.name}", m) for m in dict.fromkeys(models) if m]
        w = exp.where
        located: list[tuple[str, str, Any]] = [
            (f"{w}set.", k, v) for k, v in exp.base.items() if is_hparam(k)
        ]
        for section, lists in ((f"{w}grid", exp.grid), (f"{w}zip", exp.zip)):
            for k, values in lists.items():
                if is_hparam(k):
                    located += [(f"{section}.", k, v) for v in values]
        for i, p in enumerate(exp.points):
            located += [(f"{w}points[{i}].", k, v) for k, v in p.items() if is_hparam(k)]
        counts: dict[tuple[str, str], int] = {}
        for prefix, key, value in located:
            takers = [e for e in entries if key in e.hparams or e.accepts_any]
            if not takers:
                allowed = sorted({h for e in entries for h in e.hparams})
                raise SpecError(
                    f"{prefix}{key}: not a bench run parameter nor a hyperparameter of "
                    f"{', '.join(repr(e.name) for e in entries) or 'the model'}; run parameters: "
                    f"{', '.join(k for k in BY_KEY if BY_KEY[k].sweep)}; model hyperparameters: "
                    f"{', '.join(allowed) or 'none'}"
                )
            index = counts.get((prefix, key), 0)
            counts[(prefix, key)] = index + 1
            where = f"{prefix}{key}[{index}]" if prefix.endswith(("grid.", "zip.")) else ""
            for e in takers:
                try:
                    checked = self.validate(e, {key: value}, complete=False)
                    self.dry_build(e, DRY_SHAPE, DRY_LATENT, checked)
                except SpecError as exc:
                    raise SpecError(f"{where or prefix + key}: {_rule(exc, e.name, key)}") from None

    def point(
        self, where: str, params: dict[str, Any], shape: tuple[int, int, int] = (1, 64, 64)
    ) -> dict[str, Any]:
        """The point with its hyperparameters checked and normalised (8 -> 8.0 for a float)."""
        entry = self.entry(where, params["model"])
        hparams = {k: v for k, v in params.items() if is_hparam(k)}
        try:
            checked = self.validate(entry, hparams)
            key = (entry.name, repr(sorted(checked.items())), params.get("latent_dim", 10), shape)
            if key not in self.built:
                self.dry_build(entry, shape, params.get("latent_dim", DRY_LATENT), checked)
                self.built.add(key)
        except SpecError as exc:
            raise SpecError(f"{where}: {exc}") from None
        return {**params, **checked}


@dataclass
class SweepPlan:
    """A sweep, planned: its spec, every distinct point, and each experiment's layout."""

    spec: SweepSpec
    points: list[Point]
    layout: dict[str, list[ExperimentPoint]]


def plan_sweep(spec: SweepSpec) -> SweepPlan:
    """Expand and check ``spec`` once; see the module docstring."""
    points, layout = expand(spec)
    return SweepPlan(spec, points, layout)


def load_sweep(path_or_text: str | Path) -> SweepPlan:
    """Read, validate and plan a sweep spec (a file path, or YAML text): every mistake is one
    SpecError line before anything is built or trained."""
    spec = load_sweep_spec(path_or_text)
    try:
        return plan_sweep(spec)
    except SpecError as exc:
        if spec.source is None:
            raise
        raise SpecError(f"{spec.source}: {exc}") from None


def _data_file(spec: SweepSpec, value: str, files: dict[str, _DataFile]) -> _DataFile | None:
    """A data file named in the spec, opened once (``files`` keeps it by its ``data_argument``)
    as `bench run` opens it, so that a file bench run would refuse (not a spritegen file,
    incomplete) is refused when the sweep is planned: its shape, and its identity for the run id
    (the kind the spec gives, None for a plain path, and the content). None for a file that does
    not exist, left to ``_resolve_data``, which names it."""
    found = _data_file_kind(value, spec.base_dir)
    if found is None:
        return None
    kind, path = found
    arg = f"{kind}:{path}" if kind else str(path)
    if arg not in files:
        try:
            with open_data(arg) as handle:
                h, w, c = handle.observation_shape
                content = handle.identity()
        except (SpecError, DatasetError) as exc:
            raise SpecError(f"data: {exc}") from None
        files[arg] = _DataFile((c, h, w), {"given_kind": kind, "content": content})
    return files[arg]


def _check_device(params: dict[str, Any]) -> None:
    """The device (and --amp) checks `bench run` makes before loading data."""
    from benchmark.train import resolve_device

    device = resolve_device(str(params.get("device", "auto")))
    if params.get("amp") and device.type != "cuda":
        raise SpecError("--amp (mixed precision) needs a CUDA device; drop it on the CPU")


def _image_shape(
    spec: SweepSpec,
    params: dict[str, Any],
    cache: dict[Any, tuple[int, int, int]],
    files: dict[str, _DataFile],
) -> tuple[int, int, int]:
    """(C, H, W) of a point's images: its sweep dataset's or the default dataset's for K; a
    data file's own (``_data_file``), or the thesis' 64 x 64 x 1 for one that does not exist."""
    data = params.get("data")
    if data is not None and data not in spec.datasets:
        found = _data_file(spec, str(data), files)
        return found.shape if found is not None else DRY_SHAPE
    key = data if data in spec.datasets else params.get("factors")
    if key is None:
        return DRY_SHAPE
    if key not in cache:
        resolved = spec.datasets[key].resolve() if isinstance(key, str) else default_spec(key)
        h, w, c = resolved.image_shape
        cache[key] = (c, h, w)
    return cache[key]


def expand(spec: SweepSpec) -> tuple[list[Point], dict[str, list[ExperimentPoint]]]:
    """All distinct points of the sweep in spec order, and each experiment's view of them."""
    points: dict[str, Point] = {}
    layout: dict[str, list[ExperimentPoint]] = {}
    check_model = _ModelCheck()
    shapes: dict[Any, tuple[int, int, int]] = {}
    files: dict[str, _DataFile] = {}
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
        check_model.experiment(exp)
        for params in rows:
            if "model" not in params:
                raise SpecError(f"{where}: every point needs model (set it in set:, grid: or zip:)")
            if "data" not in params and "factors" not in params:
                raise SpecError(
                    f"{where}: every point needs data (a dataset name or file) or factors (K)"
                )
            if "data" in params and "factors" in params:
                raise SpecError(f"{where}: give data or factors, not both (the dataset fixes K)")
            try:
                _check_device(params)
                shape = _image_shape(spec, params, shapes, files)
            except SpecError as exc:
                raise SpecError(f"{where}: {exc}") from None
            params = check_model.point(where, params, shape)
            identity = {k: v for k, v in params.items() if is_hparam(k) or BY_KEY[k].identity}
            legacy = dict(identity)
            dataset = None
            if "data" in params:
                dataset, identity["data"], legacy["data"] = _resolve_data(
                    spec, where, params["data"], files
                )
                factors = spec.datasets[dataset].factors if dataset else None
            else:
                factors = params["factors"]
            pid = run_id(params, identity)
            point = points.setdefault(pid, Point(pid, dict(params), dataset, factors))
            old = legacy_run_id(params, legacy)
            if old != pid and old not in point.legacy_ids:
                point.legacy_ids.append(old)
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
                if diff == ["data"] and point.params.get("data") != params.get("data"):
                    # two files of one content: one run, named by the first (so one x)
                    raise SpecError(
                        f"{where}: data {quote(point.params['data'])} and "
                        f"{quote(params['data'])} hold the same dataset (equal content), so "
                        "their points are one run; name only one of them"
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
