"""Sweep specs: which `bench run` points a study trains, the datasets they share, the plots.

A sweep spec is YAML. Every mistake is reported as one ``SpecError`` line that names the field
(as a dotted path such as ``grid.beta[2]``) and what is allowed, before anything is built or
trained, so a typo in a 100-run study costs seconds rather than a night.

Layout (see docs/sweeps.md)::

    name: experiment1               # names the sweep folder; letters, digits, - _ .
    description: free text
    datasets:                       # built once into <sweep>/datasets/<name>.h5, shared by runs
      k5: {spec: factors5.yaml}     # a dataset spec file (relative to this file*), or
      k2: {factors: 2, n: 20000}    # the default spec for K factors; other keys override fields
    set: {model: betavae, epochs: 30}   # run parameters common to every point
    grid:                           # cartesian product
      latent_dim: [5, 10, 15, 20]
      beta: [1, 2, 4, 8]
      seed: [0, 1, 2]
    zip:                            # lists of equal length varied together, crossed with grid
      data: [k1, k2]
      epochs: [10, 10]
    points: [{beta: 16, seed: 0}]   # explicit extra points (on top of set)
    report: {x: latent_dim, lines: beta, metrics: [kim_mnih, higgins]}

A spec may instead hold several ``experiments:`` (a list of mappings with ``name``, ``set``,
``grid``, ``zip``, ``points``, ``report``); the top-level ``set`` then applies to all of them.

(*) Relative paths (``spec:`` files, ``data:`` files) are relative to the spec file's folder, the
symlink resolved. The copy a sweep folder keeps (``copy_text``) says in its first line which
folder that was, and resolves its relative paths from there, not from the sweep folder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from benchmark.metrics.evaluate import EPOCH_METRICS, METRIC_KEYS, SCORE_KEYS
from benchmark.params import BY_KEY, MAX_FACTORS, MIN_FACTORS, SWEEP_KEYS
from spritegen.errors import SpecError, quote
from spritegen.spec import MAX_SPEC_BYTES as SPEC_MAX_BYTES
from spritegen.spec import (
    SWEEP_SPEC_FIELDS,
    default_spec,
    load_spec,
    load_yaml_strict,
    with_overrides,
)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: Scores a run record may hold: every score key ``benchmark.metrics.evaluate`` returns.
METRICS = SCORE_KEYS
#: Scores a report may draw: those scored after each epoch into metrics.jsonl, which the report
#: reads. DCI is scored only with a run's final scores (summary.json): its figures were empty.
REPORT_METRICS = tuple(key for name in EPOCH_METRICS for key in METRIC_KEYS[name])
DEFAULT_METRICS = ("kim_mnih", "higgins")
# Fields of a datasets: entry besides `spec`: the overrides spritegen.spec.with_overrides takes.
DATASET_KEYS = ("factors", "n", "seed", "renderer", "image_size", "eval_preset", "name")
TOP_KEYS = ("name", "description", *SWEEP_SPEC_FIELDS)
EXPERIMENT_KEYS = ("name", "description", "set", "grid", "zip", "points", "report")
REPORT_KEYS = ("x", "lines", "metrics")
# Derived axes the report may use besides run parameters.
DERIVED_AXES = ("factors",)


def _string(where: str, v: Any) -> str:
    return str(BY_KEY["model"].validate(v, where))


def _factors(where: str, v: Any) -> int:
    return int(BY_KEY["factors"].validate(v, where))


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset a sweep builds once: a base spec (a file, or the default spec for ``factors``)
    plus overrides of its fields. ``factors`` and ``digest`` come from the resolved spec; the
    digest (of its canonical text) is what identifies the dataset in run ids."""

    name: str
    spec_path: Path | None
    overrides: dict[str, Any]
    factors: int
    digest: str

    def resolve(self) -> Any:
        """The validated ``spritegen.spec.DatasetSpec``."""
        return resolve_dataset(self.spec_path, self.overrides)


def resolve_dataset(spec_path: Path | None, overrides: dict[str, Any]) -> Any:
    """The spec file (or the default spec for ``overrides['factors']``) with the overrides."""
    overrides = dict(overrides)
    if spec_path is not None:
        return load_spec(spec_path, overrides)
    base = default_spec(int(overrides.pop("factors")), overrides.pop("renderer", None))
    return with_overrides(base, overrides)


