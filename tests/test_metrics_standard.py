"""MIG, DCI, SAP, modularity/explicitness: known answers on real spritegen data and on arrays.

The representations are exact functions of the rendered images (``tests/metrics_helpers``): the
identity maps an image to the factors it was rendered from, so its scores are known to be high;
a constant one carries no information; a random rotation mixes the factors.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from metrics_helpers import (
    FactorLookup,
    RecordingOracle,
    Transformed,
    lookup_from_file,
    random_rotation,
)

from benchmark.metrics import (
    EncodedSamples,
    dci,
    encode_samples,
    evaluate,
    mig,
    modularity_explicitness,
    sap,
)
from benchmark.metrics.dci import completeness, disentanglement
from benchmark.metrics.mig import mig_from_mi
from benchmark.metrics.modularity import modularity_from_mi
from benchmark.metrics.samples import discretize_factors, histogram_discretize
from benchmark.metrics.sap import top_two_gap
from spritegen.errors import DatasetError

K = 4  # pos_x, pos_y, scale (continuous) and shape (3 classes)
N_TRAIN, N_EVAL = 800, 400
EVAL_SIZES = {
    "batch_size": 8,
    "variance": 50,
    "kim_mnih_train": 10,
    "kim_mnih_eval": 10,
    "higgins_train": 10,
    "higgins_eval": 10,
    "random_train": N_TRAIN,
    "random_eval": N_EVAL,
}


def _spec(**evaluation):
    from spritegen.spec import spec_from_mapping

    sizes = {**EVAL_SIZES, **evaluation}
    return spec_from_mapping({"factors": K, "n": 32, "seed": 3, "evaluation": sizes})


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    from spritegen.build import build

    out = tmp_path_factory.mktemp("standard") / "k4.h5"
    return build(_spec(), out, workers=1, progress=False)


@pytest.fixture(scope="module")
def lookup(data_file) -> FactorLookup:
    return lookup_from_file(data_file)


@pytest.fixture(scope="module")
def samples(data_file, lookup) -> dict[str, EncodedSamples]:
    """The stored sample sets encoded once per representation the tests compare."""
    with h5py.File(data_file, "r") as f:
        scale = np.diag(1.0 / f["eval/random/train/factors"][()].std(axis=0))
    reps = {
        "identity": Transformed(lookup),
        "rotation": Transformed(lookup, random_rotation(K, 0) @ scale),
        "constant": lambda images: np.zeros((len(images), K)),
        # latents permuted and rescaled by powers of two (exact in floating point)
        "permuted": Transformed(lookup, np.diag([2.0, 0.25, 8.0, 0.5])[[2, 0, 3, 1]]),
    }
    return {
        name: encode_samples(data_file, rep, 0, num_train=N_TRAIN, num_eval=N_EVAL)
        for name, rep in reps.items()
    }


def _all(s: EncodedSamples, model: str = "forest") -> dict[str, float]:
    kw = dict(samples=s, num_train=s.num_train)
    m = modularity_explicitness(None, None, 0, num_eval=s.num_eval, **kw)
    d = dci(None, None, 0, num_eval=s.num_eval, model=model, **kw)
    return {
        "mig": mig(None, None, 0, **kw).score,
        "dci_disentanglement": d.disentanglement,
        "dci_completeness": d.completeness,
        "dci_informativeness": d.informativeness,
        "sap": sap(None, None, 0, num_eval=s.num_eval, **kw).score,
        "modularity": m.modularity,
        "explicitness": m.explicitness,
    }


@pytest.fixture(scope="module")
def scores(samples) -> dict[str, dict[str, float]]:
    return {name: _all(s) for name, s in samples.items()}


# ---------------------------------------------------------------------------------------------
# Known answers on real data


def test_identity_scores_high(scores):
    s = scores["identity"]
    assert s["mig"] >= 0.75, s
    assert s["dci_disentanglement"] >= 0.85 and s["dci_completeness"] >= 0.85, s
    assert s["modularity"] >= 0.9 and s["explicitness"] >= 0.9, s
    assert s["sap"] >= 0.1, s


def test_constant_scores_nothing(scores, samples):
    s = scores["constant"]
    assert s["mig"] == 0.0 and s["modularity"] == 0.0 and s["sap"] == 0.0
    assert s["dci_disentanglement"] <= 1e-6 and s["dci_completeness"] <= 1e-6
    assert s["explicitness"] == pytest.approx(0.5)  # an uninformed classifier's ROC-AUC
    # informativeness: the most frequent class of each factor, i.e. chance (20 bins, 3 shapes)
    assert s["dci_informativeness"] <= 0.2


def test_rotation_scores_below_identity(scores):
    ident, rot = scores["identity"], scores["rotation"]
    for key in ("mig", "dci_disentanglement", "dci_completeness"):
        assert rot[key] <= ident[key] - 0.2, (key, rot[key], ident[key])
    # discrete SAP is low even for the identity: a 1-D linear SVM cannot carve 20 ordered bins
    assert rot["sap"] <= ident["sap"] - 0.03
    # modularity only asks each latent to be dominated by one factor: a rotation of 4 factors
    # still mostly is, so the drop is smaller (a known leniency of the metric)
    assert rot["modularity"] <= ident["modularity"] - 0.05


def test_permuting_and_rescaling_latents(scores, samples):
    """MIG and modularity are defined on per-latent histograms: invariant up to summation order.
    Explicitness standardises latents first; DCI's trees split on order statistics: both agree
    up to solver tolerance and tie-breaking. SAP's linear SVMs are penalised (C = 0.01), so a
    latent's scale can move its accuracy a little."""
    a, b = scores["identity"], scores["permuted"]
    assert b["mig"] == pytest.approx(a["mig"], rel=1e-12)  # sums in another order
    assert b["modularity"] == pytest.approx(a["modularity"], rel=1e-12)
    assert b["sap"] == a["sap"] or abs(b["sap"] - a["sap"]) <= 0.02  # SVM penalty sees the scale
    assert b["explicitness"] == pytest.approx(a["explicitness"], abs=1e-3)
    assert b["dci_disentanglement"] == pytest.approx(a["dci_disentanglement"], abs=0.02)
    assert b["dci_informativeness"] == pytest.approx(a["dci_informativeness"], abs=0.02)


