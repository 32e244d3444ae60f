"""Our MIG, DCI, SAP and modularity/explicitness against disentanglement_lib 1.5's own functions.

Skipped unless disentanglement_lib is installed (it needs no TensorFlow for the metrics):

    pip install --no-deps disentanglement-lib==1.5
    pip install absl-py gin-config==0.4.0 scikit-learn six scipy

Two kinds of check, on a K=3 2D spritegen oracle (pos_x, pos_y, scale):

1. **Same samples, same numbers.** disentanglement_lib's private arithmetic (``_compute_mig``,
   ``_compute_dci``, ``_compute_sap``, ``modularity`` / ``explicitness_per_factor``) on exactly
   the latents and discretised factors our functions see. Agreement to 1e-9 (floating point)
   except DCI, whose trees disentanglement_lib fits without a random_state (tie-breaking only).
2. **Same source, own sampling.** disentanglement_lib's public ``compute_*`` on
   ``spritegen.adapters.GroundTruthAdapter`` (20 bins per factor, images drawn uniformly inside a
   bin, so both sides see the same continuous image distribution) against ours on the oracle.
   The two draw different samples, so they agree within sampling noise (seed-to-seed standard
   deviations of our scores at these sizes are <= 0.01, 0.018 for modularity with noise
   dimensions and for DCI on the entangled case) plus one systematic offset, measured at about
   0.02 on MIG: the adapter bins a factor over its known range, we over the sample's range like
   the latents (table in docs/metrics.md). The tolerances (0.03 to 0.1) cover both, and stay
   well below the distance between cases (identity MIG 0.97, entangled 0.38).
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from metrics_helpers import FactorLookup, RecordingOracle, Transformed, random_rotation

pytest.importorskip("gin")
pytest.importorskip("sklearn")
sys.modules.setdefault("gin.tf", types.ModuleType("gin.tf"))
dlib_metrics = pytest.importorskip("disentanglement_lib.evaluation.metrics")

import gin  # noqa: E402
from disentanglement_lib.evaluation.metrics import (  # noqa: E402
    beta_vae as dlib_beta_vae,
)
from disentanglement_lib.evaluation.metrics import (  # noqa: E402
    dci as dlib_dci,
)
from disentanglement_lib.evaluation.metrics import (  # noqa: E402
    mig as dlib_mig,
)
from disentanglement_lib.evaluation.metrics import (  # noqa: E402
    modularity_explicitness as dlib_mod,
)
from disentanglement_lib.evaluation.metrics import (  # noqa: E402
    sap_score as dlib_sap,
)
from disentanglement_lib.evaluation.metrics import utils as dlib_utils  # noqa: E402

from benchmark.metrics import (  # noqa: E402
    EncodedSamples,
    dci,
    encode_samples,
    higgins,
    mig,
    modularity_explicitness,
    sap,
)
from benchmark.metrics.samples import discretize_factors  # noqa: E402

pytestmark = pytest.mark.slow  # a minute or two of disentanglement_lib's metrics

K = 3
NUM_BINS = 20
N_TRAIN, N_TEST = 2000, 1000  # MIG, SAP, modularity
N_DCI_TRAIN, N_DCI_TEST = 400, 200
DCI_BINS = 5  # gradient-boosted trees fit one tree per class per stage: 20 classes are slow
TOL = {"mig": 0.05, "sap": 0.05, "modularity": 0.05, "explicitness": 0.03}
TOL_DCI = {"disentanglement": 0.1, "completeness": 0.1, "informativeness": 0.1}


@pytest.fixture(scope="module", autouse=True)
def gin_study_config():
    """The unsupervised study's bindings for the discretiser (gin-bound in disentanglement_lib)."""
    gin.clear_config()
    gin.bind_parameter("discretizer.discretizer_fn", dlib_utils._histogram_discretize)
    gin.bind_parameter("discretizer.num_bins", NUM_BINS)
    yield
    gin.clear_config()


@pytest.fixture(scope="module")
def oracle():
    from spritegen.oracle import Oracle
    from spritegen.spec import spec_from_mapping

    return Oracle.from_spec(
        spec_from_mapping({"factors": K, "n": 16, "seed": 0, "evaluation": "none"})
    )