@dataclass(frozen=True)
class ReportSettings:
    """What the report plots for one experiment: score against ``x``, one line per ``lines``."""

    x: str
    lines: tuple[str, ...]
    metrics: tuple[str, ...]


@dataclass(frozen=True)
class Experiment:
    """One figure family of the study: a set of points sharing an x axis and line parameter."""

    name: str
    description: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    zip: dict[str, list[Any]]
    points: list[dict[str, Any]]
    report: ReportSettings
    where: str = ""  # prefix of this experiment's fields in messages ("experiments[1].")


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec. ``text`` is the YAML it was read from (kept in the sweep folder)."""

    name: str
    description: str
    datasets: dict[str, DatasetEntry]
    experiments: tuple[Experiment, ...]
    text: str
    base_dir: Path = field(default=Path("."))  # the folder its relative paths are relative to
    source: Path | None = None  # the file it was read from, if any
    # the file the sweep was first given: ``source``, or for a sweep folder's copy the file its
    # first line names (None for YAML text)
    origin: Path | None = None


def _mapping(where: str, v: Any) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise SpecError(f"{where}: must be a mapping, got {type(v).__name__}")
    for k in v:
        if not isinstance(k, str):
            raise SpecError(f"{where}: keys must be strings, got {k!r}")
    return v


def _check_keys(where: str, d: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for k in d:
        if k not in allowed:
            prefix = f"{where}." if where else ""
            raise SpecError(f"{prefix}{k}: unknown field; allowed: {', '.join(allowed)}")


def _distinct_key(value: Any) -> Any:
    """What makes two values of one parameter the same point: ``1`` and ``1.0`` are one beta
    (one run id), so a list holding both is refused like ``[1, 1]``, not merged."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ("number", float(value))
    return ("value", repr(value))


def _check_key(where: str, key: str) -> None:
    """Run parameters a sweep must not set; any other key that is not a run parameter is taken
    for a model hyperparameter and checked against the point's model when the sweep is planned."""
    if key == "out":
        raise SpecError(
            f"{where}.out: set by the sweep (each run goes to <sweep>/runs/<id>); remove it"
        )
    p = BY_KEY.get(key)
    if p is not None and not p.sweep:
        raise SpecError(
            f"{where}.{key}: not settable in a sweep; run parameters: {', '.join(SWEEP_KEYS)}, "
            "plus the model's hyperparameters"
        )
    if not key.isidentifier():
        raise SpecError(f"{where}.{quote(key)}: not a parameter name")


def _check_param(where: str, key: str, value: Any) -> Any:
    _check_key(where, key)
    p = BY_KEY.get(key)
    return value if p is None else p.validate(value, f"{where}.{key}")


def _params(where: str, raw: Any) -> dict[str, Any]:
    d = _mapping(where, raw)
    return {k: _check_param(where, k, v) for k, v in d.items()}


def _lists(where: str, raw: Any, distinct: bool) -> dict[str, list[Any]]:
    d = _mapping(where, raw)
    out: dict[str, list[Any]] = {}
    for k, values in d.items():
        _check_key(where, k)
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}.{k}: must be a non-empty list of values, got {values!r}")
        checked = []
        for i, v in enumerate(values):
            try:
                checked.append(_check_param(where, k, v))
            except SpecError as exc:  # name the position of the bad value, not only the key
                raise SpecError(
                    str(exc).replace(f"{where}.{k}:", f"{where}.{k}[{i}]:", 1)
                ) from None
        if distinct and len(set(map(_distinct_key, checked))) != len(checked):
            raise SpecError(f"{where}.{k}: values must be distinct, got {values!r}")
        out[k] = checked
    return out


