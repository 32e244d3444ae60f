"""A real third-party package (tests/plugin_pkg) installed with pip joins through its entry
points, trains through `bench run`, and its broken models are reported without stopping others."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from train_fixtures import make_tiny_dataset

from benchmark.models.registry import BUNDLED

REPO = Path(__file__).resolve().parents[1]
# pip-installs a package and starts `bench` in subprocesses: make test runs it, test-fast not
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """pip-install the plugin package into a private folder (never the shared venv)."""
    tmp = tmp_path_factory.mktemp("plugin")
    src = tmp / "src"
    shutil.copytree(REPO / "tests" / "plugin_pkg", src)  # the build writes beside its sources
    target = tmp / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--no-cache-dir",
            "--target",
            str(target),
            str(src),
        ],
        check=True,
        env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    assert (target / "bench_tiny_plugin-0.1.0.dist-info").is_dir()
    return target


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny_k2.h5", n=64, seed=1)


def bench(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(site)])}
    return subprocess.run(
        [sys.executable, "-m", "benchmark.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_models_lists_plugins_with_origin_and_reports_broken_ones(site):
    r = bench(site, "models")
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines() if line and line[0] != " "}
    for name in (*BUNDLED, "tiny", "diverges"):
        assert " ok " in lines[name], lines[name]
    assert "bench-tiny-plugin 0.1.0" in lines["tiny"] and "tiny_vae_plugin:TinyVAE" in lines["tiny"]
    for name in ("broken_import", "bad_shapes", "nan_loss"):
        assert "BROKEN" in lines[name]
    assert "No module named 'tiny_vae_plugin.not_there'" in r.stdout
    assert "decode returned shape (2, 1, 32, 64), expected (2, 1, 64, 64)" in r.stdout
    assert "non-finite loss terms on a dry forward pass: loss" in r.stdout
    assert f"{len(BUNDLED) + 5} model(s), 3 broken" in r.stdout  # the bundled ones + 5 plugins


def test_plugin_model_trains_through_bench_run(site, data, tmp_path):
    out = tmp_path / "run"
    r = bench(
        site,
        "run",
        "--model",
        "tiny",
        "--param",
        "beta=2",
        "--data",
        str(data),
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--latent-dim",
        "3",
        "--quiet",
        "--score-preset",
        "none",
        "--final-preset",
        "none",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["model"] == "tiny"
    assert summary["model_hparams"] == {"beta": 2.0, "alpha": 1.0} and summary["steps"] == 8
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and rows[1]["loss"] < rows[0]["loss"]
    assert (out / "traversal.png").is_file() and (out / "reconstructions.png").is_file()


@pytest.mark.parametrize(
    "name, message",
    [
        ("broken_import", "model 'broken_import' (bench-tiny-plugin 0.1.0) is broken: cannot load"),
        ("bad_shapes", "decode returned shape (2, 1, 32, 64)"),
        ("nan_loss", "non-finite loss terms on a dry forward pass"),
    ],
)
def test_broken_plugin_run_fails_with_one_line(site, data, tmp_path, name, message):
    r = bench(
        site, "run", "--model", name, "--data", str(data), "--quiet", "--out", str(tmp_path / "r")
    )
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "r").exists()


def test_model_that_diverges_during_training_stops_clearly(site, data, tmp_path):
    out = tmp_path / "r"
    r = bench(
        site,
        "run",
        "--model",
        "diverges",
        "--data",
        str(data),
        "--batch-size",
        "16",
        "--epochs",
        "2",
        "--score-preset",
        "none",
        "--quiet",
        "--out",
        str(out),
    )
    assert r.returncode == 1 and "loss became non-finite (nan) at step 4" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert json.loads((out / "summary.json").read_text())["status"] == "diverged"


QUICK = ["--epochs", "1", "--steps", "2", "--batch-size", "16", "--latent-dim", "3", "--quiet"]
QUICK += ["--score-preset", "none", "--final-preset", "none"]


@pytest.mark.parametrize("given", [["--alpha", "2"], ["--param", "alpha=2"], ["--alpha=2"]])
def test_a_plugins_own_hyperparameter_is_a_bench_run_option(site, data, tmp_path, given):
    out = tmp_path / "r"
    r = bench(
        site, "run", "--model", "tiny", "--data", str(data), *QUICK, *given, "--out", str(out)
    )
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "config.json").read_text())["hparams"] == {"alpha": 2.0}
    assert json.loads((out / "summary.json").read_text())["model_hparams"]["alpha"] == 2.0


@pytest.mark.parametrize(
    "given, message",
    [
        (["--alpha", "x"], "alpha: must be a number, got 'x' (a parameter of model 'tiny')"),
        (["--alpha", "inf"], "alpha: must be finite, got inf"),
        (
            ["--gamma", "2"],
            "--gamma is not a parameter of model 'tiny'; it accepts: --beta, --alpha",
        ),
        (["--alpha"], "--alpha needs a value"),
    ],
)
def test_bad_plugin_hyperparameters_get_one_line(site, data, tmp_path, given, message):
    out = tmp_path / "r"
    r = bench(
        site, "run", "--model", "tiny", "--data", str(data), *QUICK, *given, "--out", str(out)
    )
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_a_sweep_varies_a_plugins_hyperparameter(site, data, tmp_path):
    spec = tmp_path / "plug.yaml"
    spec.write_text(
        f"""
name: plug
set: {{model: tiny, data: {data}, latent_dim: 3, steps: 2, batch_size: 16,
       score_preset: none, final_preset: none}}
grid: {{alpha: [1, 2.5], seed: [0]}}
report: {{x: alpha}}
"""
    )
    r = bench(site, "sweep", str(spec), "--out", str(tmp_path / "s"), "--quiet")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "s" / "sweep.json").read_text())
    ids = sorted(p["id"] for p in manifest["points"])
    assert [i.split("_")[3] for i in ids] == ["alpha1", "alpha2.5"], ids
    for i, alpha in zip(ids, (1.0, 2.5)):
        config = json.loads((tmp_path / "s" / "runs" / i / "config.json").read_text())
        assert config["hparams"] == {"alpha": alpha}
    bad = spec.read_text().replace("alpha", "alpah")  # a typo in the grid and the report
    spec.write_text(bad)
    r = bench(site, "sweep", str(spec), "--out", str(tmp_path / "t"), "--quiet")
    assert (
        r.returncode == 2
        and "grid.alpah: not a bench run parameter nor a hyperparameter" in r.stderr
    )
    assert "model hyperparameters: alpha, beta" in r.stderr and not (tmp_path / "t").exists()
