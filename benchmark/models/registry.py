"""Find models through the entry point group ``benchmark.models`` and check them before use.

Every model, bundled or third-party, is a factory (usually an ``nn.Module`` class) named by an
entry point ``name = "module:attr"`` and called as ``factory(image_shape=(C, H, W), latent_dim=D,
**hparams)``. Loading is lazy and guarded: a plugin that fails to import, builds a model with the
wrong output shapes or a non-finite loss is reported with a one-line reason and never stops the
others from being listed or used.
"""

from __future__ import annotations

import inspect
import math
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module, metadata
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from benchmark.models.base import AUXILIARY_LOSS, REQUIRED_TERMS, Model, has_auxiliary_objective

if TYPE_CHECKING:
    from benchmark.models.base import AuxiliaryModel
from benchmark.params import PARAMS, BadValue, check_hparam, plain, positive_int, seed_int
from spritegen.clitools import is_out_of_memory
from spritegen.errors import SpecError, SpritegenError, first_line, quote
from spritegen.memory import NotEnoughMemory

GROUP = "benchmark.models"

#: The bundled models, as registered in pyproject.toml. Used as well when the package runs from a
#: source tree that was not pip-installed (no entry point metadata then).
BUNDLED: dict[str, str] = {
    "vae": "benchmark.models.vae:VAE",
    "betavae": "benchmark.models.vae:BetaVAE",
    "annealedvae": "benchmark.models.vae:AnnealedVAE",
    "factorvae": "benchmark.models.factorvae:FactorVAE",
    "betatcvae": "benchmark.models.betatcvae:BetaTCVAE",
    "dipvae1": "benchmark.models.dipvae:DIPVAE1",
    "dipvae2": "benchmark.models.dipvae:DIPVAE2",
}
SOURCE_TREE = "spritegen (source tree)"


class ModelError(SpritegenError):
    """A model cannot be loaded, built or passes bad tensors: the message names model and fault."""


class UnfaithfulHparams(ValueError):
    """A model's ``hparams`` holds a value recorded differently in each process (its whole
    line is ours, never cut as a plugin's own message is)."""


@dataclass
class ModelEntry:
    """One registered model: where it comes from, and its factory or why it cannot be used."""

    name: str
    target: str  # "module:attr"
    origin: str  # distribution name and version
    factory: Callable[..., Model] | None = None
    error: str | None = None
    hparams: dict[str, Any] = field(default_factory=dict)  # name -> default (Parameter.empty)
    annotations: dict[str, Any] = field(default_factory=dict)  # name -> type, where declared
    accepts_any: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]


def _load(target: str) -> Callable[..., Model]:
    module_name, _, attr = target.partition(":")
    obj: Any = import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target} is not callable")
    return obj


