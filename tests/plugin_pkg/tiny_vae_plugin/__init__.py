"""A third-party model package, as a user would write one.

``MLPVAE`` stands for someone's existing PyTorch VAE; ``TinyVAE`` wraps it for the benchmark in a
few lines by subclassing ``benchmark.models.GaussianVAE``. The other classes are deliberately
broken, for the registry's error reporting.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.models import GaussianVAE


class MLPVAE(nn.Module):
    """An "existing" VAE: flat input, one hidden layer each way."""

    def __init__(self, n_in: int, latent: int, hidden: int = 64) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent))
        self.dec = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, n_in))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(x).chunk(2, dim=1)
        return mu, logvar


class TinyVAE(GaussianVAE):
    """The wrapper: encode/decode reshape, the KL weight is a hyperparameter."""

    def __init__(self, image_shape, latent_dim, beta: float = 1.0, alpha: float = 1.0) -> None:
        super().__init__(image_shape, latent_dim)
        self.net = MLPVAE(math.prod(image_shape), latent_dim)
        self.beta = float(beta)
        self.alpha = float(alpha)  # weight of the reconstruction term: a plugin's own knob

    @property
    def hparams(self):
        return {"beta": self.beta, "alpha": self.alpha}

    def encode(self, x):
        return self.net.encode(x.flatten(1))

    def decode(self, z):
        return self.net.dec(z).view(-1, *self.image_shape)

    def objective(self, reconstruction, kl, step):
        return {"loss": self.alpha * reconstruction + self.beta * kl}


class BadShapes(TinyVAE):
    """Decodes to half the image height."""

    def decode(self, z):
        c, h, w = self.image_shape
        return super().decode(z)[:, :, : h // 2]


class NaNLoss(TinyVAE):
    def objective(self, reconstruction, kl, step):
        return {"loss": reconstruction * float("nan")}


class Diverges(TinyVAE):
    """Passes the dry run (step 0) but its loss is NaN from step 3 on."""

    def objective(self, reconstruction, kl, step):
        loss = reconstruction + kl
        return {"loss": loss * float("nan") if step >= 3 else loss}
