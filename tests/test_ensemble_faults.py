"""A model whose own code fails stops its ensemble member alone, as it stops a single run.

Three members of one plugin model (``ensemble_helpers.Faulty``), one of them broken: its loss
raises or breaks the contract at a step, or its encode fails while scored. Its folder must be what
its single run leaves (summary "failed" with the single run's message, the last good checkpoint),
the other two exactly what the same ensemble without it leaves, and once the model is fixed the
same call resumes it. Real data (small spritegen builds), real training on the CPU.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
import torch
from ensemble_helpers import FIXED_ENV, untimed

import benchmark.train
from benchmark.ensemble import run_ensemble, score_shared
from benchmark.metrics import evaluate
from benchmark.models import registry
from benchmark.models.registry import build_model
from benchmark.params import MAX_LR
from benchmark.run import run
from benchmark.train import ModelFailed, TrainingDiverged, make_represent

SIDE = 32  # image side: the code of 64 x 64 runs at a quarter of its FLOPs
#: (hyperparameters, latent size, seed) of the two healthy members; the broken one goes between
HEALTHY = [({"beta": 1.0}, 3, 0), ({"beta": 4.0}, 5, 2)]
BROKEN_DIM, BROKEN_SEED = 4, 1


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """32 training images (4 batches of 8 an epoch) and tiny stored evaluation sets."""
    from conftest import build_small

    return build_small(tmp_path_factory.mktemp("faults-data"), 2, n=32, image_size=SIDE)


@pytest.fixture(autouse=True)
def faulty(monkeypatch):
    """``faulty`` is a model as a plugin's would be, broken until $ENSEMBLE_FAULT_FIXED is set."""
    monkeypatch.setitem(registry.BUNDLED, "faulty", "ensemble_helpers:Faulty")
    monkeypatch.delenv(FIXED_ENV, raising=False)


def config(data: Path, out: Path, hparams: dict, dim: int, seed: int, **kw) -> dict:
    base = dict(
        model="faulty",
        data=str(data),
        hparams=hparams,
        latent_dim=dim,
        seed=seed,
        epochs=2,
        batch_size=8,
        device="cpu",
        checkpoint_every=1,
        score_preset="none",
        final_preset="none",
        progress=False,
        out=str(out),
    )
    return {**base, **kw}


def members(data: Path, root: Path, broken: dict | None, at: int = 1, **kw) -> list[dict]:
    """The healthy members' configs, with the broken member's (``broken``: its hparams) at
    position ``at``; folders root/A, root/B and root/F (the broken one)."""
    configs = [config(data, root / name, *spec, **kw) for name, spec in zip("AB", HEALTHY)]
    if broken is not None:
        configs.insert(at, config(data, root / "F", broken, BROKEN_DIM, BROKEN_SEED, **kw))
    return configs


def rows(out: Path) -> list[dict]:
    return untimed([json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()])


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def assert_same_runs(got: Path, want: Path) -> None:
    """Two finished run folders with the same numbers, scores and final weights."""
    assert rows(got) == rows(want)
    strip = {"out", "wall_time_s"}
    assert {k: v for k, v in untimed(summary(got)).items() if k not in strip} == {
        k: v for k, v in untimed(summary(want)).items() if k not in strip
    }
    assert same_weights(got / "checkpoints" / "model.pt", want / "checkpoints" / "model.pt")


def single_failure(cfg: dict) -> ModelFailed:
    """The broken member's config run alone: the ModelFailed its single run raises."""
    with pytest.raises(ModelFailed) as info:
        run(cfg)
    return info.value


# -- a fault in a training step ---------------------------------------------------------------


RAISED = "failed at step 6 (epoch 2) in loss(): RuntimeError: objective broke at step 5;"
BROKE = "broke its contract at step 6 (epoch 2): loss term 'loss' must be a scalar tensor"


