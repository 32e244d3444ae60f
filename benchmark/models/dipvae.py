"""DIP-VAE-I and DIP-VAE-II (Kumar et al. 2018): the ELBO plus a penalty that pushes a covariance
of the latents towards the identity ("disentangled inferred prior").

On a batch of posterior means mu (B, D) and log-variances:

    Cov[mu]  = mean(mu mu^T) - mean(mu) mean(mu)^T               (biased, over the batch)
    DIP-VAE-I:   C = Cov[mu]                                        (their Eq. 6)
    DIP-VAE-II:  C = Cov[mu] + diag(mean(exp(logvar)))              (Cov of z under q(z), Eq. 7)
    penalty  = lambda_od * sum_{i != j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2
    loss     = reconstruction + KL + penalty

Defaults: lambda_od = 10 (a value of Locatello et al.'s sweep {1, 2, 5, 10, 20, 50});
lambda_d = 10 * lambda_od for DIP-VAE-I and lambda_d = lambda_od for DIP-VAE-II, the study's
fixed ``lambda_d_factor`` of 10 and 1 (disentanglement_lib's unsupervised_study_v1/sweep.py).
"""

from __future__ import annotations

from typing import Any

import torch

from benchmark.models.vae import ThesisVAE


def dip_covariance(mu: torch.Tensor, logvar: torch.Tensor | None = None) -> torch.Tensor:
    """Cov[mu] over the batch (D, D); plus diag(mean exp(logvar)) when ``logvar`` is given (the
    covariance of z under q(z), DIP-VAE-II)."""
    mean = mu.mean(dim=0)
    cov = (mu.unsqueeze(2) * mu.unsqueeze(1)).mean(dim=0) - mean.unsqueeze(1) * mean.unsqueeze(0)
    if logvar is not None:
        cov = cov + torch.diag(logvar.exp().mean(dim=0))
    return cov


def dip_penalty(
    cov: torch.Tensor, lambda_od: float, lambda_d: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(weighted penalty, off-diagonal sum of squares, diagonal sum of squared deviations
    from 1) of a covariance matrix."""
    diag = torch.diagonal(cov)
    off_diagonal = (cov - torch.diag(diag)).pow(2).sum()
    diagonal = (diag - 1.0).pow(2).sum()
    return lambda_od * off_diagonal + lambda_d * diagonal, off_diagonal, diagonal


class _DIPVAE(ThesisVAE):
    lambda_d_factor = 1.0

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int = 10,
        lambda_od: float = 10.0,
        lambda_d: float | None = None,
    ) -> None:
        super().__init__(image_shape, latent_dim)
        if lambda_d is None:
            lambda_d = self.lambda_d_factor * lambda_od
        for name, value in (("lambda_od", lambda_od), ("lambda_d", lambda_d)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.lambda_od = float(lambda_od)
        self.lambda_d = float(lambda_d)

    @property
    def hparams(self) -> dict[str, Any]:
        return {"lambda_od": self.lambda_od, "lambda_d": self.lambda_d}

    def covariance(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(
        self, x: torch.Tensor, *, step: int = 0, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        f = self.forward_pass(x, generator)
        kl = f.kl_per_dim.sum()
        cov = self.covariance(f.mu.float(), f.logvar.float())
        penalty, off_diagonal, diagonal = dip_penalty(cov, self.lambda_od, self.lambda_d)
        return {
            "loss": f.reconstruction + kl + penalty,
            "reconstruction": f.reconstruction,
            "kl": kl,
            "kl_per_dim": f.kl_per_dim,
            "dip_penalty": penalty,
            "dip_off_diagonal": off_diagonal,
            "dip_diagonal": diagonal,
        }


class DIPVAE1(_DIPVAE):
    """DIP-VAE-I: penalise Cov[mu] away from I; lambda_d defaults to 10 * lambda_od."""

    lambda_d_factor = 10.0

    def covariance(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return dip_covariance(mu)


class DIPVAE2(_DIPVAE):
    """DIP-VAE-II: penalise Cov_q[z] = Cov[mu] + E[diag sigma^2] away from I; lambda_d defaults
    to lambda_od."""

    lambda_d_factor = 1.0

    def covariance(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return dip_covariance(mu, logvar)
