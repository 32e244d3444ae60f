"""The documented Python API under bad input: one clear exception naming what is wrong and what
is allowed, never a deep numpy/cairo/torch traceback, a silent wrong answer or a broken object.

The command-line tools have their own probes (``test_bad_input_spritegen.py``,
``test_bad_input_bench.py``); these call the library as a researcher's script or notebook does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spritegen.errors import SpecError
from spritegen.oracle import Oracle

# --- the oracle ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oracle(dataset_k5: Path) -> Oracle:
    return Oracle.from_file(dataset_k5)


def _vector(**values: float) -> np.ndarray:
    """One K=5 factor vector, mid-range unless given."""
    row = {"pos_x": 0.5, "pos_y": 0.5, "scale": 0.5, "shape": 1.0, "rotation": 0.3, **values}
    return np.array([[row[n] for n in ("pos_x", "pos_y", "scale", "shape", "rotation")]])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"pos_x": 5.0}, r"factor 'pos_x' must be in \[0, 1\], got 5.0 in row 0"),
        ({"pos_y": -0.25}, r"factor 'pos_y' must be in \[0, 1\], got -0.25"),
        ({"scale": -1.0}, r"factor 'scale' must be in \[0, 1\], got -1.0"),
        ({"scale": 1e30}, r"factor 'scale' must be in \[0, 1\]"),
        ({"rotation": 1e300}, r"'rotation' is 1e\+300 in row 0, beyond float32"),
        ({"pos_x": float("nan")}, r"NaN or infinite values: factor 'pos_x' is nan"),
    ],
)
def test_render_refuses_values_outside_a_factors_range(oracle, values, message):
    """Out-of-range values drew an empty canvas or a mirrored shape without a word; a float64
    beyond float32 reached cairo as inf, and the oracle then failed on every later call."""
    good = _vector()
    expected = oracle.render(good)
    with pytest.raises(ValueError, match=message):
        oracle.render(np.concatenate([_vector(**values), good]))
    np.testing.assert_array_equal(oracle.render(good), expected)  # still usable


def test_render_takes_the_ends_of_a_range_and_any_angle(oracle):
    ends = np.concatenate([_vector(pos_x=0.0, pos_y=1.0, scale=1.0), _vector(rotation=-20.0)])
    assert oracle.render(ends).shape == (2, 64, 64, 1)
    # a nested list of float64 values renders as its float32 values do
    vec = _vector(pos_x=0.25)
    expected = oracle.render(vec.astype(np.float32))
    np.testing.assert_array_equal(oracle.render(vec.tolist()), expected)


@pytest.mark.parametrize(
    "factors", [[[0.5] * 5, [0.5] * 4], [np.full(5, 0.5), np.full(4, 0.5)], [[0.5] * 5, None]]
)
def test_render_names_rows_of_different_lengths(oracle, factors):
    """numpy's "setting an array element with a sequence. The requested array has an
    inhomogeneous shape" named neither the factors nor the shape they must have."""
    message = r"factors must have shape \(n, 5\) \(pos_x, .*\), got rows of different lengths"
    with pytest.raises(ValueError, match=message):
        oracle.render(factors)


@pytest.mark.parametrize(
    "factors", [np.array([["a"] * 5]), np.array([[0.5, 0.5, 0.5, 0, None]], dtype=object)]
)
def test_render_refuses_arrays_that_are_not_numbers(oracle, factors):
    with pytest.raises(ValueError, match="factors must be real numbers, got an array of dtype"):
        oracle.render(factors)


# --- representations handed to the metrics ---------------------------------------------------


def _pixel_means(images: np.ndarray) -> np.ndarray:
    """A crude but informative representation: mean brightness of four image quadrants."""
    x = images.astype(np.float32) / 255
    h = x.shape[1] // 2
    quads = [x[:, :h, :h], x[:, :h, h:], x[:, h:, :h], x[:, h:, h:]]
    return np.stack([q.mean(axis=(1, 2, 3)) for q in quads], axis=1)


def test_a_bfloat16_tensor_is_scored_as_its_float32_values(dataset_k5):
    """An encoder run under torch.autocast returns bfloat16, which numpy has no type for:
    ``.numpy()`` raised "Got unsupported ScalarType BFloat16" from inside the metric."""
    import torch

    from benchmark.metrics import evaluate

    def bf16(images):
        return torch.from_numpy(_pixel_means(images)).bfloat16()

    def widened(images):
        return bf16(images).float()

    scores = [
        evaluate(dataset_k5, fn, 0, "stored", metrics=["kim_mnih", "mig"]) for fn in (bf16, widened)
    ]
    for key in ("kim_mnih", "kim_mnih_weighted", "mig"):
        assert scores[0][key] == scores[1][key]
    assert scores[0]["details"]["kim_mnih"]["votes"] == scores[1]["details"]["kim_mnih"]["votes"]


@pytest.mark.parametrize(
    ("represent", "message"),
    [
        (
            lambda images: None,
            r"represent returned None for a batch of \d+ images, not numbers; expected an",
        ),
        (lambda images: {"mu": _pixel_means(images)}, "represent returned a dict for a batch"),
        ("mymodule:encode", "represent must be a function of a uint8 image batch .* got a str"),
    ],
)
def test_a_representation_that_is_not_one_is_named(dataset_k5, represent, message):
    from benchmark.metrics import RepresentationError, kim_mnih

    with pytest.raises(RepresentationError, match=message):
        kim_mnih(dataset_k5, represent, 0, batch_size=16, num_train=10, num_eval=5, num_variance=50)


