"""The training loop: read it top to bottom.

Data live in memory as one uint8 tensor (N, C, H, W) (on the GPU when training there and it fits)
and each mini-batch is converted to floats in [0, 1] here, in the loop: the model sees [0, 1].
Randomness comes from explicit torch Generators only: the shuffle of epoch e is drawn from a
generator seeded with (seed, e), and the reparameterisation noise from one generator seeded with
``seed`` whose state is checkpointed. On the CPU a run is therefore deterministic, and a run that
is killed and resumed from its last checkpoint finishes with the same numbers as one that was not.

A model may train some of its parameters with an objective and optimiser of its own (FactorVAE's
discriminator; ``benchmark.models.has_auxiliary_objective``): those parameters go to its auxiliary
optimiser only, both losses are computed on the same batch at the same weights, then the main
update and the auxiliary update are taken; the auxiliary optimiser's state is checkpointed too.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmark.allocator import keep_freed_memory
from benchmark.encode import make_represent, to_input
from benchmark.files import save_torch_atomic
from benchmark.models.base import AUXILIARY_LOSS, Model, has_auxiliary_objective
from benchmark.models.registry import batch_fault, terms_fault
from spritegen.clitools import is_out_of_memory
from spritegen.errors import SpecError, SpritegenError, first_line

Scorer = Callable[[Callable[[np.ndarray], np.ndarray]], dict]
CHECKPOINT_FORMAT = 1
#: Suffix of the ensemble's staged checkpoints (``last.pt.next``), renamed once all are written.
STAGED = ".next"


#: Told of the checkpoints written at one step once they are complete on disk (at an epoch's end,
#: once that epoch's metrics.jsonl is written too): ``listener(paths, step)``, every running member
#: of an ensemble in one call. Empty but in a sweep's Ray task, which sends the run folders to its
#: driver from there (``benchmark.sweep.execute``), so that the progress of a task that never
#: returns (its worker or node lost, the sweep interrupted) is kept: an ensemble's at one step.
_CHECKPOINT_LISTENERS: list[Callable[[list[Path], int], None]] = []


@contextlib.contextmanager
def checkpoint_listener(listener: Callable[[list[Path], int], None]) -> Iterator[None]:
    """Call ``listener(paths, step)`` after the checkpoints written at each step meanwhile
    (``train``'s one, the ensemble trainer's of all its running members), in the training
    thread: it may block training while it runs."""
    _CHECKPOINT_LISTENERS.append(listener)
    try:
        yield
    finally:
        _CHECKPOINT_LISTENERS.remove(listener)


def checkpoint_written(paths: Sequence[Path | None], step: int) -> None:
    """Tell the listeners that ``paths`` hold complete checkpoints at ``step`` (None: a run
    without a checkpoint file, skipped)."""
    written = [Path(p) for p in paths if p is not None]
    if not written:
        return
    for listener in tuple(_CHECKPOINT_LISTENERS):
        listener(written, step)


CHECKPOINT_KEYS = (
    "model",
    "optimizer",
    "noise_generator",
    "epoch",
    "batch_in_epoch",
    "step",
    "sums",
    "history",
)


class CheckpointError(SpritegenError):
    """A resume point cannot be read or does not fit the run; the message says how to start over."""


class TrainingStopped(SpritegenError):
    """Training could not go on; the run stops at its last good checkpoint, and its folder's
    summary.json records ``status`` and the message."""

    exit_code = 1  # the input was fine; the run failed
    status = "stopped"


class TrainingDiverged(TrainingStopped):
    """The loss became NaN or infinite; the run stops at its last good checkpoint."""

    status = "diverged"


class ModelFailed(TrainingStopped):
    """The model's own code raised, or broke the contract of docs/models.md, during a step.

    ``model`` names it (its class, ``module:Class``, until the caller knows the registry name);
    the message says where (step, epoch, method), what happened and what was expected.
    """

    status = "failed"

    def __init__(self, model: str, detail: str) -> None:
        super().__init__(model, detail)
        self.model, self.detail = model, detail

    def __str__(self) -> str:
        return (
            f"model {self.model} {self.detail}; the run stopped at its last checkpoint: fix the "
            f"model and run the same command to resume, or add --force to start over"
        )


@dataclass
class TrainConfig:
    """What the loop needs; defaults are the thesis' (batch 64, Adam, lr 5e-4)."""

    epochs: int = 10
    max_steps: int | None = None  # stop early after this many optimiser steps in all
    batch_size: int = 64
    lr: float = 5e-4
    seed: int = 0
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    amp: bool = False  # bfloat16 autocast, CUDA only
    checkpoint_every: int = 0  # also checkpoint every N steps inside an epoch (0: per epoch only)
    score_every: int = 1  # score every N epochs (0: never during training); the last always
    progress: bool = True


