"""One benchmark run: resolve the config, train, score, and leave a complete run folder.

``run(config) -> summary`` is what ``bench run`` and the sweep helper call. The folder holds
``config.json`` (resolved), ``metrics.jsonl`` (one row per epoch), ``summary.json``,
``checkpoints/last.pt`` (resume point) and ``checkpoints/model.pt`` (final weights),
``reconstructions.png`` and ``traversal.png``. A folder with a finished run is never overwritten
without ``force``; an unfinished one with the same config resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.data import default_epochs, load_training_set, to_channels_first
from benchmark.datasets import DataSource
from benchmark.datasets import open_source as open_data
from benchmark.files import (
    PARTIAL,
    SWEEP_LOG,
    DiskFull,
    disk_full_error,
    is_disk_full,
    make_output_folder,
    read_regular_bytes,
    remove_partials,
    run_folder_lock,
    write_text_atomic,
)
from benchmark.metrics import evaluate
from benchmark.metrics.evaluate import EPOCH_METRICS, METRIC_KEYS, SCORE_KEYS
from benchmark.metrics.presets import get_preset
from benchmark.metrics.sources import StoredSource
from benchmark.models.base import Model
from benchmark.models.registry import build_model, get_entry, model_hparams, validate_hparams
from benchmark.numerics import NUMERICS_KEY, numerics, resumed_numerics
from benchmark.params import PARAMS, RunConfig, validate_config
from benchmark.plots import save_reconstructions, save_traversal
from benchmark.train import (
    STAGED,
    CheckpointError,
    ModelFailed,
    Scorer,
    StepPlan,
    TrainConfig,
    TrainingStopped,
    load_checkpoint,
    make_represent,
    resolve_device,
    save_atomic,
    train,
    unreadable_checkpoint,
)
from spritegen.atomic import as_created
from spritegen.errors import (
    DatasetError,
    SpecError,
    SpritegenWarning,
    check_output_path,
    quote,
    quote_some,
)

DATA_DIR_ENV = "BENCH_DATA_DIR"
#: Fields that do not change a run's numbers: they may differ when a run is resumed.
#: "ensemble" names the ensemble a run was trained in: a member folder resumes as a single run.
#: "numerics" (threads, processor) changes the rounding, not what the run is: a resume may differ.
NOT_IDENTITY = tuple(p.name for p in PARAMS.values() if not p.identity) + (
    "torch",
    "ensemble",
    NUMERICS_KEY,
)
#: Identity fields recorded only since a later version: a run folder or checkpoint written before
#: lacks them, and a resume treats them as unknown (not as a difference).
RECORDED_SINCE = ("data_identity",)
#: The checkpoint entry holding the identity of the run that wrote it (JSON text).
CHECKPOINT_RUN_KEY = "run"


#: What bench writes in a run folder besides ``.partial`` files (``bench sweep`` adds its log):
#: ``--force`` replaces these, and refuses a folder that holds anything else.
RUN_FILES = (
    "config.json",
    "metrics.jsonl",
    "summary.json",
    "reconstructions.png",
    "traversal.png",
    SWEEP_LOG,
)
CHECKPOINTS = "checkpoints"
CHECKPOINT_FILES = ("last.pt", "last.pt" + STAGED, "model.pt")


class RunExists(SpecError):
    """The output folder holds a finished run (or a different one); its summary is attached."""

    def __init__(self, message: str, summary: dict | None = None) -> None:
        super().__init__(message)
        self.summary = summary


class UnreadableRunFolder(SpecError):
    """A run folder's config.json or summary.json is not a readable record."""


def default_dataset_path(num_factors: int) -> Path:
    """Where ``--factors K`` keeps the study's default dataset: $BENCH_DATA_DIR (default ./data)."""
    return Path(os.environ.get(DATA_DIR_ENV, "data")) / f"factors{num_factors}.h5"


