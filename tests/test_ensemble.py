"""Ensembles: G models trained in one loop must be the G single runs, folder for folder.

Real data (small spritegen builds), real training on the CPU, compared with benchmark.train.train
and benchmark.run.run on the same configs.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ensemble_helpers import Recording, untimed

from benchmark import train as train_module
from benchmark.data import load_training_set, to_channels_first
from benchmark.ensemble import Member, run_ensemble, score_shared, train_ensemble
from benchmark.ensemble.trainer import reconcile_checkpoints
from benchmark.metrics import evaluate
from benchmark.models import registry
from benchmark.models.registry import build_model
from benchmark.run import RunConfig, RunExists, run
from benchmark.train import TrainConfig, make_represent, save_atomic, train
from spritegen.errors import SpecError

pytestmark = pytest.mark.slow  # trains models 200+ steps: make test runs it, test-fast not

REPO = Path(__file__).resolve().parents[1]
STEPS = 200
#: (beta, latent size, seed) of the three members: every one differs in all three.
MEMBERS = [(1.0, 3, 0), (4.0, 5, 1), (8.0, 4, 2)]
#: Image side of every dataset here: 32 x 32 runs the same code at a quarter of 64's FLOPs.
SIDE = 32
SHAPE = (1, SIDE, SIDE)
CFG = TrainConfig(epochs=1000, max_steps=STEPS, batch_size=8, device="cpu", progress=False)


def recording(beta: float, dim: int, seed: int) -> torch.nn.Module:
    """The model `bench run --model betavae` builds, recording the loss of every step."""
    model = build_model("betavae", SHAPE, dim, {"beta": beta}, seed=seed)
    model.__class__ = Recording
    return model


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> torch.Tensor:
    from conftest import build_small

    data = build_small(tmp_path_factory.mktemp("exact-data"), 2, n=32, image_size=SIDE)
    return to_channels_first(load_training_set(data)[0])  # 4 batches of 8 an epoch


@pytest.fixture(scope="module")
def singles(images) -> list[torch.nn.Module]:
    """The three members trained alone by benchmark.train.train, 200 steps each."""
    out = []
    for beta, dim, seed in MEMBERS:
        model = recording(beta, dim, seed)
        train(model, images, _seeded(seed))
        out.append(model)
    return out


@pytest.fixture(scope="module")
def nudged(images) -> list[torch.nn.Module]:
    """The three single runs again, each initial weight moved by one float32 ulp: how far
    rounding alone carries a run from itself on this CPU (training amplifies it)."""
    out = []
    for beta, dim, seed in MEMBERS:
        model = recording(beta, dim, seed)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.nextafter(p, torch.full_like(p, float("inf"))))
        train(model, images, _seeded(seed))
        out.append(model)
    return out


def _drift(a: torch.nn.Module, b: torch.nn.Module) -> tuple[np.ndarray, float]:
    """Per-step relative loss difference of two recorded runs, and the largest relative norm
    of the difference of their final weights over the tensors."""
    la, lb = np.array(a.losses), np.array(b.losses)
    assert len(la) == len(lb) == STEPS
    sa, sb = a.state_dict(), b.state_dict()
    weights = max(float((sa[k] - sb[k]).norm() / sa[k].norm().clamp_min(1e-12)) for k in sa)
    return np.abs(la - lb) / np.abs(la), weights


def _seeded(seed: int) -> TrainConfig:
    cfg = copy.copy(CFG)
    cfg.seed = seed
    return cfg


def _ensemble(images, engine: str) -> list[torch.nn.Module]:
    members = [Member(recording(*spec), spec[2]) for spec in MEMBERS]
    histories = train_ensemble(members, images, CFG, engine=engine)
    assert all(isinstance(h, list) and h[-1]["step"] == STEPS for h in histories)
    return [m.model for m in members]


def test_loop_engine_is_each_single_run_bit_for_bit(images, singles):
    for alone, member in zip(singles, _ensemble(images, "loop")):
        assert len(alone.losses) == len(member.losses) == STEPS
        assert alone.losses == member.losses
        a, b = alone.state_dict(), member.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_vmap_engine_follows_each_single_run_to_float32_rounding(images, singles, nudged):
    """The stacked step reorders float32 sums (grouped convolutions, padded latent widths), so a
    member's loss differs from its single run's by a few ulp per step: measured 0 at the first
    step and <= 2e-7 relative over the first 20, held to 1e-5 there, where a wrong noise draw,
    shuffle, padding or Adam state shows far above it.

    Training then amplifies such differences, by how much depends on the run and the CPU: on
    the VM of 2026-11-30 the three members stayed <= 2.1e-7 over all 200 steps; on an AMD EPYC
    the β = 8 member reached 1.1e-6 at step 100, 2e-5 at 150, 3.2e-4 at 200 and 2.4e-2 in its
    final weights. The single run with every initial weight moved by one ulp (``nudged``) drifts
    from itself exactly as far there (1.2e-6, 2e-5, 3.0e-4; 2.4e-2), so after step 20 each
    member is held to 10x its nudged run's drift (at least 1e-4 for the losses and 1e-3 for the
    weights): the ensemble is as close to its single run as float32 rounding lets any run be."""
    for alone, member, baseline in zip(singles, _ensemble(images, "vmap"), nudged):
        rel, weights = _drift(alone, member)
        rounding, rounding_weights = _drift(alone, baseline)
        profile = {k: (float(rel[:k].max()), float(rounding[:k].max())) for k in (20, 100, 200)}
        assert rel[:20].max() < 1e-5, profile
        for k in (50, 100, 150, 200):
            assert rel[:k].max() <= max(1e-4, 10 * rounding[:k].max()), profile
        assert weights <= max(1e-3, 10 * rounding_weights), (weights, rounding_weights)


# -- run folders ---------------------------------------------------------------------------


def _config(data: Path, out: Path, **kw) -> dict:
    base = dict(
        model="betavae",
        data=str(data),
        max_steps=6,
        epochs=3,
        batch_size=8,
        device="cpu",
        score_preset="stored",
        final_preset="stored",
        progress=False,
        out=str(out),
    )
    return {**base, **kw}


def _numbers(rows: list[dict]) -> list[dict]:
    return untimed(rows)


def _strip(d: dict) -> dict:
    return {k: v for k, v in untimed(d).items() if k != "out"}


@pytest.fixture(scope="module")
def small_k2(tmp_path_factory) -> Path:
    """64 training images and tiny stored evaluation sets (2 factors)."""
    from conftest import build_small

    return build_small(tmp_path_factory.mktemp("ens-data"), 2, n=64, image_size=SIDE)


def test_member_folders_are_the_single_run_folders(small_k2, tmp_path):
    specs = [
        dict(hparams={"beta": 1.0}, latent_dim=3, seed=0),
        dict(hparams={"beta": 4.0}, latent_dim=5, seed=1),
    ]
    summaries = run_ensemble(
        [_config(small_k2, tmp_path / f"ens{i}", **s) for i, s in enumerate(specs)]
    )
    for i, s in enumerate(specs):
        single = run(_config(small_k2, tmp_path / f"one{i}", **s))
        ens, one = tmp_path / f"ens{i}", tmp_path / f"one{i}"
        assert sorted(p.name for p in ens.rglob("*")) == sorted(p.name for p in one.rglob("*"))
        ca, cb = (json.loads((d / "config.json").read_text()) for d in (ens, one))
        info = ca.pop("ensemble")
        assert info["members"] == [str(tmp_path / "ens0"), str(tmp_path / "ens1")]
        ca.pop("out"), cb.pop("out")
        assert ca == cb
        rows = [
            _numbers([json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()])
            for d in (ens, one)
        ]
        assert rows[0] == rows[1] and "kim_mnih" in rows[0][-1]  # scored during training
        sa, sb = summaries[i], single
        assert _strip(sa) == _strip(sb)
        wa = torch.load(ens / "checkpoints" / "model.pt", weights_only=True)
        wb = torch.load(one / "checkpoints" / "model.pt", weights_only=True)
        assert all(torch.equal(wa["model"][k], wb["model"][k]) for k in wa["model"])
        # a member folder is a single-run folder: `bench run` with its config finds it finished
        with pytest.raises(RunExists, match="finished"):
            run(_config(small_k2, ens, **s))


def test_batched_scores_equal_each_member_scored_alone(small_k2):
    models = [
        build_model("betavae", SHAPE, d, {"beta": 1.0}, seed=s) for d, s in [(3, 0), (5, 1), (4, 2)]
    ]
    from functools import partial

    seeds = [0, 1, 2]
    scorers = [partial(evaluate, str(small_k2), random_state=s, preset="stored") for s in seeds]
    together = score_shared(scorers, models, torch.device("cpu"))
    for m, seed, got in zip(models, seeds, together):
        alone = evaluate(str(small_k2), make_represent(m, torch.device("cpu")), seed, "stored")
        assert _strip(got) == _strip(alone)


def test_a_collapsed_first_member_does_not_break_the_others_scores(small_k2):
    """Kim-Mnih stops before its votes when every dimension is pruned (an untrained encoder's
    means barely move). With such a member first, the others ask for vote images it never
    encoded; each must still get exactly its own scores (found when the study's first
    ensemble failed with a collapsed β-VAE in front)."""
    from functools import partial

    def model(dim: int, seed: int, active: bool) -> torch.nn.Module:
        m = build_model("betavae", SHAPE, dim, {"beta": 1.0}, seed=seed)
        if active:  # spread the latent means far past the pruning threshold
            with torch.no_grad():
                m.encoder.mu.weight.mul_(2000.0)
        return m

    models = [model(3, 0, False), model(5, 1, True), model(4, 2, False), model(3, 3, True)]
    seeds = [0, 1, 2, 3]
    # Kim-Mnih's pruning is the case; Higgins and MIG read the other sets (DCI's trees, most of
    # a full scoring's time, add nothing here: test_batched_scores_equal_... scores every metric)
    metrics = ("kim_mnih", "higgins", "mig")
    scorers = [
        partial(evaluate, str(small_k2), random_state=s, preset="stored", metrics=metrics)
        for s in seeds
    ]
    together = score_shared(scorers, models, torch.device("cpu"))
    alone = [scorer(make_represent(m, torch.device("cpu"))) for m, scorer in zip(models, scorers)]
    active = [a["kim_mnih_active_dims"] for a in alone]
    assert active[0] == active[2] == 0 and active[1] > 0 and active[3] > 0  # the case at hand
    for got, want in zip(together, alone):
        assert _strip(got) == _strip(want)


# -- divergence, bad input, resume ------------------------------------------------------------


def test_a_diverging_member_stops_alone(small_k2, tmp_path, monkeypatch):
    monkeypatch.setitem(registry.BUNDLED, "explodes", "ensemble_helpers:Explodes")
    specs = [
        dict(model="explodes", hparams={"beta": 1.0, "explode_at": 3}, latent_dim=3, seed=0),
        dict(model="explodes", hparams={"beta": 2.0}, latent_dim=4, seed=1),
    ]
    common = dict(score_preset="none", final_preset="none", checkpoint_every=2)
    results = run_ensemble(
        [_config(small_k2, tmp_path / f"ens{i}", **common, **s) for i, s in enumerate(specs)]
    )
    assert results[0]["status"] == "diverged" and results[1]["status"] == "finished"
    from benchmark.train import TrainingDiverged

    with pytest.raises(TrainingDiverged):
        run(_config(small_k2, tmp_path / "one0", **common, **specs[0]))
    for name in ("summary.json",):
        a = json.loads((tmp_path / "ens0" / name).read_text())
        b = json.loads((tmp_path / "one0" / name).read_text())
        assert a == b and a["status"] == "diverged" and "step 4" in a["error"]
    for d in ("ens0", "one0"):  # the last good checkpoint is kept
        assert torch.load(tmp_path / d / "checkpoints" / "last.pt", weights_only=True)["step"] == 2
    single = run(_config(small_k2, tmp_path / "one1", **common, **specs[1]))
    assert _strip(results[1]) == _strip(single) and results[1]["steps"] == 6


def test_incompatible_members_are_refused_before_anything_is_written(small_k2, tmp_path):
    configs = [_config(small_k2, tmp_path / "a"), _config(small_k2, tmp_path / "b", lr=1e-3)]
    with pytest.raises(SpecError, match=r"differ in lr \(0.0005 vs 0.001\)"):
        run_ensemble(configs)
    configs = [_config(small_k2, tmp_path / "a"), _config(small_k2, tmp_path / "b", seed=1)]
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(SpecError, match="not a run folder"):
        run_ensemble(configs)
    assert not (tmp_path / "a").exists()


def test_interrupted_checkpoint_rolls_forward_or_back(small_k2, tmp_path):
    configs = [
        _config(small_k2, tmp_path / f"m{i}", seed=i, score_preset="none", final_preset="none")
        for i in range(2)
    ]
    run_ensemble([{**c, "max_steps": 2} for c in configs])  # leaves last.pt at step 2 each
    paths = [tmp_path / f"m{i}" / "checkpoints" / "last.pt" for i in range(2)]
    newer = torch.load(paths[0], weights_only=True)
    newer["step"] = 4
    torch.save(newer, paths[0].with_name("last.pt.next"))  # only one member staged: roll back
    reconcile_checkpoints(paths)
    assert not paths[0].with_name("last.pt.next").exists()
    assert torch.load(paths[0], weights_only=True)["step"] == 2
    torch.save(newer, paths[0].with_name("last.pt.next"))  # member 1 renamed already: forward
    torch.save(newer, paths[1])
    reconcile_checkpoints(paths)
    assert [torch.load(p, weights_only=True)["step"] for p in paths] == [4, 4]


def _launch(configs: list[dict]) -> subprocess.Popen:
    code = (
        "import json, sys; from benchmark.ensemble import run_ensemble; "
        "run_ensemble(json.loads(sys.argv[1]))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    return subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(configs)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_ensemble_resumes_to_the_uninterrupted_numbers(small_k2, tmp_path):
    def configs(root: Path) -> list[dict]:
        return [
            _config(
                small_k2,
                root / f"m{i}",
                seed=i,
                latent_dim=3 + i,
                max_steps=None,
                epochs=2,
                checkpoint_every=1,
                score_preset="none",
                final_preset="none",
            )
            for i in range(2)
        ]

    whole = _launch(configs(tmp_path / "whole"))
    assert whole.wait(timeout=600) == 0, whole.stderr.read()
    proc = _launch(configs(tmp_path / "killed"))
    ck = tmp_path / "killed" / "m1" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 300
    while not ck.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the ensemble finished before it could be killed"
    again = _launch(configs(tmp_path / "killed"))
    assert again.wait(timeout=600) == 0, again.stderr.read()
    for i in range(2):
        a, b = tmp_path / "whole" / f"m{i}", tmp_path / "killed" / f"m{i}"
        rows = [
            _numbers([json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()])
            for d in (a, b)
        ]
        assert rows[0] == rows[1] and len(rows[0]) == 2
        wa = torch.load(a / "checkpoints" / "model.pt", weights_only=True)["model"]
        wb = torch.load(b / "checkpoints" / "model.pt", weights_only=True)["model"]
        assert all(torch.equal(wa[k], wb[k]) for k in wa)


# -- grouping for sweeps -----------------------------------------------------------------------


def test_grouping_never_mixes_incompatible_runs_and_names_what_fits(small_k2, tmp_path):
    from benchmark.ensemble.grouping import memory_fit, parse_ensemble, plan_groups

    def cfg(**kw) -> RunConfig:
        return RunConfig.from_dict(_config(small_k2, tmp_path / "x", **kw))

    configs = [
        cfg(seed=0),
        cfg(seed=1, lr=1e-3),  # another learning rate: never with the others
        cfg(seed=2, latent_dim=7, hparams={"beta": 8.0}),
        cfg(seed=3, model="vae"),  # another model
        cfg(seed=4),
        cfg(seed=5),
    ]
    assert plan_groups(configs, "off", 8) == [[i] for i in range(6)]
    assert plan_groups(configs, "auto", 8) == [[0, 2, 4, 5], [1], [3]]
    assert plan_groups(configs, 2, 8) == [[0, 2], [1], [3], [4, 5]]
    # more than fit: near-equal groups, never one full group and a straggler
    assert plan_groups(configs, "auto", lambda c, d: 3) == [[0, 2], [1], [3], [4, 5]]
    # auto keeps every worker busy: one set of 4 is cut in two for 2 workers, in 3 for 3
    alike = [configs[i] for i in (0, 2, 4, 5)]
    assert plan_groups(alike, "auto", 8, parallel=2) == [[0, 1], [2, 3]]
    assert plan_groups(alike, "auto", 8, parallel=3) == [[0, 1], [2], [3]]
    # ... but sets already outnumbering the workers stay whole
    assert plan_groups(configs, "auto", 8, parallel=2) == [[0, 2, 4, 5], [1], [3]]
    assert plan_groups(alike, 4, 8, parallel=2) == [[0, 1, 2, 3]]  # an explicit N is kept
    with pytest.raises(SpecError, match=r"--ensemble 9: only 8 models .* use --ensemble 8"):
        plan_groups(configs, 9, 8)
    assert parse_ensemble("auto") == "auto" and parse_ensemble("4") == 4
    with pytest.raises(SpecError, match="--ensemble must be auto, off or a positive integer"):
        parse_ensemble("many")
    assert memory_fit(configs[0], 10) >= 1


def test_sweep_tasks_start_longest_first_and_fill_every_worker(small_k2, tmp_path):
    """Two sets (2 and 6 epochs, 4 runs each): the 6-epoch ensembles start first, and the sets
    are cut when there are more workers than sets, so that no worker idles."""
    from types import SimpleNamespace

    from benchmark.sweep.execute import EnsembleTask, RunTask
    from benchmark.sweep.runner import _grouped

    tasks = [
        RunTask(
            id=f"e{epochs}s{seed}",
            config={"model": "betavae", "data": str(small_k2), "epochs": epochs, "seed": seed},
            runs_dir=str(tmp_path / "runs"),
        )
        for epochs in (2, 6)
        for seed in range(4)
    ]

    def order(workers: int) -> list[list[str]]:
        out = _grouped(tasks, "auto", SimpleNamespace(workers=workers), lambda *_: None)
        assert all(isinstance(t, EnsembleTask) for t in out)
        return [[m.id for m in t.members] for t in out]

    six, two = [f"e6s{s}" for s in range(4)], [f"e2s{s}" for s in range(4)]
    assert order(1) == [six, two]
    assert order(2) == [six, two]  # two sets for two workers: whole
    assert order(3) == [six[:2], six[2:], two[:2], two[2:]]  # cut, so that three are busy


def test_sweep_trains_compatible_points_as_ensembles_with_the_same_results(tmp_path):
    from sweep_helpers import tiny_spec

    from benchmark.sweep import load_sweep, run_sweep

    spec = load_sweep(tiny_spec("tiny", [0]))
    alone = run_sweep(spec, out=tmp_path / "off", workers=1, progress=False, ensemble="off")
    together = run_sweep(spec, out=tmp_path / "auto", workers=1, progress=False, ensemble="auto")
    assert alone.ok and together.ok and len(together.finished) == 4
    ensembles = set()
    for run_dir in sorted((tmp_path / "auto" / "runs").iterdir()):
        config = json.loads((run_dir / "config.json").read_text())
        ensembles.add(config["ensemble"]["id"])  # every point trained in an ensemble
        assert len(config["ensemble"]["members"]) == 2  # the two betas of one dataset
        log = (run_dir / "sweep.log").read_text()  # one line per ensemble epoch: its heartbeat
        assert re.search(r"^epoch 1/\d+ \(step \d+/\d+\), 2 models: loss [\d.]+-[\d.]+", log, re.M)
        single = tmp_path / "off" / "runs" / run_dir.name

        def read(path: Path) -> str:  # the two sweeps' own folders are the only difference
            return path.read_text().replace(str(tmp_path / "auto"), str(tmp_path / "off"))

        rows = [
            _numbers([json.loads(line) for line in read(d / "metrics.jsonl").splitlines()])
            for d in (run_dir, single)
        ]
        assert rows[0] == rows[1]
        sa, sb = (json.loads(read(d / "summary.json")) for d in (run_dir, single))
        assert _strip(sa) == _strip(sb)
    assert len(ensembles) == 2  # one per dataset: never across datasets


def test_runs_that_cannot_share_a_loop_go_one_at_a_time(small_k2, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(registry.BUNDLED, "withaux", "ensemble_helpers:WithAuxiliary")
    common = dict(score_preset="none", final_preset="none", max_steps=3)
    aux = [
        _config(small_k2, tmp_path / f"aux{i}", model="withaux", seed=i, **common) for i in range(2)
    ]
    results = run_ensemble(aux)
    assert "trains an auxiliary optimiser; its 2 runs go one at a time" in capsys.readouterr().out
    assert [r["status"] for r in results] == ["finished", "finished"]
    assert "ensemble" not in json.loads((tmp_path / "aux0" / "config.json").read_text())

    # members whose checkpoints are at different steps (one was trained alone in between)
    plain = [_config(small_k2, tmp_path / f"m{i}", seed=i, **common) for i in range(2)]
    run_ensemble(plain)
    for i in range(2):
        (tmp_path / f"m{i}" / "summary.json").unlink()  # both unfinished again, at step 3
    model = build_model("betavae", SHAPE, 10, {}, seed=0)
    images = to_channels_first(load_training_set(small_k2)[0])
    # m0 re-trained alone and stopped at its first checkpoint (step 1 of its own schedule:
    # a resume refuses a checkpoint at no step of the run's schedule)
    schedule = TrainConfig(
        epochs=3, max_steps=3, batch_size=8, checkpoint_every=1, device="cpu", progress=False
    )
    (tmp_path / "m0" / "checkpoints" / "last.pt").unlink()

    def save_then_stop(obj, path):
        save_atomic(obj, path)
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(train_module, "save_atomic", save_then_stop)
        train(model, images, schedule, checkpoint=tmp_path / "m0" / "checkpoints" / "last.pt")
    results = run_ensemble(plain)
    assert "different steps; they resume one at a time" in capsys.readouterr().out
    assert [r["steps"] for r in results] == [3, 3]