def _pixels(images: np.ndarray) -> np.ndarray:
    """A real pixel encoder: the intensity-weighted centroid and mass of the sprite."""
    x = images.astype(np.float64).mean(axis=3)
    mass = x.sum(axis=(1, 2)) + 1e-9
    rows, cols = np.arange(x.shape[1]), np.arange(x.shape[2])
    cy = (x.sum(axis=2) * rows).sum(axis=1) / mass
    cx = (x.sum(axis=1) * cols).sum(axis=1) / mass
    return np.column_stack([cx, cy, np.sqrt(mass)])


CASES = {
    "identity": lambda lk: Transformed(lk),
    "entangled": lambda lk: Transformed(lk, random_rotation(K, 0) @ np.diag([3.5, 3.5, 3.5])),
    "noise_dims": lambda lk: Transformed(lk, noise_dims=2, noise_seed=1),
    "collapsed_dims": lambda lk: Transformed(lk, np.vstack([np.eye(K), np.zeros((2, K))])),
    "pixels": lambda lk: _pixels,
}


def _ours(oracle, case: str, seed: int, n_train: int, n_test: int) -> EncodedSamples:
    lookup = FactorLookup()
    return encode_samples(
        RecordingOracle(oracle, lookup),
        CASES[case](lookup),
        seed,
        num_train=n_train,
        num_eval=n_test,
    )


class _DlibView:
    """disentanglement_lib's view of the same representation: float images in [0, 1] in."""

    def __init__(
        self, oracle, case: str, bins: int = NUM_BINS, within_bin: str = "uniform"
    ) -> None:
        from spritegen.adapters import GroundTruthAdapter

        lookup = FactorLookup()
        recording = RecordingOracle(oracle, lookup)
        for name in ("space", "factor_names", "factors_num_classes", "observation_shape"):
            setattr(recording, name, getattr(oracle, name))  # what the adapter reads
        self.data = GroundTruthAdapter(recording, bins=bins, within_bin=within_bin)
        self._represent = CASES[case](lookup)

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        images = np.rint(np.asarray(observations) * 255).astype(np.uint8)
        return self._represent(images)


# ---------------------------------------------------------------------------------------------
# 1. Same samples: the arithmetic is disentanglement_lib's


@pytest.mark.parametrize("case", list(CASES))
def test_same_samples_same_numbers(oracle, case):
    s = _ours(oracle, case, 0, N_TRAIN, N_TEST)
    y_tr, y_te, _ = discretize_factors(s.y_train, s.y_eval, NUM_BINS)
    mus, mus_test, ys, ys_test = s.z_train.T, s.z_eval.T, y_tr.T, y_te.T
    kw = dict(samples=s, num_train=N_TRAIN)

    ref = dlib_mig._compute_mig(mus, ys)["discrete_mig"]
    assert mig(None, None, 0, **kw).score == pytest.approx(ref, abs=1e-9)

    ref = dlib_sap._compute_sap(mus, ys, mus_test, ys_test, False)["SAP_score"]
    assert sap(None, None, 0, num_eval=N_TEST, **kw).score == pytest.approx(ref, abs=1e-9)

    ours = modularity_explicitness(None, None, 0, num_eval=N_TEST, **kw)
    mi = dlib_utils.discrete_mutual_info(dlib_utils.make_discretizer(mus), ys)
    assert ours.modularity == pytest.approx(dlib_mod.modularity(mi), abs=1e-9)
    if np.all(mus.std(axis=1) > 0):  # disentanglement_lib divides by a collapsed latent's std 0
        norm, mean, std = dlib_utils.normalize_data(mus)
        norm_test, _, _ = dlib_utils.normalize_data(mus_test, mean, std)
        ref_aucs = [
            dlib_mod.explicitness_per_factor(norm, ys[k], norm_test, ys_test[k])[1]
            for k in range(K)
        ]
        assert ours.explicitness == pytest.approx(np.mean(ref_aucs), abs=1e-6)

    if case == "identity":
        small = dict(samples=s, num_train=N_DCI_TRAIN, num_eval=N_DCI_TEST, num_bins=DCI_BINS)
        d = dci(None, None, 0, **small)
        y5, y5_test, _ = discretize_factors(
            s.y_train[:N_DCI_TRAIN], s.y_eval[:N_DCI_TEST], DCI_BINS
        )
        ref = dlib_dci._compute_dci(mus[:, :N_DCI_TRAIN], y5.T, mus_test[:, :N_DCI_TEST], y5_test.T)
        assert d.disentanglement == pytest.approx(ref["disentanglement"], abs=0.02)
        assert d.completeness == pytest.approx(ref["completeness"], abs=0.02)
        assert d.informativeness == pytest.approx(ref["informativeness_test"], abs=0.02)


