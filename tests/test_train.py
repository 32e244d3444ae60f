"""Training and `bench run` on a tiny real 2-factor dataset, on the CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from matplotlib.image import imread
from train_fixtures import make_tiny_dataset

from benchmark.cli import bench as main
from benchmark.data import load_training_set, to_channels_first
from benchmark.metrics.evaluate import EPOCH_METRICS, METRIC_KEYS, SCORE_KEYS
from benchmark.models import VAE, build_model
from benchmark.run import RunConfig, run
from benchmark.train import TrainConfig, TrainingDiverged, make_represent, train
from spritegen.errors import SpritegenWarning

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny_k2.h5", n=128, seed=0)


def correlation_scorer(path: Path):
    """Mean over factors of the best |correlation| between a factor and a latent mean: a cheap
    stand-in for the project's metrics that still depends on what the model learned."""
    images, factors = load_training_set(path)

    def scorer(represent):
        z = represent(images).astype(np.float64)
        z = (z - z.mean(0)) / (z.std(0) + 1e-12)
        f = (factors - factors.mean(0)) / factors.std(0)
        corr = np.abs(z.T @ f) / len(z)  # (D, K)
        return {"max_corr": float(corr.max(axis=0).mean())}

    return scorer


def numbers(row: dict) -> dict:
    """A metrics row without wall-clock timings."""
    return {k: v for k, v in row.items() if not k.endswith("_s")}


def test_tiny_run_writes_every_artefact_and_the_loss_falls(tiny, tmp_path):
    out = tmp_path / "run"
    summary = run(
        RunConfig(
            model="betavae",
            hparams={"beta": 1.0},
            data=str(tiny),
            epochs=6,
            batch_size=32,
            latent_dim=6,
            seed=1,
            device="cpu",
            out=str(out),
            progress=False,
        ),
        scorer=correlation_scorer(tiny),
        score_keys=("max_corr",),
    )
    for name in (
        "config.json",
        "metrics.jsonl",
        "summary.json",
        "reconstructions.png",
        "traversal.png",
        "checkpoints/last.pt",
        "checkpoints/model.pt",
    ):
        assert (out / name).is_file(), name
    assert not list(out.rglob("*.partial"))
    config = json.loads((out / "config.json").read_text())
    assert (
        config["epochs"] == 6
        and config["num_factors"] == 2
        and config["image_shape"] == [1, 64, 64]
    )
    assert config["model_hparams"] == {"beta": 1.0, "beta_norm": None}
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in rows] == [4, 8, 12, 16, 20, 24]  # 128 images, batch 32
    for r in rows:
        assert {"loss", "reconstruction", "kl", "max_corr"} <= set(r)
        assert len(r["kl_per_dim"]) == 6 and sum(r["kl_per_dim"]) == pytest.approx(
            r["kl"], rel=1e-4
        )
    assert rows[-1]["loss"] < 0.8 * rows[0]["loss"]
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == summary and summary["status"] == "finished" and summary["steps"] == 24
    assert summary["final_scores"] == {"max_corr": rows[-1]["max_corr"]}
    best = max(rows, key=lambda r: r["max_corr"])
    assert summary["best_scores"]["max_corr"] == {"value": best["max_corr"], "epoch": best["epoch"]}
    # pictures: 2 rows of 8 images; one traversal row per latent dimension, 7 columns
    rec, trav = imread(out / "reconstructions.png"), imread(out / "traversal.png")
    assert rec.shape[1] > rec.shape[0] and trav.shape[0] > 2 * rec.shape[0]
    assert rec.std() > 0.05 and trav.std() > 0.05


@pytest.mark.parametrize("model", ["vae", "factorvae"])  # factorvae: a second, own optimiser
def test_same_seed_same_numbers_and_resume_mid_epoch(tiny, tmp_path, model):
    images, _ = load_training_set(tiny)
    data = to_channels_first(images[:32])
    cfg = TrainConfig(
        epochs=2, batch_size=8, seed=7, device="cpu", checkpoint_every=3, progress=False
    )
    scorer = lambda represent: {"mean_mu": float(represent(images[:32]).mean())}  # noqa: E731

    model_a = build_model(model, (1, 64, 64), 4, seed=7)
    full = train(model_a, data, cfg, scorer=scorer, checkpoint=tmp_path / "a.pt")

    class Killed(Exception):
        pass

    def dies_at_first_epoch_end(represent):
        raise Killed  # before epoch 1's checkpoint: the last one is mid-epoch, at step 3

    model_b = build_model(model, (1, 64, 64), 4, seed=7)
    with pytest.raises(Killed):
        train(model_b, data, cfg, scorer=dies_at_first_epoch_end, checkpoint=tmp_path / "b.pt")
    assert torch.load(tmp_path / "b.pt", weights_only=True)["step"] == 3
    model_c = build_model(model, (1, 64, 64), 4, seed=99)  # weights come from the checkpoint
    resumed = train(model_c, data, cfg, scorer=scorer, checkpoint=tmp_path / "b.pt")
    assert [numbers(r) for r in resumed] == [numbers(r) for r in full]
    for (name, a), (_, c) in zip(model_a.state_dict().items(), model_c.state_dict().items()):
        assert torch.equal(a, c), name

    # and another seed gives other numbers
    def first_step(seed):
        return train(
            build_model(model, (1, 64, 64), 4, seed=7),
            data,
            TrainConfig(max_steps=1, batch_size=8, seed=seed, device="cpu", progress=False),
        )[0]["loss"]

    assert first_step(8) != first_step(7)


