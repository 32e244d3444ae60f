"""The bundled models: the thesis architecture, the objectives, and the registry's checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import Normal, kl_divergence

from benchmark.models import (
    VAE,
    AnnealedVAE,
    BetaVAE,
    ModelError,
    build_model,
    check_model,
    discover,
)
from spritegen.errors import SpecError


def _layers(module: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, kind)]


@pytest.mark.parametrize("channels", [1, 3])
def test_thesis_architecture_exactly(channels):
    model = VAE(image_shape=(channels, 64, 64), latent_dim=7)
    convs = _layers(model.encoder, nn.Conv2d)
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (channels, 32, (4, 4), (2, 2))
    ] + [(32, 32, (4, 4), (2, 2))] * 3
    enc_fc = _layers(model.encoder, nn.Linear)
    assert [(l.in_features, l.out_features) for l in enc_fc] == [
        (512, 256),
        (256, 256),
        (256, 7),
        (256, 7),
    ]
    dec_fc = _layers(model.decoder, nn.Linear)
    assert [(l.in_features, l.out_features) for l in dec_fc] == [(7, 256), (256, 512)]
    deconvs = _layers(model.decoder, nn.ConvTranspose2d)
    assert [(d.in_channels, d.out_channels, d.kernel_size, d.stride) for d in deconvs] == [
        (32, 32, (4, 4), (2, 2))
    ] * 3 + [(32, channels, (4, 4), (2, 2))]
    # ReLU after every hidden layer, none after the heads or the output
    assert len(_layers(model.encoder, nn.ReLU)) == 6 and len(_layers(model.decoder, nn.ReLU)) == 5

    x = torch.rand(5, channels, 64, 64, generator=torch.Generator().manual_seed(0))
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 7)
    assert model.decode(mu).shape == (5, channels, 64, 64)


def test_image_side_must_fit_the_four_strided_convs():
    with pytest.raises(SpecError, match="multiple of 16"):
        build_model("vae", (1, 60, 60), 10)
    assert build_model("vae", (1, 32, 32), 4).decode(torch.zeros(1, 4)).shape == (1, 1, 32, 32)


def _terms(model, x, seed=0):
    return model.loss(x, step=0, generator=torch.Generator().manual_seed(seed))


def test_vae_loss_is_bernoulli_reconstruction_plus_kl():
    model = VAE(image_shape=(1, 64, 64), latent_dim=4)
    x = (torch.rand(3, 1, 64, 64, generator=torch.Generator().manual_seed(1)) > 0.7).float()
    t = _terms(model, x)
    mu, logvar = model.encode(x)
    # same noise as the loss drew
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(0))
    logits = model.decode(mu + (0.5 * logvar).exp() * eps)
    p = torch.sigmoid(logits)
    bce = -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(dim=(1, 2, 3)).mean()
    assert torch.allclose(t["reconstruction"], bce, rtol=1e-4)
    ref_kl = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).mean(0)
    assert torch.allclose(t["kl_per_dim"], ref_kl, rtol=1e-4, atol=1e-6)
    assert torch.allclose(t["loss"], t["reconstruction"] + t["kl"])
    assert t["kl_per_dim"].shape == (4,)


def test_reparameterisation_noise_comes_from_the_generator():
    # seeded weights: drawn from torch's global generator, they depended on the tests before
    model = build_model("vae", (1, 64, 64), 4, seed=0)
    x = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(2))
    assert torch.equal(_terms(model, x, 5)["reconstruction"], _terms(model, x, 5)["reconstruction"])
    assert not torch.equal(
        _terms(model, x, 5)["reconstruction"], _terms(model, x, 6)["reconstruction"]
    )


def test_beta_and_normalised_beta():
    # beta = beta_norm * N / M with N = 1*64*64 pixel values, M = 10 latents
    m = BetaVAE(image_shape=(1, 64, 64), latent_dim=10, beta_norm=0.01)
    assert m.beta == pytest.approx(0.01 * 4096 / 10)
    m3 = BetaVAE(image_shape=(3, 64, 64), latent_dim=20, beta_norm=0.01)
    assert m3.beta == pytest.approx(0.01 * 3 * 4096 / 20)
    assert m.hparams == {"beta": pytest.approx(4.096), "beta_norm": 0.01}
    b = BetaVAE(image_shape=(1, 64, 64), latent_dim=10, beta=8)
    x = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(3))
    t = _terms(b, x)
    assert torch.allclose(t["loss"], t["reconstruction"] + 8 * t["kl"])
    assert BetaVAE(image_shape=(1, 64, 64), latent_dim=10).beta == 4.0
    with pytest.raises(SpecError, match="beta or beta_norm, not both"):
        build_model("betavae", (1, 64, 64), 10, {"beta": 2, "beta_norm": 0.1})
    with pytest.raises(SpecError, match="beta_norm must be > 0"):
        build_model("betavae", (1, 64, 64), 10, {"beta_norm": -1})


def test_annealed_capacity_schedule_and_objective():
    m = AnnealedVAE(
        image_shape=(1, 64, 64), latent_dim=5, gamma=100, capacity_max=20, capacity_steps=1000
    )
    assert [m.capacity(s) for s in (0, 250, 500, 1000, 5000)] == [0, 5, 10, 20, 20]
    x = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(4))
    for step in (0, 500, 2000):
        t = m.loss(x, step=step, generator=torch.Generator().manual_seed(0))
        c = m.capacity(step)
        assert float(t["capacity"]) == c
        assert torch.allclose(t["loss"], t["reconstruction"] + 100 * (t["kl"] - c).abs())
    with pytest.raises(SpecError, match="capacity_steps must be a positive integer"):
        build_model("annealedvae", (1, 64, 64), 10, {"capacity_steps": 0})


def test_registry_lists_bundled_models_and_checks_them():
    entries = discover()
    for name in ("vae", "betavae", "annealedvae"):
        assert entries[name].ok, entries[name].error
    assert set(entries["annealedvae"].hparams) == {"gamma", "capacity_max", "capacity_steps"}
    with pytest.raises(SpecError, match=r"unknown model 'vea'; installed: .*betavae"):
        build_model("vea", (1, 64, 64), 10)
    with pytest.raises(SpecError, match=r"no parameter 'gamma'; it accepts: beta, beta_norm"):
        build_model("betavae", (1, 64, 64), 10, {"gamma": 3})


def test_same_seed_same_initial_weights_without_touching_global_rng():
    before = torch.random.get_rng_state()
    a = build_model("vae", (1, 64, 64), 6, seed=3)
    b = build_model("vae", (1, 64, 64), 6, seed=3)
    c = build_model("vae", (1, 64, 64), 6, seed=4)
    assert torch.equal(torch.random.get_rng_state(), before)
    wa, wb, wc = (next(m.parameters()) for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_check_model_names_the_fault():
    class WrongLatent(VAE):
        def encode(self, x):
            mu, logvar = super().encode(x)
            return mu[:, :3], logvar[:, :3]

    with pytest.raises(
        ModelError, match=r"encode returned mu of shape \(2, 3\), expected \(2, 6\)"
    ):
        check_model(WrongLatent(image_shape=(1, 64, 64), latent_dim=6), (1, 64, 64), 6)

    class NoKL(VAE):
        def loss(self, x, *, step=0, generator=None):
            out = super().loss(x, step=step, generator=generator)
            del out["kl_per_dim"]
            return out

    with pytest.raises(ModelError, match="loss must return a dict with loss, reconstruction"):
        check_model(NoKL(image_shape=(1, 64, 64), latent_dim=6), (1, 64, 64), 6)
