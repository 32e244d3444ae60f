"""Known answers for the Kim–Mnih, weighted Kim–Mnih and Higgins metrics on real spritegen data.

Two sources of real renders: a tiny dataset file built by ``spritegen build`` (its stored
evaluation sets) and a live ``Oracle.from_spec``. The identity representation looks each image up
in a table filled from the (factors, image) pairs the file stores or the oracle renders, so it
returns exactly the factor values the image was rendered from.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.metrics import RepresentationError, evaluate, higgins, kim_mnih
from spritegen.errors import DatasetError, SpecError
from tests.metrics_helpers import (
    FactorLookup,
    RecordingOracle,
    Transformed,
    lookup_from_file,
    pixel_mean,
    random_rotation,
)

K = 5
L = 16
SIZES = dict(batch_size=L, num_train=200, num_eval=100)
NUM_VARIANCE = 500
EVAL_SIZES = {
    "batch_size": L,
    "variance": NUM_VARIANCE,
    "kim_mnih_train": 200,
    "kim_mnih_eval": 100,
    "higgins_train": 200,
    "higgins_eval": 100,
    "random_train": 300,
    "random_eval": 200,
}


def _spec(evaluation):
    from spritegen.spec import spec_from_mapping

    return spec_from_mapping(
        {"factors": K, "n": 64, "seed": 7, "image_size": 64, "evaluation": evaluation}
    )


@pytest.fixture(scope="module")
def spec():
    return _spec(EVAL_SIZES)


@pytest.fixture(scope="module")
def data_file(spec, tmp_path_factory):
    from spritegen.build import build

    return build(spec, tmp_path_factory.mktemp("metrics") / "k5.h5", workers=1, progress=False)


@pytest.fixture(scope="module")
def file_lookup(data_file) -> FactorLookup:
    return lookup_from_file(data_file)


@pytest.fixture(scope="module")
def oracle(spec):
    from spritegen.oracle import Oracle

    return Oracle.from_spec(spec)


@pytest.fixture()
def live(oracle):
    """A fresh recording oracle (and its lookup) per test."""
    lookup = FactorLookup()
    return RecordingOracle(oracle, lookup), lookup


def _standardiser(factors: np.ndarray) -> np.ndarray:
    """Diagonal matrix giving each factor unit variance, so a rotation really mixes them."""
    return np.diag(1.0 / factors.std(axis=0))


def _scores(source, represent, seed=0):
    km = kim_mnih(source, represent, seed, num_variance=NUM_VARIANCE, **SIZES)
    # standardised features: the scale-invariant variant, so permuted/rescaled latents score alike
    hg = higgins(source, represent, seed, features="standardised", **SIZES)
    return km, hg


def _permuted_scaled(k, seed=3):
    rng = np.random.default_rng(seed)
    return np.diag(rng.uniform(0.01, 100.0, size=k))[rng.permutation(k)]


# ---------------------------------------------------------------------------------------------
# Known answers


def test_identity_scores_high_on_stored_sets(data_file, file_lookup):
    represent = Transformed(file_lookup, _permuted_scaled(K), offset=5.0)
    km, hg = _scores(data_file, represent)
    assert km.score >= 0.9 and hg.score >= 0.9, (km.score, hg.score)
    assert km.num_active_dims == K
    assert km.weighted.score >= 0.9
    # every vote is the dimension of the fixed factor: the vote matrix is a permutation
    votes = np.array(km.votes)
    assert (np.count_nonzero(votes, axis=1) == 1).all()


def test_identity_scores_high_on_live_oracle(live):
    source, lookup = live
    km, hg = _scores(source, Transformed(lookup, _permuted_scaled(K, seed=4)))
    assert km.score >= 0.9 and hg.score >= 0.9, (km.score, hg.score)
    assert km.weighted.score >= 0.9
    assert km.source["kind"] == "oracle"


@pytest.mark.parametrize("where", ["stored", "live"])
def test_constant_representation(where, data_file, oracle):
    def constant(images):
        return np.zeros((len(images), K))

    km, hg = _scores(data_file if where == "stored" else oracle, constant)
    assert km.score <= 0.2
    assert km.num_active_dims == 0
    assert km.weighted.score <= 0.2
    # no signal at all: the classifier predicts the most frequent train factor, i.e. chance
    assert hg.score == pytest.approx(hg.chance)
    assert abs(hg.score - 1 / K) <= 0.12


def test_random_rotation_scores_below_identity(data_file, file_lookup):
    import h5py

    with h5py.File(data_file, "r") as f:
        scale = _standardiser(f["eval/variance/factors"][()])
    ident_km, ident_hg = _scores(data_file, Transformed(file_lookup, scale))
    rot_km, rot_w, rot_hg = [], [], []
    for seed in range(3):
        km, hg = _scores(data_file, Transformed(file_lookup, random_rotation(K, seed) @ scale))
        rot_km.append(km.score)
        rot_w.append(km.weighted.score)
        rot_hg.append(hg.score)
    assert np.mean(rot_km) <= ident_km.score - 0.15, (rot_km, ident_km.score)
    assert np.mean(rot_w) <= ident_km.weighted.score - 0.15, (rot_w, ident_km.weighted.score)
    assert np.mean(rot_hg) <= ident_hg.score - 0.15, (rot_hg, ident_hg.score)


def test_noise_dimensions_do_not_lower_kim_mnih(data_file, file_lookup):
    base, _ = _scores(data_file, Transformed(file_lookup))
    noisy = Transformed(file_lookup, noise_dims=5, noise_seed=1)
    km = kim_mnih(data_file, noisy, 0, num_variance=NUM_VARIANCE, **SIZES)
    assert km.num_latents == K + 5 and km.num_active_dims == K + 5
    assert km.score >= base.score


def test_permuting_and_rescaling_latents_changes_nothing(data_file, file_lookup):
    # a rotated (imperfect) representation, so that the scores are not trivially 1
    mixed = random_rotation(K, 11) @ np.diag([1, 1, 1, 1, 0.3])
    a_km, a_hg = _scores(data_file, Transformed(file_lookup, mixed))
    b_km, b_hg = _scores(
        data_file, Transformed(file_lookup, _permuted_scaled(K) @ mixed, offset=-3.0)
    )
    assert a_km.score < 1.0
    assert b_km.score == a_km.score and b_km.train_accuracy == a_km.train_accuracy
    assert b_km.weighted.score == pytest.approx(a_km.weighted.score)
    assert b_hg.score == a_hg.score and b_hg.train_accuracy == a_hg.train_accuracy


def test_same_seed_same_score_live(live, oracle):
    source, lookup = live
    rep = Transformed(lookup, random_rotation(K, 2))
    old = ("kim_mnih", "higgins")  # the new metrics' seeding: tests/test_metrics_standard.py
    first = evaluate(source, rep, 5, preset=_tiny_preset(), metrics=old)
    again = evaluate(RecordingOracle(oracle, lookup), rep, 5, preset=_tiny_preset(), metrics=old)
    other = evaluate(source, rep, 6, preset=_tiny_preset(), metrics=old)
    keys = ("kim_mnih", "kim_mnih_weighted", "higgins", "kim_mnih_train", "higgins_train")
    assert {k: first[k] for k in keys} == {k: again[k] for k in keys}
    assert first["details"]["kim_mnih"]["votes"] == again["details"]["kim_mnih"]["votes"]
    assert first["details"]["kim_mnih"]["votes"] != other["details"]["kim_mnih"]["votes"]
    json.dumps(first)  # JSON-ready


def _tiny_preset():
    from benchmark.metrics import Preset

    return Preset("test", batch_size=L, num_train=100, num_eval=50, num_variance=300)


def test_evaluate_on_file_uses_stored_sizes_and_ignores_seed(data_file, file_lookup):
    rep = Transformed(file_lookup, random_rotation(K, 1))
    a = evaluate(data_file, rep, 0, preset="stored", dci_model="forest")
    b = evaluate(data_file, rep, 99, preset="stored", dci_model="forest")
    assert a["details"]["preset"]["num_train"] == 200 and a["details"]["preset"]["batch_size"] == L
    assert (a["kim_mnih"], a["higgins"]) == (b["kim_mnih"], b["higgins"])
    for key in ("kim_mnih", "kim_mnih_weighted", "higgins", "read_s", "encode_s", "metric_s"):
        assert key in a
    assert a["details"]["preset"]["num_samples_train"] == 300
    for key in ("mig", "dci_disentanglement", "sap", "modularity", "explicitness"):
        assert a[key] == b[key]
        assert a["details"]["mig"]["source"]["kind"] == "stored"


# ---------------------------------------------------------------------------------------------
# How represent is called, and what it may return


def test_represent_called_in_large_batches_and_torch_accepted(data_file, file_lookup):
    import torch

    sizes = []

    def rep(images):
        assert images.dtype == np.uint8 and images.ndim == 4
        sizes.append(len(images))
        return torch.from_numpy(file_lookup(images)).float()

    km = kim_mnih(data_file, rep, 0, num_variance=NUM_VARIANCE, encode_batch_size=256, **SIZES)
    assert km.score >= 0.9
    assert max(sizes) == 256 and sum(sizes) == NUM_VARIANCE + L * 300
    assert len(sizes) <= sum(-(-n // 256) for n in (NUM_VARIANCE, L * 200, L * 100))


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda x: np.zeros(len(x)), "shape"),
        (lambda x: np.zeros((len(x) - 1, 3)), "rows"),
        (lambda x: np.full((len(x), 3), np.nan), "NaN"),
        (lambda x: np.full((len(x), 3), np.inf), "inf"),
        (lambda x: [["a"]] * len(x), "numbers"),
    ],
)
def test_bad_representation_output_is_named(data_file, bad, message):
    with pytest.raises(RepresentationError, match=message):
        kim_mnih(data_file, bad, 0, num_variance=NUM_VARIANCE, **SIZES)
    with pytest.raises(RepresentationError, match=message):
        higgins(data_file, bad, 0, **SIZES)


def test_changing_width_is_an_error(data_file):
    calls = []

    def rep(images):
        calls.append(1)
        return np.random.default_rng(len(calls)).normal(size=(len(images), 3 + len(calls) % 2))

    with pytest.raises(RepresentationError, match="same width"):
        kim_mnih(data_file, rep, 0, num_variance=NUM_VARIANCE, encode_batch_size=128, **SIZES)


# ---------------------------------------------------------------------------------------------
# Bad inputs


def test_file_without_evaluation_sets(tmp_path):
    from spritegen.build import build

    path = build(_spec("none"), tmp_path / "noeval.h5", workers=1, progress=False)
    with pytest.raises(DatasetError, match="evaluation set"):
        kim_mnih(path, lambda x: np.zeros((len(x), 2)), 0, **SIZES)


def test_too_few_stored_samples(data_file):
    rep = lambda x: np.zeros((len(x), 2))  # noqa: E731
    with pytest.raises(DatasetError, match="holds 500 images but 10000"):
        kim_mnih(data_file, rep, 0, batch_size=L)
    with pytest.raises(DatasetError, match="holds 200 points but 201"):
        higgins(data_file, rep, 0, batch_size=L, num_train=201, num_eval=10)
    with pytest.raises(DatasetError, match="L=16"):
        kim_mnih(data_file, pixel_mean, 0, batch_size=64, num_train=2, num_eval=2, num_variance=100)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(num_train=0), "num_train"),
        (dict(batch_size=1), "batch_size"),
        (dict(num_eval=-5), "num_eval"),
        (dict(num_variance=1), "num_variance"),
    ],
)
def test_bad_sizes(live, kwargs, field):
    source, lookup = live
    with pytest.raises(SpecError, match=field):
        kim_mnih(source, lookup, 0, **(dict(SIZES, num_variance=NUM_VARIANCE) | kwargs))


def test_bad_source_preset_and_seed(data_file):
    rep = lambda x: np.zeros((len(x), 2))  # noqa: E731
    with pytest.raises(SpecError, match="sample_factors"):
        kim_mnih(object(), rep, 0)
    with pytest.raises(DatasetError, match="no such file"):
        kim_mnih(str(data_file) + ".missing", rep, 0)
    with pytest.raises(SpecError, match="allowed"):
        evaluate(data_file, rep, 0, preset="huge")
    with pytest.raises(SpecError, match="random_state"):
        kim_mnih(data_file, rep, None)


def test_stored_source_accepts_open_file(data_file, file_lookup):
    import h5py

    with h5py.File(data_file, "r") as f:
        km = kim_mnih(f, file_lookup, 0, num_variance=NUM_VARIANCE, **SIZES)
        assert km.score >= 0.9
        assert f.id.valid  # not closed by the metric: the caller opened it


@pytest.mark.parametrize(
    "damage, message",
    [
        ("incomplete", "the build of this file did not complete"),
        ("foreign", "not a spritegen dataset (attribute 'format' is 'other'"),
        ("no-spec", "attribute 'spec' is missing"),
    ],
)
def test_an_open_file_is_refused_like_its_path(data_file, file_lookup, tmp_path, damage, message):
    """A file handed in open used to skip open_dataset's checks: an unfinished build scored."""
    import shutil

    import h5py

    path = tmp_path / "data.h5"
    shutil.copy(data_file, path)
    with h5py.File(path, "r+") as f:
        if damage == "incomplete":
            f.attrs["complete"] = False
        elif damage == "foreign":
            f.attrs["format"] = "other"
        else:
            del f.attrs["spec"]
    with pytest.raises(DatasetError) as by_path:
        kim_mnih(path, file_lookup, 0, num_variance=NUM_VARIANCE, **SIZES)
    with h5py.File(path, "r") as f, pytest.raises(DatasetError) as handed_in:
        kim_mnih(f, file_lookup, 0, num_variance=NUM_VARIANCE, **SIZES)
    assert message in str(by_path.value)
    assert str(handed_in.value) == str(by_path.value)