@pytest.mark.slow
def test_dci_gradient_boosted_trees_headline(samples):
    """The reference's importance model (slow: a smaller train set here)."""
    kw = dict(num_train=200, num_eval=100, model="gbt")
    ident = dci(None, None, 0, samples=samples["identity"], **kw)
    rot = dci(None, None, 0, samples=samples["rotation"], **kw)
    assert ident.model == "gbt" and ident.disentanglement >= 0.85 and ident.completeness >= 0.85
    assert rot.disentanglement <= ident.disentanglement - 0.3
    importance = np.array(ident.importance)
    assert (importance.argmax(axis=0) == np.arange(K)).all()  # latent k explains factor k


def test_explicitness_fits_give_the_same_scores_with_one_blas_thread_or_several(samples):
    """modularity_explicitness fits with one BLAS thread for speed; that must not move a score."""
    from threadpoolctl import threadpool_limits

    from benchmark.metrics.modularity import explicitness_per_factor

    s = samples["rotation"]
    y_tr, y_ev, _ = discretize_factors(s.y_train, s.y_eval)
    x_tr = (s.z_train - s.z_train.mean(axis=0)) / s.z_train.std(axis=0)
    x_ev = (s.z_eval - s.z_train.mean(axis=0)) / s.z_train.std(axis=0)
    by_threads = {}
    for threads in (1, 4):
        with threadpool_limits(threads, user_api="blas"):
            by_threads[threads] = [
                explicitness_per_factor(x_tr, y_tr[:, k], x_ev, y_ev[:, k]) for k in range(K)
            ]
    assert by_threads[1] == by_threads[4]
    m = modularity_explicitness(
        None, None, 0, samples=s, num_train=s.num_train, num_eval=s.num_eval
    )
    assert m.per_factor_explicitness == [auc for _, auc in by_threads[4]]