def _dataset(name: str, raw: Any, base_dir: Path) -> DatasetEntry:
    where = f"datasets.{name}"
    if not NAME_RE.fullmatch(name):
        raise SpecError(
            f"{where}: dataset names may hold letters, digits, '-', '_' and '.', got {name!r}"
        )
    d = dict(_mapping(where, raw))
    spec_path = None
    if "spec" in d:
        p = Path(_string(f"{where}.spec", d.pop("spec")))
        spec_path = p if p.is_absolute() else base_dir / p
        if not spec_path.is_file():
            raise SpecError(f"{where}.spec: no such dataset spec file: {spec_path}")
    if "factors" in d:
        _factors(f"{where}.factors", d["factors"])
    elif spec_path is None:
        raise SpecError(
            f"{where}: give factors (the number of factors K, {MIN_FACTORS}..{MAX_FACTORS}) "
            "or spec (a dataset spec file)"
        )
    for key in d:
        if key not in DATASET_KEYS:
            raise SpecError(
                f"{where}.{key}: unknown field; allowed: spec, {', '.join(DATASET_KEYS)}"
            )
    # Field values are checked by spritegen's own spec validation, in resolve_dataset.
    try:
        resolved = resolve_dataset(spec_path, d)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None
    return DatasetEntry(
        name=name,
        spec_path=spec_path,
        overrides=d,
        factors=resolved.factors,
        digest=resolved.digest(),
    )


def _report(
    where: str, raw: Any, known: tuple[str, ...] = (), varied: tuple[str, ...] = ()
) -> ReportSettings:
    """``known``: the experiment's own parameter names (model hyperparameters included);
    ``varied``: those its grid and zip vary, which give the default lines (all but x and seed;
    where that leaves none, one line)."""
    d = _mapping(where, raw)
    _check_keys(where, d, REPORT_KEYS)
    axes = tuple(dict.fromkeys((*SWEEP_KEYS, *DERIVED_AXES, *known)))
    x = d.get("x")
    if x is None:
        raise SpecError(
            f"{where}.x: required; the parameter on the x axis, one of {', '.join(axes)}"
        )
    if x not in axes:
        raise SpecError(f"{where}.x: must be one of {', '.join(axes)}, got {x!r}")
    # nothing else varied: one line, named by a parameter every point has that is not x (every
    # point has a model, and data or factors); "model" was the x axis too for x: model
    one_line = "model" if x != "model" else "data" if "data" in known else "factors"
    default_lines = [k for k in varied if k not in (x, "seed")] or [one_line]
    lines_raw = d.get("lines", default_lines)
    lines = (lines_raw,) if isinstance(lines_raw, str) else lines_raw
    if not isinstance(lines, (list, tuple)) or not lines:
        raise SpecError(
            f"{where}.lines: must be a parameter name or a list of them, got {lines_raw!r}"
        )
    for ln in lines:
        if ln not in axes or ln in (x, "seed"):
            raise SpecError(
                f"{where}.lines: {ln!r} is not allowed; use run parameters other than x and seed: "
                f"{', '.join(a for a in axes if a not in (x, 'seed'))}"
            )
    metrics_raw = d.get("metrics", list(DEFAULT_METRICS))
    if isinstance(metrics_raw, str):
        metrics_raw = [metrics_raw]
    allowed = ", ".join(REPORT_METRICS)
    if not isinstance(metrics_raw, list) or not metrics_raw:
        raise SpecError(
            f"{where}.metrics: must be a list drawn from {allowed}, got {metrics_raw!r}"
        )
    for m in metrics_raw:
        if m in METRICS and m not in REPORT_METRICS:
            raise SpecError(
                f"{where}.metrics: {m!r} is scored only with a run's final scores (summary.json), "
                f"not after each epoch, and the report draws the per-epoch scores; allowed: "
                f"{allowed}"
            )
        if m not in REPORT_METRICS:
            raise SpecError(f"{where}.metrics: must be drawn from {allowed}, got {m!r}")
    return ReportSettings(x=x, lines=tuple(lines), metrics=tuple(dict.fromkeys(metrics_raw)))