@pytest.mark.parametrize("threshold", [0, -1.0, float("nan"), float("inf"), None, "0.05", True])
def test_kim_mnih_names_a_prune_threshold_it_cannot_use(dataset_k5, threshold):
    """0 or below made a collapsed dimension active, its 0/0 ratio voting (another score, a NaN
    weighted one); NaN or inf pruned every dimension and scored 0.0 without a word; None or
    text were a TypeError or ValueError from float() that did not name the argument."""
    from benchmark.metrics import kim_mnih

    def never(images):
        raise AssertionError("nothing should be encoded")

    sizes = dict(batch_size=16, num_train=10, num_eval=5, num_variance=50)
    with pytest.raises(SpecError, match=r"kim_mnih: prune_threshold must be a finite number > 0"):
        kim_mnih(dataset_k5, never, 0, prune_threshold=threshold, **sizes)


def test_kim_mnih_takes_a_numpy_threshold_as_the_number_it_holds(dataset_k5):
    from benchmark.metrics import kim_mnih

    def with_a_collapsed_dim(images):
        return np.column_stack([_pixel_means(images), np.zeros(len(images))])

    sizes = dict(batch_size=16, num_train=10, num_eval=5, num_variance=50)
    plain, numpy = (
        kim_mnih(dataset_k5, with_a_collapsed_dim, 0, prune_threshold=t, **sizes)
        for t in (0.05, np.float64(0.05))
    )
    assert numpy.score == plain.score and numpy.active_dims == plain.active_dims
    assert 4 not in plain.active_dims and numpy.prune_threshold == 0.05


# --- the metrics on i.i.d. samples -----------------------------------------------------------


def _hand_made(rows_y_train: int = 400, d_eval: int = 2, k_eval: int = 2, nan: bool = False):
    from benchmark.metrics import EncodedSamples

    rng = np.random.default_rng(0)
    y = rng.uniform(size=(400, 2))
    z = np.column_stack([y[:, 0], rng.normal(size=400)])
    if nan:
        z[7, 1] = np.nan
    return EncodedSamples(z, y[:rows_y_train], z[:100, :d_eval], y[:100, :k_eval], None, {})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rows_y_train": 350}, r"samples.y_train has shape \(350, 2\); expected \(400, K\)"),
        ({"d_eval": 1}, r"samples.z_eval has shape \(100, 1\) and samples.z_train \(400, 2\)"),
        ({"k_eval": 1}, "samples.y_eval has 1 factor columns and samples.y_train 2"),
        ({"nan": True}, r"samples.z_train returned NaN in 1 values \(first bad row 7"),
    ],
)
def test_hand_made_samples_must_pair_latents_with_factors(kwargs, message):
    """Latents encoded elsewhere and handed in as ``samples=``: rows that do not pair up were
    a silent score (MIG cut both parts to the first rows), an IndexError or a scikit-learn
    error; NaN latents gave MIG 0.0 without a word."""
    from benchmark.metrics import RepresentationError

    with pytest.raises((SpecError, RepresentationError), match=message):
        _hand_made(**kwargs)


def test_hand_made_samples_that_pair_up_are_scored_as_before():
    from benchmark.metrics import mig

    gaps = mig(None, None, 0, samples=_hand_made(), num_train=400).gaps
    assert gaps[0] > gaps[1] + 0.5  # factor 0 is latent 0; factor 1 is in no latent


@pytest.mark.parametrize(("name", "low"), [("sap", 1), ("dci", 1), ("modularity", 2), ("r2", 2)])
def test_metrics_that_score_on_an_eval_part_refuse_an_empty_one(dataset_k5, name, low):
    """num_eval=0 reached scikit-learn ("Found array with 0 sample(s) ... required by
    LinearSVC"), after every image had been encoded; explicitness on one eval row was NaN
    (no ROC-AUC of one sample) with numpy's "Mean of empty slice" warning."""
    from benchmark.metrics import dci, linear_r2, modularity_explicitness, sap

    fn = {"sap": sap, "dci": dci, "modularity": modularity_explicitness, "r2": linear_r2}[name]

    def never(images):
        raise AssertionError("nothing should be encoded")

    for too_few in range(low):
        with pytest.raises(SpecError, match=f"num_eval must be an integer >= {low}, got {too_few}"):
            fn(dataset_k5, never, 0, num_train=100, num_eval=too_few)


@pytest.mark.parametrize("value", ["no", 0, None, "False"])
def test_sap_names_a_continuous_factors_flag_that_is_no_bool(dataset_k5, value):
    """``continuous_factors="no"`` was truthy, so the continuous SAP (another score) was
    computed when the discrete one was asked for."""
    from benchmark.metrics import sap

    def never(images):
        raise AssertionError("nothing should be encoded")

    with pytest.raises(SpecError, match="continuous_factors must be True or False, got"):
        sap(dataset_k5, never, 0, num_train=100, num_eval=50, continuous_factors=value)