def check_data_dir(folder: Path) -> None:
    """Refuse a ``$BENCH_DATA_DIR`` the default dataset cannot be built in, naming the variable:
    the build's own line named ``--out`` and the dataset's path, an option nobody had given."""
    value = os.environ.get(DATA_DIR_ENV)
    if value:  # empty: the current folder, as before
        check_output_path(DATA_DIR_ENV, value)
    where = (
        f"{DATA_DIR_ENV} {quote(value)}"
        if value is not None
        else f"the default data folder {quote(str(folder))} ({DATA_DIR_ENV} unset)"
    )
    for place in (folder, *folder.parents):
        if place.exists() or place.is_symlink():
            break
    if not place.is_dir():
        what = "is a file" if place == folder else f"has a file on its path ({quote(str(place))})"
        raise SpecError(
            f"{where} {what}; set {DATA_DIR_ENV} to a folder (default ./data) where the "
            f"default datasets are built and kept, or give --data FILE"
        )
    if not os.access(place, os.W_OK | os.X_OK):
        raise SpecError(
            f"{where}: cannot write in {quote(str(place))} (permission denied); set "
            f"{DATA_DIR_ENV} to a folder you can write to, or give --data FILE"
        )


def resolve_data(cfg: RunConfig) -> str:
    """The --data value: as given (a spritegen file, dsprites:PATH or 3dshapes:PATH), or the
    default dataset with K factors, built when missing (spritegen's default spec: 1,000,000 images
    and the full evaluation sets) and reused after."""
    if cfg.data is not None:
        return str(cfg.data)
    assert cfg.factors is not None  # validate_config: --data or --factors
    path = default_dataset_path(cfg.factors)
    if not path.exists():
        check_data_dir(path.parent)
        from spritegen.build import build
        from spritegen.spec import default_spec

        build(default_spec(cfg.factors), path, progress=cfg.progress)
    return str(path)


def metrics_scorer(
    data: str | Path | DataSource,
    seed: int,
    preset: str,
    metrics: Sequence[str] | None = None,
) -> tuple[Scorer | None, str]:
    """``scorer(represent) -> dict`` for ``preset`` and where it scores: a spritegen file's stored
    evaluation sets when they are large enough for the preset, else a live oracle rendering the
    file's spec; dSprites / 3dshapes on their live grid. (None, why) when the preset is "none" or
    benchmark.metrics is missing. ``metrics``: the metric names to compute (default: all).

    Checked before training starts, so a run never fails at the end of its first epoch.
    """
    if preset == "none":
        return None, "none"
    src = data if isinstance(data, DataSource) else open_data(data)
    if src.is_grid:
        if preset == "stored":
            raise SpecError(
                f"preset 'stored' needs a spritegen file's evaluation sets; "
                f"{src.kind} is scored live: use quick or full"
            )
        return (
            partial(
                evaluate, src.metric_source(), random_state=seed, preset=preset, metrics=metrics
            ),
            f"live {src.kind} grid",
        )
    data = src.path
    source: Any = str(data)
    where = "stored evaluation sets"
    try:
        stored_source = StoredSource.open(data)
        try:
            stored_source.check_metrics(metrics or METRIC_KEYS, choosable=False)
            if preset == "stored":
                stored_source.check_stored_sizes(metrics or METRIC_KEYS, choosable=False)
            stored = stored_source.stored_preset()
        finally:
            stored_source.close()
        if preset != "stored":
            want = get_preset(preset)
            if (
                stored.batch_size != want.batch_size
                or stored.num_train < want.num_train
                or stored.num_eval < want.num_eval
                or stored.num_variance < want.num_variance
            ):
                raise DatasetError(
                    f"{data}: stored evaluation sets are smaller than preset {preset!r}"
                )
    except DatasetError as exc:
        if preset == "stored":
            raise SpecError(
                f"preset 'stored' scores on the file's evaluation sets, but {exc}; "
                f"use quick or full (a live oracle)"
            ) from None
        source, where = src.oracle(), "live oracle (images rendered while scoring)"
    # A fixed integer seed: every epoch is scored on the same votes, and resumes score the same.
    return partial(evaluate, source, random_state=seed, preset=preset, metrics=metrics), where


