"""``run_ensemble(configs) -> summaries``: several ``bench run`` configs trained as one ensemble.

Each member leaves exactly the run folder ``benchmark.run.run`` leaves for its config (the same
config.json plus an ``ensemble`` field, metrics.jsonl, summary.json, checkpoints, pictures), so
reports, resumes and readers cannot tell it from a single run but by that field.

Members must share what one training loop shares: the dataset, the model (its class, hence the
architecture; hyperparameters, latent size and seed may differ), the schedule (epochs, steps,
batch size, learning rate), the device and the scoring presets. Anything else is refused, naming
the field, never silently split. Members that cannot be trained together (a model with an
auxiliary optimiser) run one after the other through ``benchmark.run.run``, with a note.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from benchmark.data import load_training_set, to_channels_first
from benchmark.datasets import open_source as open_data
from benchmark.ensemble.scoring import batched_scorer, score_shared, share_key
from benchmark.ensemble.stacked import vmap_problem
from benchmark.ensemble.trainer import (
    Member,
    pick_engine,
    reconcile_checkpoints,
    train_ensemble,
)
from benchmark.files import run_folder_lock
from benchmark.models.base import has_auxiliary_objective
from benchmark.models.registry import build_model, get_entry, model_hparams, validate_hparams
from benchmark.params import RunConfig, validate_config
from benchmark.run import (
    SCORE_KEYS,
    RunExists,
    RunPlan,
    _write_jsonl,
    check_folder,
    checkpoint_stamp,
    plan_run,
    prepare_folder,
    record_stop,
    resolve_data,
    run,
    run_folder,
    write_outputs,
)
from benchmark.train import TrainingStopped, resolve_device
from spritegen.errors import SpecError, check_flag, quote

#: RunConfig fields every member of one ensemble must share (one loop, one dataset, one scorer).
SHARED = (
    "model",
    "data",
    "factors",
    "epochs",
    "max_steps",
    "batch_size",
    "lr",
    "device",
    "amp",
    "score_preset",
    "final_preset",
    "score_every",
    "checkpoint_every",
)


def as_configs(configs: Iterable[RunConfig | Mapping[str, Any]]) -> list[RunConfig]:
    """The members as checked RunConfigs. One config given alone is refused, pointing to
    ``benchmark.run.run``: a mapping was read key by key ("dictionary update sequence element
    #0 has length 1"), a RunConfig was "not iterable"."""
    if isinstance(configs, (RunConfig, Mapping, str)) or not isinstance(configs, Iterable):
        raise SpecError(
            "run_ensemble takes a list of run configs (RunConfigs or mappings of their "
            f"settings), got {quote(configs)}; for one run use benchmark.run.run"
        )
    cfgs = [_member(i, c) for i, c in enumerate(configs)]
    if not cfgs:
        raise SpecError("an ensemble needs at least one run config")
    for c in cfgs:
        validate_config(c)
    # as benchmark.run.run: hyperparameters checked (and normalised) against the model
    return [
        dataclasses.replace(c, hparams=validate_hparams(get_entry(c.model), c.hparams))
        for c in cfgs
    ]


def _member(i: int, config: RunConfig | Mapping[str, Any]) -> RunConfig:
    """Member ``i`` as a RunConfig; one that is none is named by its place (``dict(None)``
    failed as "'NoneType' object is not iterable")."""
    if isinstance(config, RunConfig):
        return config
    try:
        return RunConfig.from_dict(config)
    except SpecError as exc:
        raise SpecError(f"configs[{i}]: {exc}") from None


def incompatibility(a: RunConfig, b: RunConfig) -> str | None:
    """The first shared field in which two configs differ (so they cannot train together)."""
    for name in SHARED:
        va, vb = getattr(a, name), getattr(b, name)
        if va != vb:
            return f"{name} ({va!r} vs {vb!r})"
    return None


def check_compatible(cfgs: Sequence[RunConfig]) -> None:
    for c in cfgs[1:]:
        why = incompatibility(cfgs[0], c)
        if why is not None:
            raise SpecError(
                f"ensemble members differ in {why}; only runs that share dataset, model, "
                f"schedule, device and scoring presets can train together"
            )


def ensemble_id(outs: Sequence[Path]) -> str:
    """A short stable name for the ensemble: a hash of its member folders."""
    digest = hashlib.sha256("\n".join(str(o) for o in outs).encode()).hexdigest()
    return f"ens-{digest[:10]}"


def run_ensemble(
    configs: Iterable[RunConfig | Mapping[str, Any]],
    *,
    engine: str = "auto",
    progress: bool | None = None,
) -> list[dict]:
    """Train the configs as one ensemble; return each member's summary, in order.

    A member whose folder already holds its finished run is not trained again (its summary is
    returned). A member that stopped alone (its loss diverged, or its model's code failed while
    trained or scored) gets what its single run's summary.json would say, ``{"status":
    "diverged" | "failed", "error": ...}``, and resumes when run again. Errors that concern a
    member's input (a folder holding another run, an unknown model) are raised before any
    folder is written.
    """
    if progress is not None:  # None: as the configs say; "no" was true and drew the bars
        progress = check_flag("progress", progress)
    cfgs = as_configs(configs)
    check_compatible(cfgs)
    first = cfgs[0]
    device = resolve_device(first.device)
    if first.amp and device.type != "cuda":
        raise SpecError("--amp (mixed precision) needs a CUDA device; drop it on the CPU")
    engine = pick_engine(engine, device)
    get_entry(first.model)
    src = open_data(resolve_data(first))
    try:
        outs = [run_folder(c, src.path).resolve() for c in cfgs]
        if len(set(outs)) != len(outs):  # checked before the training set is loaded
            dup = next(str(o) for o in outs if outs.count(o) > 1)
            raise SpecError(
                f"two ensemble members would write the same run folder {dup}; give --out"
            )
        with contextlib.ExitStack() as held:
            # every member folder is held while the ensemble trains (in a fixed order), as a
            # single run holds its own: another run of one of them stops at once
            for out in sorted(outs):
                held.enter_context(run_folder_lock(out))
            return _run_ensemble(cfgs, src, device, engine, progress)
    finally:
        src.close()


def _run_ensemble(cfgs, src, device, engine: str, progress: bool | None) -> list[dict]:
    images, factors = load_training_set(src)
    image_shape = (images.shape[3], images.shape[1], images.shape[2])
    models = [build_model(c.model, image_shape, c.latent_dim, c.hparams, seed=c.seed) for c in cfgs]
    plans = [
        plan_run(c, src, images, factors, model_hparams(m), device) for c, m in zip(cfgs, models)
    ]
    outs = [p.out.resolve() for p in plans]
    results: list[dict | None] = [None] * len(cfgs)
    for i, plan in enumerate(plans):  # check every folder before writing any
        try:
            check_folder(plan.out, plan.resolved, plan.cfg.force)
        except RunExists as exc:
            if exc.summary is None:
                raise
            results[i] = exc.summary
    todo = [i for i in range(len(cfgs)) if results[i] is None]
    if not todo:
        return results  # type: ignore[return-value]

    if any(has_auxiliary_objective(models[i]) for i in todo):
        print(
            f"note: {cfgs[todo[0]].model} trains an auxiliary optimiser; its "
            f"{len(todo)} runs go one at a time"
        )
        for i in todo:
            results[i] = _alone(cfgs[i])
        return results  # type: ignore[return-value]
    why = vmap_problem([models[i] for i in todo]) if engine == "vmap" else None
    if why:
        print(f"note: {why}; the members train with the per-member loop engine instead")
        engine = "loop"

    ident = ensemble_id([outs[i] for i in todo])
    for i in todo:
        plans[i].resolved["ensemble"] = {
            "id": ident,
            "members": [str(plans[j].out) for j in todo],
            "engine": engine,
        }
        prepare_folder(plans[i].out, plans[i].resolved, plans[i].cfg.force)

    checkpoints = [plans[i].out / "checkpoints" / "last.pt" for i in todo]
    reconcile_checkpoints(checkpoints)
    if len({_position(p) for p in checkpoints}) > 1:  # e.g. one member resumed alone before
        print("note: the members' checkpoints are at different steps; they resume one at a time")
        for i in todo:
            results[i] = _alone(cfgs[i])
        return results  # type: ignore[return-value]
    members = [
        Member(models[i], cfgs[i].seed, ck, stamp=checkpoint_stamp(plans[i].resolved))
        for i, ck in zip(todo, checkpoints)
    ]
    during = [plans[i].scorer for i in todo]
    scorer = batched_scorer(
        during, [share_key(s, cfgs[i].seed) for s, i in zip(during, todo)], device
    )
    train_cfg = plans[todo[0]].train_config(device)
    if progress is not None:
        train_cfg.progress = progress

    def on_epoch(j: int, history: list[dict]) -> None:
        _write_jsonl(plans[todo[j]].out / "metrics.jsonl", history)

    t0 = time.perf_counter()
    outcome = train_ensemble(
        members,
        to_channels_first(images),
        train_cfg,
        engine=engine,
        score=scorer,
        on_epoch=on_epoch,
    )

    finished = []
    for j, i in enumerate(todo):
        got = outcome[j]
        if isinstance(got, TrainingStopped):
            results[i] = _stopped(plans[i], got)
        else:
            _write_jsonl(plans[i].out / "metrics.jsonl", got)
            finished.append((j, i, got))
    final_scores = _final_scores(finished, plans, models, cfgs, device)
    for (_j, i, history), scores in zip(finished, final_scores):
        if isinstance(scores, TrainingStopped):  # its encode failed on the final evaluation
            results[i] = _stopped(plans[i], scores)
            continue
        try:
            results[i] = write_outputs(
                plans[i], models[i], images, history, scores, device, t0, SCORE_KEYS
            )
        except TrainingStopped as exc:  # its encode or decode failed drawing the pictures
            results[i] = _stopped(plans[i], exc)
    return results  # type: ignore[return-value]


def _stopped(plan: RunPlan, exc: TrainingStopped) -> dict:
    """A stopped member's folder and summary, as its single run leaves them (its last good
    checkpoint kept, summary.json saying diverged or failed)."""
    record_stop(plan, exc)
    return {"status": exc.status, "error": str(exc), "out": str(plan.out)}


def _final_scores(finished, plans, models, cfgs, device) -> list[dict[str, Any] | TrainingStopped]:
    """The end-of-run scores of every finished member, the shared-images groups batched; a
    member whose encode failed gets its ``ModelFailed``."""
    out: list[dict[str, Any] | TrainingStopped] = []
    groups: dict[Any, list[int]] = {}
    for pos, (_j, i, history) in enumerate(finished):
        final = history[-1]
        out.append({k: final[k] for k in SCORE_KEYS if k in final})
        fs = plans[i].final_scorer
        if fs is not None:
            key = share_key(fs, cfgs[i].seed) or ("alone", i)
            groups.setdefault(key, []).append(pos)
    for positions in groups.values():
        idx = [finished[p][1] for p in positions]
        scores = score_shared(
            [plans[i].final_scorer for i in idx], [models[i] for i in idx], device
        )
        for p, s in zip(positions, scores):
            out[p] = s
    return out


def _position(checkpoint: Path) -> int:
    """The step a member's checkpoint is at (0 without one)."""
    if not checkpoint.exists():
        return 0
    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["step"])


def _alone(cfg: RunConfig) -> dict:
    """A member trained as a single run (models that cannot share a loop)."""
    try:
        return run(cfg)
    except RunExists as exc:
        if exc.summary is None:
            raise
        return exc.summary
    except TrainingStopped as exc:  # diverged, or the model's code failed
        return {"status": exc.status, "error": str(exc)}


def describe(results: Sequence[dict]) -> str:
    """One line per member for the CLI."""
    return "\n".join(json.dumps({k: r.get(k) for k in ("status", "out", "seed")}) for r in results)
