"""The field's standard models (FactorVAE, beta-TCVAE, DIP-VAE-I/II): registration, their
objectives checked against brute-force definitions on small tensors, the separation of the
FactorVAE's two optimisers, and (slow) that each learns on a small real 2-factor set."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

from benchmark.data import load_training_set, to_channels_first
from benchmark.models import (
    AUXILIARY_LOSS,
    FactorVAE,
    ModelError,
    build_model,
    check_model,
    discover,
    has_auxiliary_objective,
)
from benchmark.models.betatcvae import total_correlation_mws
from benchmark.models.dipvae import dip_covariance, dip_penalty
from benchmark.models.factorvae import permute_dims
from benchmark.models.registry import BUNDLED, model_hparams
from benchmark.train import TrainConfig, make_represent, train
from spritegen.errors import SpecError

REPO = Path(__file__).resolve().parents[1]
BASE_TERMS = {"loss", "reconstruction", "kl", "kl_per_dim"}
# name -> (default hparams, extra loss terms)
STANDARD = {
    "factorvae": (
        {
            "gamma": 10.0,
            "discriminator_lr": 1e-4,
            "discriminator_beta1": 0.5,
            "discriminator_beta2": 0.9,
        },
        {"total_correlation"},
    ),
    "betatcvae": ({"beta": 4.0}, {"total_correlation"}),
    "dipvae1": (
        {"lambda_od": 10.0, "lambda_d": 100.0},
        {"dip_penalty", "dip_off_diagonal", "dip_diagonal"},
    ),
    "dipvae2": (
        {"lambda_od": 10.0, "lambda_d": 10.0},
        {"dip_penalty", "dip_off_diagonal", "dip_diagonal"},
    ),
}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(n: int = 6, seed: int = 1) -> torch.Tensor:
    return (torch.rand(n, 1, 64, 64, generator=_gen(seed)) > 0.7).float()


def test_registered_as_entry_points_and_bundled():
    with open(REPO / "pyproject.toml", "rb") as f:
        eps = tomllib.load(f)["project"]["entry-points"]["benchmark.models"]
    assert eps == BUNDLED
    entries = discover()
    for name in STANDARD:
        assert entries[name].ok, entries[name].error


@pytest.mark.parametrize("name", list(STANDARD))
def test_builds_checks_and_records_its_hparams(name):
    defaults, extra = STANDARD[name]
    model = build_model(name, (1, 64, 64), 5, seed=0)  # runs registry.check_model
    assert model_hparams(model) == defaults
    terms = model.loss(_images(), step=0, generator=_gen())
    assert set(terms) == BASE_TERMS | extra
    assert all(bool(torch.isfinite(t).all()) for t in terms.values())
    assert terms["kl_per_dim"].shape == (5,)
    assert torch.allclose(terms["kl"], terms["kl_per_dim"].sum())
    # any hyperparameter can be set, and is recorded as set
    key = next(iter(defaults))
    other = build_model(name, (3, 32, 32), 4, {key: 2 * defaults[key]}, seed=1)
    assert model_hparams(other)[key] == 2 * defaults[key]
    check_model(other, (3, 32, 32), 4)
    assert has_auxiliary_objective(model) == (name == "factorvae")


@pytest.mark.parametrize(
    "name, hparams, message",
    [
        ("factorvae", {"gamma": -1}, "gamma must be >= 0"),
        ("factorvae", {"discriminator_beta1": 1.0}, "discriminator_beta1 must be in [0, 1)"),
        ("betatcvae", {"beta": -2}, "beta must be >= 0"),
        ("dipvae1", {"lambda_od": -1}, "lambda_od must be >= 0"),
        ("dipvae2", {"lambda_d": -3.0}, "lambda_d must be >= 0"),
        ("dipvae2", {"lambda_d": float("nan")}, "lambda_d: must be finite"),
        ("dipvae2", {"beta": 1}, "has no parameter 'beta'; it accepts: lambda_od, lambda_d"),
    ],
)
def test_bad_hyperparameters_are_one_clear_error(name, hparams, message):
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace(")", r"\)")):
        build_model(name, (1, 64, 64), 4, hparams)


# ---------------------------------------------------------------------------------------------
# beta-TCVAE


def _brute_force_mws(z, mu, logvar, dataset_size):
    """Chen et al.'s minibatch-weighted sampling, one term at a time in float64."""
    m, d = z.shape
    weight = 1.0 / (dataset_size * m)
    tc = 0.0
    for i in range(m):
        joint = 0.0
        marginals = [0.0] * d
        for j in range(m):
            density = 1.0
            for k in range(d):
                p = math.exp(
                    Normal(float(mu[j, k]), math.exp(0.5 * float(logvar[j, k])))
                    .log_prob(torch.tensor(float(z[i, k]), dtype=torch.float64))
                    .item()
                )
                density *= p
                marginals[k] += weight * p
            joint += weight * density
        tc += math.log(joint) - sum(math.log(q) for q in marginals)
    return tc / m