def test_stored_scores_ignore_seed_and_match_samples(data_file, lookup, samples, scores):
    rep = Transformed(lookup)
    out = evaluate(data_file, rep, 0, "stored", dci_model="forest")
    again = evaluate(data_file, rep, 9, "stored", dci_model="forest")
    for key, value in scores["identity"].items():
        assert out[key] == again[key] == value, key
    assert set(out["times"]) == {
        "kim_mnih",
        "higgins",
        "samples",
        "mig",
        "dci",
        "sap",
        "modularity",
        "linear_r2",
    }
    assert out["details"]["preset"]["num_samples_train"] == N_TRAIN
    json.dumps(out)


def test_live_oracle_same_seed_same_score(data_file):
    from benchmark.metrics import Preset
    from spritegen.oracle import Oracle

    oracle = Oracle.from_file(data_file)
    preset = Preset("t", 8, 10, 10, 50, num_samples_train=400, num_samples_eval=200)

    def run(seed):
        lookup = FactorLookup()
        rep = Transformed(lookup)
        source = RecordingOracle(oracle, lookup)
        metrics = ("mig", "sap", "modularity")
        return evaluate(source, rep, seed, preset, metrics=metrics)

    a, b, c = run(4), run(4), run(5)
    assert a["mig"] == b["mig"] and a["sap"] == b["sap"] and a["explicitness"] == b["explicitness"]
    assert a["details"]["mig"]["mutual_info"] != c["details"]["mig"]["mutual_info"]
    assert a["mig"] >= 0.7 and a["details"]["mig"]["source"]["kind"] == "oracle"
    assert "kim_mnih" not in a and "dci_disentanglement" not in a


def test_version_1_file_is_scored_by_its_live_oracle(data_file, tmp_path, monkeypatch):
    """A file written before the sample sets existed: they are rendered live from its spec."""
    import shutil

    import benchmark.metrics.sources as sources

    old = tmp_path / "v1.h5"
    shutil.copy(data_file, old)
    with h5py.File(old, "r+") as f:  # as version 1 wrote it: its digest without those sets
        from spritegen.verify import content_checksum

        del f["eval/random"], f["checksums/eval/random"]
        f.attrs["format_version"] = 1
        f.attrs["content_sha256"] = content_checksum(f)
    lookup = lookup_from_file(old)
    real = sources.OracleSource

    class Recording(real):  # the fallback's renders go into the lookup, to invert them
        def __init__(self, oracle):
            super().__init__(RecordingOracle(oracle, lookup))

    monkeypatch.setattr(sources, "OracleSource", Recording)
    out = evaluate(old, Transformed(lookup), 0, "stored", metrics=["kim_mnih", "mig"])
    assert out["details"]["preset"]["num_samples_train"] == 10_000  # the full sizes
    assert "live oracle" in out["details"]["mig"]["source"]["train_fallback"]
    assert out["mig"] >= 0.75 and out["kim_mnih"] >= 0.9


def test_too_small_stored_sample_set_is_named(data_file, lookup):
    with pytest.raises(DatasetError, match=r"/eval/random/train holds 800 images but 900"):
        mig(data_file, Transformed(lookup), 0, num_train=900)


def test_sample_sets_do_not_move_older_streams(data_file, tmp_path):
    """The sample sets come from new seed children: everything else is byte-identical to a
    build without them."""
    from spritegen.build import build

    bare = build(_spec(random_train=0, random_eval=0), tmp_path / "bare.h5", progress=False)
    with h5py.File(data_file, "r") as new, h5py.File(bare, "r") as old:
        assert "eval/random" not in old
        names = []
        old.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        assert "images" in names and "eval/kim_mnih/train/images" in names
        for name in names:
            if name.startswith("metadata"):
                continue
            assert np.array_equal(new[name][()], old[name][()]), name
        assert new.attrs["format_version"] == 2


# ---------------------------------------------------------------------------------------------
# The definitions on hand-built arrays


def _arrays(z, y, z_eval=None, y_eval=None):
    return EncodedSamples(
        z, y, z if z_eval is None else z_eval, y if y_eval is None else y_eval, None, {}
    )


