"""Dataset specs: what to render, validated field by field before any work starts.

A spec is a YAML mapping (``specs/*.yaml``) or built from flags. Every field is checked here, so a
bad spec fails at once with one line naming the field, the value and what is allowed, rather than
minutes into a build. The resolved spec is stored in the file as canonical YAML: it is the
dataset's recipe, and together with the package version it determines every byte.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import warnings
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from spritegen.errors import SpecError, SpritegenWarning, quote
from spritegen.factors import (
    FACTOR_NAMES,
    FACTORS,
    MAX_FACTORS,
    MIN_FACTORS,
    NUM_ALL_FACTORS,
    NUM_FACTORS_RANGE,
    FactorSpace,
)
from spritegen.render import RENDERER_KINDS, channels_for

SPEC_FORMAT = "spritegen-spec/1"
COMPRESSIONS = ("gzip", "none")
#: A spec is a short text file; anything longer is a mistake (or an attack on the parser).
MAX_SPEC_BYTES = 1_000_000
#: Deepest nesting of lists and mappings a spec may use. Specs need three levels; the YAML parser
#: recurses once per level, so thousands of ``[`` would end in a RecursionError instead.
MAX_SPEC_DEPTH = 50
#: Bounds of the top-level numeric fields; the ``build`` flags take their ranges from here.
IMAGE_SIZE_RANGE = (16, 1024)
MAX_IMAGES = 100_000_000
MAX_SEED = 2**63 - 1
#: Most raw pixel bytes one stored chunk may hold (``chunk_images × H × W × C``): every chunk is
#: rendered, compressed and assembled whole in memory, so a larger one only ends out of memory.
MAX_CHUNK_BYTES = 2**30

#: Sizes of the oracle's evaluation sets. "full" is disentanglement_lib's published study
#: configuration; "quick" is for scoring every epoch; "none" stores no evaluation sets.
#: ``random_train`` / ``random_eval``: i.i.d. random images with their factors (MIG, DCI, SAP,
#: modularity; disentanglement_lib's num_train / num_test), stored from format version 2 on.
EVAL_PRESETS: dict[str, dict[str, int]] = {
    "full": {
        "batch_size": 64,
        "variance": 10_000,
        "kim_mnih_train": 10_000,
        "kim_mnih_eval": 5_000,
        "higgins_train": 10_000,
        "higgins_eval": 5_000,
        "random_train": 10_000,
        "random_eval": 5_000,
    },
    "quick": {
        "batch_size": 64,
        "variance": 2_000,
        "kim_mnih_train": 500,
        "kim_mnih_eval": 250,
        "higgins_train": 500,
        "higgins_eval": 250,
        "random_train": 2_000,
        "random_eval": 1_000,
    },
    "tiny": {
        "batch_size": 16,
        "variance": 300,
        "kim_mnih_train": 60,
        "kim_mnih_eval": 40,
        "higgins_train": 60,
        "higgins_eval": 40,
        "random_train": 300,
        "random_eval": 200,
    },
    "none": {
        "batch_size": 64,
        "variance": 0,
        "kim_mnih_train": 0,
        "kim_mnih_eval": 0,
        "higgins_train": 0,
        "higgins_eval": 0,
        "random_train": 0,
        "random_eval": 0,
    },
}
EVAL_SIZE_KEYS = tuple(EVAL_PRESETS["full"])
#: The top-level fields of a dataset spec.
SPEC_FIELDS = (
    "format",
    "name",
    "factors",
    "renderer",
    "image_size",
    "n",
    "seed",
    "fixed",
    "storage",
    "evaluation",
)
#: The top-level fields only a sweep spec has (``benchmark.sweep.spec.TOP_KEYS`` are these plus
#: name and description): a spec holding one is a sweep spec given to ``spritegen build``, named
#: as such rather than as an unknown field. Kept here, as spritegen never imports benchmark.
SWEEP_SPEC_FIELDS = ("datasets", "set", "grid", "zip", "points", "report", "experiments")

#: What a spec without an ``evaluation`` section gets.
DEFAULT_EVAL_PRESET = "full"

#: Thesis section 3.2: one million images per dataset.
THESIS_NUM_IMAGES = 1_000_000


@dataclass(frozen=True)
class EvalSizes:
    """Sizes of a file's evaluation sets (the fields of ``EVAL_PRESETS``' entries)."""

    batch_size: int
    variance: int
    kim_mnih_train: int
    kim_mnih_eval: int
    higgins_train: int
    higgins_eval: int
    random_train: int
    random_eval: int

    @classmethod
    def preset(cls, name: str = DEFAULT_EVAL_PRESET) -> EvalSizes:
        return cls(**EVAL_PRESETS[name])

    @property
    def total_images(self) -> int:
        L = self.batch_size
        return (
            self.variance
            + L * (self.kim_mnih_train + self.kim_mnih_eval)
            + 2 * L * (self.higgins_train + self.higgins_eval)
            + self.random_train
            + self.random_eval
        )


@dataclass(frozen=True)
class DatasetSpec:
    """A validated dataset recipe. Build with ``load_spec``/``default_spec``, not directly."""

    factors: int
    renderer: str = "2d"
    image_size: int = 64
    n: int = THESIS_NUM_IMAGES
    seed: int = 0
    fixed: dict[str, float] = field(default_factory=dict)
    chunk_images: int = 256
    compression: str = "gzip"
    compression_level: int = 1
    evaluation: EvalSizes = field(default_factory=EvalSizes.preset)
    name: str = ""

    @property
    def space(self) -> FactorSpace:
        values = tuple(float(self.fixed.get(f.name, f.default_fixed)) for f in FACTORS)
        return FactorSpace(num_active=self.factors, fixed=values)

    @property
    def channels(self) -> int:
        return channels_for(self.renderer, self.space.coloured)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, self.channels)

    def to_dict(self) -> dict[str, Any]:
        """The spec in its YAML input form, every default spelled out (round-trips)."""
        return {
            "format": SPEC_FORMAT,
            "name": self.name,
            "factors": self.factors,
            "renderer": self.renderer,
            "image_size": self.image_size,
            "n": self.n,
            "seed": self.seed,
            "fixed": dict(self.fixed),
            "storage": {
                "chunk_images": self.chunk_images,
                "compression": self.compression,
                "compression_level": self.compression_level,
            },
            "evaluation": asdict(self.evaluation),
        }

    def to_yaml(self) -> str:
        """Canonical text: equal specs give equal text (stored in files, hashed for resume)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=True, default_flow_style=False)

    def digest(self) -> str:
        return hashlib.sha256(self.to_yaml().encode()).hexdigest()


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds, anything else as it is.

    A script's values are often numpy's (``for k in np.arange(1, 6)`` gives ``np.int64``, an
    array's element ``np.float32``): the checks here take Python numbers, and a spec's YAML and
    digest are made of them, so values are unwrapped once where they enter. ``np.bool_`` becomes
    ``bool``, which the integer checks still refuse.
    """
    return value.item() if isinstance(value, np.generic) else value


def _plain_tree(value: Any) -> Any:
    """``plain`` through nested mappings, lists and tuples (a user-built spec's sections)."""
    if isinstance(value, Mapping):
        return {plain(k): _plain_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_tree(v) for v in value]
    return plain(value)


def _fail(field_name: str, value: Any, allowed: str) -> SpecError:
    return SpecError(f"spec field '{field_name}': got {quote(value)}; allowed: {allowed}")


def _int(d: Mapping[str, Any], key: str, lo: int, hi: int, where: str = "") -> int:
    value = d[key]
    name = f"{where}{key}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(name, value, f"an integer in {lo}..{hi}")
    if not lo <= value <= hi:
        raise _fail(name, value, f"an integer in {lo}..{hi}")
    return value


def _is_choice(value: Any, allowed: Collection[str]) -> bool:
    """``value in allowed`` for user input: a list or mapping is never a choice (and unhashable,
    so a dict's ``in`` would raise TypeError instead of naming the field)."""
    return isinstance(value, str) and value in allowed


def _section(raw: Mapping[str, Any], key: str, allowed: str) -> Mapping[str, Any]:
    """A spec section that must be a mapping; absent or null (a header left empty) means {}.

    ``raw.get(key) or {}`` would also take ``[]``, ``0`` or ``""`` for an empty section and
    silently build the defaults the author did not ask for.
    """
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(key, value, allowed)
    return value


def _check_keys(d: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in d:
        if key not in allowed:
            raise SpecError(
                f"spec {where}: unknown field {quote(key)}; allowed: {', '.join(allowed)}"
            )


def _eval_sizes(raw: Any) -> EvalSizes:
    if raw is None:
        return EvalSizes.preset()
    if isinstance(raw, str):
        raw = {"preset": raw}
    if not isinstance(raw, Mapping):
        raise _fail("evaluation", raw, f"a preset name ({', '.join(EVAL_PRESETS)}) or a mapping")
    _check_keys(raw, ("preset",) + EVAL_SIZE_KEYS, "section 'evaluation'")
    preset = raw.get("preset", DEFAULT_EVAL_PRESET)
    if not _is_choice(preset, EVAL_PRESETS):
        raise _fail("evaluation.preset", preset, ", ".join(EVAL_PRESETS))
    sizes = dict(EVAL_PRESETS[preset])
    for key in EVAL_SIZE_KEYS:
        if key in raw:
            lo = 2 if key == "batch_size" else 0
            sizes[key] = _int(raw, key, lo, 10_000_000, "evaluation.")
    unset = [k for k in EVAL_SIZE_KEYS if k not in raw]
    if "preset" not in raw and 0 < len(unset) < len(EVAL_SIZE_KEYS):
        # A partial mapping usually means "small sets"; the unset sizes still come from the
        # default preset, which can be hours of rendering: say so, without changing the spec.
        filled = ", ".join(f"{k} {sizes[k]:,}" for k in unset)
        warnings.warn(
            SpritegenWarning(
                f"spec section 'evaluation' names no preset, so the sizes it leaves out take "
                f"the {preset!r} preset's ({filled}); add 'preset: NAME' "
                f"({', '.join(EVAL_PRESETS)}) to choose which preset fills them"
            ),
            stacklevel=2,
        )
    return EvalSizes(**sizes)


def spec_from_mapping(raw: Mapping[str, Any], *, built: bool = False) -> DatasetSpec:
    """Validate a parsed YAML mapping (or flags gathered into one) into a DatasetSpec.

    ``built=True`` reads the spec a dataset file stores: a rule added after the file was built
    (``fixed.rotation_y`` other than 0 in 2D) is not applied to it, so that such a file stays
    readable; every spec that is to be built is checked in full."""
    if not isinstance(raw, Mapping):
        raise SpecError(f"a spec must be a YAML mapping of fields, got {type(raw).__name__}")
    raw = _plain_tree(raw)
    sweep_fields = [k for k in raw if k in SWEEP_SPEC_FIELDS]
    if sweep_fields:
        raise SpecError(
            f"this is a sweep spec (it has {', '.join(map(quote, sweep_fields))}), not a dataset "
            "spec: run it with `bench sweep SPEC`; a dataset spec has the fields "
            f"{', '.join(SPEC_FIELDS)}"
        )
    _check_keys(raw, SPEC_FIELDS, "top level")
    if "format" in raw and raw["format"] != SPEC_FORMAT:
        raise _fail("format", raw["format"], SPEC_FORMAT)
    if "factors" not in raw:
        raise SpecError(
            f"spec field 'factors' is missing; allowed: an integer in {NUM_FACTORS_RANGE}"
        )
    factors = _int(raw, "factors", MIN_FACTORS, MAX_FACTORS)
    renderer = raw.get("renderer", "3d" if factors == NUM_ALL_FACTORS else "2d")
    if not _is_choice(renderer, RENDERER_KINDS):
        raise _fail("renderer", renderer, ", ".join(RENDERER_KINDS))
    if factors == NUM_ALL_FACTORS and renderer != "3d":
        raise _fail("renderer", renderer, "3d when factors is 7 (rotation_y needs the 3D renderer)")
    values: dict[str, Any] = {"factors": factors, "renderer": renderer}
    for key, lo, hi in (
        ("image_size", *IMAGE_SIZE_RANGE),
        ("n", 1, MAX_IMAGES),
        ("seed", 0, MAX_SEED),
    ):
        if key in raw:
            values[key] = _int(raw, key, lo, hi)
    name = raw.get("name", "")
    if not isinstance(name, str):
        raise _fail("name", name, "a string")
    values["name"] = name
    fixed_raw = _section(raw, "fixed", "a mapping of inactive factor names to values")
    fixed: dict[str, float] = {}
    for fname, fvalue in fixed_raw.items():
        if not _is_choice(fname, FACTOR_NAMES) or fname == "hue":
            raise _fail(
                "fixed",
                fname,
                ", ".join(n for n in FACTOR_NAMES if n != "hue")
                + " (an inactive hue always means white)",
            )
        k = FACTOR_NAMES.index(fname)
        f = FACTORS[k]
        if k < factors:
            raise _fail(f"fixed.{fname}", fvalue, _fixable(factors, renderer))
        if isinstance(fvalue, bool) or not isinstance(fvalue, (int, float)):
            raise _fail(f"fixed.{fname}", fvalue, "a number")
        if f.kind == "categorical":
            if fvalue not in range(f.num_classes):
                raise _fail(
                    f"fixed.{fname}",
                    fvalue,
                    f"a class index 0..{f.num_classes - 1} ({', '.join(f.classes)})",
                )
        elif not f.low <= fvalue < f.high:
            raise _fail(f"fixed.{fname}", fvalue, f"a number in [{f.low}, {f.high:.6g})")
        if fname == "rotation_y" and renderer == "2d" and fvalue != 0 and not built:
            raise _fail(
                "fixed.rotation_y",
                fvalue,
                "0 with renderer 2d (rotation_y, the second rotation, needs the 3D renderer: "
                "renderer: 3d)",
            )
        fixed[fname] = float(fvalue)
    values["fixed"] = {
        f.name: fixed.get(f.name, float(f.default_fixed))
        for f in FACTORS[factors:]
        if f.name != "hue"
    }
    storage = _section(
        raw, "storage", "a mapping with chunk_images, compression, compression_level"
    )
    _check_keys(storage, ("chunk_images", "compression", "compression_level"), "section 'storage'")
    if "chunk_images" in storage:
        values["chunk_images"] = _int(storage, "chunk_images", 1, 65536, "storage.")
    if "compression" in storage:
        if not _is_choice(storage["compression"], COMPRESSIONS):
            raise _fail("storage.compression", storage["compression"], ", ".join(COMPRESSIONS))
        values["compression"] = storage["compression"]
    if "compression_level" in storage:
        values["compression_level"] = _int(storage, "compression_level", 0, 9, "storage.")
    values["evaluation"] = _eval_sizes(raw.get("evaluation"))
    spec = DatasetSpec(**values)
    _check_chunk_bytes(spec)
    return spec


def _fixable(factors: int, renderer: str) -> str:
    """What ``fixed`` takes for a spec of ``factors`` active factors, as the checks above allow
    it: the inactive factors but hue (an inactive hue is white), and rotation_y only at 0 in 2D.
    The line listed every inactive factor, hue included, which ``fixed`` refuses."""
    names = [
        f"{n} (0 in 2D)" if n == "rotation_y" and renderer == "2d" else n
        for n in FACTOR_NAMES[factors:]
        if n != "hue"
    ]
    return f"values for inactive factors only ({', '.join(names) or 'none'})"


def _check_chunk_bytes(spec: DatasetSpec) -> None:
    """Refuse a chunk too large to hold in memory, at once rather than after planning a build."""
    image_bytes = spec.image_size * spec.image_size * spec.channels
    if spec.chunk_images * image_bytes > MAX_CHUNK_BYTES:
        largest = MAX_CHUNK_BYTES // image_bytes
        shape = "x".join(map(str, spec.image_shape))
        raise _fail(
            "storage.chunk_images",
            spec.chunk_images,
            f"at most {largest:,} for {shape} images (one chunk's raw pixels must fit in "
            f"{MAX_CHUNK_BYTES / 2**30:g} GiB)",
        )


class _SpecLoader(yaml.SafeLoader):
    """YAML's safe loader, stricter: no duplicate keys, no anchors or aliases, bounded nesting.

    A duplicate key would otherwise silently keep the last value; aliases are what a "billion
    laughs" bomb is made of, and a dataset spec has no use for them. The composer recurses once
    per nesting level, so ``MAX_SPEC_DEPTH`` stops a few hundred ``[`` before Python's stack does.
    """

    source = "spec"
    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise SpecError(
                f"{self.source}: line {event.start_mark.line + 1}: YAML anchors and aliases "
                "(&name, *name) are not allowed in a spec; write the value out"
            )
        if self.depth >= MAX_SPEC_DEPTH:
            raise SpecError(
                f"{self.source}: line {event.start_mark.line + 1}: lists and mappings nested "
                f"more than {MAX_SPEC_DEPTH} deep; a spec needs no more than 3 levels"
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                    if first is None:
                        seen[key] = line
                        continue
                except TypeError:  # an unhashable key: the base loader explains it
                    continue
                raise SpecError(
                    f"{self.source}: line {line}: duplicate key {quote(key)} (first given "
                    f"at line {first}); give each field once"
                )
        return super().construct_mapping(node, deep=deep)


_EXPONENT_TAG = "tag:spritegen,2026:exponent-number"


def _construct_exponent_number(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | float:
    """``1e6`` (no dot, exponent >= 0) is the integer it denotes, exactly, so that ``n: 1e6`` is
    a count; anything else (``1e-3``, ``2.5e2``) is a float."""
    text = loader.construct_scalar(node).replace("_", "")
    mantissa, _, exponent = text.lower().partition("e")
    if "." not in mantissa and int(exponent) >= 0:
        return int(mantissa) * 10 ** int(exponent)
    return float(text)


# PyYAML follows YAML 1.1, whose floats need a dot and a signed exponent: ``1e-3``, ``1e6`` and
# ``1.0e5`` were read as text, so ``lr: 1e-3`` in a sweep spec was refused as "got '1e-3'" and
# ``n: 1e6`` in a dataset spec likewise. YAML 1.2 and JSON read them as numbers; so do our specs.
# Quoted, they stay text.
_SpecLoader.add_implicit_resolver(
    _EXPONENT_TAG,
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)
_SpecLoader.add_constructor(_EXPONENT_TAG, _construct_exponent_number)


def load_yaml_strict(text: str, source: str = "spec") -> Any:
    """Parse YAML like ``yaml.safe_load`` but refuse duplicate keys, anchors and aliases, and
    nesting deeper than ``MAX_SPEC_DEPTH``."""
    loader = _SpecLoader(text)
    loader.source = source
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def parse_spec_text(text: str, source: str = "spec", *, built: bool = False) -> DatasetSpec:
    """Parse and validate a spec's YAML text; ``source`` names it in error messages, ``built``
    marks a dataset file's stored spec (``spec_from_mapping``)."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(
            f"{quote(source)}: {len(text):,} characters is too long for a spec (at most "
            f"{MAX_SPEC_BYTES:,})"
        )
    try:
        raw = load_yaml_strict(text, source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{source}: not valid YAML{where}: {problem[:200]}") from None
    return spec_from_mapping(raw, built=built)


def load_spec(path: str | Path, overrides: Mapping[str, Any] | None = None) -> DatasetSpec:
    """Read a YAML spec file and apply flag overrides (flat keys as in ``with_overrides``).

    The file must be UTF-8 text of at most ``MAX_SPEC_BYTES``: a dataset file or other binary
    given by mistake is named as such instead of failing somewhere inside the YAML parser. It
    must be a regular file: reading a FIFO waits for a writer forever, and ``/dev/null`` read
    as an empty spec was "a spec must be a YAML mapping of fields, got NoneType".
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"load_spec takes the path of a YAML spec file, got {type(path).__name__}; a spec "
            "held in a mapping is spec_from_mapping(mapping)"
        )
    path = Path(path)
    name = quote(str(path))
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):  # open() names a folder
            raise SpecError(
                f"spec file {name} is not a regular file (a device, pipe or socket); a spec is "
                "a YAML text file"
            )
        with open(path, "rb") as fh:
            data = fh.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"cannot read spec file {name}: {exc.strerror}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(
            f"spec file {name} is larger than {MAX_SPEC_BYTES:,} bytes; a spec is a short YAML "
            "text file"
        )
    if b"\0" in data:
        raise SpecError(f"spec file {name} is a binary file, not a YAML text spec")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"spec file {name} is not UTF-8 text; a spec is a YAML text file") from None
    spec = parse_spec_text(text, source=str(path))
    return with_overrides(spec, overrides or {})


def default_spec(num_factors: int, renderer: str | None = None) -> DatasetSpec:
    """The study's dataset with ``num_factors`` factors: 1,000,000 images, 64×64, seed 0."""
    num_factors, renderer = plain(num_factors), plain(renderer)
    raw: dict[str, Any] = {"factors": num_factors, "name": f"factors{num_factors}"}
    if renderer is not None:
        raw["renderer"] = renderer
    return spec_from_mapping(raw)


#: The flat keys ``with_overrides`` (and the ``build`` flags) may set.
OVERRIDE_KEYS = ("n", "seed", "renderer", "image_size", "factors", "name", "eval_preset")


def with_overrides(spec: DatasetSpec, overrides: Mapping[str, Any]) -> DatasetSpec:
    """Apply command-line overrides (n, seed, renderer, image_size, eval_preset), revalidated."""
    if not isinstance(spec, DatasetSpec):
        raise TypeError(
            f"with_overrides takes a DatasetSpec, got {type(spec).__name__}; make one with "
            "default_spec(K), load_spec(path) or spec_from_mapping(mapping)"
        )
    if not isinstance(overrides, Mapping):
        raise SpecError(
            f"overrides must be a mapping of override names ({', '.join(OVERRIDE_KEYS)}) to "
            f"values, got {type(overrides).__name__}"
        )
    overrides = {k: plain(v) for k, v in overrides.items() if v is not None}
    if not overrides:
        return spec
    raw = spec.to_dict()
    for key, value in overrides.items():
        if key == "eval_preset":
            if not _is_choice(value, EVAL_PRESETS):
                raise _fail("eval_preset", value, ", ".join(EVAL_PRESETS))
            raw["evaluation"] = {"preset": value}
        elif key in OVERRIDE_KEYS:
            raw[key] = value
        else:
            raise SpecError(f"unknown override {quote(key)}; allowed: {', '.join(OVERRIDE_KEYS)}")
    if "factors" in overrides:  # factors that become active lose their fixed values
        factors = overrides["factors"]
        # only a valid count activates factors: anything else (True, -1) is refused below
        valid = (
            isinstance(factors, int)
            and not isinstance(factors, bool)
            and MIN_FACTORS <= factors <= MAX_FACTORS
        )
        active = FACTOR_NAMES[:factors] if valid else ()
        raw["fixed"] = {k: v for k, v in raw["fixed"].items() if k not in active}
        if "renderer" not in overrides:
            raw.pop("renderer")
    return spec_from_mapping(raw)