def _every_metric_call(name: str, source: Path, represent, **kwargs):
    """``name`` called on ``source`` at sizes a tiny dataset holds."""
    from benchmark import metrics
    from benchmark.metrics.encode import encode
    from benchmark.metrics.presets import Preset

    sized = dict(num_train=100, num_eval=50)
    votes = dict(batch_size=16, num_train=2, num_eval=2)
    calls = {
        "kim_mnih": lambda: metrics.kim_mnih(
            source, represent, 0, **votes, num_variance=100, **kwargs
        ),
        "higgins": lambda: metrics.higgins(source, represent, 0, **votes, **kwargs),
        "mig": lambda: metrics.mig(source, represent, 0, num_train=100, **kwargs),
        "dci": lambda: metrics.dci(source, represent, 0, **sized, model="forest", **kwargs),
        "sap": lambda: metrics.sap(source, represent, 0, **sized, **kwargs),
        "modularity": lambda: metrics.modularity_explicitness(
            source, represent, 0, **sized, **kwargs
        ),
        "linear_r2": lambda: metrics.linear_r2(source, represent, 0, **sized, **kwargs),
        "encode_samples": lambda: metrics.encode_samples(source, represent, 0, **sized, **kwargs),
        "evaluate": lambda: metrics.evaluate(
            source, represent, 0, Preset("t", 16, 2, 2, 100, 100, 50), **kwargs
        ),
        "encode": lambda: encode([np.zeros((4, 64, 64, 1), np.uint8)], 4, represent, **kwargs),
    }
    return calls[name]()


METRIC_CALLS = (
    "kim_mnih",
    "higgins",
    "mig",
    "dci",
    "sap",
    "modularity",
    "linear_r2",
    "encode_samples",
    "evaluate",
    "encode",
)


@pytest.mark.parametrize("name", METRIC_CALLS)
@pytest.mark.parametrize("value", ["no", "False", 0, None])
def test_metrics_name_a_progress_flag_that_is_no_bool(dataset_k5, name, value):
    """``progress="no"`` was truthy: the metrics drew progress bars on stderr (one per set
    encoded) when a notebook asked for none; 0 or None passed as false by chance."""

    def never(images):
        raise AssertionError("nothing should be encoded")

    with pytest.raises(SpecError, match=f"progress must be True or False, got {value!r}"):
        _every_metric_call(name, dataset_k5, never, progress=value)


@pytest.mark.parametrize("name", METRIC_CALLS)
def test_metrics_take_a_numpy_bool_progress_flag(dataset_k5, name, capsys):
    """``np.False_`` (a flag computed from an array) is the bool it holds: no bar is drawn."""
    _every_metric_call(name, dataset_k5, _pixel_means, progress=np.False_)
    assert capsys.readouterr().err == ""


# --- models and runs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"latent_dim": "10"}, "latent_dim must be a positive integer, got '10'"),
        ({"latent_dim": 2.5}, "latent_dim must be a positive integer, got 2.5"),
        ({"latent_dim": True}, "latent_dim must be a positive integer, got True"),
        ({"latent_dim": None}, "latent_dim must be a positive integer, got None"),
        (
            {"seed": 1.5},
            r"seed must be an integer in 0..18446744073709551615 \(2\*\*64 - 1\), got 1.5",
        ),
        ({"seed": -1}, "seed must be an integer in 0..18446744073709551615"),
        ({"seed": 2**64}, "seed must be an integer in 0..18446744073709551615"),
        ({"image_shape": (1.0, 64, 64)}, r"image_shape must be \(C, H, W\): three positive"),
        ({"image_shape": None}, r"image_shape must be \(C, H, W\): three positive .* got None"),
        ({"hparams": "beta=4"}, "hparams must be a dict of hyperparameters by name, got 'beta=4'"),
    ],
)
def test_build_model_names_a_bad_argument(args, message):
    """These were a self-contradicting ModelError ("encode returned mu of shape (2, 10),
    expected (2, 10)"), a model with one latent (True), another seed taken silently (1.5, -1),
    or a traceback from torch or dict()."""
    from benchmark.models.registry import build_model

    kwargs = {"image_shape": (1, 64, 64), "latent_dim": 4, "seed": 0, **args}
    with pytest.raises(SpecError, match=message):
        build_model("betavae", kwargs.pop("image_shape"), kwargs.pop("latent_dim"), **kwargs)


def test_build_model_takes_numpy_integers_as_the_integers_they_hold():
    import torch

    from benchmark.models.registry import build_model

    plain = build_model("betavae", (1, 64, 64), 4, {"beta": 2.0}, seed=3)
    numpy = build_model(
        "betavae",
        (np.int64(1), 64, 64),
        np.int64(4),
        {"beta": np.float32(2.0)},
        seed=np.uint32(3),
    )
    assert numpy.hparams == plain.hparams and type(numpy.hparams["beta"]) is float
    for (name, a), (_, b) in zip(plain.state_dict().items(), numpy.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "a run config must be a RunConfig or a mapping of its settings"),
        ("betavae", "a run config must be a RunConfig or a mapping .* got 'betavae'"),
        ({"data": "x.h5"}, "run setting 'model' is missing"),
    ],
)
def test_run_names_a_config_that_is_not_one(config, message):
    from benchmark.run import run

    with pytest.raises(SpecError, match=message):
        run(config)