def default_out(cfg: RunConfig, data: Path) -> Path:
    hp = "-".join(f"{k}{v}" for k, v in sorted(cfg.hparams.items()))
    name = "-".join(filter(None, [cfg.model, hp, f"D{cfg.latent_dim}", f"seed{cfg.seed}"]))
    return Path("results") / data.stem / name


def run_folder(cfg: RunConfig, data: Path) -> Path:
    """The folder a run writes: ``--out``, or the default under results/ for its dataset.
    ``--out`` is taken as it reads once its missing folders are made
    (``spritegen.atomic.as_created``): ``sub/../run`` is ``run``, whose finished run is kept."""
    return as_created(cfg.out) if cfg.out else default_out(cfg, data)


def _write_json(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))


def _identity(resolved: dict) -> dict:
    return {k: v for k, v in resolved.items() if k not in NOT_IDENTITY}


def _read_record(out: Path, name: str) -> dict:
    """A run folder's JSON record, or a SpecError saying the folder is not a readable run."""
    path = out / name
    try:
        record = json.loads(read_regular_bytes(path))
    except (OSError, ValueError) as exc:  # ValueError: UnicodeDecodeError too
        why = (
            "is not valid JSON"
            if isinstance(exc, ValueError)
            else f"cannot be read ({exc.strerror or exc})"
        )
        record = None
    else:
        why = f"holds a JSON {type(record).__name__}, not an object"
    if not isinstance(record, dict):
        raise UnreadableRunFolder(
            f"--out {out} is not a readable run folder: {name} {why}; "
            f"use --force to replace it, or another --out"
        )
    return record


def _normalised(record: dict) -> dict:
    """``_identity(record)`` as JSON reads it back (tuples as lists), for comparing records."""
    return json.loads(json.dumps(_identity(record), sort_keys=True))


def _differences(old: dict, new: dict) -> list[str]:
    """The identity fields in which two resolved configs differ; a field that ``old`` predates
    (``RECORDED_SINCE``) is unknown there, not different."""
    a, b = _normalised(old), _normalised(new)
    if "data_identity" in a and "data_identity" in b:  # the data are their content: a file
        del a["data"], b["data"]  # moved with its runs (a sweep folder moved) is the same run
    return sorted(
        k
        for k in set(a) | set(b)
        if a.get(k) != b.get(k) and not (k in RECORDED_SINCE and k not in a)
    )


def _changes(keys: Sequence[str], old: dict, new: dict, most: int = 3) -> str:
    """``batch_size 32 recorded, 16 now; ...`` for the first ``most`` differing values (a
    mapping such as data_identity by its differing entries), each value quoted and cut."""
    found: list[str] = []
    for k in keys:
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            subs = sorted(j for j in set(a) | set(b) if a.get(j) != b.get(j))
            found += [
                f"{k}.{j} {quote(a.get(j), 40)} recorded, {quote(b.get(j), 40)} now" for j in subs
            ]
        else:
            found.append(f"{k} {quote(a, 40)} recorded, {quote(b, 40)} now")
    more = f"; and {len(found) - most} more" if len(found) > most else ""
    return "; ".join(found[:most]) + more


def checkpoint_stamp(resolved: dict) -> dict[str, Any]:
    """The entry every checkpoint of this run carries: the identity of the run (everything but
    the fields a resume may change, ``NOT_IDENTITY``), dataset identity included, so that a
    checkpoint copied from another run, or one whose config.json was edited, is refused."""
    return {CHECKPOINT_RUN_KEY: json.dumps(_identity(resolved), sort_keys=True)}


def check_checkpoint(path: Path, resolved: dict) -> None:
    """Refuse a resume point that does not belong to the run ``resolved`` describes.

    Checkpoints written before they carried the run's identity are checked for what can be:
    that their step and epoch fit the run's schedule (batch size, images, epochs, steps)."""
    if not path.exists():
        return
    ck = load_checkpoint(path)
    recorded = ck.get(CHECKPOINT_RUN_KEY)
    if recorded is not None:
        try:
            old = json.loads(recorded)
        except (TypeError, ValueError):
            old = None
        if not isinstance(old, dict):
            raise unreadable_checkpoint(
                path, f"its {CHECKPOINT_RUN_KEY!r} entry is not a run record"
            )
        diff = _differences(old, resolved)
        if diff:
            raise CheckpointError(
                f"checkpoint {path} was written by another run ({_changes(diff, old, resolved)}); "
                f"start the run over with --force, or use another --out"
            )
    _check_position(path, ck, resolved)