# ---------------------------------------------------------------------------------------------
# 2. Same source, each library samples for itself


@pytest.mark.parametrize("case", list(CASES))
def test_public_functions_agree_within_sampling_noise(oracle, case):
    s = _ours(oracle, case, 1, N_TRAIN, N_TEST)
    kw = dict(samples=s, num_train=N_TRAIN)
    ours = {
        "mig": mig(None, None, 0, **kw).score,
        "sap": sap(None, None, 0, num_eval=N_TEST, **kw).score,
    }
    mod = modularity_explicitness(None, None, 0, num_eval=N_TEST, **kw)
    ours.update(modularity=mod.modularity, explicitness=mod.explicitness)

    view = _DlibView(oracle, case)
    rs = np.random.RandomState(0)
    ref = {
        "mig": dlib_mig.compute_mig(view.data, view, rs, num_train=N_TRAIN)["discrete_mig"],
        "sap": dlib_sap.compute_sap(
            view.data, view, rs, num_train=N_TRAIN, num_test=N_TEST, continuous_factors=False
        )["SAP_score"],
    }
    if case != "collapsed_dims":  # disentanglement_lib divides by the collapsed latents' std 0
        m = dlib_mod.compute_modularity_explicitness(
            view.data, view, rs, num_train=N_TRAIN, num_test=N_TEST
        )
        ref.update(modularity=m["modularity_score"], explicitness=m["explicitness_score_test"])
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value, abs=TOL[key]), (case, key, ours[key], value)


@pytest.mark.parametrize("case", ["identity", "entangled"])
def test_dci_agrees_within_sampling_noise(oracle, case):
    s = _ours(oracle, case, 2, N_DCI_TRAIN, N_DCI_TEST)
    d = dci(None, None, 0, samples=s, num_train=N_DCI_TRAIN, num_eval=N_DCI_TEST, num_bins=DCI_BINS)
    view = _DlibView(oracle, case, bins=DCI_BINS)
    ref = dlib_dci.compute_dci(
        view.data, view, np.random.RandomState(0), num_train=N_DCI_TRAIN, num_test=N_DCI_TEST
    )
    ours = {
        "disentanglement": d.disentanglement,
        "completeness": d.completeness,
        "informativeness": d.informativeness,
    }
    ref["informativeness"] = ref["informativeness_test"]
    for key, tol in TOL_DCI.items():
        assert ours[key] == pytest.approx(ref[key], abs=tol), (case, key, ours[key], ref[key])


@pytest.mark.parametrize("case", ["identity", "entangled", "pixels"])
def test_higgins_headline_is_disentanglement_libs_beta_vae(oracle, case):
    """The headline ``higgins`` (raw features) against ``compute_beta_vae_sklearn``.

    disentanglement_lib fixes a factor by its index, so its adapter renders bin centres
    (``within_bin="centre"``: the shared factor is exactly equal in both batches, as ours). 500
    eval points: the accuracy's standard error is <= 0.022 per side, 0.032 for the difference;
    the tolerance 0.08 is 2.5 of those.
    """
    lookup = FactorLookup()
    ours = higgins(
        RecordingOracle(oracle, lookup),
        CASES[case](lookup),
        0,
        batch_size=16,
        num_train=500,
        num_eval=500,
    )
    view = _DlibView(oracle, case, within_bin="centre")
    ref = dlib_beta_vae.compute_beta_vae_sklearn(
        view.data, view, np.random.RandomState(0), batch_size=16, num_train=500, num_eval=500
    )
    assert ours.features == "raw"
    assert ours.score == pytest.approx(ref["eval_accuracy"], abs=0.08), (ours.score, ref)