def test_a_run_takes_paths_numpy_numbers_and_a_torch_device(dataset_k5, tmp_path):
    """A researcher's script passes pathlib.Path, np.int64 from np.arange and torch.device:
    each was refused ("--data: must be a non-empty string, got PosixPath(...)",
    "--latent-dim: must be a positive integer, got np.int64(3)")."""
    import json

    import torch

    from benchmark.params import RunConfig
    from benchmark.run import run

    common = dict(model="betavae", max_steps=2, score_preset="none", final_preset="none")
    script = RunConfig(
        data=dataset_k5,
        out=tmp_path / "script",
        latent_dim=np.arange(3, 4)[0],
        seed=np.int64(1),
        lr=np.float32(0.5) * 1e-3,
        hparams={"beta": np.float64(2.0)},
        device=torch.device("cpu"),
        progress=False,
        **common,
    )
    plain = RunConfig(
        data=str(dataset_k5),
        out=str(tmp_path / "plain"),
        latent_dim=3,
        seed=1,
        lr=float(np.float32(0.5) * 1e-3),
        hparams={"beta": 2.0},
        device="cpu",
        progress=False,
        **common,
    )
    assert run(script)["status"] == run(plain)["status"] == "finished"
    recorded = json.loads((tmp_path / "script" / "config.json").read_text())
    assert recorded["data"] == str(dataset_k5.resolve()) and recorded["latent_dim"] == 3
    saved = [
        torch.load(tmp_path / name / "checkpoints" / "model.pt", weights_only=True)
        for name in ("script", "plain")
    ]
    assert saved[0]["hparams"] == saved[1]["hparams"] and saved[0]["latent_dim"] == 3
    weights = [s["model"] for s in saved]
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key


#: Runs that score only with what a test injects (the presets would score on a live oracle).
NO_SCORES = {"score_preset": "none", "final_preset": "none"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scorer": "quick"}, "scorer must be a function of represent .* got 'quick'"),
        ({"final_scorer": 5}, "final_scorer must be a function of represent .* got 5"),
        ({"score_keys": 5}, r"score_keys must be a score name or a list of them .* got 5"),
        ({"score_keys": ["mig", None]}, r"score_keys must be .* got \['mig', None\]"),
    ],
)
def test_run_names_scoring_arguments_it_cannot_use_before_training(
    dataset_k5, tmp_path, kwargs, message
):
    """A scorer that is no function was "'str' object is not callable" at the end of the first
    epoch, a final_scorer at the end of training: the time spent training was lost."""
    from benchmark.run import run

    config = dict(data=dataset_k5, model="betavae", out=tmp_path / "run", max_steps=1, **NO_SCORES)
    with pytest.raises(SpecError, match=message):
        run({**config, "progress": False}, **kwargs)
    assert not (tmp_path / "run").exists()


def test_run_takes_one_score_key_as_a_string(dataset_k5, tmp_path):
    """``score_keys="mig"`` was read letter by letter: the summary held no final or best score,
    without a word (as ``evaluate(metrics="mig")`` once did)."""
    from benchmark.run import run

    def scorer(represent):
        return {"mig": 0.5, "sap": 0.25}

    config = dict(data=dataset_k5, model="betavae", max_steps=1, progress=False, **NO_SCORES)
    summary = run({**config, "out": tmp_path / "run"}, scorer=scorer, score_keys="mig")
    assert summary["final_scores"] == {"mig": 0.5}
    assert summary["best_scores"] == {"mig": {"value": 0.5, "epoch": 1}}


def test_settings_assigned_to_a_run_config_are_the_values_they_mean(dataset_k5, tmp_path):
    """The constructor took numpy numbers, a Path and a torch.device, but the same values
    assigned afterwards (``cfg.seed = s`` in a loop over ``np.arange``) were refused with a
    message that contradicted itself: "--seed: must be an integer in 0..., got np.int64(1)"."""
    import json

    import torch

    from benchmark.params import RunConfig
    from benchmark.run import run

    cfg = RunConfig(
        model="betavae", max_steps=1, score_preset="none", final_preset="none", progress=False
    )
    cfg.data = dataset_k5
    cfg.out = tmp_path / "assigned"
    cfg.latent_dim = np.arange(3, 4)[0]
    cfg.seed = np.int64(1)
    cfg.lr = np.float32(0.5) * 1e-3
    cfg.device = torch.device("cpu")
    assert run(cfg)["status"] == "finished"
    assert (type(cfg.seed), type(cfg.lr), cfg.out) == (int, float, str(tmp_path / "assigned"))
    recorded = json.loads((tmp_path / "assigned" / "config.json").read_text())
    assert (recorded["seed"], recorded["latent_dim"], recorded["device"]) == (1, 3, "cpu")


@pytest.mark.parametrize(
    ("configs", "message"),
    [
        (None, "run_ensemble takes a list of run configs .*, got None"),
        (
            {"model": "betavae", "data": "x.h5"},
            r"run_ensemble takes a list .*, got \{'model': .*; for one run use benchmark.run.run",
        ),
        ("betavae", "run_ensemble takes a list of run configs .*, got 'betavae'"),
        ([None], r"configs\[0\]: a run config must be a RunConfig or a mapping .* got None"),
        ([{"model": "betavae", "data": "x.h5"}, "vae"], r"configs\[1\]: .* got 'vae'"),
    ],
)
def test_run_ensemble_names_configs_that_are_no_list_of_configs(configs, message):
    """One config given alone was read key by key ("dictionary update sequence element #0 has
    length 1; 2 is required"), a RunConfig was "not iterable", and a member that is no config
    was Python's TypeError from dict(None), naming neither the argument nor the member."""
    from benchmark.ensemble import run_ensemble
    from benchmark.params import RunConfig

    with pytest.raises(SpecError, match=message):
        run_ensemble(configs)
    with pytest.raises(SpecError, match="run_ensemble takes a list .* got RunConfig"):
        run_ensemble(RunConfig(model="betavae", data="x.h5"))