def _check_position(path: Path, ck: dict[str, Any], resolved: dict) -> None:
    """A checkpoint's step, epoch and history must be a point of this run's schedule."""
    plan = StepPlan.for_config(
        int(resolved["num_images"]),
        TrainConfig(
            epochs=int(resolved["epochs"]),
            max_steps=resolved.get("max_steps"),
            batch_size=int(resolved["batch_size"]),
        ),
    )
    spe = plan.steps_per_epoch
    try:
        epoch, batch, step = (int(ck[k]) for k in ("epoch", "batch_in_epoch", "step"))
        epochs_done = len(ck["history"])
    except (TypeError, ValueError):
        raise unreadable_checkpoint(path, "its epoch, step or history is not a number") from None
    if batch:  # inside an epoch
        fits = 0 < batch < spe and step == epoch * spe + batch and epochs_done == epoch
    else:  # at the end of an epoch (the last one may be cut short by --steps)
        full = step == epoch * spe
        cut = step == plan.total_steps and (epoch - 1) * spe < step < epoch * spe
        fits = (full or cut) and epochs_done == epoch
    if not fits or step > plan.total_steps:
        raise CheckpointError(
            f"checkpoint {path} was written by another run: its step {step} (epoch {epoch}, "
            f"batch {batch}) is not a point of this run's schedule ({spe} steps per epoch, "
            f"{plan.total_steps} in all); start the run over with --force, or use another --out"
        )


def _run_entries(out: Path) -> tuple[list[Path], list[str]]:
    """The files of the run folder ``out`` that bench wrote (``RUN_FILES``, ``CHECKPOINT_FILES``
    and ``.partial`` files), and the names of every other entry (``analysis/``,
    ``checkpoints/mine.pt``): the user's own, which ``--force`` must not delete."""
    own: list[Path] = []
    foreign: list[str] = []
    for folder, names in ((out, RUN_FILES), (out / CHECKPOINTS, CHECKPOINT_FILES)):
        if not folder.is_dir() or folder.is_symlink():
            continue
        for entry in sorted(folder.iterdir()):
            if (
                folder == out
                and entry.name == CHECKPOINTS
                and entry.is_dir()
                and not entry.is_symlink()
            ):
                continue
            mine = entry.name in names or entry.name.endswith(PARTIAL)
            if mine and (entry.is_symlink() or not entry.is_dir()):
                own.append(entry)
            else:
                name = entry.relative_to(out).as_posix()
                foreign.append(name + ("/" if entry.is_dir() and not entry.is_symlink() else ""))
    return own, foreign


def check_folder(out: Path, resolved: dict, force: bool) -> None:
    """Refuse a folder that is not a run folder, holds a different run, (without force) a
    finished one, or a checkpoint of another run, and (with force) one that holds files bench
    did not write. Writes nothing, so several runs can be checked before any is started."""
    config_path, summary_path = out / "config.json", out / "summary.json"
    if out.is_dir() and any(out.iterdir()):
        if not config_path.exists():
            raise SpecError(
                f"--out {out} exists and is not a run folder (no config.json); "
                f"choose an empty or new folder"
            )
        if force:
            foreign = _run_entries(out)[1]
            if foreign:
                raise SpecError(
                    f"--out {out} holds {quote_some(foreign)}, which bench "
                    f"did not write; --force replaces only a run's own files: move those out of "
                    f"the folder, or use another --out"
                )
        else:
            old = _read_record(out, "config.json")
            diff = _differences(old, resolved)
            if diff:
                raise RunExists(
                    f"{out} holds a different run (differs in {', '.join(diff)}): "
                    f"{_changes(diff, old, resolved)}; use another --out, or --force to "
                    f"replace it"
                )
            if summary_path.exists():
                summary = _read_record(out, "summary.json")
                if summary.get("status") == "finished":
                    raise RunExists(
                        f"{out} holds a finished run; use --force to run it again", summary
                    )
            last = out / "checkpoints" / "last.pt"
            for ck in (last, last.with_name(last.name + STAGED)):
                check_checkpoint(ck, resolved)


