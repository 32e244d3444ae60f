"""Train G models of one architecture on one dataset in one loop: benchmark/train.py for many.

Every member keeps what a single run with its seed has: its initial weights (built by the caller
with ``build_model``), its shuffle (epoch e from ``epoch_seed(seed, e)``), its noise generator
(seeded with its seed, drawing (B, D_member) per step) and its own Adam. All members share the
data (one uint8 copy), the step counter and the epoch schedule.

Two engines do the step:

- ``loop``: each member's own ``model.loss``, backward and ``torch.optim.Adam`` step in turn:
  bit-for-bit the single run, for any model. On the CPU it is also the fastest (see
  docs/architecture.md, "Ensembles").
- ``vmap``: stacked parameters, the network vmapped over members, one Adam over the stack
  (``benchmark.ensemble.stacked``). Equal to the single runs up to float32 reduction order.

Each member's checkpoint is its single-run ``checkpoints/last.pt`` (a member folder resumes as a
single run). All members are written to ``last.pt.next`` first and renamed after, so a kill in
between is rolled forward (all staged) or back (not all staged) on resume.

A member stops alone, before a bad update, for what would stop its single run: its loss becomes
non-finite (``TrainingDiverged``) or its model's code fails, in a step or while scored
(``ModelFailed``: it raised, or broke the contract of docs/models.md). Its checkpoint stays its
last good one; the others go on with the numbers they have without it (the step is taken again
for them on the noise already drawn). The vmapped call cannot say whose code failed: the vmap
engine then steps each member alone to find out (``_blame``), and stops them all only when none
fails alone.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from benchmark.allocator import keep_freed_memory
from benchmark.ensemble.stacked import StackedMembers
from benchmark.models.base import Model
from benchmark.train import (
    CHECKPOINT_FORMAT,
    STAGED,
    ModelFailed,
    StepPlan,
    TrainConfig,
    TrainingDiverged,
    TrainingStopped,
    accumulate,
    check_step_terms,
    check_training_inputs,
    checkpoint_written,
    epoch_row,
    epoch_seed,
    loss_check_every,
    model_call,
    model_label,
    save_atomic,
    stop_if_non_finite,
    to_input,
    unseen_divergence,
)
from spritegen.errors import SpecError

log = logging.getLogger(__name__)

ENGINES = ("auto", "loop", "vmap")

#: ``score(indices, models) -> one score dict per listed member``, or the ``TrainingStopped`` its
#: encode raised while scored (benchmark.ensemble.scoring).
EnsembleScorer = Callable[[list[int], list[Model]], list[dict | TrainingStopped]]


@dataclass
class Member:
    """One model of the ensemble: its module (built from its seed), seed and checkpoint file."""

    model: Model
    seed: int
    checkpoint: Path | None = None
    #: stored in each of its checkpoints: the run identity a single run's would carry
    stamp: dict[str, Any] = field(default_factory=dict)
    # state carried by the checkpoint
    noise: torch.Generator | None = None
    optimizer: torch.optim.Optimizer | None = None
    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    #: why it stopped before the end (its loss diverged, or its model's code failed)
    error: TrainingStopped | None = None


def pick_engine(engine: str, device: torch.device) -> str:
    """``auto``: the per-member loop on the CPU (measured fastest there), vmap on a GPU."""
    if engine not in ENGINES:
        raise SpecError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "auto":
        return "loop" if device.type == "cpu" else "vmap"
    return engine


def _staged(path: Path) -> Path:
    return path.with_name(path.name + STAGED)


def _step_of(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["step"])


def reconcile_checkpoints(paths: Sequence[Path]) -> None:
    """Finish or undo an ensemble checkpoint that a kill interrupted.

    Staged files are renamed only after every member's is written, so: when every member has a
    file (staged or renamed) at the newest step, the rest are renamed (roll forward); otherwise
    the staged files are removed (roll back) and every ``last.pt`` is the previous checkpoint.
    """
    staged = [p for p in paths if _staged(p).exists()]
    if not staged:
        return
    newest = max(_step_of(_staged(p)) for p in staged)
    complete = all(
        (_staged(p).exists() and _step_of(_staged(p)) == newest)
        or (p.exists() and _step_of(p) == newest)
        for p in paths
    )
    for p in staged:
        if complete:
            os.replace(_staged(p), p)
        else:
            _staged(p).unlink()


def train_ensemble(
    members: Sequence[Member],
    images: torch.Tensor,
    cfg: TrainConfig,
    *,
    engine: str = "auto",
    score: EnsembleScorer | None = None,
    on_epoch: Callable[[int, list[dict]], None] | None = None,
) -> list[list[dict] | TrainingStopped]:
    """Train every member; return each one's history (one dict per epoch) or why it stopped.

    ``cfg`` is the members' shared TrainConfig (its ``seed`` is unused: each member has its own).
    ``score(indices, models)`` scores the listed members after the epochs a single run scores;
    ``on_epoch(i, history)`` is called for each running member after its checkpoint is written.
    """
    device, n = check_training_inputs(images, cfg)
    keep_freed_memory()
    engine = pick_engine(engine, device)
    members = list(members)
    try:  # one copy of the training set for every member, on the GPU when it fits
        data = images.to(device)
    except torch.cuda.OutOfMemoryError:
        data = images.pin_memory()
    for m in members:
        m.model.to(device).train()
        m.noise = torch.Generator(device=device).manual_seed(m.seed)
        if engine == "loop":
            m.optimizer = torch.optim.Adam(m.model.parameters(), lr=cfg.lr)
    steps_per_epoch, total_steps, num_epochs = StepPlan.for_config(n, cfg)

    epoch, batch_in_epoch, step = 0, 0, 0
    paths = [m.checkpoint for m in members if m.checkpoint is not None]
    reconcile_checkpoints(paths)
    loaded = [_load(m, device) for m in members]
    positions = set(loaded)
    if len(positions) > 1:
        raise SpecError(
            "the members' checkpoints are at different steps "
            f"({sorted(p[2] if p else 0 for p in loaded)}); resume them one at a time"
        )
    if loaded[0] is not None:
        epoch, batch_in_epoch, step = loaded[0]

    stack = StackedMembers([m.model for m in members], lr=cfg.lr) if engine == "vmap" else None
    if stack is not None and loaded[0] is not None:
        for i, m in enumerate(members):
            assert m.checkpoint is not None  # loaded[0] is not None: every member loaded its own
            ck = torch.load(m.checkpoint, map_location="cpu", weights_only=True)
            stack.load_member_optimizer_state(i, ck["optimizer"])
    active = list(range(len(members)))  # members still training; the stack holds exactly these

    def save() -> None:
        """Every running member's checkpoint. Each save follows ``stop_unseen_divergence``,
        which copied the stack's weights into the members' modules (nothing trains between)."""
        staged = []
        for j, i in enumerate(active):
            m = members[i]
            if m.checkpoint is None:
                continue
            if stack is not None:
                opt = stack.member_optimizer_state(j)
            else:
                assert m.optimizer is not None  # the loop engine gave every member its Adam
                opt = m.optimizer.state_dict()
            assert m.noise is not None  # seeded for every member before training
            save_atomic(
                {
                    "format": CHECKPOINT_FORMAT,
                    "device_type": device.type,
                    "model": m.model.state_dict(),
                    "optimizer": opt,
                    "auxiliary_optimizer": None,
                    "noise_generator": m.noise.get_state(),
                    "epoch": epoch,
                    "batch_in_epoch": batch_in_epoch,
                    "step": step,
                    "sums": {k: v.detach().cpu() for k, v in m.sums.items()},
                    "history": m.history,
                    **m.stamp,
                },
                _staged(m.checkpoint),
            )
            staged.append(m.checkpoint)
        for path in staged:
            os.replace(_staged(path), path)

    def saved() -> None:
        """Tell the checkpoint listeners of every running member's checkpoint, complete now: in
        one call, so that a sweep's Ray task sends them as one delivery, kept at one step."""
        checkpoint_written([members[i].checkpoint for i in active], step)

    def stop(stopped: dict[int, TrainingStopped]) -> None:
        nonlocal active
        for i, exc in stopped.items():
            members[i].error = exc
        keep = [j for j, i in enumerate(active) if i not in stopped]
        if stack is not None:
            stack.keep(keep)
        active = [active[j] for j in keep]

    def stop_unseen_divergence() -> None:
        """Members whose loss since the epoch began, or weights, are not finite stop before
        they are scored or saved, as a single run does (``unseen_divergence``). It copies the
        stack's weights into the members' modules once, for the check and for the scoring and
        saving that follow it."""
        if stack is not None:
            stack.sync_to_models()
        diverged: dict[int, TrainingStopped] = {
            i: exc
            for i in active
            if (exc := unseen_divergence(members[i].model, members[i].sums, step, epoch))
        }
        if diverged:
            stop(diverged)

    check_every = loss_check_every(device)
    bar = tqdm(
        total=total_steps, initial=step, disable=not cfg.progress, unit="step", dynamic_ncols=True
    )
    while step < total_steps and active:
        bar.set_description(f"epoch {epoch + 1}/{num_epochs} ({len(active)} models)")
        perms = {
            i: torch.randperm(
                n, generator=torch.Generator().manual_seed(epoch_seed(members[i].seed, epoch))
            ).to(data.device)
            for i in active
        }
        epoch_start = time.perf_counter()
        while batch_in_epoch < steps_per_epoch and step < total_steps and active:
            lo, hi = batch_in_epoch * cfg.batch_size, (batch_in_epoch + 1) * cfg.batch_size
            xs = {i: to_input(data[perms[i][lo:hi]].to(device, non_blocking=True)) for i in active}
            check = step % check_every == 0
            stopped: dict[int, TrainingStopped] = {}
            if stack is None:
                for i in active:
                    m = members[i]
                    assert m.optimizer is not None  # the loop engine gave every member its Adam
                    try:
                        terms = _own_step(
                            m.model, xs[i], step, epoch, m.noise, cfg.amp, check, m.optimizer
                        )
                    except TrainingStopped as exc:  # diverged, or its code failed: it alone
                        stopped[i] = exc
                        continue
                    accumulate(m.sums, terms)
            else:
                eps = {
                    i: torch.randn(
                        (len(xs[i]), members[i].model.latent_dim),
                        generator=members[i].noise,
                        device=device,
                    )
                    for i in active
                }
                # members that must stop are dropped and the step is taken again for the
                # others, on the noise already drawn
                while active:
                    stopped = _stacked_step(
                        stack, members, active, xs, eps, step, epoch, cfg.amp, check
                    )
                    if not stopped:
                        break
                    stop(stopped)
                stopped = {}
            if stopped:
                stop(stopped)
            step += 1
            batch_in_epoch += 1
            bar.update(1)
            if (
                cfg.checkpoint_every
                and step % cfg.checkpoint_every == 0
                and batch_in_epoch < steps_per_epoch
                and step < total_steps
                and active
            ):
                stop_unseen_divergence()
                save()
                saved()
        if active:
            stop_unseen_divergence()
        if not active:
            break

        # end of epoch: each member's row, then the scores of all members at once
        rows = {i: epoch_row(members[i].sums, epoch, step, epoch_start) for i in active}
        last = step >= total_steps
        if score is not None and (last or (cfg.score_every and (epoch + 1) % cfg.score_every == 0)):
            # the members' modules hold the stack's weights: stop_unseen_divergence copied them
            t0 = time.perf_counter()
            scores = score(list(active), [members[i].model for i in active])
            share = round((time.perf_counter() - t0) / len(active), 3)
            failed: dict[int, TrainingStopped] = {}
            for i, s in zip(active, scores):
                if isinstance(s, TrainingStopped):
                    failed[i] = s
                    continue
                rows[i].update(s)
                rows[i]["score_time_s"] = share
            if failed:  # its encode failed while scored: as a single run, this epoch unsaved
                stop(failed)
                if not active:
                    break
        for i in active:
            members[i].history.append(rows[i])
            members[i].sums = {}
        epoch, batch_in_epoch = epoch + 1, 0
        save()
        if on_epoch is not None:
            for i in active:
                on_epoch(i, members[i].history)
        # an ensemble epoch can take minutes: one line each, above the bar or, without one, to
        # the logger (a sweep writes it to the ensemble's log: its heartbeat)
        line = epoch_summary(epoch, num_epochs, step, total_steps, [rows[i] for i in active])
        if cfg.progress:
            bar.write(line)
        else:
            log.info(line)
        saved()
    bar.close()
    if stack is not None:
        stack.sync_to_models()
    return [m.error if m.error is not None else m.history for m in members]