def test_run_ensemble_names_two_members_of_one_folder_before_loading_data(
    dataset_k5, tmp_path, monkeypatch
):
    """Two members given one --out were named only after the whole training set had been
    read into memory (minutes for a large file); the folders are known from the configs."""
    import benchmark.ensemble.runner as runner
    from benchmark.ensemble import run_ensemble

    def loading(*args, **kwargs):
        raise AssertionError("the training set was loaded before the folders were checked")

    monkeypatch.setattr(runner, "load_training_set", loading)
    same = str(tmp_path / "one")
    members = [
        {"model": "betavae", "data": str(dataset_k5), "out": same, "seed": seed} for seed in (0, 1)
    ]
    with pytest.raises(SpecError, match="two ensemble members would write the same run folder"):
        run_ensemble(members)
    assert not (tmp_path / "one").exists()


@pytest.mark.parametrize("value", ["no", 0])
def test_run_ensemble_and_run_sweep_name_a_progress_flag_that_is_no_bool(
    dataset_k5, tmp_path, value
):
    """``progress="no"`` was truthy: the ensemble drew its bars; a sweep drew them too, and
    would have written its folder before reaching the build's own check. None keeps meaning
    "as the configs say" for run_ensemble."""
    from sweep_helpers import tiny_spec

    from benchmark.ensemble import run_ensemble
    from benchmark.sweep import load_sweep, run_sweep

    members = [
        {
            "model": "betavae",
            "data": str(dataset_k5),
            "out": str(tmp_path / f"s{seed}"),
            "seed": seed,
            "max_steps": 2,
            "score_preset": "none",
            "final_preset": "none",
        }
        for seed in (0, 1)
    ]
    with pytest.raises(SpecError, match=f"progress must be True or False, got {value!r}"):
        run_ensemble(members, progress=value)
    plan = load_sweep(tiny_spec("tiny", [0]))
    with pytest.raises(SpecError, match=f"progress must be True or False, got {value!r}"):
        run_sweep(plan, out=tmp_path / "sweep", workers=1, progress=value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s, g: s.random_samples("train", -1, g), r"n must be a whole number >= 0, got -1"),
        (lambda s, g: s.variance_images(-5, g), r"n must be a whole number >= 0, got -5"),
        (lambda s, g: s.kim_mnih_votes("eval", 2.0, 4, g), r"n must be .*, got 2.0"),
        (lambda s, g: s.higgins_pairs("train", 2, 0, g), r"batch_size must be .* >= 1, got 0"),
        (lambda s, g: s.kim_mnih_votes("train", True, 4, g), r"n must be .*, got True"),
    ],
)
def test_metric_sources_name_sizes_they_cannot_take(dataset_k5, oracle, call, message):
    """A negative n sliced a stored set as ``[:n]``: all but its last rows, scored as if asked
    for. Stored and live sources refuse the same sizes."""
    from benchmark.metrics.sources import OracleSource, StoredSource

    stored = StoredSource.open(dataset_k5)
    try:
        for source in (stored, OracleSource(oracle)):
            with pytest.raises(SpecError, match=message):
                call(source, np.random.default_rng(0))
    finally:
        stored.close()


def test_run_ensemble_names_its_engine_argument(dataset_k5, tmp_path):
    """The line named an --ensemble-engine option that no command has; the argument is
    run_ensemble's (and train_ensemble's) engine."""
    from benchmark.ensemble import run_ensemble

    config = {"model": "betavae", "data": dataset_k5, "out": str(tmp_path / "c"), "max_steps": 1}
    with pytest.raises(SpecError, match=r"^engine must be one of auto, loop, vmap, got 'gpu'"):
        run_ensemble([config], engine="gpu")
    assert list(tmp_path.iterdir()) == []


# --- the oracle: sampling, construction, pickling -------------------------------------------


@pytest.mark.parametrize(
    ("n", "rng", "error", "message"),
    [
        (3, 0, TypeError, r"rng must be a numpy.random.Generator \(np.random.default_rng\(seed"),
        (3, None, TypeError, "rng must be a numpy.random.Generator .* got NoneType"),
        (
            3,
            np.random.RandomState(0),
            TypeError,
            "rng must be .* got RandomState; .*GroundTruthAdapter",
        ),
        (-1, np.random.default_rng(0), ValueError, "n must be an integer >= 0, got -1"),
        (2.5, np.random.default_rng(0), ValueError, "n must be an integer >= 0, got 2.5"),
    ],
)
def test_sampling_names_a_bad_argument(oracle, grid_oracle, n, rng, error, message):
    """An int seed, a RandomState or None failed deep in numpy ("'int' object has no attribute
    'uniform'"), as did a negative or fractional n; the dSprites/3dshapes oracles likewise."""
    for source in (oracle, grid_oracle):
        with pytest.raises(error, match=f"sample_factors: {message}"):
            source.sample_factors(n, rng)
        with pytest.raises(error, match=f"sample_column: {message}"):
            source.sample_column(0, n, rng)


@pytest.mark.parametrize("k", [-1, 5])
def test_sample_column_names_a_factor_that_is_not_one(oracle, k):
    """-1 drew the last factor without a word; 5 was an IndexError from a tuple."""
    with pytest.raises(ValueError, match=f"k must be in 0..4 \\(pos_x, .*\\), got {k}"):
        oracle.sample_column(k, 3, np.random.default_rng(0))