@pytest.mark.parametrize(
    "engine, fault, fragment",
    [
        ("loop", "raise", RAISED),
        ("loop", "shape", BROKE),
        ("vmap", "raise", RAISED),
        ("vmap", "shape", BROKE),
    ],
    ids=["loop-raise", "loop-shape", "vmap-raise", "vmap-shape"],
)
def test_a_member_whose_model_fails_in_a_step_stops_alone(
    data, tmp_path, monkeypatch, engine, fault, fragment
):
    """Step 6 of 8 (at=5): the broken member stops there, its folder its single run's; the others
    finish with the numbers and weights of the ensemble without it (bit for bit: the vmap engine
    takes the step again for the others on the noise already drawn), and the fixed model
    resumes from its last good checkpoint (step 5)."""
    broken = {"beta": 2.0, "fault": fault, "at": 5}
    ens, without, alone = tmp_path / "ens", tmp_path / "without", tmp_path / "alone"
    results = run_ensemble(members(data, ens, broken), engine=engine)
    run_ensemble(members(data, without, None), engine=engine)

    assert [r["status"] for r in results] == ["finished", "failed", "finished"]
    for name in "AB":
        assert_same_runs(ens / name, without / name)
    expected = single_failure(members(data, alone, broken)[1])
    assert (
        summary(ens / "F") == summary(alone / "F") == {"status": "failed", "error": str(expected)}
    )
    assert results[1]["error"] == str(expected)
    assert str(expected).startswith("model 'faulty' (ensemble_helpers:Faulty) " + fragment)
    last = [ens / "F" / "checkpoints" / "last.pt", alone / "F" / "checkpoints" / "last.pt"]
    assert [torch.load(p, weights_only=True)["step"] for p in last] == [5, 5]
    if engine == "loop":  # the single run's last good checkpoint, bit for bit
        assert same_weights(*last)
    assert not (ens / "F" / "checkpoints" / "model.pt").exists()

    monkeypatch.setenv(FIXED_ENV, "1")
    again = run_ensemble(members(data, ens, broken), engine=engine)
    assert [r["status"] for r in again] == ["finished"] * 3
    assert again[1]["steps"] == 8 and len(rows(ens / "F")) == 2
    if engine == "loop":  # resumed: the numbers of the fixed model trained without a stop
        run(members(data, tmp_path / "fixed", broken)[1])
        assert_same_runs(ens / "F", tmp_path / "fixed" / "F")


def test_a_fault_only_the_stacked_step_meets_stops_every_member_saying_so(data, tmp_path):
    """Data-dependent control flow in encode: each model's own step runs, the vmapped call
    cannot. No member can be blamed, so all stop with one message that says so and names the
    way out; the loop engine then trains them from where they stopped."""
    specs = [({"beta": 1.0, "fault": "stacked"}, 3, 0), ({"beta": 4.0, "fault": "stacked"}, 5, 2)]
    configs = [config(data, tmp_path / f"m{i}", *spec) for i, spec in enumerate(specs)]
    results = run_ensemble(configs, engine="vmap")
    assert [r["status"] for r in results] == ["failed", "failed"]
    for r, cfg in zip(results, configs):
        error = r["error"]
        assert summary(Path(cfg["out"])) == {"status": "failed", "error": error}
        assert error.startswith(
            "model 'faulty' (ensemble_helpers:Faulty) failed at step 1 (epoch 1) in the "
            "ensemble's stacked (vmap) step: RuntimeError: vmap: "
        ), error
        assert "every member's own step runs, so only stepping them stacked fails" in error
    again = run_ensemble(configs, engine="loop")
    assert [(r["status"], r["steps"]) for r in again] == [("finished", 8), ("finished", 8)]


def test_a_member_whose_decode_fails_drawing_its_pictures_stops_alone(data, tmp_path, monkeypatch):
    """decode raises in eval mode, met only by the pictures drawn after training: that was a
    traceback out of the whole ensemble (and out of a single run), with no summary.json. Now
    the member stops with its single run's "failed" summary and no model.pt; the others finish,
    and once fixed the same call finishes it from its last checkpoint."""
    broken = {"beta": 2.0, "fault": "decode"}
    ens = tmp_path / "ens"
    results = run_ensemble(members(data, ens, broken))
    assert [r["status"] for r in results] == ["finished", "failed", "finished"]
    expected = single_failure(members(data, tmp_path / "alone", broken)[1])
    assert str(expected).startswith(
        "model 'faulty' (ensemble_helpers:Faulty) failed while drawing reconstructions.png, in "
        "decode(): ValueError: no pictures in eval mode;"
    )
    assert summary(ens / "F") == {"status": "failed", "error": str(expected)}
    assert not (ens / "F" / "checkpoints" / "model.pt").exists()
    assert all((ens / n / "checkpoints" / "model.pt").exists() for n in "AB")

    monkeypatch.setenv(FIXED_ENV, "1")
    again = run_ensemble(members(data, ens, broken))
    assert [(r["status"], r["steps"]) for r in again] == [("finished", 8)] * 3


# -- a divergence the loss checks do not see ------------------------------------------------


def finite_weights(path: Path) -> bool:
    floats = [w for w in weights(path).values() if w.is_floating_point()]
    return all(bool(torch.isfinite(w).all()) for w in floats)