def epoch_summary(
    epoch: int, num_epochs: int, step: int, total_steps: int, rows: Sequence[dict]
) -> str:
    """One line for the epoch just ended: where training is, the members' loss range and the time
    it took, so that a sweep's ensemble log shows progress between members' folders."""
    losses = sorted(float(r["loss"]) for r in rows)
    line = (
        f"epoch {epoch}/{num_epochs} (step {step}/{total_steps}), {len(rows)} models: "
        f"loss {losses[0]:.1f}-{losses[-1]:.1f} (median {losses[len(losses) // 2]:.1f}), "
        f"{rows[0]['train_time_s']:.0f} s training"
    )
    if "score_time_s" in rows[0]:
        line += f", {rows[0]['score_time_s']:.0f} s scoring per model"
    return line


def _non_finite(loss: torch.Tensor, step: int, epoch: int) -> TrainingDiverged | None:
    """The single run's divergence error for this loss, or None when it is finite."""
    try:
        stop_if_non_finite("loss", loss, step, epoch)
    except TrainingDiverged as exc:
        return exc
    return None


def _own_step(
    model: Model,
    x: torch.Tensor,
    step: int,
    epoch: int,
    noise: torch.Generator | None,
    amp: bool,
    check: bool,
    optimizer: torch.optim.Optimizer | None,
) -> dict[str, torch.Tensor]:
    """One member's step as a single run takes it (``benchmark.train.train``), with its checks:
    a ``TrainingStopped`` (its loss diverged, or its model's code failed) comes before any
    update. Without an optimizer the gradients are computed and left for the caller to drop."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        with model_call(model, "loss()", step, epoch, x):
            terms = model.loss(x, step=step, generator=noise)
        check_step_terms(model, terms, step, epoch, x)
    if check:
        stop_if_non_finite("loss", terms["loss"], step, epoch)
    with model_call(model, "the backward pass of loss()['loss']", step, epoch, x):
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if optimizer is not None:
            optimizer.step()
    return terms


#: Where a fault of the vmapped call is said to be, and what is said when no member has it alone.
STACKED = "the ensemble's stacked (vmap) step"
STACKED_ONLY = (
    "; every member's own step runs, so only stepping them stacked fails: train these members "
    "with the loop engine or one at a time (bench sweep --ensemble off, or bench run)"
)


def _stacked_step(
    stack: StackedMembers,
    members: Sequence[Member],
    active: list[int],
    xs: dict[int, torch.Tensor],
    eps: dict[int, torch.Tensor],
    step: int,
    epoch: int,
    amp: bool,
    check: bool,
) -> dict[int, TrainingStopped]:
    """One step of the active members on the stack; or, with nothing updated, the members that
    must stop: those whose loss is non-finite, or (``_blame``) whose model's code fails."""
    lead, x0 = members[active[0]].model, xs[active[0]]
    try:
        with model_call(lead, STACKED, step, epoch, x0):
            x = torch.stack([xs[i] for i in active])
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
                all_terms = stack.loss_terms(x, [eps[i] for i in active], step)
        for i, terms in zip(active, all_terms):
            check_step_terms(members[i].model, terms, step, epoch, xs[i])
            if not terms["loss"].requires_grad:  # a single run's backward raises; the sum's not
                raise ModelFailed(model_label(members[i].model), "gave a loss without gradient")
        if check:
            losses = torch.stack([t["loss"].detach().float() for t in all_terms])
            bad = (~torch.isfinite(losses)).nonzero().flatten().tolist()
            if bad:
                return {
                    active[j]: exc
                    for j in bad
                    if (exc := _non_finite(losses[j], step, epoch)) is not None
                }
        with model_call(lead, f"the backward pass of {STACKED}", step, epoch, x0):
            stack.optimizer.zero_grad(set_to_none=True)
            torch.stack([t["loss"] for t in all_terms]).sum().backward()
            stack.optimizer.step()
    except ModelFailed as exc:
        return _blame(stack, members, active, xs, step, epoch, amp, exc)
    for i, terms in zip(active, all_terms):
        accumulate(members[i].sums, terms)
    return {}


