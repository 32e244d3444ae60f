"""The bundled models: VAE, beta-VAE and the capacity-annealed VAE of Burgess et al. (2018).

All three share the thesis network and the Bernoulli reconstruction; they differ only in the
objective. The KL weight of the beta-VAE can be given directly (``beta``) or normalised
(``beta_norm``, Higgins et al. 2017): beta_norm = beta * M / N with M the latent size and N the
number of input pixel values, so the model trains with beta = beta_norm * N / M.
"""

from __future__ import annotations

from typing import Any

import torch

from benchmark.models.base import GaussianVAE
from benchmark.models.thesis import ThesisDecoder, ThesisEncoder


class ThesisVAE(GaussianVAE):
    """The thesis' network with the plain ELBO (beta = 1)."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int = 10) -> None:
        super().__init__(image_shape, latent_dim)
        self.encoder = ThesisEncoder(self.image_shape, self.latent_dim)
        self.decoder = ThesisDecoder(self.image_shape, self.latent_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


VAE = ThesisVAE


def beta_from_norm(beta_norm: float, image_shape: tuple[int, int, int], latent_dim: int) -> float:
    """beta = beta_norm * N / M (N input pixel values, M latent size); see the module docstring."""
    c, h, w = image_shape
    return float(beta_norm) * (c * h * w) / latent_dim


class BetaVAE(ThesisVAE):
    """reconstruction + beta * KL. Give ``beta`` or ``beta_norm``, not both (default beta = 4)."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int = 10,
        beta: float | None = None,
        beta_norm: float | None = None,
    ) -> None:
        super().__init__(image_shape, latent_dim)
        if beta is not None and beta_norm is not None:
            raise ValueError("give beta or beta_norm, not both")
        if beta_norm is not None:
            if not beta_norm > 0:
                raise ValueError(f"beta_norm must be > 0, got {beta_norm}")
            beta = beta_from_norm(beta_norm, self.image_shape, self.latent_dim)
        elif beta is None:
            beta = 4.0
        if not beta >= 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.beta = float(beta)
        self.beta_norm = None if beta_norm is None else float(beta_norm)

    @property
    def hparams(self) -> dict[str, Any]:
        return {"beta": self.beta, "beta_norm": self.beta_norm}

    def objective(
        self, reconstruction: torch.Tensor, kl: torch.Tensor, step: int
    ) -> dict[str, torch.Tensor]:
        return {"loss": reconstruction + self.beta * kl}


class AnnealedVAE(ThesisVAE):
    """reconstruction + gamma * |KL - C|, C raised linearly from 0 to capacity_max (nats) over
    capacity_steps optimiser steps and held there (Burgess et al. 2018; defaults are their
    dSprites settings)."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int = 10,
        gamma: float = 1000.0,
        capacity_max: float = 25.0,
        capacity_steps: int = 100_000,
    ) -> None:
        super().__init__(image_shape, latent_dim)
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        if not capacity_max >= 0:
            raise ValueError(f"capacity_max must be >= 0, got {capacity_max}")
        if int(capacity_steps) != capacity_steps or capacity_steps < 1:
            raise ValueError(f"capacity_steps must be a positive integer, got {capacity_steps}")
        self.gamma = float(gamma)
        self.capacity_max = float(capacity_max)
        self.capacity_steps = int(capacity_steps)

    @property
    def hparams(self) -> dict[str, Any]:
        return {
            "gamma": self.gamma,
            "capacity_max": self.capacity_max,
            "capacity_steps": self.capacity_steps,
        }

    def capacity(self, step: int) -> float:
        """C at optimiser step ``step``: linear from 0 at step 0 to capacity_max, then flat."""
        return self.capacity_max * min(1.0, max(0, step) / self.capacity_steps)

    def objective(
        self, reconstruction: torch.Tensor, kl: torch.Tensor, step: int
    ) -> dict[str, torch.Tensor]:
        c = self.capacity(step)
        return {
            "loss": reconstruction + self.gamma * (kl - c).abs(),
            "capacity": torch.tensor(c, device=kl.device),
        }