@pytest.mark.parametrize(
    "cadence, at, stopped_at",
    [("cpu", 3, 4), ("gpu", 1, 2)],
    ids=["cpu-epoch-end", "gpu-cadence-mid-epoch"],
)
def test_weights_made_nan_by_an_update_are_never_saved_or_scored(
    data, tmp_path, monkeypatch, cadence, at, stopped_at
):
    """A finite loss whose gradient is NaN makes every weight NaN in one update, which no look at
    a loss sees until the next step's. At an epoch's end (cpu: the update at step 4 of 8 is the
    epoch's last) and, at a GPU's cadence of one look every 50 steps, at any checkpoint, the
    weights were saved as the "last good checkpoint" (or the run even finished with them); now
    the run stops as diverged there, keeping the checkpoint before."""
    if cadence == "gpu":  # the device type's cadence, on the CPU
        monkeypatch.setitem(benchmark.train.LOSS_CHECK_EVERY, "cpu", 50)
    cfg = members(data, tmp_path, {"beta": 2.0, "fault": "nangrad", "at": at})[1]
    with pytest.raises(TrainingDiverged) as info:
        run(cfg)
    assert str(info.value).startswith(
        f"the weights became non-finite by step {stopped_at} (epoch 1); the last good "
        "checkpoint is kept."
    )
    out = Path(cfg["out"])
    assert summary(out) == {"status": "diverged", "error": str(info.value)}
    last = out / "checkpoints" / "last.pt"
    assert torch.load(last, weights_only=True)["step"] == stopped_at - 1
    assert finite_weights(last)


@pytest.mark.parametrize("engine", ["loop", "vmap"])
def test_a_member_whose_weights_turn_nan_unseen_stops_alone(data, tmp_path, monkeypatch, engine):
    """At a GPU's cadence (one look at the loss every 50 steps), a member whose update made its
    weights NaN stops as diverged at the next checkpoint, as its single run; the others finish
    with the numbers of the ensemble without it."""
    monkeypatch.setitem(benchmark.train.LOSS_CHECK_EVERY, "cpu", 50)
    broken = {"beta": 2.0, "fault": "nangrad", "at": 1}
    ens, without = tmp_path / "ens", tmp_path / "without"
    results = run_ensemble(members(data, ens, broken), engine=engine)
    run_ensemble(members(data, without, None), engine=engine)
    assert [r["status"] for r in results] == ["finished", "diverged", "finished"]
    for name in "AB":
        assert_same_runs(ens / name, without / name)
    assert summary(ens / "F")["error"].startswith("the weights became non-finite by step 2")
    last = ens / "F" / "checkpoints" / "last.pt"
    assert torch.load(last, weights_only=True)["step"] == 1 and finite_weights(last)


PRESETS = {"epoch": {"score_preset": "stored"}, "final": {"final_preset": "stored"}}


def test_latents_a_diverged_model_gives_stop_its_run_as_diverged(data, tmp_path):
    """One Adam step at the largest learning rate allowed leaves finite weights near 1e30, whose
    latents are not finite: scoring them was the metrics' bad-input line (exit 2, no summary);
    now the run stops as diverged, naming the latents, per epoch and at the end alike."""
    for name, presets in PRESETS.items():
        cfg = config(data, tmp_path / name, {"beta": 1.0}, 3, 0, lr=MAX_LR, max_steps=1, **presets)
        with pytest.raises(TrainingDiverged) as info:
            run(cfg)
        assert "the latent means of model ensemble_helpers:Faulty were NaN or infinite in " in str(
            info.value
        )
        assert summary(tmp_path / name) == {"status": "diverged", "error": str(info.value)}


# -- a fault while scored ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "when, at",
    [("epoch", 0), ("epoch", 1), ("final", 2)],
    ids=["epoch-first", "epoch-middle", "final-last"],
)
def test_a_member_whose_encode_fails_while_scored_stops_alone(
    data, tmp_path, monkeypatch, when, at
):
    """encode raises in eval mode: the member stops at its first scoring (after epoch 1, or at
    the end), with its single run's summary and checkpoint; the others finish scored, after
    epoch 1 with exactly the numbers they get without it, whether it leads the shared scoring
    (first) or follows."""
    presets = {
        "epoch": dict(score_preset="stored"),
        "final": dict(final_preset="stored"),
    }[when]
    broken = {"beta": 2.0, "fault": "encode"}
    ens, without, alone = tmp_path / "ens", tmp_path / "without", tmp_path / "alone"
    results = run_ensemble(members(data, ens, broken, at, **presets))

    statuses = ["finished", "finished"]
    statuses.insert(at, "failed")
    assert [r["status"] for r in results] == statuses
    if when == "epoch":  # training goes on without it; the final case's training never differs,
        # and its shared scoring is test_shared_scoring_leaves_out_... (one full scoring costs
        # seconds here: the DCI's trees)
        run_ensemble(members(data, without, None, **presets))
    for name in "AB":
        if when == "epoch":
            assert_same_runs(ens / name, without / name)
        scores = rows(ens / name)[-1] if when == "epoch" else summary(ens / name)["final_scores"]
        assert "kim_mnih" in scores  # scored
    expected = single_failure(members(data, alone, broken, at, **presets)[at])
    assert (
        summary(ens / "F") == summary(alone / "F") == {"status": "failed", "error": str(expected)}
    )
    assert "failed while scoring, in encode(): ValueError: no latents in eval mode;" in str(
        expected
    )
    # its single run's last good checkpoint: epoch 1's last step checkpoint (the epoch's end is
    # not saved when its scoring fails), or the end's
    last = [ens / "F" / "checkpoints" / "last.pt", alone / "F" / "checkpoints" / "last.pt"]
    step = 3 if when == "epoch" else 8
    assert [torch.load(p, weights_only=True)["step"] for p in last] == [step, step]
    assert same_weights(*last)

    monkeypatch.setenv(FIXED_ENV, "1")
    again = run_ensemble(members(data, ens, broken, at, **presets))
    assert [r["status"] for r in again] == ["finished"] * 3