def _experiment(where: str, raw: dict[str, Any], name: str, shared: dict[str, Any]) -> Experiment:
    grid = _lists(f"{where}grid" if where else "grid", raw.get("grid"), distinct=True)
    zipped = _lists(f"{where}zip" if where else "zip", raw.get("zip"), distinct=False)
    lengths = {k: len(v) for k, v in zipped.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise SpecError(f"{where}zip: lists must have the same length; {desc}")
    both = set(grid) & set(zipped)
    if both:
        raise SpecError(
            f"{where}zip.{sorted(both)[0]}: also in grid; vary a parameter in one of them"
        )
    base = {**shared, **_params(f"{where}set" if where else "set", raw.get("set"))}
    # only an absent or empty (null) points means none: 0, "" or false is a mistake, not a list
    points_raw = raw.get("points")
    if points_raw is None:
        points_raw = []
    if not isinstance(points_raw, list):
        raise SpecError(
            f"{where}points: must be a list of mappings of run parameters, got {quote(points_raw)}"
        )
    points = [_params(f"{where}points[{i}]", p) for i, p in enumerate(points_raw)]
    if not grid and not zipped and not points and not base:
        raise SpecError(f"{where or 'spec'}: defines no runs; give grid, zip, points or set")
    known = tuple(dict.fromkeys([*base, *grid, *zipped, *(k for p in points for k in p)]))
    varied = tuple(dict.fromkeys([*grid, *zipped]))
    report = _report(f"{where}report" if where else "report", raw.get("report"), known, varied)
    desc = raw.get("description", "")
    return Experiment(
        name=name,
        description=str(desc),
        base=base,
        grid=grid,
        zip=zipped,
        points=points,
        report=report,
        where=where,
    )


def parse_sweep_spec(
    data: Any, text: str = "", base_dir: Path | str = ".", source: Path | None = None
) -> SweepSpec:
    """Validate a sweep spec already loaded from YAML (a mapping)."""
    base_dir = Path(base_dir)
    d = _mapping("spec", data)
    if not d:
        raise SpecError(
            "spec: empty; a sweep spec needs at least name and grid (see docs/sweeps.md)"
        )
    if "factors" in d and not any(k in d for k in SWEEP_SPEC_FIELDS):
        raise SpecError(
            "this is a dataset spec (it has 'factors'), not a sweep spec: build it with "
            "`spritegen build SPEC`, or train on it from a sweep spec's datasets: "
            f"(NAME: {{spec: PATH}}); a sweep spec has the fields {', '.join(TOP_KEYS)}"
        )
    _check_keys("", d, TOP_KEYS)
    name = d.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise SpecError(f"name: required; letters, digits, '-', '_' and '.', got {name!r}")
    datasets = {
        k: _dataset(k, v, base_dir) for k, v in _mapping("datasets", d.get("datasets")).items()
    }
    shared = _params("set", d.get("set"))
    experiments: list[Experiment] = []
    if "experiments" in d:
        for key in ("grid", "zip", "points", "report"):
            if key in d:
                raise SpecError(f"{key}: with experiments:, put {key} inside each experiment")
        raw_list = d["experiments"]
        if not isinstance(raw_list, list) or not raw_list:
            raise SpecError("experiments: must be a non-empty list of mappings")
        for i, raw in enumerate(raw_list):
            where = f"experiments[{i}]."
            raw = _mapping(f"experiments[{i}]", raw)
            _check_keys(where.rstrip("."), raw, EXPERIMENT_KEYS)
            ename = raw.get("name")
            if not isinstance(ename, str) or not NAME_RE.fullmatch(ename):
                raise SpecError(
                    f"{where}name: required; letters, digits, '-', '_' and '.', got {ename!r}"
                )
            if any(e.name == ename for e in experiments):
                raise SpecError(
                    f"{where}name: {ename!r} is used twice; experiment names must be unique"
                )
            experiments.append(_experiment(where, raw, ename, shared))
    else:
        top = {
            k: v
            for k, v in d.items()
            if k in EXPERIMENT_KEYS and k not in ("name", "description", "set")
        }
        experiments.append(_experiment("", top, name, shared))
    spec = SweepSpec(
        name=name,
        description=str(d.get("description", "")),
        datasets=datasets,
        experiments=tuple(experiments),
        text=text,
        base_dir=base_dir,
        source=source,
        origin=source,
    )
    return spec


#: A sweep spec is YAML text of at most this many bytes; YAML anchors, aliases and duplicate keys
#: are refused as in dataset specs (``spritegen.spec.load_yaml_strict``), so a 400-byte alias bomb
#: costs nothing and a repeated key is never silently dropped.
MAX_SPEC_BYTES = SPEC_MAX_BYTES


#: The first line of the ``spec.yaml`` a sweep folder keeps, above the spec as given: it names the
#: folder the spec's relative paths were resolved from, so that running the copy (``bench sweep
#: <sweep>/spec.yaml``, to resume or grow the sweep) resolves them from there too and plans the
#: same runs. Paths are JSON strings, so that any file name reads back as written.
COPY_HEADER = "# The sweep spec as {given}; bench sweep resolves its relative paths from {base}.\n"
_JSON_STRING = r'"(?:[^"\\]|\\.)*"'
_COPY_RE = re.compile(
    rf"# The sweep spec as (?:read from ({_JSON_STRING})|given as YAML text); "
    rf"bench sweep resolves its relative paths from ({_JSON_STRING})\.\n"
)
# The first line sweep folders made before COPY_HEADER have: relative to the named file's folder.
_OLD_COPY_RE = re.compile(
    r"# The sweep spec as read from (.+) \(relative paths are relative to its folder\)\.\n"
)


def _json(path: Path) -> str:
    return json.dumps(str(path), ensure_ascii=False)


def copy_text(spec: SweepSpec) -> str:
    """The text a sweep folder keeps as ``spec.yaml``: ``COPY_HEADER``, then the spec as given.

    Loading it gives back the same spec, relative paths resolved from the same folder, and
    writing the copy of that gives the same text: a sweep resumed from its copy keeps its copy.
    """
    given = f"read from {_json(spec.origin)}" if spec.origin else "given as YAML text"
    return COPY_HEADER.format(given=given, base=_json(spec.base_dir.resolve())) + spec.text


def _unwrap_copy(text: str, folder: Path) -> tuple[str, Path | None, Path | None]:
    """(the spec as given, the file it was first read from, the folder its relative paths
    resolve from) for the text of a sweep folder's copy, ``folder`` being the copy's own;
    (text, None, None) for any other spec. Copies made by older versions, which added a line on
    every start, name the original file in their innermost line."""
    origin = base = None
    while True:
        m = _COPY_RE.match(text)
        if m:
            try:
                origin = Path(json.loads(m[1])) if m[1] else None
                base = Path(json.loads(m[2]))
            except ValueError:
                raise SpecError(
                    "line 1: a bench sweep header naming a malformed path; correct it, or remove "
                    "the line to resolve relative paths from this file's folder"
                ) from None
        elif old := _OLD_COPY_RE.match(text):
            m = old
            origin = Path(m[1])
            base = origin.parent
        else:
            return text, origin, None if base is None else folder / base
        text = text[m.end() :]


def load_sweep_spec(path_or_text: str | Path) -> SweepSpec:
    """Read a sweep spec from a file path, or from YAML text (containing a newline), and check
    its structure and values; the rules across fields and the models are checked by
    ``benchmark.sweep.plan.plan_sweep``.

    Relative paths in it are resolved from the file's folder (the current folder for text), or,
    for a sweep folder's copy (``copy_text``), from the folder its first line names."""
    if isinstance(path_or_text, Path) or "\n" not in str(path_or_text):
        path = Path(path_or_text)
        if not path.is_file():
            raise SpecError(f"spec: no such sweep spec file: {path}")
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise SpecError(
                f"{path}: {path.stat().st_size} bytes; a sweep spec is YAML text of at most "
                f"{MAX_SPEC_BYTES} bytes"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise SpecError(f"{path}: not a text file; a sweep spec is UTF-8 YAML text") from None
        except OSError as exc:
            raise SpecError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        base_dir = path.resolve().parent
        source: Path | None = path.resolve()
    else:
        text = str(path_or_text)
        base_dir = Path.cwd()
        source = None
        if len(text.encode()) > MAX_SPEC_BYTES:
            raise SpecError(f"spec: a sweep spec is YAML text of at most {MAX_SPEC_BYTES} bytes")
    where = str(source or "spec")
    try:
        given, origin, copied_from = _unwrap_copy(text, base_dir)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None
    try:
        data = load_yaml_strict(text, where)  # the whole text: lines are numbered as in the file
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise SpecError(f"{where}: not valid YAML{at}: {problem}") from None
    try:
        spec = parse_sweep_spec(data, text=given, base_dir=copied_from or base_dir, source=source)
    except SpecError as exc:
        if source is None:
            raise
        raise SpecError(f"{source}: {exc}") from None
    return replace(spec, origin=origin) if copied_from else spec