def _signature(factory: Callable[..., Any]) -> tuple[dict[str, Any], bool]:
    """Hyperparameters a factory accepts (besides image_shape and latent_dim), with defaults."""
    params = inspect.signature(factory).parameters
    for required in ("image_shape", "latent_dim"):
        if required not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            raise TypeError(f"its constructor has no '{required}' argument")
    hparams = {
        n: p.default
        for n, p in params.items()
        if n not in ("self", "image_shape", "latent_dim")
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    return hparams, accepts_any


def _run_option_names() -> dict[str, str]:
    """Every name a run setting is written under (field, sweep key, flag without dashes), and
    the flag users know it by: a model hyperparameter of one of these names could never be set,
    because ``bench run --seed`` and a sweep's ``seed:`` go to the run."""
    names = {"param": "--param", "help": "--help"}
    for p in PARAMS.values():
        for n in (p.name, p.key, p.flag[2:].replace("-", "_")):
            names.setdefault(n, p.flag)
    return names


#: Names a model's hyperparameters must not take (see ``_run_option_names``), with their flags.
RUN_OPTION_NAMES: dict[str, str] = _run_option_names()


def _colliding(hparams: dict[str, Any]) -> str | None:
    """Why the model cannot be used when a run option would shadow some of its
    hyperparameters (``--seed 5`` sets the run's seed, the model's ``seed`` stays its default)."""
    clash = [n for n in hparams if n in RUN_OPTION_NAMES]
    if not clash:
        return None
    flags = ", ".join(dict.fromkeys(RUN_OPTION_NAMES[n] for n in clash))
    return (
        f"its hyperparameter(s) {', '.join(map(repr, clash))} have the name of run "
        f"option(s) {flags}, which set the run and would never reach the model; "
        f"rename them in the constructor"
    )


def _annotations(factory: Callable[..., nn.Module], names: Any) -> dict[str, Any]:
    """The declared types of the hyperparameters (resolving postponed annotations); a factory
    whose annotations cannot be resolved is simply not type-checked."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        return {}
    return {n: hints[n] for n in names if n in hints}


def _entry(name: str, target: str, origin: str) -> ModelEntry:
    entry = ModelEntry(name=name, target=target, origin=origin)
    try:
        entry.factory = _load(target)
        entry.hparams, entry.accepts_any = _signature(entry.factory)
        entry.annotations = _annotations(entry.factory, entry.hparams)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a plugin may raise anything on import, sys.exit() included:
        entry.factory = None  # report it as broken; never let it end the command
        entry.error = f"cannot load {target}: {first_line(exc)}"
        return entry
    entry.error = _colliding(entry.hparams)
    return entry


def discover() -> dict[str, ModelEntry]:
    """All models registered in ``benchmark.models``, bundled ones first, loaded and checked for
    import errors (not yet for shapes: see ``check_model``)."""
    found: dict[str, ModelEntry] = {}
    seen_targets: list[tuple[str, str, str]] = []
    for ep in metadata.entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        origin = f"{dist.metadata['Name']} {dist.version}" if dist is not None else "unknown"
        seen_targets.append((ep.name, ep.value, origin))
    names = {n for n, _, _ in seen_targets}
    # Running from a source checkout: the bundled entry points are not installed metadata.
    bundled = [(n, t, SOURCE_TREE) for n, t in BUNDLED.items() if n not in names]
    for name, target, origin in bundled + sorted(seen_targets, key=lambda e: e[0] not in BUNDLED):
        if name in found:
            if found[name].target != target:
                found[name] = ModelEntry(
                    name,
                    target,
                    origin,
                    error=f"name clash: registered by {found[name].origin} ({found[name].target}) "
                    f"and by {origin} ({target}); uninstall one",
                )
            continue
        found[name] = _entry(name, target, origin)
    return found


def get_entry(name: str) -> ModelEntry:
    """The usable entry called ``name``; SpecError if unknown, ModelError if broken."""
    entries = discover()
    if name not in entries:
        raise SpecError(f"unknown model {name!r}; installed: {', '.join(sorted(entries))}")
    entry = entries[name]
    if not entry.ok:
        raise ModelError(f"model {name!r} ({entry.origin}) is broken: {entry.error}")
    return entry


def required_hparams(entry: ModelEntry) -> list[str]:
    """The hyperparameters the model's constructor gives no default: every run must set them."""
    return [n for n, default in entry.hparams.items() if default is inspect.Parameter.empty]


def validate_hparams(
    entry: ModelEntry, hparams: dict[str, Any], where: str = "", complete: bool = True
) -> dict[str, Any]:
    """The hyperparameters checked against the model's constructor: names it takes, values of
    its declared types (an integer where a float is declared becomes a float, so ``--beta 8`` and
    ``beta: 8.0`` are the same run), numbers finite and, when ``complete`` (a run's whole set,
    not one value of a sweep's grid), every hyperparameter without a default given: a missing
    one was Python's "__init__() missing 1 required positional argument". SpecError names the
    parameter."""
    unknown = sorted(set(hparams) - set(entry.hparams))
    if unknown and not entry.accepts_any:
        allowed = ", ".join(entry.hparams) or "none"
        raise SpecError(
            f"model {entry.name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"it accepts: {allowed}"
        )
    missing = [n for n in required_hparams(entry) if n not in hparams] if complete else []
    if missing:
        flags = " ".join(f"--{n.replace('_', '-')} VALUE" for n in missing)
        keys = ", ".join(f"{n}: VALUE" for n in missing)
        raise SpecError(
            f"model {entry.name!r} needs a value for {', '.join(map(repr, missing))} (its "
            f"constructor gives no default): {flags} on the command line, {keys} in a sweep spec"
        )
    checked = {}
    for name, value in hparams.items():
        try:
            checked[name] = check_hparam(entry.annotations.get(name, Any), value)
        except BadValue as exc:
            raise SpecError(f"{where}{name}: {exc} (a parameter of model {entry.name!r})") from None
    return checked


def dry_build(
    entry: ModelEntry, image_shape: tuple[int, int, int], latent_dim: int, hparams: dict[str, Any]
) -> None:
    """Construct the model on torch's meta device (no memory, no weights drawn) so that its own
    checks of hyperparameter values (beta >= 0, ...) run when a sweep is planned, not hours later
    when the run starts. SpecError with the model's message. Without a value for each
    hyperparameter that has no default (one value of a sweep's grid, checked alone) there is
    nothing to build: the check of the whole point names what is missing."""
    assert entry.factory is not None
    if any(n not in hparams for n in required_hparams(entry)):
        return
    try:
        with torch.device("meta"):
            model = entry.factory(
                image_shape=tuple(image_shape), latent_dim=int(latent_dim), **hparams
            )
    except (ValueError, TypeError) as exc:
        raise SpecError(f"model {entry.name!r}: {first_line(exc, typed=False)}") from None
    except Exception:
        return  # a model that cannot be built on the meta device is checked when it runs
    try:
        hp = getattr(model, "hparams", {})
    except Exception:
        return  # a property that fails on the meta device: checked when the model runs
    try:
        _record(hp)
    except UnfaithfulHparams as exc:  # every run of it would fail its check
        raise SpecError(f"model {entry.name!r}: {exc}") from None
    except ValueError as exc:
        raise SpecError(f"model {entry.name!r}: {first_line(exc, typed=False)}") from None


def check_build_args(
    image_shape: Any, latent_dim: Any, seed: Any = 0
) -> tuple[tuple[int, int, int], int, int]:
    """``build_model``'s own arguments as Python ints, or a SpecError naming the bad one.

    Unchecked, ``latent_dim="10"`` failed the dry pass with "encode returned mu of shape (2, 10),
    expected (2, 10)", ``True`` built a model with one latent, a seed of 1.5 or -1 was taken
    as another seed without a word and 2**64 overflowed inside torch."""
    checked = {}
    for name, value, check in (("latent_dim", latent_dim, positive_int), ("seed", seed, seed_int)):
        try:
            checked[name] = check(plain(value))
        except BadValue as exc:
            raise SpecError(f"{name} {exc}") from None
    shape = tuple(image_shape) if isinstance(image_shape, (tuple, list, torch.Size)) else None
    dims = None if shape is None else tuple(plain(v) for v in shape)
    if dims is None or len(dims) != 3 or not all(_is_size(v) for v in dims):
        raise SpecError(
            f"image_shape must be (C, H, W): three positive integers, channels first, got "
            f"{quote(image_shape)}"
        )
    return dims, checked["latent_dim"], checked["seed"]


def _is_size(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def build_model(
    name: str,
    image_shape: tuple[int, int, int],
    latent_dim: int,
    hparams: dict[str, Any] | None = None,
    seed: int = 0,
    check: bool = True,
) -> Model:
    """Build model ``name`` with weights initialised from ``seed`` and (by default) check it.

    Module constructors draw from torch's global generator; it is forked and seeded here so the
    initial weights depend on ``seed`` alone and the caller's global state is left untouched.
    """
    entry = get_entry(name)
    image_shape, latent_dim, seed = check_build_args(image_shape, latent_dim, seed)
    if hparams is not None and not isinstance(hparams, Mapping):
        raise SpecError(f"hparams must be a dict of hyperparameters by name, got {quote(hparams)}")
    hparams = validate_hparams(entry, dict(hparams or {}))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        assert entry.factory is not None  # get_entry refused entries that cannot build
        try:
            model = entry.factory(
                image_shape=tuple(image_shape), latent_dim=int(latent_dim), **hparams
            )
        except (ValueError, TypeError) as exc:
            raise SpecError(f"model {name!r}: {first_line(exc, typed=False)}") from None
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit from a plugin's constructor included
            if is_out_of_memory(exc):  # the machine's limit, not the model's fault
                raise too_large(name, latent_dim, exc) from None
            raise ModelError(
                f"model {name!r} ({entry.origin}) failed to build: {first_line(exc)}"
            ) from None
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"model {name!r} ({entry.origin}): factory returned "
            f"{type(model).__name__}, not a torch.nn.Module"
        )
    if check:
        check_model(model, image_shape, latent_dim, name=name, origin=entry.origin, hparams=hparams)
    return model


def too_large(name: str, latent_dim: int, exc: BaseException) -> NotEnoughMemory:
    """The allocator's refusal while a model was built or dry-run: ``run_cli``'s out-of-memory
    line (exit 1), not the model's fault (it was "failed to build", exit 2, and ``bench models``
    listed every model BROKEN for a --latent-dim too large for the machine)."""
    return NotEnoughMemory(
        f"model {name!r} with latent size {latent_dim} does not fit in memory "
        f"({first_line(exc, typed=False)})"
    )


def _shape(t: Any) -> str:
    return str(tuple(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


# --- the contract of docs/models.md, checked on the dry pass and on every training step -------


def encode_fault(out: Any, batch: int, latent_dim: int | None) -> str | None:
    """What is wrong with ``encode``'s output for ``batch`` images (None: it fits the contract).
    ``latent_dim`` None (a model that does not say its D): any D, the same for mu and logvar.

    Both must be real floating tensors: complex means were scored on their real part alone
    (torch's "discards the imaginary part" warning) and failed only later, in decode."""
    if not (isinstance(out, tuple) and len(out) == 2):
        return f"encode must return (mu, logvar), got {type(out).__name__}"
    if latent_dim is None and isinstance(out[0], torch.Tensor) and out[0].ndim == 2:
        latent_dim = out[0].shape[1]
    for label, t in zip(("mu", "logvar"), out):
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != (batch, latent_dim):
            return (
                f"encode returned {label} of shape {_shape(t)}, "
                f"expected ({batch}, {latent_dim if latent_dim is not None else 'D'}) "
                f"for a batch of {batch}"
            )
        if not t.is_floating_point():
            return (
                f"encode returned {label} of dtype {str(t.dtype).removeprefix('torch.')}, "
                "expected a real floating dtype (float32): latent means and log-variances are "
                "real numbers"
            )
    return None


def decode_fault(logits: Any, batch: int, image_shape: tuple[int, int, int]) -> str | None:
    """What is wrong with ``decode``'s output for ``batch`` latents (None: it fits)."""
    want = (batch, *image_shape)
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != want:
        return f"decode returned shape {_shape(logits)}, expected {want}"
    return None


def terms_fault(terms: Any, latent_dim: int | None) -> str | None:
    """What is wrong with the dict ``loss`` returned (None: it fits). Shapes only: no device
    sync, so the trainer checks every step's terms for the price of a few attribute reads."""
    if not isinstance(terms, dict) or any(k not in terms for k in REQUIRED_TERMS):
        got = sorted(terms) if isinstance(terms, dict) else type(terms).__name__
        return f"loss must return a dict with {', '.join(REQUIRED_TERMS)}; got {got}"
    kld = terms["kl_per_dim"]
    fits = isinstance(kld, torch.Tensor) and kld.ndim == 1
    if fits and latent_dim is not None:
        fits = kld.shape[0] == latent_dim
    if not fits:
        return f"kl_per_dim has shape {_shape(kld)}, expected ({latent_dim or 'D'},)"
    for key, t in terms.items():
        if key == "kl_per_dim":
            continue
        if not isinstance(t, torch.Tensor) or t.numel() != 1:
            return f"loss term {key!r} must be a scalar tensor, got {_shape(t)}"
    return None


def batch_fault(model: Model, x: torch.Tensor, latent_dim: int | None) -> str | None:
    """Which of ``encode`` and ``decode`` breaks the contract on the batch ``x``, if either:
    run when a training step failed, to name the method at fault instead of a symptom deep
    inside ``loss`` (a wrong latent size shows up as a matrix product that cannot be taken)."""
    try:
        with torch.no_grad():
            out = model.encode(x)
            fault = encode_fault(out, x.shape[0], latent_dim)
            if fault is None:
                image_shape = (x.shape[1], x.shape[2], x.shape[3])
                fault = decode_fault(model.decode(out[0]), x.shape[0], image_shape)
    except KeyboardInterrupt:
        raise
    except BaseException:
        return None  # the step's own exception says more than a second failure would
    return fault


def hparams_record(model: nn.Module) -> dict[str, Any]:
    """The model's ``hparams`` as written to config.json and summary.json: a dict of names to
    values, non-scalars as their repr. ValueError when it is not a dict, holds a non-finite
    number (standard JSON has no inf or nan; ``json.dumps`` would write ``Infinity``), or a
    value whose repr is not the same in every process (``_unfaithful``)."""
    return _record(getattr(model, "hparams", {}))


def _record(hp: Any) -> dict[str, Any]:
    """``hparams_record`` of the value of a model's ``hparams``."""
    if hp is None:
        hp = {}
    if not isinstance(hp, Mapping) or not all(isinstance(k, str) for k in hp):
        raise ValueError(
            f"'hparams' must be a dict of its hyperparameters by name, got a "
            f"{type(hp).__name__}: {quote(hp)}"
        )
    for k, v in hp.items():
        unfaithful = _unfaithful(v, k)
        if unfaithful is not None:
            raise UnfaithfulHparams(
                f"'hparams' holds {unfaithful}, so no other process could match the run's "
                f"record (config.json) to resume or skip the run; allowed: str, int, float, "
                f"bool, None, and lists, tuples and dicts of them (a function by its name)"
            )
    record = {
        k: (v if isinstance(v, (int, float, str, bool)) or v is None else repr(v))
        for k, v in hp.items()
    }
    bad = [f"{k}={v!r}" for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise ValueError(
            f"'hparams' holds non-finite values ({', '.join(bad)}), which a run record (JSON) "
            f"cannot hold; give the hyperparameters finite values"
        )
    return record


#: What a repr names when it shows where an object lives in memory (``<function f at 0x7f..>``,
#: ``<object object at 0x7f..>``): another process (a resume, a sweep's next start) has another.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_NUMBER = (int, float, bool, type(None))


def _unfaithful(value: Any, where: str, seen: frozenset[int] = frozenset()) -> str | None:
    """Why ``value`` (the hyperparameter ``where``) cannot be recorded as the same text in every
    process, or None. A run record holds non-scalars as their repr, compared when a run is
    resumed or a sweep skips it: JSON's kinds, tuples included, and objects with a plain repr
    (a numpy scalar, a dtype, a class) read the same in every process; an object whose repr is
    its address (a function, ``object()``) did not, so the run could never be resumed, and a
    set orders its strings by a hash that Python salts per process."""
    if isinstance(value, (str, *_NUMBER)) or id(value) in seen:
        return None
    inner = seen | {id(value)}
    if isinstance(value, (list, tuple)):
        items: list[tuple[Any, str]] = [(v, f"{where}[{i}]") for i, v in enumerate(value)]
    elif isinstance(value, dict):
        items = [(k, f"{where} (a key)") for k in value]
        items += [(v, f"{where}[{k!r}]") for k, v in value.items()]
    elif isinstance(value, (set, frozenset)):
        if all(isinstance(v, _NUMBER) for v in value):
            return None  # numbers hash alike in every process: the same order
        kinds = sorted({type(v).__name__ for v in value if not isinstance(v, _NUMBER)})
        return (
            f"{where}={quote(value, 40)} (a {type(value).__name__} holding {', '.join(kinds)}), "
            f"whose order, and so its repr, changes from process to process"
        )
    elif _ADDRESS.search(repr(value)) is not None:
        return (
            f"{where}={quote(value, 60)} (type {type(value).__name__}), whose repr names a "
            f"memory address"
        )
    else:
        return None
    return next(filter(None, (_unfaithful(v, w, inner) for v, w in items)), None)


def check_model(
    model: Model,
    image_shape: tuple[int, int, int],
    latent_dim: int,
    name: str = "model",
    origin: str = "",
    hparams: dict[str, Any] | None = None,
) -> None:
    """Dry forward pass on two random images: shapes and loss terms as docs/models.md says, a
    loss that can be trained (it has parameters and a gradient), and an ``hparams`` dict that a
    run record can hold. Raises ModelError naming the first fault. Runs on the model's current
    device; encode and decode in no_grad, the loss with gradients recorded (never applied).
    """
    where = f"model {name!r}" + (f" ({origin})" if origin else "")
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    except Exception:
        device = torch.device("cpu")
    c, h, w = image_shape
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.rand((2, c, h, w), generator=gen, device=device)
    try:
        with torch.no_grad():
            out = model.encode(x)
            fault = encode_fault(out, 2, latent_dim)
            if fault is None:
                fault = decode_fault(model.decode(out[0]), 2, (c, h, w))
        if fault is not None:
            raise ModelError(f"{where}: {fault}")
        with torch.enable_grad():  # the same numbers as in no_grad; the graph is dropped
            terms = model.loss(x, step=0, generator=gen)
    except ModelError:
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        if is_out_of_memory(exc):
            raise too_large(name, latent_dim, exc) from None
        raise ModelError(f"{where}: dry forward pass failed: {first_line(exc)}") from None
    fault = terms_fault(terms, latent_dim)
    if fault is not None:
        raise ModelError(f"{where}: {fault}")
    bad = [k for k, t in terms.items() if not bool(torch.isfinite(t).all())]
    if bad:
        given = ", ".join(f"{k}={v!r}" for k, v in (hparams or {}).items())
        raise ModelError(
            f"{where}: non-finite loss terms on a dry forward pass: {', '.join(bad)}"
            + (f" (with hyperparameters {given}: check their values)" if given else "")
        )
    try:  # hasattr and the record both run the model's property, which may raise anything
        if not hasattr(model, "hparams"):
            raise ModelError(f"{where}: has no 'hparams' attribute (a dict of its hyperparameters)")
        hparams_record(model)
    except (ModelError, KeyboardInterrupt):
        raise
    except UnfaithfulHparams as exc:
        raise ModelError(f"{where}: {exc}") from None
    except ValueError as exc:  # hparams_record's own line (or the property's ValueError)
        raise ModelError(f"{where}: {first_line(exc, typed=False)}") from None
    except BaseException as exc:
        raise ModelError(f"{where}: its 'hparams' failed: {first_line(exc)}") from None
    if has_auxiliary_objective(model):
        _check_auxiliary(model, x, gen, terms, where)
    _check_trainable(model, terms, where)


def _check_trainable(model: nn.Module, terms: dict[str, torch.Tensor], where: str) -> None:
    """The trainer's Adam needs parameters (those the auxiliary optimiser does not hold), and
    ``loss`` must carry a gradient to them: a model without parameters, or whose loss is
    detached, would fail at its first optimiser step with torch's words, not ours."""
    aux: set[int] = set()
    if has_auxiliary_objective(model):
        optimizer = model.make_auxiliary_optimizer()
        aux = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if not [p for p in model.parameters() if id(p) not in aux]:
        raise ModelError(
            f"{where}: has no parameters to train"
            + (" besides those of its auxiliary optimiser" if aux else "")
            + " (model.parameters() is empty); register its layers as torch.nn.Module attributes"
        )
    if not terms["loss"].requires_grad:
        raise ModelError(
            f"{where}: loss['loss'] does not require grad, so training cannot update the "
            f"weights; compute it from the model's parameters without detach() or no_grad"
        )


def _check_auxiliary(
    model: AuxiliaryModel,
    x: torch.Tensor,
    gen: torch.Generator,
    terms: dict[str, torch.Tensor],
    where: str,
) -> None:
    """The optional auxiliary objective (docs/models.md): an optimiser over some of the model's
    own parameters, and a finite scalar ``auxiliary_loss`` whose logged keys do not clash with the
    main loss terms."""
    try:
        optimizer = model.make_auxiliary_optimizer()
        with torch.no_grad():
            aux = model.auxiliary_loss(x, step=0, generator=gen)
    except Exception as exc:
        raise ModelError(
            f"{where}: auxiliary objective failed on a dry pass: {first_line(exc)}"
        ) from None
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ModelError(
            f"{where}: make_auxiliary_optimizer must return a torch.optim.Optimizer, "
            f"got {type(optimizer).__name__}"
        )
    own = {id(p) for p in model.parameters()}
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if not params or any(id(p) not in own for p in params):
        raise ModelError(
            f"{where}: the auxiliary optimiser must hold some of the model's own parameters "
            f"(and only those)"
        )
    if not isinstance(aux, dict) or AUXILIARY_LOSS not in aux:
        got = sorted(aux) if isinstance(aux, dict) else type(aux).__name__
        raise ModelError(
            f"{where}: auxiliary_loss must return a dict with {AUXILIARY_LOSS}; got {got}"
        )
    clash = sorted(set(aux) & set(terms))
    if clash:
        raise ModelError(f"{where}: auxiliary terms {clash} clash with the loss terms' names")
    for key, t in aux.items():
        if not isinstance(t, torch.Tensor) or t.numel() != 1:
            raise ModelError(
                f"{where}: auxiliary term {key!r} must be a scalar tensor, got {_shape(t)}"
            )
        if not bool(torch.isfinite(t).all()):
            raise ModelError(f"{where}: non-finite auxiliary term on a dry pass: {key}")


def model_hparams(model: nn.Module) -> dict[str, Any]:
    """The model's own record of its hyperparameters, JSON-ready (``check_model`` has refused
    a model whose record is not: ModelError here for one built without the check)."""
    try:
        return hparams_record(model)
    except Exception as exc:
        raise ModelError(f"model {type(model).__qualname__}: {exc}") from None


def describe_default(value: Any) -> str:
    return "required" if value is inspect.Parameter.empty else repr(value)