def prepare_folder(out: Path, resolved: dict, force: bool) -> None:
    """Create, resume into, or (with force) replace the run folder; refuse anything else.

    Resuming removes the ``.partial`` files a killed run may have left behind, and keeps the
    numerics the earlier steps were trained with (saying so when they differ from now)."""
    check_folder(out, resolved, force)
    config_path = out / "config.json"
    if out.is_dir() and any(out.iterdir()):
        if force:  # check_folder found nothing else there
            for path in _run_entries(out)[0]:
                path.unlink(missing_ok=True)
        else:
            remove_partials(out)
            if (out / "checkpoints" / "last.pt").exists() and NUMERICS_KEY in resolved:
                old = _read_record(out, "config.json").get(NUMERICS_KEY)
                resolved[NUMERICS_KEY], said = resumed_numerics(old, resolved[NUMERICS_KEY])
                if said:
                    warnings.warn(f"{out}: {said}", SpritegenWarning, stacklevel=2)
    make_output_folder(out / "checkpoints", out, "run")
    _write_json(config_path, resolved)


def best_scores(history: list[dict], keys: Sequence[str] = SCORE_KEYS) -> dict[str, dict]:
    """Highest value of each score over the epochs, and the epoch it came from."""
    best: dict[str, dict] = {}
    for row in history:
        for k in keys:
            v = row.get(k)
            if isinstance(v, (int, float)) and (k not in best or v > best[k]["value"]):
                best[k] = {"value": v, "epoch": row["epoch"]}
    return best


def check_scoring(
    scorer: Scorer | None, final_scorer: Scorer | None, score_keys: Sequence[str] | str
) -> tuple[str, ...]:
    """``run``'s scoring arguments checked before any work, ``score_keys`` as a tuple (one key may
    be a string). A scorer that is no function failed at the end of the first epoch, a
    final_scorer at the end of training; ``score_keys="mig"`` was read letter by letter and
    summarised no score at all."""
    for name, fn in (("scorer", scorer), ("final_scorer", final_scorer)):
        if fn is not None and not callable(fn):
            raise SpecError(
                f"{name} must be a function of represent returning a dict of scores, or None; "
                f"got {quote(fn)}"
            )
    if isinstance(score_keys, str):
        return (score_keys,)
    keys = tuple(score_keys) if isinstance(score_keys, Iterable) else (None,)
    if not all(isinstance(k, str) for k in keys):
        raise SpecError(
            f"score_keys must be a score name or a list of them (e.g. {', '.join(SCORE_KEYS[:3])})"
            f", got {quote(score_keys)}"
        )
    return keys


def run(
    config: RunConfig | dict,
    *,
    scorer: Scorer | None = None,
    final_scorer: Scorer | None = None,
    score_keys: Sequence[str] | str = SCORE_KEYS,
) -> dict:
    """Train and score one model; return the summary (also written to summary.json).

    ``scorer`` / ``final_scorer`` replace the default metric calls (benchmark.metrics.evaluate on
    the dataset with the quick / full preset); pass them to test or to use other metrics. An
    injected ``scorer`` without ``final_scorer`` gives the final scores too (its last epoch's).
    ``score_keys`` are the scorer outputs summarised as final and best-over-epochs scores.
    """
    cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    validate_config(cfg)
    score_keys = check_scoring(scorer, final_scorer, score_keys)
    device = resolve_device(cfg.device)
    if cfg.amp and device.type != "cuda":
        raise SpecError("--amp (mixed precision) needs a CUDA device; drop it on the CPU")
    # unknown or broken model, or hyperparameters it does not take: fail before loading data
    cfg = dataclasses.replace(cfg, hparams=validate_hparams(get_entry(cfg.model), cfg.hparams))
    src = open_data(resolve_data(cfg))
    try:
        # held from before the data are loaded: a second run of this folder stops at once
        with run_folder_lock(run_folder(cfg, src.path)):
            return _run(cfg, src, device, scorer, final_scorer, score_keys)
    finally:
        src.close()