def test_stored_sets_are_the_groups_a_build_writes(data_file):
    """StoredSource's table comes from spritegen.evalsets: every evaluation group of a full
    build, each with the spec size that makes the build write it."""
    import h5py

    from benchmark.metrics.sources import STORED_SETS

    sizes = [name for name in EVAL_SIZES if name != "batch_size"]
    assert [group.removeprefix("eval/").replace("/", "_") for group in STORED_SETS] == sizes
    with h5py.File(data_file, "r") as f:
        for group, names in STORED_SETS.items():
            assert all(isinstance(f[group].get(n), h5py.Dataset) for n in names), group


@pytest.mark.parametrize("handed_in", [False, True], ids=["by-path", "open-file"])
@pytest.mark.parametrize(
    "dtype, size, by_path",
    [
        (np.float32, 64, "evaluation set /eval/variance/images has shape (500, 64, 64, 1) float32"),
        (np.uint8, 32, "dataset '/eval/variance/images' has shape (500, 32, 32, 1); the stored"),
    ],
    ids=["float32", "32px"],
)
def test_stored_source_refuses_eval_images_unlike_images(
    data_file, tmp_path, handed_in, dtype, size, by_path
):
    """Checked before anything is scored, whether the file is opened by path or handed in open,
    in the same words (check_dataset compares the shapes with the stored spec, StoredSource
    checks the type)."""
    import shutil

    import h5py

    from benchmark.metrics import StoredSource

    path = tmp_path / "data.h5"
    shutil.copy(data_file, path)
    with h5py.File(path, "r+") as f:
        del f["eval/variance/images"]
        f["eval/variance/images"] = np.zeros((500, size, size, 1), dtype)
    with pytest.raises(DatasetError) as err:
        if handed_in:
            with h5py.File(path, "r") as f:
                StoredSource(f)
        else:
            StoredSource.open(path)
    assert by_path in str(err.value)