def test_mig_of_an_exact_copy_of_one_factor():
    rng = np.random.default_rng(0)
    y = rng.uniform(size=(5000, 2))
    z = np.column_stack([y[:, 0], rng.normal(size=5000)])
    r = mig(None, None, 0, samples=_arrays(z, y), num_train=5000)
    mi, h = np.array(r.mutual_info), np.array(r.factor_entropy)
    assert mi[0, 0] == pytest.approx(h[0])  # same values, same 20 bins: I(z0; y0) = H(y0)
    assert r.gaps[0] == pytest.approx(1 - mi[1, 0] / h[0]) and r.gaps[0] >= 0.95
    assert r.gaps[1] <= 0.05  # factor 1 is in no latent
    assert r.score == pytest.approx(np.mean(r.gaps))


def test_mig_gap_and_modularity_formulas():
    mi = np.array([[1.0, 0.0], [0.5, 0.0], [0.0, 2.0]])
    score, gaps = mig_from_mi(mi, np.array([2.0, 4.0]))
    assert gaps.tolist() == [0.25, 0.5] and score == 0.375
    mod, per = modularity_from_mi(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))
    assert per.tolist() == [1.0, 0.0, 0.0] and mod == pytest.approx(1 / 3)


def test_dci_and_sap_formulas():
    assert disentanglement(np.eye(3)) == pytest.approx(1.0)
    assert completeness(np.eye(3)) == pytest.approx(1.0)
    assert disentanglement(np.ones((3, 3))) == pytest.approx(0.0, abs=1e-9)
    assert completeness(np.ones((3, 3))) == pytest.approx(0.0, abs=1e-9)
    # one latent explaining two factors equally: completeness 1, disentanglement 0 for it
    r = np.array([[1.0, 1.0], [0.0, 0.0]])
    assert disentanglement(r) == pytest.approx(0.0, abs=1e-6)
    assert completeness(r) == pytest.approx(1.0)
    assert top_two_gap(np.array([[0.9, 0.2], [0.1, 0.6], [0.0, 0.5]])) == pytest.approx(0.45)


def test_a_score_that_rounds_to_zero_from_below_prints_as_zero():
    """DCI of importances spread evenly over five factors is 1 - H_5 = -2.2e-16 in float64 (kept,
    as disentanglement_lib keeps it); bench score, bench run and the report tables print it as
    zero, not -0.0000."""
    from benchmark.commands.score import summary_lines
    from benchmark.report.tables import _cell_text

    value = disentanglement(np.ones((3, 5)))
    assert abs(value) < 1e-12
    for v in (value, -abs(value), -1e-9):
        result = {
            "dci_disentanglement": v,
            "dci_completeness": v,
            "dci_informativeness": 0.5,
            "details": {"dci": {"model": "gbt"}},
            "times": {"dci": 1.0},
            "preset": "quick",
            "seed": 0,
            "read_s": 0.1,
            "encode_s": 0.1,
            "metric_s": 1.0,
        }
        lines = summary_lines(result)
        assert lines[0] == "dci_disentanglement  0.0000  (gbt importances; time 1.0 s)"
        assert lines[1] == "dci_completeness     0.0000"
        assert _cell_text(v, 0.0, 3) == "0.000 ± 0.000 (n=3)"
    assert summary_lines({**result, "dci_completeness": -0.01})[1].endswith("-0.0100")


def test_discretisation():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1000, 2))
    binned = histogram_discretize(x, 20)
    for d in range(2):  # disentanglement_lib's histogram discretizer, 0-based
        reference = np.digitize(x[:, d], np.histogram(x[:, d], 20)[1][:-1]) - 1
        assert np.array_equal(binned[:, d], reference)
    y = np.column_stack([rng.uniform(size=1000), rng.integers(0, 3, size=1000)])
    train, ev, bins = discretize_factors(y, y[:10] + [[5.0, 0.2]], 20)
    assert bins.kinds == ["bins", "values"] and bins.num_classes == [20, 3]
    assert set(np.unique(train[:, 1])) == {0, 1, 2} and train[:, 0].max() == 19
    assert ev[:, 0].tolist() == [19] * 10  # beyond the train range: the last bin
    assert np.array_equal(ev[:, 1], train[:10, 1])  # nearest stored class
