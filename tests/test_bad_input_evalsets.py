"""A dataset file's evaluation sets as `bench` scores them: sets a spec left out, and group
attributes altered with h5py (probe of 2026-12-01).

A spec may set any evaluation size to 0 (docs/specs.md): the build then writes no such set, and
``spritegen verify`` says the file is OK. Such a file was refused for every metric, MIG included,
as "evaluation set /eval/higgins/train is missing". Now the metrics whose sets it holds are scored,
and one that needs a left-out set is named with the spec field that left it out; so is one whose
stored set is smaller than it can score with (``variance: 1``: "num_variance must be an integer
>= 2, got 1", from ``bench run`` after its first epoch). A Kim–Mnih or
Higgins group whose ``batch_size`` attribute is no integer was a traceback.

The files are real (built by spritegen); `bench` runs in-process through its console entry, so an
exception that escapes it fails the test as a traceback would.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from cli_helpers import assert_one_clear_line as one_line
from cli_helpers import invoke

from benchmark.metrics import evaluate
from benchmark.metrics.evaluate import METRIC_KEYS, SCORE_KEYS
from benchmark.metrics.presets import METRIC_MINIMUMS, preset_from_eval_sizes
from spritegen.build import build
from spritegen.errors import DatasetError, SpecError
from spritegen.spec import EVAL_PRESETS, spec_from_mapping
from spritegen.verify import verify

REPRESENT = """
import numpy as np

def centroid(images):
    x = images.astype(np.float32).mean(axis=-1)
    total = x.sum(axis=(1, 2)) + 1e-6
    rows = (x.sum(axis=2) * np.arange(x.shape[1])).sum(1) / total
    cols = (x.sum(axis=1) * np.arange(x.shape[2])).sum(1) / total
    return np.stack([cols, rows, total / 1000.0], 1)
"""


def _centroid(images: np.ndarray) -> np.ndarray:
    namespace: dict = {}
    exec(REPRESENT, namespace)
    return namespace["centroid"](images)


def _build(folder: Path, name: str, **sizes: int) -> Path:
    spec = spec_from_mapping(
        {"factors": 2, "n": 10, "name": name, "evaluation": {"preset": "tiny", **sizes}}
    )
    return build(spec, folder / f"{name}.h5", workers=1, progress=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("evalsets")
    return {
        "whole": _build(root, "whole"),
        "no_higgins_train": _build(root, "no_higgins_train", higgins_train=0),
        "no_kim_mnih_eval": _build(root, "no_kim_mnih_eval", kim_mnih_eval=0),
        "too_small": _build(root, "too_small", variance=1, random_eval=1),
    }


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """The test's folder, the current directory and importable (for --represent)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "reps_evalsets.py").write_text(REPRESENT)
    return tmp_path


def score(file: Path, *extra: str) -> list[str]:
    return ["score", str(file), "--represent", "reps_evalsets:centroid", *extra]


# --- a set the spec left out (size 0) --------------------------------------------------------


@pytest.mark.parametrize("metrics", ["mig", "kim_mnih,mig,sap"])
def test_metrics_whose_sets_are_present_are_scored(files, work, capsys, metrics):
    """As on the whole file, score for score: the left-out set changes nothing else. The file is
    what its spec describes, so verify says OK."""
    with h5py.File(files["no_higgins_train"], "r") as f:
        assert "eval/higgins/train" not in f and "eval/higgins/eval" in f
    assert verify(files["no_higgins_train"], sample=4).problems == []
    runs = {}
    for name in ("whole", "no_higgins_train"):
        status, err, out = invoke(capsys, *score(files[name], "--metrics", metrics, "--json"))
        assert status == 0, err
        result = json.loads(out)
        runs[name] = {key: result[key] for key in SCORE_KEYS if key in result}
    keys = [key for metric in metrics.split(",") for key in METRIC_KEYS[metric]]
    assert list(runs["whole"]) == keys
    assert runs["whole"] == runs["no_higgins_train"]


@pytest.mark.parametrize(
    ("name", "metrics", "fragments"),
    [
        (
            "no_higgins_train",
            [],
            [
                "no_higgins_train.h5: metric 'higgins' needs the evaluation set "
                "/eval/higgins/train, which this file does not hold: its spec sets "
                "evaluation.higgins_train to 0; score without higgins, or rebuild with "
                "evaluation.higgins_train above 0"
            ],
        ),
        (
            "no_higgins_train",
            ["--metrics", "higgins", "--preset", "quick"],
            ["metric 'higgins' needs the evaluation set /eval/higgins/train"],
        ),
        (
            "no_kim_mnih_eval",
            ["--metrics", "kim_mnih,mig"],
            [
                "metric 'kim_mnih' needs the evaluation set /eval/kim_mnih/eval",
                "its spec sets evaluation.kim_mnih_eval to 0; score without kim_mnih, or",
            ],
        ),
    ],
)
def test_a_metric_whose_set_is_left_out_is_named(files, work, capsys, name, metrics, fragments):
    one_line(capsys, work, score(files[name], *metrics), *fragments)