def _on_disk_full(out: Path, exc: OSError) -> DiskFull:
    """Clean the partial files a full disk left in ``out``; the error names the file if known."""
    remove_partials(out)
    return disk_full_error(Path(exc.filename) if isinstance(exc.filename, str) else out / "")


def _run(
    cfg: RunConfig,
    src: DataSource,
    device: torch.device,
    scorer: Scorer | None,
    final_scorer: Scorer | None,
    score_keys: Sequence[str],
) -> dict:
    images, factors = load_training_set(src)
    image_shape = (images.shape[3], images.shape[1], images.shape[2])
    model = build_model(cfg.model, image_shape, cfg.latent_dim, cfg.hparams, seed=cfg.seed)
    plan = plan_run(cfg, src, images, factors, model_hparams(model), device, scorer, final_scorer)
    out = plan.out
    prepare_folder(out, plan.resolved, cfg.force)
    try:
        return _train_and_finish(plan, model, images, device, score_keys)
    except DiskFull:
        remove_partials(out)
        raise
    except OSError as exc:
        if is_disk_full(exc):
            raise _on_disk_full(out, exc) from None
        raise


@dataclass
class RunPlan:
    """A resolved run before training: its folder, its config.json content and its scorers."""

    cfg: RunConfig
    out: Path
    resolved: dict[str, Any]
    scorer: Scorer | None
    final_scorer: Scorer | None

    def train_config(self, device: torch.device) -> TrainConfig:
        cfg = self.cfg
        return TrainConfig(
            epochs=self.resolved["epochs"],
            max_steps=cfg.max_steps,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            seed=cfg.seed,
            device=str(device),
            amp=cfg.amp,
            checkpoint_every=cfg.checkpoint_every,
            score_every=cfg.score_every if cfg.score_preset != "none" else 0,
            progress=cfg.progress,
        )


def plan_run(
    cfg: RunConfig,
    src: DataSource,
    images: np.ndarray,
    factors: np.ndarray,
    hparams: dict[str, Any],
    device: torch.device,
    scorer: Scorer | None = None,
    final_scorer: Scorer | None = None,
) -> RunPlan:
    """Resolve ``cfg`` on its loaded dataset (``hparams``: the built model's own record) for
    training on ``device``: the folder, the config.json content and the scorers. Writes nothing
    (the ensemble trainer resolves every member this way before any folder is touched)."""
    data_path = src.path
    num_factors = factors.shape[1]
    epochs = cfg.epochs if cfg.epochs is not None else default_epochs(num_factors)
    image_shape = (images.shape[3], images.shape[1], images.shape[2])
    out = run_folder(cfg, data_path)
    injected = scorer is not None  # an injected scorer also gives the final scores
    scoring = {
        "during": "custom" if injected else "none",
        "final": "custom" if injected else "none",
    }
    if not injected:
        # every epoch: the cheap metrics; at the end: all of them (DCI's trees take minutes)
        scorer, scoring["during"] = metrics_scorer(src, cfg.seed, cfg.score_preset, EPOCH_METRICS)
        if final_scorer is None:
            final_scorer, scoring["final"] = metrics_scorer(src, cfg.seed, cfg.final_preset)
    if final_scorer is not None and injected:
        scoring["final"] = "custom"
    data_str = (
        str(data_path.resolve()) if src.kind == "spritegen" else f"{src.kind}:{data_path.resolve()}"
    )
    resolved = {
        **dataclasses.asdict(cfg),
        "data": data_str,
        "data_identity": src.identity(),
        "epochs": epochs,
        "out": str(out),
        "num_factors": num_factors,
        "num_images": int(len(images)),
        "image_shape": list(image_shape),
        "model_hparams": hparams,
        "scoring": scoring,
        "torch": torch.__version__,
        NUMERICS_KEY: numerics(device),
    }
    return RunPlan(cfg, out, resolved, scorer, final_scorer)


