"""FactorVAE (Kim & Mnih 2018): the ELBO plus gamma times a discriminator's estimate of the total
correlation of the aggregate posterior q(z).

A discriminator D learns to tell samples of q(z) (class 0) from samples of the product of its
marginals (class 1), made by permuting each latent dimension independently across the batch.
With D's logits (l0, l1), TC(q) = KL(q(z) || prod_j q(z_j)) is estimated by mean(l0 - l1) (the
density-ratio trick), and the VAE minimises

    reconstruction + KL + gamma * mean(l0 - l1).

The discriminator is trained by its own optimiser (the trainer's auxiliary hook, see
``benchmark.models.base.has_auxiliary_objective``) to minimise the cross-entropy of both classes.
Gradients are kept apart both ways: the VAE's loss sees the discriminator through detached
parameters, and the discriminator sees detached latents.

Network and optimiser as disentanglement_lib's ``fc_discriminator`` and shared.gin (the setup of
Locatello et al. 2019): 6 fully connected layers of 1000 units with LeakyReLU(0.2), 2 logits;
Adam, lr 1e-4, betas (0.5, 0.9).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from benchmark.models.base import AUXILIARY_LOSS, reparameterise
from benchmark.models.vae import ThesisVAE

DISCRIMINATOR_LAYERS = 6
DISCRIMINATOR_UNITS = 1000
LEAKY_SLOPE = 0.2


class Discriminator(nn.Module):
    """z (B, D) -> logits (B, 2): class 0 "drawn from q(z)", class 1 "dimensions permuted"."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = latent_dim
        for _ in range(DISCRIMINATOR_LAYERS):
            layers += [nn.Linear(width, DISCRIMINATOR_UNITS), nn.LeakyReLU(LEAKY_SLOPE)]
            width = DISCRIMINATOR_UNITS
        layers.append(nn.Linear(width, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def permute_dims(z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Each column of ``z`` (B, D) permuted across the batch independently of the others: a
    sample of prod_j q(z_j). The permutations are drawn from ``generator``."""
    keys = torch.rand(z.shape, generator=generator, device=z.device)
    return torch.gather(z, 0, keys.argsort(dim=0))


class FactorVAE(ThesisVAE):
    """reconstruction + KL + gamma * TC (discriminator estimate); the discriminator trains on its
    own optimiser. gamma defaults to 10, the first value of Locatello et al.'s sweep
    {10, 20, 30, 40, 50, 100} (disentanglement_lib binds no default)."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int = 10,
        gamma: float = 10.0,
        discriminator_lr: float = 1e-4,
        discriminator_beta1: float = 0.5,
        discriminator_beta2: float = 0.9,
    ) -> None:
        super().__init__(image_shape, latent_dim)
        if not gamma >= 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        if not discriminator_lr > 0:
            raise ValueError(f"discriminator_lr must be > 0, got {discriminator_lr}")
        for name, b in (
            ("discriminator_beta1", discriminator_beta1),
            ("discriminator_beta2", discriminator_beta2),
        ):
            if not 0 <= b < 1:
                raise ValueError(f"{name} must be in [0, 1), got {b}")
        self.gamma = float(gamma)
        self.discriminator_lr = float(discriminator_lr)
        self.discriminator_betas = (float(discriminator_beta1), float(discriminator_beta2))
        self.discriminator = Discriminator(self.latent_dim)

    @property
    def hparams(self) -> dict[str, Any]:
        return {
            "gamma": self.gamma,
            "discriminator_lr": self.discriminator_lr,
            "discriminator_beta1": self.discriminator_betas[0],
            "discriminator_beta2": self.discriminator_betas[1],
        }

    def _frozen_discriminator(self, z: torch.Tensor) -> torch.Tensor:
        """D(z) with D's parameters detached: gradients reach z (the encoder), never D."""
        params = {n: p.detach() for n, p in self.discriminator.named_parameters()}
        return functional_call(self.discriminator, params, (z,))

    def loss(
        self, x: torch.Tensor, *, step: int = 0, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        f = self.forward_pass(x, generator)
        kl = f.kl_per_dim.sum()
        logits = self._frozen_discriminator(f.z).float()
        tc = (logits[:, 0] - logits[:, 1]).mean()
        return {
            "loss": f.reconstruction + kl + self.gamma * tc,
            "reconstruction": f.reconstruction,
            "kl": kl,
            "kl_per_dim": f.kl_per_dim,
            "total_correlation": tc,
        }

    # the auxiliary objective (docs/models.md, "Auxiliary optimisers")

    def make_auxiliary_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            self.discriminator.parameters(),
            lr=self.discriminator_lr,
            betas=self.discriminator_betas,
        )

    def auxiliary_loss(
        self, x: torch.Tensor, *, step: int = 0, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Cross-entropy of the discriminator on q(z) samples of ``x`` (class 0) and on the same
        samples with each dimension permuted across the batch (class 1), both halves weighted
        equally. The latents are computed without gradients: this loss trains D only."""
        with torch.no_grad():
            mu, logvar = self.encode(x)
            z = reparameterise(mu, logvar, generator)
            z_perm = permute_dims(z, generator)
        logits = self.discriminator(torch.cat([z, z_perm])).float()
        n = z.shape[0]
        target = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)]).to(
            logits.device
        )
        return {
            AUXILIARY_LOSS: F.cross_entropy(logits, target),
            "discriminator_accuracy": (logits.argmax(dim=1) == target).float().mean(),
        }