def resolve_device(name: str) -> torch.device:
    """ "auto" picks CUDA when present; an explicit CUDA device that is missing is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SpecError(
            f"--device {name!r} is not a torch device; use auto, cpu or cuda[:N]"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(
            f"--device {name} asked for, but CUDA is not available here; use auto or cpu"
        )
    if device.type not in ("cpu", "cuda"):
        raise SpecError(f"--device {name!r}: only cpu and cuda are supported")
    return device


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of epoch ``epoch``'s shuffle: a fixed function of (seed, epoch)."""
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 12345) % (2**63)


def save_atomic(obj: Any, path: Path) -> None:
    """Write to a temporary file in the same folder, then rename: a kill leaves no half file, a
    full disk raises ``benchmark.files.DiskFull`` and leaves no partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_torch_atomic(obj, path)


def unreadable_checkpoint(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is unreadable: {why}; start the run over with --force, or delete "
        f"{path.name} to restart its training from step 0"
    )


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A resume point written by ``train``, loaded with ``weights_only=True`` (never unsafely).

    A truncated file, a foreign pickle or a dict of the wrong shape is a ``CheckpointError`` whose
    message says how to start over; torch's own text is not shown (it suggests unsafe loading).
    """
    import pickle

    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise unreadable_checkpoint(
            path,
            "it holds Python objects other than tensors and plain data, so it was not "
            "written by bench run and is not loaded (loading it could run code)",
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, TypeError):
        raise unreadable_checkpoint(path, "it is truncated or not a torch checkpoint") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise unreadable_checkpoint(
            path, f"it is not a bench run checkpoint of format {CHECKPOINT_FORMAT}"
        )
    missing = [k for k in CHECKPOINT_KEYS if k not in ck]
    if missing:
        raise unreadable_checkpoint(path, f"it lacks {', '.join(missing)}")
    return ck


#: Steps between two looks at the loss, by device type (others: ``LOSS_CHECK_EVERY_ELSEWHERE``).
#: Looking at the loss before each update keeps NaN out of the weights; on a GPU a look is a
#: sync, so it is taken every 50th step there (a NaN by then has spread to every later loss), and
#: ``unseen_divergence`` checks the weights before they are scored or saved.
LOSS_CHECK_EVERY = {"cpu": 1}
LOSS_CHECK_EVERY_ELSEWHERE = 50


def loss_check_every(device: torch.device) -> int:
    """Steps between two looks at the loss on ``device`` (``LOSS_CHECK_EVERY``)."""
    return LOSS_CHECK_EVERY.get(device.type, LOSS_CHECK_EVERY_ELSEWHERE)


def stop_if_non_finite(what: str, value: torch.Tensor, step: int, epoch: int) -> None:
    """Raise TrainingDiverged before a NaN or infinite loss can reach the weights."""
    if not bool(torch.isfinite(value)):
        raise TrainingDiverged(
            f"the {what} became non-finite ({float(value.detach())}) at step {step + 1} "
            f"(epoch {epoch + 1}); the last good checkpoint is kept. Lower the "
            f"learning rate or check the model and its hyperparameters."
        )


def unseen_divergence(
    model: Model, sums: dict[str, torch.Tensor], step: int, epoch: int
) -> TrainingDiverged | None:
    """``TrainingDiverged`` when the loss summed since the epoch began, or a weight, is not
    finite; checked before the weights are scored or saved. On a GPU the loss is looked at every
    50th step only, so a NaN can reach the weights in between, and an update can overflow them
    with every loss finite (a huge learning rate): a checkpoint saved then held NaN weights, and
    resuming from the "last good checkpoint" diverged again at once. One sync per checkpoint."""
    loss_sum = sums.get("loss")
    if loss_sum is not None and not bool(torch.isfinite(loss_sum)):
        what = "the loss"
    else:
        finite = [torch.isfinite(p.detach()).all() for p in model.parameters()]
        if not finite or bool(torch.stack(finite).all()):
            return None
        what = "the weights"
    return TrainingDiverged(
        f"{what} became non-finite by step {step} (epoch {epoch + 1}); the last good checkpoint "
        "is kept. Lower the learning rate or check the model and its hyperparameters."
    )