def test_shared_scoring_leaves_out_a_failing_member_and_scores_the_others_as_alone(data):
    """Untrained models, one whose encode fails in eval mode, first or among the others: its
    entry is the ModelFailed its single scoring raises, every other the scores it gets alone."""
    cpu = torch.device("cpu")

    def model(dim: int, seed: int, fault: str = ""):
        hp = {"beta": 1.0, "fault": fault}
        return build_model("faulty", (1, SIDE, SIDE), dim, hp, seed=seed)

    def scorer(seed: int):  # two metrics: the images of the variance set and of the samples
        metrics = ("kim_mnih", "mig")
        return partial(evaluate, str(data), random_state=seed, preset="stored", metrics=metrics)

    healthy = [(3, 0), (5, 2), (4, 3)]
    alone = [untimed(scorer(s)(make_represent(model(d, s), cpu))) for d, s in healthy]
    with pytest.raises(ModelFailed) as single:
        scorer(1)(make_represent(model(4, 1, "encode"), cpu))
    for at in (0, 2):
        specs = [(d, s, "") for d, s in healthy]
        specs.insert(at, (4, 1, "encode"))
        got = score_shared([scorer(s) for _, s, _ in specs], [model(*m) for m in specs], cpu)
        failed = got.pop(at)
        assert isinstance(failed, ModelFailed) and str(failed) == str(single.value)
        assert [untimed(g) for g in got] == alone


# -- in a sweep -------------------------------------------------------------------------------

SWEEP = """
name: faults
datasets:
  k2: {factors: 2, n: 32, eval_preset: tiny, image_size: 32}
set:
  model: faulty
  data: k2
  latent_dim: 3
  epochs: 2
  batch_size: 8
  at: 5
  device: cpu
  score_preset: none
  final_preset: none
grid: {fault: ["", raise], seed: [0]}
report: {x: factors, lines: fault, metrics: [kim_mnih]}
"""


@pytest.mark.slow
def test_a_sweep_labels_the_failed_member_model_failed_and_resumes_it(tmp_path, monkeypatch):
    """The two points train as one ensemble in a spawned worker (so ``faulty`` is registered as
    a plugin's entry point, on the path the worker inherits): the broken one fails alone,
    labelled ModelFailed with its single run's message, the other finishes; fixed, the same
    sweep resumes the broken one."""
    from benchmark.sweep import load_sweep, run_sweep
    from benchmark.sweep.runner import FAILURES

    site = tmp_path / "site"
    info = site / "faulty_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: faulty_plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[benchmark.models]\nfaulty = ensemble_helpers:Faulty\n")
    monkeypatch.syspath_prepend(str(site))
    plan = load_sweep(SWEEP)
    out = tmp_path / "sweep"

    first = run_sweep(plan, out=out, workers=1, progress=False, ensemble="auto")
    assert len(first.finished) == 1 and len(first.failed) == 1
    failed = first.failed[0]
    folder = out / "runs" / failed.id
    assert json.loads((folder / "config.json").read_text())["model_hparams"]["fault"] == "raise"
    assert len(json.loads((folder / "config.json").read_text())["ensemble"]["members"]) == 2
    error = summary(folder)["error"]
    assert summary(folder)["status"] == "failed"
    assert error.startswith("model 'faulty' (ensemble_helpers:Faulty) " + RAISED), error
    assert failed.error == f"ModelFailed: {error}"
    recorded = json.loads((out / FAILURES).read_text())
    assert [(r["id"], r["error"]) for r in recorded] == [(failed.id, failed.error)]

    monkeypatch.setenv(FIXED_ENV, "1")
    again = run_sweep(plan, out=out, workers=1, progress=False, ensemble="auto")
    assert again.ok and [o.id for o in again.finished] == [failed.id]
    assert summary(folder)["status"] == "finished" and summary(folder)["steps"] == 8