def test_mws_total_correlation_matches_a_brute_force_computation():
    g = _gen(3)
    m, d, n = 5, 3, 1000
    mu = torch.randn(m, d, generator=g, dtype=torch.float64)
    logvar = 0.5 * torch.randn(m, d, generator=g, dtype=torch.float64)
    z = mu + (0.5 * logvar).exp() * torch.randn(m, d, generator=g, dtype=torch.float64)
    expected = _brute_force_mws(z, mu, logvar, n)
    assert float(total_correlation_mws(z, mu, logvar, dataset_size=n)) == pytest.approx(
        expected, rel=1e-7, abs=1e-7
    )
    # what the model trains on: the same estimate without the constant (D - 1) log(N M)
    assert float(total_correlation_mws(z, mu, logvar)) == pytest.approx(
        expected - (d - 1) * math.log(n * m), rel=1e-7, abs=1e-7
    )


def test_betatcvae_loss_is_elbo_plus_beta_minus_one_tc():
    model = build_model("betatcvae", (1, 64, 64), 4, {"beta": 6.0}, seed=0)
    x = _images()
    t = model.loss(x, step=0, generator=_gen(5))
    mu, logvar = model.encode(x)
    z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=_gen(5))  # same noise
    tc = total_correlation_mws(z, mu, logvar)
    assert torch.allclose(t["total_correlation"], tc, atol=1e-5)
    assert torch.allclose(t["loss"], t["reconstruction"] + t["kl"] + 5.0 * tc, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# DIP-VAE


def test_dip_penalty_is_zero_for_an_identity_covariance_batch():
    # the four corners of the square: mean 0, covariance exactly I
    mu = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert torch.allclose(dip_covariance(mu), torch.eye(2))
    penalty, off, diag = dip_penalty(dip_covariance(mu), lambda_od=10.0, lambda_d=100.0)
    assert float(penalty) == float(off) == float(diag) == 0.0
    # DIP-VAE-II counts the posterior variances: means of variance 1/2 plus sigma^2 = 1/2
    half = mu * math.sqrt(0.5)
    logvar = torch.full_like(mu, math.log(0.5))
    assert torch.allclose(dip_covariance(half, logvar), torch.eye(2))
    assert float(dip_penalty(dip_covariance(half, logvar), 10.0, 10.0)[0]) == pytest.approx(0.0)


def test_dip_penalty_off_diagonal_zero_for_diagonal_covariance_and_matches_numpy():
    mu = torch.tensor([[2.0, 1.0], [2.0, -1.0], [-2.0, 1.0], [-2.0, -1.0]])  # cov diag(4, 1)
    _, off, diag = dip_penalty(dip_covariance(mu), 1.0, 1.0)
    assert float(off) == 0.0 and float(diag) == pytest.approx(9.0)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 3))
    a[:, 1] += 0.8 * a[:, 0]  # correlated
    cov = np.cov(a, rowvar=False, bias=True)
    got = dip_covariance(torch.from_numpy(a))
    assert np.allclose(got.numpy(), cov)
    penalty, off, diag = dip_penalty(got, 2.0, 3.0)
    want_off = (cov**2).sum() - (np.diag(cov) ** 2).sum()
    want_diag = ((np.diag(cov) - 1) ** 2).sum()
    assert float(off) == pytest.approx(want_off) and float(diag) == pytest.approx(want_diag)
    assert float(penalty) == pytest.approx(2.0 * want_off + 3.0 * want_diag)


