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

Optionally, a model with parameters trained by an objective of their own (FactorVAE's
discriminator) also offers ``make_auxiliary_optimizer()`` and ``auxiliary_loss(x, *, step,
generator)``: see ``has_auxiliary_objective`` and docs/models.md. The trainer then gives those
parameters to the auxiliary optimiser only and takes a second step per batch.

The trainer converts uint8 images to floats in [0, 1] before calling the model (images are channel
first, as everywhere in PyTorch). ``GaussianVAE`` implements ``loss`` and ``hparams`` from
``encode``/``decode`` and a KL weight, so that wrapping an existing VAE takes a few lines.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple, TypeGuard

import torch
import torch.nn.functional as F
from torch import nn

#: Keys every loss dict must hold.
REQUIRED_TERMS = ("loss", "reconstruction", "kl", "kl_per_dim")
#: The key of an auxiliary loss dict that the auxiliary optimiser minimises.
AUXILIARY_LOSS = "auxiliary_loss"


def has_auxiliary_objective(model: nn.Module) -> TypeGuard[AuxiliaryModel]:
    """True when ``model`` trains some of its parameters with an optimiser of its own.

    Such a model defines ``make_auxiliary_optimizer() -> torch.optim.Optimizer`` (over those
    parameters only; the main optimiser gets all the others) and ``auxiliary_loss(x, *, step,
    generator) -> dict`` whose ``"auxiliary_loss"`` the trainer minimises with it after each main
    update. A trainer that cannot take the second step (e.g. models stacked with torch.func)
    should refuse such a model.
    """
    return callable(getattr(model, "make_auxiliary_optimizer", None)) and callable(
        getattr(model, "auxiliary_loss", None)
    )


if TYPE_CHECKING:

    class AuxiliaryModel(nn.Module):
        """A model with an auxiliary objective (see ``has_auxiliary_objective``)."""

        def make_auxiliary_optimizer(self) -> torch.optim.Optimizer: ...

        def auxiliary_loss(
            self, x: torch.Tensor, *, step: int, generator: torch.Generator | None
        ) -> dict[str, torch.Tensor]: ...

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


class Forward(NamedTuple):
    """One pass of a Gaussian VAE on a batch: what the objectives are built from."""

    mu: torch.Tensor  # (B, D) posterior means
    logvar: torch.Tensor  # (B, D) posterior log-variances
    z: torch.Tensor  # (B, D) one reparameterised sample per image
    reconstruction: torch.Tensor  # scalar, Bernoulli, summed over pixels, mean over the batch
    kl_per_dim: torch.Tensor  # (D,) KL to N(0, 1), mean over the batch


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

    def forward_pass(self, x: torch.Tensor, generator: torch.Generator | None) -> Forward:
        """Encode, draw z from ``generator``, decode: the parts every objective here uses."""
        mu, logvar = self.encode(x)
        z = reparameterise(mu, logvar, generator)
        rec = bernoulli_reconstruction(self.decode(z), x)
        return Forward(mu, logvar, z, rec, kl_per_dim(mu.float(), logvar.float()))

    def loss(
        self, x: torch.Tensor, *, step: int = 0, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        f = self.forward_pass(x, generator)
        kl = f.kl_per_dim.sum()
        terms = {"reconstruction": f.reconstruction, "kl": kl, "kl_per_dim": f.kl_per_dim}
        terms.update(self.objective(f.reconstruction, kl, step))
        return terms
