"""Models for the ensemble tests: the bundled beta-VAE, recording or breaking its loss."""

from __future__ import annotations

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
    """A beta-VAE announcing an auxiliary optimiser (the hook FactorVAE-like models offer)."""

    def auxiliary_step(self, *args, **kwargs):
        return {}