@pytest.mark.parametrize("name, with_variances", [("dipvae1", False), ("dipvae2", True)])
def test_dipvae_loss_is_elbo_plus_the_penalty_of_its_covariance(name, with_variances):
    model = build_model(name, (1, 64, 64), 3, seed=0)
    x = _images(8)
    t = model.loss(x, step=0, generator=_gen())
    mu, logvar = model.encode(x)
    cov = dip_covariance(mu, logvar if with_variances else None)
    penalty = dip_penalty(cov, model.lambda_od, model.lambda_d)[0]
    assert torch.allclose(t["dip_penalty"], penalty, rtol=1e-5)
    assert torch.allclose(t["loss"], t["reconstruction"] + t["kl"] + penalty, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# FactorVAE


def test_discriminator_is_six_layers_of_1000_leaky_relu_units():
    model = FactorVAE(image_shape=(1, 64, 64), latent_dim=7)
    linears = [m for m in model.discriminator.modules() if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(7, 1000)] + [
        (1000, 1000)
    ] * 5 + [(1000, 2)]
    leaky = [m for m in model.discriminator.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(leaky) == 6 and all(m.negative_slope == 0.2 for m in leaky)
    opt = model.make_auxiliary_optimizer()
    assert isinstance(opt, torch.optim.Adam)
    assert opt.defaults["lr"] == 1e-4 and opt.defaults["betas"] == (0.5, 0.9)
    assert {id(p) for p in opt.param_groups[0]["params"]} == {
        id(p) for p in model.discriminator.parameters()
    }


def test_permute_dims_permutes_each_dimension_independently_from_the_generator():
    z = torch.arange(64 * 6, dtype=torch.float32).view(64, 6)
    p = permute_dims(z, _gen(1))
    for k in range(6):
        assert sorted(p[:, k].tolist()) == z[:, k].tolist()
    source_rows = (p - torch.arange(6)) / 6  # z[r, k] = 6 r + k
    assert not torch.equal(source_rows[:, 0], source_rows[:, 1])  # not one shared permutation
    assert torch.equal(p, permute_dims(z, _gen(1)))
    assert not torch.equal(p, permute_dims(z, _gen(2)))


def test_factorvae_objectives_and_their_gradients_are_kept_apart():
    model = build_model("factorvae", (1, 64, 64), 4, {"gamma": 30.0}, seed=0)
    x = _images(8)
    t = model.loss(x, step=0, generator=_gen(5))
    # the definition: TC estimate = mean(l0 - l1) of D at the VAE's own sample
    mu, logvar = model.encode(x)
    z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=_gen(5))
    logits = model.discriminator(z)
    assert torch.allclose(t["total_correlation"], (logits[:, 0] - logits[:, 1]).mean(), atol=1e-6)
    assert torch.allclose(t["loss"], t["reconstruction"] + t["kl"] + 30.0 * t["total_correlation"])
    # the VAE's loss moves the encoder and decoder, never the discriminator
    model.zero_grad(set_to_none=True)
    t["loss"].backward()
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert all(p.grad is not None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.decoder.parameters())

    # the discriminator's loss: cross-entropy on q(z) samples (class 0) and permuted ones (1)
    model.zero_grad(set_to_none=True)
    aux = model.auxiliary_loss(x, step=0, generator=_gen(6))
    g = _gen(6)
    z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=g)
    z_perm = permute_dims(z, g)
    log_p = F.log_softmax(model.discriminator(torch.cat([z, z_perm])), dim=1)
    want = -(0.5 * log_p[:8, 0].mean() + 0.5 * log_p[8:, 1].mean())
    assert torch.allclose(aux[AUXILIARY_LOSS], want, atol=1e-6)
    aux[AUXILIARY_LOSS].backward()
    assert all(p.grad is not None for p in model.discriminator.parameters())
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.decoder.parameters())