@pytest.fixture(scope="module")
def grid_oracle(tmp_path_factory):
    from benchmark.datasets import open_dsprites
    from benchmark.datasets.testing import write_dsprites_npz

    path = write_dsprites_npz(tmp_path_factory.mktemp("grid") / "dsprites.npz")
    with open_dsprites(path) as grid:
        yield grid


def test_an_oracle_is_made_from_a_spec_and_pickles_without_its_renderer(oracle):
    import pickle

    with pytest.raises(TypeError, match=r"Oracle takes a DatasetSpec, got str; .*from_file"):
        Oracle("factors5.h5")
    factors = oracle.sample_factors(4, np.random.default_rng(1))
    expected = oracle.render(factors)  # the renderer (a cairo surface) exists now
    clone = pickle.loads(pickle.dumps(oracle))  # what a DataLoader worker or a pool receives
    np.testing.assert_array_equal(clone.render(factors), expected)


# --- what evaluate() is given ----------------------------------------------------------------


def test_evaluate_takes_one_metric_name_as_a_string_and_refuses_none(dataset_k5):
    """metrics="mig" was read letter by letter ("metrics: got 'm'"); metrics=[] returned a
    dict without a single score."""
    from benchmark.metrics import evaluate

    one = evaluate(dataset_k5, _pixel_means, 0, "stored", metrics="mig")
    listed = evaluate(dataset_k5, _pixel_means, 0, "stored", metrics=["mig"])
    assert one["mig"] == listed["mig"] and "kim_mnih" not in one
    with pytest.raises(SpecError, match="metrics is empty; name at least one of kim_mnih"):
        evaluate(dataset_k5, _pixel_means, 0, "stored", metrics=[])
    with pytest.raises(SpecError, match="metrics must be a metric name or a list .* got 5"):
        evaluate(dataset_k5, _pixel_means, 0, "stored", metrics=5)  # was "'int' object is not"


@pytest.mark.parametrize("dci_model", ["xgb", None, 5])
def test_evaluate_names_a_dci_model_it_cannot_use_before_encoding(dataset_k5, dci_model):
    """It was refused by dci() itself, after Kim–Mnih, Higgins and the shared samples had been
    read and encoded (2.9 million images at the full preset)."""
    from benchmark.metrics import evaluate

    encoded: list[int] = []

    def counting(images: np.ndarray) -> np.ndarray:
        encoded.append(len(images))
        return _pixel_means(images)

    with pytest.raises(SpecError, match="dci_model: got .*; allowed: gbt, forest"):
        evaluate(dataset_k5, counting, 0, "stored", dci_model=dci_model)
    assert encoded == []


@pytest.mark.parametrize("metric", ["kim_mnih", "higgins", "mig"])
@pytest.mark.parametrize("size", [0, -4, 2.5, True, "8"])
def test_evaluate_names_an_encode_batch_size_it_cannot_use(dataset_k5, metric, size):
    """It was a RepresentationError, "encode batch size must be ...": the words blamed the
    representation and named no argument the caller had passed."""
    from benchmark.metrics import evaluate

    encoded: list[int] = []

    def counting(images: np.ndarray) -> np.ndarray:
        encoded.append(len(images))
        return _pixel_means(images)

    with pytest.raises(SpecError, match=r"^encode_batch_size must be an integer >= 1, got "):
        evaluate(dataset_k5, counting, 0, "stored", metrics=metric, encode_batch_size=size)
    assert encoded == []


def test_evaluate_takes_a_data_handle_and_names_a_closed_file(dataset_k5):
    """open_data(...)'s handle was "live oracle DataHandle does not implement the ground-truth
    contract"; a closed h5py file was h5py's "Not a file or file object"."""
    import h5py

    from benchmark.datasets import open_data
    from benchmark.metrics import evaluate
    from spritegen.errors import DatasetError

    by_path = evaluate(dataset_k5, _pixel_means, 0, "stored", metrics=["kim_mnih"])
    with open_data(dataset_k5) as handle:
        by_handle = evaluate(handle, _pixel_means, 0, "stored", metrics=["kim_mnih"])
    assert by_handle["details"]["kim_mnih"]["votes"] == by_path["details"]["kim_mnih"]["votes"]
    with h5py.File(dataset_k5, "r") as f:
        pass
    with pytest.raises(DatasetError, match="the h5py file given as source is closed"):
        evaluate(f, _pixel_means, 0, "stored", metrics=["kim_mnih"])


# --- the disentanglement_lib adapter ---------------------------------------------------------


@pytest.mark.parametrize(
    ("bins", "message"),
    [
        (2.5, "bins for continuous factor 'pos_x' must be a positive integer, got 2.5"),
        (True, "bins for continuous factor 'pos_x' must be a positive integer, got True"),
        ([8, 8, 8, 8, None], "bins for continuous factor 'rotation' must be .* got None"),
    ],
)
def test_the_adapter_names_a_bad_bin_count(oracle, bins, message):
    """2.5 was "'float' object is not iterable", None a TypeError from int(), True one bin."""
    from spritegen.adapters import GroundTruthAdapter

    with pytest.raises(ValueError, match=message):
        GroundTruthAdapter(oracle, bins=bins)
    assert GroundTruthAdapter(oracle, bins=np.int64(4)).factors_num_values == [4, 4, 4, 3, 4]