@pytest.mark.parametrize(
    ("name", "metrics", "pattern"),
    [
        (
            "no_higgins_train",
            ["kim_mnih", "higgins"],
            "metric 'higgins' needs .* evaluation.higgins_train",
        ),
        ("too_small", ["higgins", "kim_mnih"], "metric 'kim_mnih' needs at least 2 .*variance"),
    ],
    ids=["left_out", "too_small"],
)
def test_evaluate_names_the_metric_before_encoding_anything(files, name, metrics, pattern):
    calls = []

    def represent(images):
        calls.append(len(images))
        return _centroid(images)

    with pytest.raises(DatasetError, match=pattern):
        evaluate(files[name], represent, 0, "stored", metrics=metrics)
    assert calls == []


def stored_run(file: Path, score_preset: str, final_preset: str) -> list[str]:
    """`bench run` args for a short run on ``file`` with the given presets."""
    args = ["run", "--model", "betavae", "--data", str(file)]
    args += ["--batch-size", "5", "--latent-dim", "3", "--device", "cpu", "--epochs", "1"]
    args += ["--quiet", "--score-preset", score_preset, "--final-preset", final_preset]
    return args + ["--out", "r"]


def test_run_with_the_stored_preset_names_the_left_out_set(files, work, capsys):
    """`bench run` scores a fixed set of metrics: the line offers a rebuild or a live preset."""
    one_line(
        capsys,
        work,
        stored_run(files["no_higgins_train"], "stored", "none"),
        "preset 'stored' scores on the file's evaluation sets, but ",
        "its spec sets evaluation.higgins_train to 0; rebuild with evaluation.higgins_train "
        "above 0; use quick or full (a live oracle)",
    )


# --- a set smaller than a metric can score with -----------------------------------------------


def test_a_metric_whose_stored_set_is_too_small_is_named(files, work, capsys):
    """Every metric it cannot score is offered to leave out (explicitness's ROC-AUC and the R²
    need 2 eval samples, DCI and SAP 1, MIG none)."""
    one_line(
        capsys,
        work,
        score(files["too_small"]),
        "too_small.h5: metric 'kim_mnih' needs at least 2 images for its global variance, but "
        "this file holds 1 (its spec's evaluation.variance); score without kim_mnih, "
        "modularity, linear_r2, or rebuild with evaluation.variance of at least 2",
    )
    one_line(
        capsys,
        work,
        score(files["too_small"], "--metrics", "mig,linear_r2"),
        "metric 'linear_r2' needs at least 2 i.i.d. evaluation samples, but this file holds 1 "
        "(its spec's evaluation.random_eval); score without linear_r2, or",
    )


def test_the_metrics_a_too_small_set_allows_are_scored(files, work, capsys):
    """Higgins and MIG read sets of the tiny preset's sizes in both files: the same scores."""
    runs = {}
    for name in ("whole", "too_small"):
        status, err, out = invoke(
            capsys, *score(files[name], "--metrics", "higgins,mig,dci,sap", "--json")
        )
        assert status == 0, err
        runs[name] = {k: v for k, v in json.loads(out).items() if k in ("higgins", "mig")}
    assert set(runs["whole"]) == {"higgins", "mig"}
    assert runs["whole"] == runs["too_small"]


def test_run_with_the_stored_preset_refuses_a_too_small_set_before_training(files, work, capsys):
    one_line(
        capsys,
        work,
        stored_run(files["too_small"], "quick", "stored"),
        "preset 'stored' scores on the file's evaluation sets, but ",
        "(its spec's evaluation.variance); rebuild with evaluation.variance of at least 2; use "
        "quick or full (a live oracle)",
    )


@pytest.mark.parametrize(
    ("metric", "size", "low"),
    [(m, size, low) for m, lows in METRIC_MINIMUMS.items() for size, low in lows.items() if low],
)
def test_the_minimum_sizes_are_the_metrics_own(files, metric, size, low):
    """The table ``check_stored_sizes`` reads is the one the metrics check their sizes with: one
    below it is refused by the metric itself (no stored preset involved)."""
    preset = preset_from_eval_sizes("tiny", EVAL_PRESETS["tiny"])
    smaller = dataclasses.replace(preset, **{size: low - 1})
    with pytest.raises(SpecError, match=f"must be an integer >= {low}, got {low - 1}"):
        evaluate(files["whole"], _centroid, 0, smaller, metrics=[metric])


# --- an evaluation group's batch_size attribute altered ----------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [("x", "'x'"), (np.array([16, 16]), "[16, 16]"), (0, "0"), (8, "8")],
    ids=["text", "array", "zero", "other"],
)
@pytest.mark.parametrize("metrics", ["kim_mnih", "mig"])
def test_a_batch_size_attribute_that_is_not_the_specs_is_named(
    files, work, capsys, value, shown, metrics
):
    """'x' was "invalid literal for int()" and [16, 16] a TypeError, both tracebacks; 0 was
    "batch_size must be an integer >= 2, got 0", naming neither the file nor the group."""
    path = work / "data.h5"
    shutil.copy(files["whole"], path)
    with h5py.File(path, "r+") as f:
        f["eval/kim_mnih/eval"].attrs["batch_size"] = value
    one_line(
        capsys,
        work,
        score(Path("data.h5"), "--metrics", metrics),
        f"data.h5: /eval/kim_mnih/eval attribute 'batch_size' is {shown}; the stored spec "
        "gives 16; the file is damaged: run `spritegen verify data.h5` and rebuild it",
    )