def test_training_gives_the_discriminator_its_own_optimiser_and_checkpoints_it(tmp_path):
    model = build_model("factorvae", (1, 64, 64), 3, seed=0)
    data = (_images(16) * 255).to(torch.uint8)
    history = train(
        model,
        data,
        TrainConfig(max_steps=2, batch_size=8, device="cpu", progress=False),
        checkpoint=tmp_path / "ck.pt",
    )
    row = history[-1]
    assert {"total_correlation", AUXILIARY_LOSS, "discriminator_accuracy"} <= set(row)
    ck = torch.load(tmp_path / "ck.pt", weights_only=True)
    n_disc = len(list(model.discriminator.parameters()))
    n_all = len(list(model.parameters()))
    assert len(ck["optimizer"]["param_groups"][0]["params"]) == n_all - n_disc
    aux = ck["auxiliary_optimizer"]
    assert len(aux["param_groups"][0]["params"]) == n_disc and len(aux["state"]) == n_disc
    assert aux["param_groups"][0]["betas"] == (0.5, 0.9) and aux["state"][0]["step"] == 2


class _Clashing(FactorVAE):
    def auxiliary_loss(self, x, *, step=0, generator=None):
        terms = super().auxiliary_loss(x, step=step, generator=generator)
        return {**terms, "kl": terms[AUXILIARY_LOSS]}


class _ForeignOptimiser(FactorVAE):
    def make_auxiliary_optimizer(self):
        return torch.optim.Adam(nn.Linear(2, 2).parameters())


@pytest.mark.parametrize(
    "cls, message",
    [(_Clashing, "clash with the loss terms"), (_ForeignOptimiser, "model's own parameters")],
)
def test_check_model_rejects_a_broken_auxiliary_objective(cls, message):
    with pytest.raises(ModelError, match=message):
        check_model(cls(image_shape=(1, 64, 64), latent_dim=3), (1, 64, 64), 3)


# ---------------------------------------------------------------------------------------------
# Learning (slow): each beats the same network untrained on Kim-Mnih, on a small K=2 set.
# 32 x 32 images (the thesis network takes any side that is a multiple of 16): a quarter of the
# FLOPs of 64 x 64, which keeps these tests within CI's budget. With 4x fewer pixels the
# reconstruction term pulls 4x less against the KL, so models stay longer on the mean-image
# plateau (docs/results.md, "Surprises"); lr 1e-3 and the steps below were measured to leave it
# with room to spare (Kim-Mnih 0.94-1.0 against 0.0 untrained), where 300 steps at the default
# lr left FactorVAE and beta-TCVAE on it. FactorVAE, whose TC penalty holds it there longest,
# gets more steps.

LEARN_SIDE = 32
LEARN_LR = 1e-3
LEARN_STEPS = {"factorvae": 600}
DEFAULT_LEARN_STEPS = 400


@pytest.fixture(scope="module")
def k2_quick(data_dir) -> Path:
    from conftest import build_small

    return build_small(data_dir, 2, n=1000, preset="quick", image_size=LEARN_SIDE)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STANDARD))
def test_learns_to_beat_its_untrained_encoder_on_kim_mnih(name, k2_quick):
    from benchmark.metrics import kim_mnih
    from benchmark.metrics.presets import get_preset

    quick = get_preset("quick")
    sizes = {k: getattr(quick, k) for k in ("batch_size", "num_train", "num_eval", "num_variance")}

    def score(model) -> float:  # the file's stored evaluation sets, quick sizes
        return kim_mnih(k2_quick, make_represent(model, torch.device("cpu")), 0, **sizes).score

    images, _ = load_training_set(k2_quick)
    model = build_model(name, (1, LEARN_SIDE, LEARN_SIDE), 10, seed=0)
    untrained = score(model)
    train(
        model,
        to_channels_first(images),
        TrainConfig(
            epochs=100,
            max_steps=LEARN_STEPS.get(name, DEFAULT_LEARN_STEPS),
            lr=LEARN_LR,
            seed=0,
            device="cpu",
            progress=False,
        ),
    )
    trained = score(model)
    assert trained > untrained + 0.2, (untrained, trained)