# ---------------------------------------------------------------------------------------------
# The classifier


def test_logistic_matches_the_unique_penalised_optimum():
    from sklearn import linear_model

    from benchmark.metrics import logistic

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=600)
    x = rng.normal(size=(600, 6)) + np.eye(4, 6)[y] * rng.uniform(0.1, 3, size=6)
    model = logistic.fit(x * 1000.0, y)
    assert model.converged
    ref = linear_model.LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(
        (x * 1000.0 - model.mean) / model.scale, y
    )
    coef = model.coef - model.coef.mean(axis=1, keepdims=True)  # same gauge as scikit-learn
    assert np.abs(coef - ref.coef_.T).max() < 1e-5
    assert (model.predict(x * 1000.0) == ref.predict((x * 1000.0 - model.mean) / model.scale)).all()
    # two classes use the same softmax model; one class predicts that class
    assert logistic.fit(x, y % 2).converged
    assert (logistic.fit(x, np.full(600, 3)).predict(x) == 3).all()


# ---------------------------------------------------------------------------------------------
# bench score


def test_bench_score_cli(data_file, capsys):
    from benchmark.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "score",
                str(data_file),
                "--represent",
                "tests.metrics_helpers:constant_representation",
                "--dci-model",
                "forest",
                "--json",
            ]
        )
    assert exit_.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kim_mnih"] == 0.0 and out["preset"] == "stored"
    assert abs(out["higgins"] - 1 / K) <= 0.12
    assert out["mig"] == 0.0 and out["modularity"] == 0.0 and out["sap"] == 0.0

    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "score",
                str(data_file),
                "--represent",
                "tests.metrics_helpers:pixel_mean",
                "--dci-model",
                "forest",
            ]
        )
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for key in ("kim_mnih", "higgins_standardised", "mig", "dci_completeness", "explicitness"):
        assert key in text
    assert "time" in text

    for args, message in [
        (["--represent", "tests.metrics_helpers:nothing_here"], "no attribute"),
        (["--represent", "no_such_module_xyz:f"], "cannot import"),
        (["--represent", "tests.metrics_helpers:pixel_mean", "--preset", "full"], "holds"),
        (["--represent", "tests.metrics_helpers:pixel_mean", "--metrics", "mig,nope"], "subset"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            main(["score", str(data_file), *args])
        err = capsys.readouterr().err
        assert exit_.value.code == 2
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bench_score_help_names_every_metric_it_takes(capsys):
    """The --metrics help listed six names; linear_r2, which the option takes, was missing."""
    from benchmark.cli import main
    from benchmark.metrics import METRIC_KEYS

    with pytest.raises(SystemExit) as exit_:
        main(["score", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"subset of {', '.join(METRIC_KEYS)} (default: all)" in text


def test_importing_metrics_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, benchmark.metrics, benchmark.cli; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bench_score_on_published_grid_layout(tmp_path, capsys):
    from benchmark.cli import main
    from benchmark.datasets.testing import write_dsprites_npz

    path = write_dsprites_npz(tmp_path / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz")
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "score",
                f"dsprites:{path}",
                "--represent",
                "tests.metrics_helpers:dsprites_barcode_identity",
                "--preset",
                "quick",
                "--metrics",
                "kim_mnih,higgins",
                "--json",
            ]
        )
    assert exit_.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kim_mnih"] >= 0.9 and out["higgins"] >= 0.9
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "score",
                f"dsprites:{path}",
                "--represent",
                "tests.metrics_helpers:dsprites_barcode_identity",
                "--preset",
                "stored",
            ]
        )
    assert exit_.value.code == 2 and "scored live" in capsys.readouterr().err


def test_higgins_raw_features_follow_disentanglement_lib_and_depend_on_scale(
    data_file, file_lookup
):
    """Raw features (disentanglement_lib's convention) make the L2-penalised fit scale-dependent:
    the identity shrunk a thousandfold loses its score, while standardised features keep it."""
    identity = Transformed(file_lookup)
    shrunk = Transformed(file_lookup, np.eye(K) * 1e-3)
    raw = higgins(data_file, identity, 0, **SIZES)  # the headline: raw features
    assert raw.features == "raw" and raw.score == raw.score_raw >= 0.9
    small = higgins(data_file, shrunk, 0, features="standardised", **SIZES)
    assert small.score == small.score_standardised >= 0.9
    assert small.score_raw < small.score_standardised - 0.3
    with pytest.raises(SpecError, match="allowed: standardised, raw"):
        higgins(data_file, identity, 0, features="whitened", **SIZES)
    result = evaluate(data_file, identity, 0, "stored", metrics=["higgins"])
    assert result["higgins"] == result["details"]["higgins"]["score_raw"]
    assert result["higgins_standardised"] == result["details"]["higgins"]["score_standardised"]
    assert "kim_mnih" not in result and "mig" not in result


def test_build_and_metric_presets_agree():
    """A file built with a scoring preset holds exactly what that metric preset reads."""
    from benchmark.metrics.presets import PRESET_NAMES, PRESETS, RUN_PRESET_NAMES
    from spritegen.spec import EVAL_PRESETS, EvalSizes

    assert set(PRESETS) <= set(EVAL_PRESETS)
    for name, preset in PRESETS.items():
        sizes = EvalSizes.preset(name)
        assert preset.batch_size == sizes.batch_size
        assert preset.num_variance == sizes.variance
        assert preset.num_train == sizes.kim_mnih_train == sizes.higgins_train
        assert preset.num_eval == sizes.kim_mnih_eval == sizes.higgins_eval
        assert (preset.num_samples_train, preset.num_samples_eval) == (
            sizes.random_train,
            sizes.random_eval,
        )
    assert PRESET_NAMES == (*PRESETS, "stored")
    assert RUN_PRESET_NAMES == (*PRESET_NAMES, "none")
