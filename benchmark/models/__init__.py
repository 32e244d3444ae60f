"""Models the benchmark trains: the interface (docs/models.md), the bundled ones, the registry."""

from benchmark.models.base import (
    AUXILIARY_LOSS,
    REQUIRED_TERMS,
    GaussianVAE,
    has_auxiliary_objective,
    kl_per_dim,
)
from benchmark.models.betatcvae import BetaTCVAE
from benchmark.models.dipvae import DIPVAE1, DIPVAE2
from benchmark.models.factorvae import FactorVAE
from benchmark.models.registry import (
    GROUP,
    ModelEntry,
    ModelError,
    build_model,
    check_model,
    discover,
    get_entry,
)
from benchmark.models.vae import VAE, AnnealedVAE, BetaVAE, ThesisVAE, beta_from_norm

__all__ = [
    "AUXILIARY_LOSS",
    "GaussianVAE",
    "REQUIRED_TERMS",
    "has_auxiliary_objective",
    "kl_per_dim",
    "GROUP",
    "ModelEntry",
    "ModelError",
    "build_model",
    "check_model",
    "discover",
    "get_entry",
    "AnnealedVAE",
    "BetaTCVAE",
    "BetaVAE",
    "DIPVAE1",
    "DIPVAE2",
    "FactorVAE",
    "ThesisVAE",
    "VAE",
    "beta_from_norm",
]
