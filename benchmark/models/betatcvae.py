"""beta-TCVAE (Chen et al. 2018): the ELBO with the total correlation of q(z) weighted by beta.

With the decomposition KL = index-code MI + TC + dimension-wise KL and alpha = gamma = 1 (their
Eq. 4 as disentanglement_lib implements it), the objective is

    reconstruction + KL + (beta - 1) * TC,

TC estimated on the mini-batch with minibatch-weighted sampling (MWS, their Eq. S6): for the
batch's samples z_i ~ q(z | x_i), of a dataset of N images, in batches of M,

    log q(z_i)            ~ logsumexp_j log q(z_i | x_j)                      - log(N M)
    log prod_d q(z_i,d)   ~ sum_d [ logsumexp_j log q(z_i,d | x_j,d)          - log(N M) ]
    TC                    ~ mean_i [ log q(z_i) - log prod_d q(z_i,d) ].

The constants add (D - 1) log(N M) to TC, which moves no gradient; the model cannot know N, so,
like disentanglement_lib, it trains and logs TC without them (``total_correlation_mws`` adds them
when given ``dataset_size``). The logged ``total_correlation`` is therefore that estimate minus
(D - 1) log(N M) and can be negative.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from benchmark.models.vae import ThesisVAE

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) elementwise (broadcasting)."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI)


def total_correlation_mws(
    z: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    dataset_size: int | None = None,
) -> torch.Tensor:
    """The minibatch-weighted-sampling estimate of TC(q(z)) from a batch (see the module
    docstring); all arguments (M, D). Without ``dataset_size`` the constant (D - 1) log(N M) is
    left out, as in training."""
    # log q(z_i,d | x_j): (M samples i, M conditioning images j, D)
    log_q = gaussian_log_density(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))
    log_qz = torch.logsumexp(log_q.sum(dim=2), dim=1)  # (M,)
    log_prod_marginals = torch.logsumexp(log_q, dim=1).sum(dim=1)  # (M,)
    tc = (log_qz - log_prod_marginals).mean()
    if dataset_size is not None:
        m, d = z.shape
        tc = tc + (d - 1) * math.log(dataset_size * m)
    return tc


class BetaTCVAE(ThesisVAE):
    """reconstruction + KL + (beta - 1) * TC (MWS estimate). beta defaults to 4, a value of
    Locatello et al.'s sweep {1, 2, 4, 6, 8, 10} and the bundled betavae's default
    (disentanglement_lib binds no default)."""

    def __init__(
        self, image_shape: tuple[int, int, int], latent_dim: int = 10, beta: float = 4.0
    ) -> None:
        super().__init__(image_shape, latent_dim)
        if not beta >= 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.beta = float(beta)

    @property
    def hparams(self) -> dict[str, Any]:
        return {"beta": self.beta}

    def loss(
        self, x: torch.Tensor, *, step: int = 0, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        f = self.forward_pass(x, generator)
        kl = f.kl_per_dim.sum()
        tc = total_correlation_mws(f.z.float(), f.mu.float(), f.logvar.float())
        return {
            "loss": f.reconstruction + kl + (self.beta - 1.0) * tc,
            "reconstruction": f.reconstruction,
            "kl": kl,
            "kl_per_dim": f.kl_per_dim,
            "total_correlation": tc,
        }