def test_a_resume_with_other_threads_says_so_and_config_keeps_both(tiny, tmp_path):
    """The thread count changes float32 rounding (docs/training.md): a run resumed under another
    one is valid but no longer equals a run trained in one go, so the resume warns and
    config.json records the numerics of both parts."""
    cfg = RunConfig(
        model="vae",
        data=str(tiny),
        epochs=2,
        batch_size=32,
        latent_dim=4,
        seed=3,
        device="cpu",
        checkpoint_every=2,
        out=str(tmp_path / "run"),
        progress=False,
    )

    class Killed(Exception):
        pass

    def dies(represent):
        raise Killed  # at the end of epoch 1, after the checkpoint of step 2

    threads = torch.get_num_threads()
    other = 2 if threads == 1 else 1
    with pytest.raises(Killed):
        run(cfg, scorer=dies, score_keys=("max_corr",))
    first = json.loads((tmp_path / "run" / "config.json").read_text())["numerics"]
    assert first["threads"] == threads and first["cpu"] == torch.backends.cpu.get_cpu_capability()
    try:
        torch.set_num_threads(other)
        with pytest.warns(SpritegenWarning, match=f"threads {threads} -> {other}"):
            summary = run(cfg, scorer=correlation_scorer(tiny), score_keys=("max_corr",))
    finally:
        torch.set_num_threads(threads)
    assert summary["status"] == "finished"
    record = json.loads((tmp_path / "run" / "config.json").read_text())["numerics"]
    assert record == {**first, "threads": other, "before": [first]} and first["processor"]