@contextlib.contextmanager
def model_code(
    model: Model, where: str, explain: Callable[[], str | None] | None = None
) -> Iterator[None]:
    """Run a call into the model's code (a training step, scoring, drawing the pictures); what it
    raises becomes one ``ModelFailed`` line, ``failed WHERE: Type: message``, followed by the
    contract fault ``explain`` finds behind it, if any. Our own errors, out-of-memory and Ctrl-C
    pass through unchanged: they are not the model's fault."""
    try:
        yield
    except (SpritegenError, KeyboardInterrupt):
        raise
    except BaseException as exc:  # a plugin's sys.exit() included
        if is_out_of_memory(exc):
            raise
        detail = f"failed {where}: {first_line(exc)}"
        fault = explain() if explain is not None else None
        if fault is not None:
            detail += f", because {fault} (docs/models.md: mu, logvar (B, D); logits (B, C, H, W))"
        raise ModelFailed(model_label(model), detail) from None


def model_call(
    model: Model, method: str, step: int, epoch: int, x: torch.Tensor
) -> contextlib.AbstractContextManager[None]:
    """``model_code`` for a step's call: the step, epoch and method named, and, when ``encode``
    or ``decode`` breaks the shape contract on this very batch, that fault rather than its symptom
    (a wrong latent size surfaces inside ``loss`` as a matrix product that cannot be taken)."""
    return model_code(
        model,
        f"at step {step + 1} (epoch {epoch + 1}) in {method}",
        lambda: batch_fault(model, x, getattr(model, "latent_dim", None)),
    )


def broke_contract(model: Model, where: str, fault: str | None) -> None:
    """A contract fault found in what the model returned (``encode_fault``, ``decode_fault``),
    as one ``ModelFailed`` line naming where; nothing when ``fault`` is None."""
    if fault is not None:
        raise ModelFailed(
            model_label(model),
            f"broke its contract {where}: {fault} (docs/models.md, 'The interface')",
        )


def model_label(model: Model) -> str:
    cls = type(model)
    return f"{cls.__module__}:{cls.__qualname__}"


def check_step_terms(
    model: Model, terms: Any, step: int, epoch: int, x: torch.Tensor, auxiliary: bool = False
) -> None:
    """Every step's loss dict (or, ``auxiliary``, auxiliary loss dict) against the contract of
    docs/models.md: keys, kl_per_dim (D,), scalars. Shapes only, so it costs no device sync.
    ``ModelFailed`` names the first fault, or the encode/decode fault behind it."""
    if auxiliary:
        ok = isinstance(terms, dict) and isinstance(terms.get(AUXILIARY_LOSS), torch.Tensor)
        fault = None if ok else f"auxiliary_loss must return a dict with {AUXILIARY_LOSS}"
    else:
        fault = terms_fault(terms, getattr(model, "latent_dim", None))
    if fault is not None:
        fault = batch_fault(model, x, getattr(model, "latent_dim", None)) or fault
    broke_contract(model, f"at step {step + 1} (epoch {epoch + 1})", fault)


def accumulate(sums: dict[str, torch.Tensor], terms: dict[str, torch.Tensor]) -> None:
    """Add one step's loss terms to the epoch's running sums (and count the step)."""
    for k, t in terms.items():
        t = t.detach().float()
        sums[k] = sums[k] + t if k in sums else t.clone()
    sums["_count"] = sums.get("_count", torch.zeros((), device=t.device)) + 1


def epoch_row(sums: dict[str, torch.Tensor], epoch: int, step: int, epoch_start: float) -> dict:
    """An epoch's metrics.jsonl row: the mean of each term over its batches (empties ``sums``)."""
    count = float(sums.pop("_count"))
    row: dict[str, Any] = {"epoch": epoch + 1, "step": step, "steps_in_epoch": int(count)}
    for k in sorted(sums, key=lambda k: (k != "loss", k == "kl_per_dim")):
        mean = sums[k] / count
        row[k] = mean.tolist() if mean.ndim else float(mean)
    row["train_time_s"] = round(time.perf_counter() - epoch_start, 3)
    return row


