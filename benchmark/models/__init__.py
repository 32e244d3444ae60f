"""Models the benchmark trains: the interface (docs/models.md), the bundled ones, the registry."""

from benchmark.models.base import REQUIRED_TERMS, GaussianVAE, kl_per_dim
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
    "GaussianVAE",
    "REQUIRED_TERMS",
    "kl_per_dim",
    "GROUP",
    "ModelEntry",
    "ModelError",
    "build_model",
    "check_model",
    "discover",
    "get_entry",
    "AnnealedVAE",
    "BetaVAE",
    "ThesisVAE",
    "VAE",
    "beta_from_norm",
]