def test_the_adapter_refuses_nan_factor_values(oracle):
    """factor_indices put NaN in bin 0 without a word."""
    from spritegen.adapters import GroundTruthAdapter

    data = GroundTruthAdapter(oracle, bins=8)
    values = oracle.sample_factors(3, np.random.default_rng(0)).astype(np.float64)
    indices = data.factor_indices(values)
    values[2, 4] = np.nan
    with pytest.raises(ValueError, match="factor 'rotation' is nan in row 2"):
        data.factor_indices(values)
    assert indices.shape == (3, 5) and indices.dtype == np.int64


# --- sample sizes computed with numpy ----------------------------------------------------------


def test_numpy_integer_sizes_are_the_integers_they_hold(dataset_k5):
    """np.int64 sizes were refused as "num_train must be an integer >= 1, got np.int64(20)"
    (the seed, an np.int64 too, was taken); results hold Python ints that JSON can write."""
    import json

    from benchmark.metrics import higgins, kim_mnih, mig

    sizes = dict(batch_size=16, num_train=20, num_eval=10)
    as_numpy = {k: np.int64(v) for k, v in sizes.items()}
    enc = np.int64(64)
    for fn, extra in ((kim_mnih, {"num_variance": 100}), (higgins, {})):
        plain = fn(dataset_k5, _pixel_means, 0, **sizes, **extra)
        numpy = fn(
            dataset_k5,
            _pixel_means,
            np.int64(0),
            encode_batch_size=enc,
            **as_numpy,
            **{k: np.int64(v) for k, v in extra.items()},
        )
        numpy.timings = plain.timings
        assert json.dumps(numpy.as_dict()) == json.dumps(plain.as_dict())
    result = mig(dataset_k5, _pixel_means, 0, num_train=np.int64(100), encode_batch_size=enc)
    assert json.loads(json.dumps(result.as_dict()))["num_train"] == 100