def _train_and_finish(
    plan: RunPlan,
    model: Model,
    images: np.ndarray,
    device: torch.device,
    score_keys: Sequence[str],
) -> dict:
    """Train into the prepared folder, score, draw, and write summary.json last."""
    out = plan.out
    t0 = time.perf_counter()
    metrics_path = out / "metrics.jsonl"
    try:
        history = train(
            model,
            to_channels_first(images),
            plan.train_config(device),
            scorer=plan.scorer,
            checkpoint=out / "checkpoints" / "last.pt",
            on_epoch=lambda h: _write_jsonl(metrics_path, h),
            stamp=checkpoint_stamp(plan.resolved),
        )
    except TrainingStopped as exc:  # diverged, or the model's code failed
        record_stop(plan, exc)
        raise
    _write_jsonl(metrics_path, history)  # also when resuming a run whose training had ended

    final = dict(history[-1])
    final_scores: dict[str, Any] = {k: final[k] for k in score_keys if k in final}
    if plan.final_scorer is not None:
        try:
            final_scores = plan.final_scorer(make_represent(model, device))
        except TrainingStopped as exc:  # its encode failed, or its latents were unusable
            record_stop(plan, exc)
            raise
    try:
        return write_outputs(plan, model, images, history, final_scores, device, t0, score_keys)
    except ModelFailed as exc:  # its encode or decode failed drawing the pictures
        record_stop(plan, exc)
        raise


def record_stop(plan: RunPlan, exc: TrainingStopped) -> None:
    """Name the registered model in a model's failure, and write the stopped run's summary."""
    if isinstance(exc, ModelFailed):
        exc.model = f"{plan.cfg.model!r} ({exc.model})"
    write_diverged(plan.out, exc)


def write_diverged(out: Path, exc: TrainingStopped) -> None:
    """The summary of a run that stopped (its last good checkpoint is kept): ``"diverged"`` when
    its loss became non-finite, ``"failed"`` when the model's code failed; a rerun resumes."""
    _write_json(out / "summary.json", {"status": exc.status, "error": str(exc)})


def write_outputs(
    plan: RunPlan,
    model: Model,
    images: np.ndarray,
    history: list[dict],
    final_scores: dict[str, Any],
    device: torch.device,
    t0: float,
    score_keys: Sequence[str] = SCORE_KEYS,
) -> dict:
    """Pictures, final weights and summary.json (last) of a trained run; returns the summary.
    ``ModelFailed`` when the model's code fails drawing the pictures, before the rest is written."""
    cfg, out, resolved = plan.cfg, plan.out, plan.resolved
    final = dict(history[-1])
    # pictures: fixed images chosen by the seed
    rng = np.random.default_rng(cfg.seed)
    idx = np.sort(rng.choice(len(images), size=min(8, len(images)), replace=False))
    shown = to_channels_first(images[idx])
    save_reconstructions(model, shown, out / "reconstructions.png")
    save_traversal(model, shown[0], final["kl_per_dim"], out / "traversal.png")
    save_atomic(
        {
            "model": model.state_dict(),
            "model_name": cfg.model,
            "hparams": model_hparams(model),
            "image_shape": list(resolved["image_shape"]),
            "latent_dim": cfg.latent_dim,
        },
        out / "checkpoints" / "model.pt",
    )

    summary = {
        "status": "finished",
        "model": cfg.model,
        "model_hparams": model_hparams(model),
        "latent_dim": cfg.latent_dim,
        "seed": cfg.seed,
        "data": resolved["data"],
        "num_factors": resolved["num_factors"],
        "epochs": len(history),
        "steps": final["step"],
        "final": {k: final[k] for k in ("loss", "reconstruction", "kl") if k in final},
        "kl_per_dim": final.get("kl_per_dim"),
        "final_scores": final_scores,
        "best_scores": best_scores(history, score_keys),
        "device": str(device),
        "wall_time_s": round(time.perf_counter() - t0, 2),
        "out": str(out),
    }
    _write_json(out / "summary.json", summary)
    return summary
