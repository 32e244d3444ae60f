"""The model interface the trainer and the metrics rely on, and a base class that implements it.

A model is a ``torch.nn.Module`` built as ``Model(image_shape=(C, H, W), latent_dim=D, **hparams)``
that offers:

- ``encode(x) -> (mu, logvar)``: ``x`` is a float batch (B, C, H, W) in [0, 1]; both outputs (B, D);
- ``decode(z) -> logits``: (B, D) -> (B, C, H, W) Bernoulli logits;
- ``loss(x, *, step, generator) -> dict[str, Tensor]``: at least ``loss`` (the scalar that is
  minimised), ``reconstruction``, ``kl`` (scalars) and ``kl_per_dim`` (D,); extra scalar terms are
  logged too. ``generator`` is the torch.Generator that draws the reparameterisation noise, so that
  a run is reproducible and resumable; ``step`` is the global optimiser step (for schedules);
- ``hparams``: a dict of the hyperparameters that define the objective (recorded in the run).

The trainer converts uint8 images to floats in [0, 1] before calling the model (images are channel
first, as everywhere in PyTorch). ``GaussianVAE`` implements ``loss`` and ``hparams`` from
``encode``/``decode`` and a KL weight, so that wrapping an existing VAE takes a few lines.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

#: Keys every loss dict must hold.
REQUIRED_TERMS = ("loss", "reconstruction", "kl", "kl_per_dim")

if TYPE_CHECKING:

    class Model(nn.Module):
        """The interface above, for the type checker (``check_model`` checks it at run time)."""

        latent_dim: int

        @property
        def hparams(self) -> dict[str, Any]: ...

        def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

        def decode(self, z: torch.Tensor) -> torch.Tensor: ...

        def loss(
            self, x: torch.Tensor, *, step: int = 0, generator: torch.Generator | None = None
        ) -> dict[str, torch.Tensor]: ...

else:  # at run time any torch.nn.Module offering the interface is a model (plugins included)
    Model = nn.Module


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per latent dimension, averaged over the batch: (D,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean(dim=0)


def bernoulli_reconstruction(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits, summed over pixels and channels, mean over the batch."""
    bce = F.binary_cross_entropy_with_logits(logits.float(), x.float(), reduction="none")
    return bce.flatten(1).sum(dim=1).mean()


def reparameterise(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """z = mu + sigma * eps, eps drawn from ``generator`` (explicit, so runs are reproducible)."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + (0.5 * logvar).exp() * eps


class GaussianVAE(nn.Module):
    """Base of every bundled model: Gaussian posterior, standard normal prior, Bernoulli decoder.

    Subclasses provide ``encode`` and ``decode``; the objective is
    ``reconstruction + kl_weight * kl`` unless ``objective`` is overridden (see ``AnnealedVAE``).
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int) -> None:
        super().__init__()
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(
                f"image_shape must be (C, H, W) with positive sizes, got {image_shape}"
            )
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim}")
        c, h, w = (int(s) for s in image_shape)
        self.image_shape: tuple[int, int, int] = (c, h, w)
        self.latent_dim = int(latent_dim)

    @property
    def num_pixel_values(self) -> int:
        """N in the normalised beta: the number of input values (C * H * W)."""
        return math.prod(self.image_shape)

    @property
    def hparams(self) -> dict[str, Any]:
        return {}

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def objective(
        self, reconstruction: torch.Tensor, kl: torch.Tensor, step: int
    ) -> dict[str, torch.Tensor]:
        """The scalar to minimise (plus any extra terms to log); plain ELBO here."""
        return {"loss": reconstruction + kl}

    def loss(
        self, x: torch.Tensor, *, step: int = 0, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = reparameterise(mu, logvar, generator)
        logits = self.decode(z)
        rec = bernoulli_reconstruction(logits, x)
        kld = kl_per_dim(mu.float(), logvar.float())
        kl = kld.sum()
        terms = {"reconstruction": rec, "kl": kl, "kl_per_dim": kld}
        terms.update(self.objective(rec, kl, step))
        return terms