# --- builds from Python ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "workers", "error", "message"),
    [
        ("specs/factors3.yaml", 1, TypeError, "build takes a DatasetSpec .*, got str"),
        ({"factors": 2}, 1, TypeError, "build takes a DatasetSpec .*, got dict"),
        (
            None,
            1.5,
            SpecError,
            r"workers must be an integer >= 1 \(or None: one per core\), got 1.5",
        ),
        (None, 0, SpecError, "workers must be an integer >= 1 .* got 0"),
        (None, -2, SpecError, "workers must be an integer >= 1 .* got -2"),
    ],
)
def test_build_refuses_what_it_cannot_use_before_writing(tmp_path, spec, workers, error, message):
    """A YAML path or a dict as spec was an AttributeError ('str' object has no attribute
    'evaluation'); workers=1.5 failed inside multiprocessing and left OUT.parts behind, and 0 or
    -2 were quietly taken as 1."""
    from spritegen.build import build
    from spritegen.spec import default_spec, with_overrides

    if spec is None:
        spec = with_overrides(default_spec(2), {"n": 300, "eval_preset": "none"})
    with pytest.raises(error, match=message):
        build(spec, tmp_path / "k2.h5", workers=workers, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag", ["force", "progress"])
@pytest.mark.parametrize("value", ["no", "False", 0, None])
def test_build_refuses_flags_that_are_no_bool_before_touching_the_output(tmp_path, flag, value):
    """``force="no"`` (a flag read from a config file as text) was truthy: build replaced an
    existing dataset, and would have discarded a resumable build's saved chunks."""
    import shutil

    from spritegen.build import build
    from spritegen.spec import default_spec, with_overrides

    spec = with_overrides(default_spec(2), {"n": 300, "eval_preset": "none"})
    out = tmp_path / "k2.h5"
    kept = tmp_path / "kept.h5"
    build(spec, kept, workers=1, progress=False)
    shutil.copyfile(kept, out)
    before = out.read_bytes()
    flags = {"force": False, "progress": False, flag: value}
    with pytest.raises(SpecError, match=f"{flag} must be True or False, got {value!r}"):
        build(with_overrides(spec, {"seed": 1}), out, workers=1, **flags)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k2.h5", "kept.h5"]


# -- the package's own names ------------------------------------------------------------------


def test_every_public_name_of_the_package_means_one_thing_whatever_was_imported_before():
    """``spritegen.__all__`` names the same objects in a fresh interpreter and after every
    submodule is imported (``spritegen.build`` used to be the function first, the module once
    the CLI or anything else had imported it)."""
    import subprocess
    import sys

    script = (
        "import importlib, pkgutil, spritegen\n"
        "def names():\n"
        "    return {n: getattr(spritegen, n) for n in spritegen.__all__}\n"
        "before = names()\n"
        "for m in pkgutil.iter_modules(spritegen.__path__):\n"
        "    if m.name not in ('__main__', 'torchdata'):\n"
        "        importlib.import_module('spritegen.' + m.name)\n"
        "after = names()\n"
        "print(sorted(n for n in before if before[n] is not after[n]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- specs built from numpy values -------------------------------------------------------------


def test_a_spec_built_from_numpy_values_is_the_one_built_from_python_values():
    """``default_spec(np.int64(5))`` and ``with_overrides(spec, {"n": np.int64(300)})`` were
    refused ("allowed: an integer in 2..7"), and an np.float32 fixed value was not "a number":
    a script's loop over ``np.arange`` could not build its specs. np.bool_ stays refused."""
    from spritegen.spec import default_spec, spec_from_mapping, with_overrides

    for k in np.arange(2, 7):
        assert default_spec(k).digest() == default_spec(int(k)).digest()
    assert default_spec(np.int64(5), np.str_("2d")) == default_spec(5, "2d")

    base = default_spec(3)
    numpy = {"n": np.int64(300), "seed": np.uint32(7), "image_size": np.int16(32)}
    python = {"n": 300, "seed": 7, "image_size": 32}
    assert with_overrides(base, numpy).digest() == with_overrides(base, python).digest()
    # factors that become active lose their fixed values for a numpy count too
    assert with_overrides(base, {"factors": np.int64(5)}) == with_overrides(base, {"factors": 5})

    raw = {
        "factors": 3,
        "n": 500,
        "fixed": {"rotation": 0.25},
        "storage": {"chunk_images": 64},
        "evaluation": {"preset": "tiny", "batch_size": 8},
    }
    numpy_raw = {
        "factors": np.int64(3),
        "n": np.int32(500),
        "fixed": {"rotation": np.float32(0.25)},
        "storage": {"chunk_images": np.uint16(64)},
        "evaluation": {"preset": np.str_("tiny"), "batch_size": np.int64(8)},
    }
    assert spec_from_mapping(numpy_raw).to_yaml() == spec_from_mapping(raw).to_yaml()

    with pytest.raises(SpecError, match=r"'factors': got True; allowed: an integer"):
        default_spec(np.bool_(True))
    with pytest.raises(SpecError, match=r"'n': got True; allowed: an integer"):
        with_overrides(base, {"n": np.bool_(True)})
    with pytest.raises(SpecError, match=r"'fixed.rotation': got False; allowed: a number"):
        spec_from_mapping({**raw, "fixed": {"rotation": np.bool_(False)}})


@pytest.mark.parametrize("overrides", [[("n", 300)], "n=300", 300])
def test_overrides_that_are_no_mapping_are_named(overrides):
    """A list of pairs was an AttributeError ('list' object has no attribute 'items')."""
    from spritegen.spec import default_spec, with_overrides

    with pytest.raises(SpecError, match=r"overrides must be a mapping of override names \(n, "):
        with_overrides(default_spec(2), overrides)


@pytest.mark.parametrize("spec", [{"factors": 5}, "specs/factors5.yaml", None])
def test_overrides_of_something_that_is_no_spec_are_named(spec):
    """A mapping, a path or None was an AttributeError ('dict' object has no attribute
    'to_dict')."""
    from spritegen.spec import with_overrides

    with pytest.raises(TypeError, match="with_overrides takes a DatasetSpec, got .*; make one"):
        with_overrides(spec, {"n": 300})


def test_a_file_with_damaged_hdf5_structure_is_a_dataset_error_to_every_reader(
    dataset_k2, tmp_path
):
    """One byte inverted in a local heap of the file (its free-list offset): HDF5 still opens
    it, then fails looking members up. ``open_dataset``, ``Oracle.from_file`` and
    ``SpritegenDataset`` raised h5py's ``RuntimeError: ... (bad heap free list)``; a
    ``DatasetError`` naming the file says what it is, before any work."""
    from spritegen.datafile import open_dataset
    from spritegen.errors import DatasetError
    from spritegen.torchdata import SpritegenDataset

    blob = bytearray(dataset_k2.read_bytes())
    blob[blob.index(b"HEAP") + 16] ^= 0xFF
    path = tmp_path / "data.h5"
    path.write_bytes(bytes(blob))
    message = r"data.h5: the file is damaged: HDF5 cannot read its structure \(.*bad heap"
    for reader in (open_dataset, Oracle.from_file, SpritegenDataset):
        with pytest.raises(DatasetError, match=message):
            reader(path)


@pytest.mark.parametrize("spec", [{"factors": 5}, None, 5])
def test_load_spec_of_something_that_is_no_path_is_named(spec):
    """A mapping was pathlib's "expected str, bytes or os.PathLike object, not dict"."""
    from spritegen.spec import load_spec

    with pytest.raises(TypeError, match=r"load_spec takes the path of a YAML spec file, got "):
        load_spec(spec)


@pytest.mark.parametrize("kind", ["none", "bytes"])
def test_readers_of_a_dataset_file_name_a_path_that_is_no_text(dataset_k2, kind):
    """None, or a real file's path as bytes, was pathlib's "expected str, bytes or os.PathLike
    object, not NoneType" (bytes named as allowed) or "argument should be a str object", and
    open_data's "None: no such spritegen dataset"; each reader now names itself and what it
    takes (``spritegen.datafile.dataset_path``). The same path as text still opens."""
    from benchmark.datasets import open_data
    from spritegen.datafile import open_dataset
    from spritegen.torchdata import SpritegenDataset

    readers = {
        "open_data": open_data,
        "open_dataset": open_dataset,
        "Oracle.from_file": Oracle.from_file,
        "SpritegenDataset": SpritegenDataset,
    }
    given = None if kind == "none" else bytes(dataset_k2)
    shown = "NoneType" if given is None else repr(given)[:20]
    for name, reader in readers.items():
        with pytest.raises(TypeError) as info:
            reader(given)
        message = str(info.value)
        assert message.startswith(f"{name} takes the path of a dataset file, as str or "), message
        assert "pathlib.Path" in message and shown in message, message
        opened = reader(str(dataset_k2))
        if hasattr(opened, "close"):
            opened.close()