def _bench(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO)] + sys.path[1:2])}
    return subprocess.Popen(
        [sys.executable, "-m", "benchmark.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_final_numbers(tmp_path):
    small = make_tiny_dataset(tmp_path / "small.h5", n=64, seed=2)
    args = [
        "run",
        "--model",
        "betavae",
        "--beta",
        "2",
        "--data",
        str(small),
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--latent-dim",
        "4",
        "--seed",
        "3",
        "--device",
        "cpu",
        "--checkpoint-every",
        "1",
        "--score-preset",
        "none",
        "--final-preset",
        "none",
        "--quiet",
    ]
    whole = _bench(*args, "--out", str(tmp_path / "whole"))
    assert whole.wait(timeout=300) == 0, whole.stderr.read()

    out = tmp_path / "killed"
    proc = _bench(*args, "--out", str(out))
    ck = out / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 240
    while not ck.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (out / "summary.json").exists()
    again = _bench(*args, "--out", str(out))
    assert again.wait(timeout=300) == 0, again.stderr.read()

    def rows(p: Path) -> list:
        return [numbers(json.loads(l)) for l in (p / "metrics.jsonl").read_text().splitlines()]

    assert rows(out) == rows(tmp_path / "whole")
    a = torch.load(tmp_path / "whole" / "checkpoints" / "model.pt", weights_only=True)["model"]
    b = torch.load(out / "checkpoints" / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_non_finite_loss_stops_with_a_clear_message(tiny, tmp_path):
    class Explodes(VAE):
        def objective(self, reconstruction, kl, step):
            return {"loss": reconstruction + kl + (float("inf") if step == 5 else 0.0)}

    images, _ = load_training_set(tiny)
    with pytest.raises(TrainingDiverged, match=r"non-finite \(inf\) at step 6 \(epoch 2\)"):
        train(
            Explodes(image_shape=(1, 64, 64), latent_dim=3),
            to_channels_first(images[:64]),
            TrainConfig(epochs=3, batch_size=16, device="cpu", progress=False),
            checkpoint=tmp_path / "x.pt",
        )
    assert torch.load(tmp_path / "x.pt", weights_only=True)["step"] == 4  # last good epoch


def test_represent_maps_uint8_images_to_latent_means(tiny):
    images, _ = load_training_set(tiny)
    model = build_model("vae", (1, 64, 64), 5, seed=0)
    z = make_represent(model, torch.device("cpu"), batch_size=7)(images[:20])
    assert z.shape == (20, 5) and z.dtype == np.float32
    x = torch.from_numpy(images[:3]).permute(0, 3, 1, 2).float() / 255
    assert np.allclose(z[:3], model.encode(x)[0].detach().numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--model", "betavae", "--gamma", "3"],
            "--gamma is not a parameter of model 'betavae'; it accepts: --beta, --beta-norm",
        ),
        (
            ["--model", "betavae", "--beta", "2", "--beta-norm", "0.1"],
            "beta or beta_norm, not both",
        ),
        (["--model", "vea"], "unknown model 'vea'; installed:"),
        (["--model", "vae", "--latent-dim", "0"], "--latent-dim: must be a positive integer"),
        (["--model", "vae", "--param", "beta"], "--param 'beta': expected key=value"),
        (
            ["--model", "vae", "--amp", "--device", "cpu"],
            "--amp (mixed precision) needs a CUDA device",
        ),
        (["--model", "annealedvae", "--capacity-steps", "0"], "capacity_steps must be a positive"),
    ],
)
def test_bad_flags_get_one_clear_line(tiny, tmp_path, extra, message):
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--data",
            str(tiny),
            "--out",
            str(tmp_path / "r"),
            "--score-preset",
            "none",
            "--final-preset",
            "none",
            "--quiet",
            *extra,
        ],
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_dataset_flags(tiny, tmp_path):
    r = CliRunner().invoke(main, ["run", "--model", "vae"])
    assert r.exit_code == 2 and "--data FILE or --factors K" in r.output
    r = CliRunner().invoke(main, ["run", "--model", "vae", "--data", str(tmp_path / "no.h5")])
    assert r.exit_code == 2 and "no such spritegen dataset" in r.output
    r = CliRunner().invoke(main, ["run", "--model", "vae", "--data", "mnist:x.npz"])
    assert r.exit_code == 2 and "unknown dataset kind 'mnist'" in r.output
    r = CliRunner().invoke(main, ["run", "--model", "vae", "--factors", "9"])
    assert r.exit_code == 2 and "--factors: must be an integer in 1..7" in r.output
    r = CliRunner().invoke(main, ["run", "--model", "vae", "--factors", "2", "--data", str(tiny)])
    assert r.exit_code == 2 and "not both" in r.output
    # --factors K reuses the default dataset in $BENCH_DATA_DIR (building it when missing)
    (tmp_path / "data").mkdir()
    os.symlink(tiny, tmp_path / "data" / "factors2.h5")
    r = CliRunner(env={"BENCH_DATA_DIR": str(tmp_path / "data")}).invoke(
        main,
        [
            "run",
            "--model",
            "vae",
            "--factors",
            "2",
            "--steps",
            "1",
            "--latent-dim",
            "2",
            "--score-preset",
            "none",
            "--final-preset",
            "none",
            "--quiet",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert r.exit_code == 0, r.output
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["data"] == str(tiny.resolve()) and config["epochs"] == 10
    if not torch.cuda.is_available():
        r = CliRunner().invoke(
            main, ["run", "--model", "vae", "--data", str(tiny), "--device", "cuda"]
        )
        assert r.exit_code == 2 and "CUDA is not available" in r.output


def test_finished_run_is_not_overwritten_without_force(tiny, tmp_path):
    out = str(tmp_path / "r")
    base = [
        "run",
        "--model",
        "vae",
        "--data",
        str(tiny),
        "--steps",
        "2",
        "--latent-dim",
        "3",
        "--score-preset",
        "none",
        "--final-preset",
        "none",
        "--quiet",
        "--out",
        out,
    ]
    first = CliRunner().invoke(main, base)
    assert first.exit_code == 0, first.output
    assert "epochs / steps  1 / 2" in first.output
    again = CliRunner().invoke(main, base)
    assert again.exit_code == 2 and "holds a finished run; use --force" in again.output
    other = CliRunner().invoke(main, base + ["--seed", "5"])
    assert other.exit_code == 2 and "holds a different run (differs in seed)" in other.output
    forced = CliRunner().invoke(main, base + ["--seed", "5", "--force"])
    assert forced.exit_code == 0, forced.output
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["seed"] == 5
    stranger = tmp_path / "notes"
    stranger.mkdir()
    (stranger / "keep.txt").write_text("mine")
    r = CliRunner().invoke(main, base[:-1] + [str(stranger), "--force"])
    assert r.exit_code == 2 and "is not a run folder" in r.output
    assert (stranger / "keep.txt").exists()


@pytest.mark.slow
def test_bench_run_scores_with_the_project_metrics_every_epoch(tmp_path):
    data = make_tiny_dataset(tmp_path / "k2e.h5", n=64, seed=5, eval_preset="tiny")
    out = tmp_path / "r"
    r = CliRunner().invoke(
        main,
        [
            "run",
            "--model",
            "betavae",
            "--beta",
            "2",
            "--data",
            str(data),
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--latent-dim",
            "4",
            "--score-preset",
            "stored",
            "--final-preset",
            "stored",
            "--quiet",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epoch_keys = [k for m in EPOCH_METRICS for k in METRIC_KEYS[m]]
    for row in rows:  # every epoch: every metric but DCI
        for key in epoch_keys:
            assert 0.0 <= row[key] <= 1.0, key
        assert row["preset"] == "stored" and row["seed"] == 0 and "mig" in row
        assert "dci_disentanglement" not in row
    summary = json.loads((out / "summary.json").read_text())
    final = summary["final_scores"]  # the final scores: all metrics, DCI included
    assert set(SCORE_KEYS) <= set(final) and 0.0 <= final["dci_disentanglement"] <= 1.0
    # same model, sets and seed as the last epoch's scoring: the same numbers
    assert {k: final[k] for k in epoch_keys} == {k: rows[-1][k] for k in epoch_keys}
    assert set(summary["best_scores"]) == set(epoch_keys)
    assert "kim_mnih" in r.output and "higgins" in r.output
    config = json.loads((out / "config.json").read_text())
    assert config["scoring"] == {
        "during": "stored evaluation sets",
        "final": "stored evaluation sets",
    }
    # a file without evaluation sets cannot be scored on "stored": said before any training
    bare = make_tiny_dataset(tmp_path / "k2n.h5", n=64, seed=5)
    r = CliRunner().invoke(
        main,
        [
            "run",
            "--model",
            "vae",
            "--data",
            str(bare),
            "--quiet",
            "--score-preset",
            "stored",
            "--out",
            str(tmp_path / "r2"),
        ],
    )
    assert r.exit_code == 2 and "preset 'stored' scores on the file's evaluation sets" in r.output
    assert not (tmp_path / "r2").exists()


@pytest.mark.slow
def test_training_raises_the_score_on_a_two_factor_dataset(tmp_path):
    """Kim-Mnih (quick preset, the file's stored sets) of a VAE trained for 480 steps against the
    same network untrained (32 x 32 images: the learning tests' size, a quarter of the FLOPs)."""
    from benchmark.run import metrics_scorer

    path = make_tiny_dataset(tmp_path / "k2.h5", n=2048, seed=0, eval_preset="quick", image_size=32)
    scorer, where = metrics_scorer(path, 0, "quick", ["kim_mnih"])
    assert where == "stored evaluation sets"
    untrained = scorer(
        make_represent(build_model("vae", (1, 32, 32), 10, seed=0), torch.device("cpu"))
    )["kim_mnih"]
    summary = run(
        RunConfig(
            model="vae",
            data=str(path),
            epochs=15,
            seed=0,
            device="cpu",
            score_every=0,  # the per-epoch metrics, once, after the last epoch
            score_preset="quick",
            final_preset="none",  # the final pass adds DCI's trees: minutes, not wanted here
            out=str(tmp_path / "run"),
            progress=False,
        )
    )
    trained = summary["final_scores"]["kim_mnih"]
    assert trained > untrained + 0.2, (untrained, trained)


@pytest.mark.slow
def test_bench_run_trains_on_a_dsprites_file(tmp_path):
    from benchmark.datasets.testing import write_dsprites_npz

    path = write_dsprites_npz(tmp_path / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz")
    out = tmp_path / "r"
    r = CliRunner().invoke(
        main,
        [
            "run",
            "--model",
            "betavae",
            "--data",
            f"dsprites:{path}",
            "--steps",
            "2",
            "--batch-size",
            "16",
            "--latent-dim",
            "3",
            "--score-preset",
            "none",
            "--final-preset",
            "none",
            "--quiet",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    config = json.loads((out / "config.json").read_text())
    assert config["data"] == f"dsprites:{path.resolve()}" and config["image_shape"] == [1, 64, 64]
    assert json.loads((out / "summary.json").read_text())["steps"] == 2
