"""Models for the ensemble tests: the bundled beta-VAE, recording or breaking its loss."""

from __future__ import annotations

import torch

from benchmark.models.vae import BetaVAE


class Recording(BetaVAE):
    """A beta-VAE that records every loss it computes (swap it in with ``m.__class__``)."""

    def objective(self, reconstruction, kl, step):
        out = super().objective(reconstruction, kl, step)
        self.__dict__.setdefault("losses", []).append(float(out["loss"].detach()))
        return out


class Explodes(BetaVAE):
    """A beta-VAE whose loss is infinite at step ``explode_at`` (never when negative)."""

    def __init__(self, image_shape, latent_dim=10, beta=None, explode_at: int = -1):
        super().__init__(image_shape, latent_dim, beta=beta)
        self.explode_at = int(explode_at)

    @property
    def hparams(self):
        return {**super().hparams, "explode_at": self.explode_at}

    def objective(self, reconstruction, kl, step):
        bad = float("inf") if step == self.explode_at else 0.0
        return {"loss": reconstruction + self.beta * kl + bad}


class WithAuxiliary(BetaVAE):
    """A beta-VAE with an auxiliary objective (as FactorVAE's discriminator): a second optimiser
    that fits a scalar to the first latent mean."""

    def __init__(self, image_shape, latent_dim=10, beta=None):
        super().__init__(image_shape, latent_dim, beta=beta)
        self.offset = torch.nn.Parameter(torch.zeros(()))

    def make_auxiliary_optimizer(self):
        return torch.optim.SGD([self.offset], lr=0.01)

    def auxiliary_loss(self, x, *, step, generator):
        mu = self.encode(x)[0].detach()
        return {"auxiliary_loss": (mu[:, 0].mean() - self.offset) ** 2}