class StepPlan(NamedTuple):
    """How many optimiser steps a training set of ``n`` images takes under ``cfg``: kept in one
    place so that a single run and an ensemble member stop at the same step and epoch."""

    steps_per_epoch: int
    total_steps: int
    num_epochs: int

    @classmethod
    def for_config(cls, n: int, cfg: TrainConfig) -> StepPlan:
        steps_per_epoch = math.ceil(n / cfg.batch_size)
        total_steps = cfg.epochs * steps_per_epoch
        if cfg.max_steps is not None:
            total_steps = min(total_steps, cfg.max_steps)
        return cls(steps_per_epoch, total_steps, math.ceil(total_steps / steps_per_epoch))


def check_training_inputs(images: torch.Tensor, cfg: TrainConfig) -> tuple[torch.device, int]:
    """The device to train on and the number of images, after the checks every trainer (single
    runs and ensembles) makes before touching the data."""
    device = resolve_device(cfg.device)
    if cfg.amp and device.type != "cuda":
        raise SpecError("--amp (mixed precision) needs a CUDA device; drop it on the CPU")
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(
            f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
        )
    n = images.shape[0]
    if n == 0:
        raise SpecError("the training set is empty")
    return device, n


def train(
    model: Model,
    images: torch.Tensor,
    cfg: TrainConfig,
    *,
    scorer: Scorer | None = None,
    checkpoint: Path | None = None,
    on_epoch: Callable[[list[dict]], None] | None = None,
    stamp: dict[str, Any] | None = None,
) -> list[dict]:
    """Train ``model`` on ``images`` (uint8, (N, C, H, W)); return one dict per epoch.

    ``scorer(represent) -> dict`` is called after every ``cfg.score_every`` epochs and after the
    last; its results join that epoch's row. ``checkpoint`` (a file) is written at the end of each
    epoch and every ``cfg.checkpoint_every`` steps; when it exists at the start, training resumes
    from it. ``on_epoch(history)`` is called after each epoch's checkpoint is written.
    ``stamp`` (plain data) is stored in every checkpoint: the run's identity, which
    ``benchmark.run`` checks before a resume.
    """
    device, n = check_training_inputs(images, cfg)
    keep_freed_memory()
    model.to(device).train()
    try:  # the whole training set on the GPU when it fits; else pinned host memory
        data = images.to(device)
    except torch.cuda.OutOfMemoryError:
        data = images.pin_memory()
    # parameters with an objective of their own (FactorVAE's discriminator) go to the model's
    # auxiliary optimiser only; the main optimiser (the thesis' Adam) takes all the others
    aux_model = model if has_auxiliary_objective(model) else None
    aux_optimizer = aux_model.make_auxiliary_optimizer() if aux_model is not None else None
    aux_ids: set[int] = set()
    if aux_optimizer is not None:
        aux_ids = {id(p) for group in aux_optimizer.param_groups for p in group["params"]}
    optimizer = torch.optim.Adam([p for p in model.parameters() if id(p) not in aux_ids], lr=cfg.lr)
    noise = torch.Generator(device=device).manual_seed(cfg.seed)
    steps_per_epoch, total_steps, num_epochs = StepPlan.for_config(n, cfg)

    # state that a checkpoint carries
    epoch, batch_in_epoch, step = 0, 0, 0
    sums: dict[str, torch.Tensor] = {}
    history: list[dict] = []
    if checkpoint is not None and Path(checkpoint).exists():
        ck = load_checkpoint(Path(checkpoint))
        if ck.get("device_type", "cpu") != device.type:
            raise SpecError(
                f"checkpoint {checkpoint} was written on {ck.get('device_type')}; "
                f"resume it with --device {ck.get('device_type')} (generator states "
                f"differ between devices)"
            )
        try:
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            if aux_optimizer is not None:
                aux_optimizer.load_state_dict(ck["auxiliary_optimizer"])
            noise.set_state(ck["noise_generator"])
            epoch, batch_in_epoch, step = ck["epoch"], ck["batch_in_epoch"], ck["step"]
            sums = {k: v.to(device) for k, v in ck["sums"].items()}
            history = list(ck["history"])
        except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise unreadable_checkpoint(
                Path(checkpoint), f"it does not fit this model ({type(exc).__name__})"
            ) from None

    def save() -> None:
        if checkpoint is None:
            return
        save_atomic(
            {
                "format": CHECKPOINT_FORMAT,
                "device_type": device.type,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "auxiliary_optimizer": None
                if aux_optimizer is None
                else aux_optimizer.state_dict(),
                "noise_generator": noise.get_state(),
                "epoch": epoch,
                "batch_in_epoch": batch_in_epoch,
                "step": step,
                "sums": {k: v.detach().cpu() for k, v in sums.items()},
                "history": history,
                **(stamp or {}),
            },
            checkpoint,
        )

    check_every = loss_check_every(device)
    bar = tqdm(
        total=total_steps, initial=step, disable=not cfg.progress, unit="step", dynamic_ncols=True
    )
    while step < total_steps:
        bar.set_description(f"epoch {epoch + 1}/{num_epochs}")
        shuffle = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch))
        perm = torch.randperm(n, generator=shuffle).to(data.device)
        epoch_start = time.perf_counter()
        while batch_in_epoch < steps_per_epoch and step < total_steps:
            # forward, backward, update
            idx = perm[batch_in_epoch * cfg.batch_size : (batch_in_epoch + 1) * cfg.batch_size]
            x = to_input(data[idx].to(device, non_blocking=True))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp):
                with model_call(model, "loss()", step, epoch, x):
                    terms = model.loss(x, step=step, generator=noise)
                check_step_terms(model, terms, step, epoch, x)
                aux_terms = {}
                if aux_model is not None:
                    with model_call(model, "auxiliary_loss()", step, epoch, x):
                        aux_terms = aux_model.auxiliary_loss(x, step=step, generator=noise)
                    check_step_terms(model, aux_terms, step, epoch, x, auxiliary=True)
            if step % check_every == 0:
                stop_if_non_finite("loss", terms["loss"], step, epoch)
                if aux_optimizer is not None:
                    stop_if_non_finite("auxiliary loss", aux_terms[AUXILIARY_LOSS], step, epoch)
            with model_call(model, "the backward pass of loss()['loss']", step, epoch, x):
                optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                optimizer.step()
            if aux_optimizer is not None:
                with model_call(model, "the backward pass of auxiliary_loss()", step, epoch, x):
                    aux_optimizer.zero_grad(set_to_none=True)
                    aux_terms[AUXILIARY_LOSS].backward()
                    aux_optimizer.step()
                terms = {**terms, **aux_terms}
            step += 1
            batch_in_epoch += 1
            # bookkeeping: per-epoch sums of every term, progress bar, checkpoint
            accumulate(sums, terms)
            if cfg.progress and (step % 10 == 0 or step == total_steps):
                bar.set_postfix(
                    {k: f"{float(t.detach()):.4g}" for k, t in terms.items() if t.numel() == 1},
                    refresh=False,
                )
            bar.update(1)
            if (
                cfg.checkpoint_every
                and step % cfg.checkpoint_every == 0
                and batch_in_epoch < steps_per_epoch
                and step < total_steps
            ):
                if (diverged := unseen_divergence(model, sums, step, epoch)) is not None:
                    raise diverged
                save()
                checkpoint_written([checkpoint], step)

        # end of epoch: mean of each term over its batches, then the scores
        if (diverged := unseen_divergence(model, sums, step, epoch)) is not None:
            raise diverged
        row = epoch_row(sums, epoch, step, epoch_start)
        last = step >= total_steps
        if scorer is not None and (
            last or (cfg.score_every and (epoch + 1) % cfg.score_every == 0)
        ):
            t0 = time.perf_counter()
            row.update(scorer(make_represent(model, device)))
            row["score_time_s"] = round(time.perf_counter() - t0, 3)
        history.append(row)
        epoch, batch_in_epoch, sums = epoch + 1, 0, {}
        save()
        if on_epoch is not None:
            on_epoch(history)
        checkpoint_written([checkpoint], step)
    bar.close()
    return history