def _blame(
    stack: StackedMembers,
    members: Sequence[Member],
    active: list[int],
    xs: dict[int, torch.Tensor],
    step: int,
    epoch: int,
    amp: bool,
    exc: ModelFailed,
) -> dict[int, TrainingStopped]:
    """The members to stop after a model fault in a stacked step. The vmapped call runs every
    member's network at once, so its error names none; each member's own step (its own module's
    ``loss()`` and backward, as the loop engine takes it, on its batch, with a copy of its noise
    generator; no update) tells who fails, and those stop with the error a single run would
    give. When none fails alone, only the stacked call does: every member stops, saying so."""
    stack.sync_to_models()  # the members' own modules hold the stack's current weights
    found: dict[int, TrainingStopped] = {}
    for i in active:
        m = members[i]
        assert m.noise is not None  # seeded for every member before training
        noise = torch.Generator(device=m.noise.device)
        noise.set_state(m.noise.get_state())
        try:
            _own_step(m.model, xs[i], step, epoch, noise, amp, False, None)
        except ModelFailed as fault:
            found[i] = fault
        finally:
            m.model.zero_grad(set_to_none=True)
    if found:
        return found
    return {i: ModelFailed(exc.model, exc.detail + STACKED_ONLY) for i in active}


def _load(m: Member, device: torch.device) -> tuple[int, int, int] | None:
    """Restore a member from its checkpoint (weights, Adam, noise, sums, history)."""
    if m.checkpoint is None or not Path(m.checkpoint).exists():
        return None
    ck: dict[str, Any] = torch.load(m.checkpoint, map_location="cpu", weights_only=True)
    if ck.get("device_type", "cpu") != device.type:
        raise SpecError(
            f"checkpoint {m.checkpoint} was written on {ck.get('device_type')}; "
            f"resume it with --device {ck.get('device_type')} (generator states "
            f"differ between devices)"
        )
    m.model.load_state_dict(ck["model"])
    if m.optimizer is not None:
        m.optimizer.load_state_dict(ck["optimizer"])
    assert m.noise is not None  # train_ensemble seeds every member's generator before loading
    m.noise.set_state(ck["noise_generator"])
    m.sums = {k: v.to(device) for k, v in ck["sums"].items()}
    m.history = ck["history"]
    return ck["epoch"], ck["batch_in_epoch"], ck["step"]
