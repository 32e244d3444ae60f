"""Models for the ensemble tests: the bundled beta-VAE, recording or breaking its loss."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import torch

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
    """A beta-VAE with an auxiliary objective (as FactorVAE's discriminator): a second optimiser
    that fits a scalar to the first latent mean."""

    def __init__(self, image_shape, latent_dim=10, beta=None):
        super().__init__(image_shape, latent_dim, beta=beta)
        self.offset = torch.nn.Parameter(torch.zeros(()))

    def make_auxiliary_optimizer(self):
        return torch.optim.SGD([self.offset], lr=0.01)

    def auxiliary_loss(self, x, *, step, generator):
        mu = self.encode(x)[0].detach()
        return {"auxiliary_loss": (mu[:, 0].mean() - self.offset) ** 2}


#: Set (to anything) to "fix" every ``Faulty`` model: a run its fault stopped then resumes.
FIXED_ENV = "ENSEMBLE_FAULT_FIXED"


class Faulty(BetaVAE):
    """A beta-VAE whose own code breaks as ``fault`` says, until $ENSEMBLE_FAULT_FIXED is set:

    - ``raise``: from step ``at`` on, its objective raises (so ``loss()`` does);
    - ``shape``: from step ``at`` on, its loss is one value per image, not a scalar (the
      contract of docs/models.md broken);
    - ``encode``: ``encode`` raises in eval mode, i.e. whenever it is scored;
    - ``decode``: ``decode`` raises in eval mode, i.e. when the run's pictures are drawn;
    - ``nangrad``: at step ``at``, its loss is what it was (finite) but its gradient is NaN, so
      the update makes every weight NaN, which no look at that loss can see;
    - ``stacked``: while training, ``encode`` checks its input with data-dependent control flow,
      which runs in a model's own step but not under vmap (the vmap engine's dry run, under
      no_grad, does not meet it).

    Every kind keeps ``GaussianVAE.loss``, so that the vmap engine can train it.
    """

    def __init__(self, image_shape, latent_dim=10, beta=None, fault: str = "", at: int = 0):
        super().__init__(image_shape, latent_dim, beta=beta)
        self.fault, self.at = fault, int(at)

    @property
    def hparams(self):
        return {**super().hparams, "fault": self.fault, "at": self.at}

    def _broken(self, kind: str) -> bool:
        return self.fault == kind and not os.environ.get(FIXED_ENV)

    def encode(self, x):
        if self._broken("encode") and not self.training:
            raise ValueError("no latents in eval mode\nsecond line")
        if self._broken("stacked") and torch.is_grad_enabled() and bool(x.isnan().any()):
            raise ValueError("NaN in the input")
        return super().encode(x)

    def decode(self, z):
        if self._broken("decode") and not self.training:
            raise ValueError("no pictures in eval mode\nsecond line")
        return super().decode(z)

    def objective(self, reconstruction, kl, step):
        out = super().objective(reconstruction, kl, step)
        if self._broken("raise") and step >= self.at:
            raise RuntimeError(f"objective broke at step {step}\nsecond line")
        if self._broken("shape") and step >= self.at:
            out["loss"] = out["loss"].expand(4)
        if self._broken("nangrad") and step == self.at:
            out["loss"] = out["loss"] + torch.sqrt(reconstruction * 0.0)  # + 0, d/dx NaN
        return out


def untimed(obj):
    """``obj`` without wall-clock timings (keys ending in _s, "times") at any depth: what two
    runs with the same numbers can still differ in."""
    if isinstance(obj, dict):
        return {k: untimed(v) for k, v in obj.items() if not (k.endswith("_s") or k == "times")}
    if isinstance(obj, list):
        return [untimed(v) for v in obj]
    return obj


#: A file whose existence makes the next ``Dies`` model at its step kill its own process.
DIE_MARKER_ENV = "ENSEMBLE_DIE_MARKER"


class Dies(BetaVAE):
    """A beta-VAE that kills its own process with SIGKILL (as the kernel's OOM killer does, or as
    a lost node ends its work) at step ``die_at``, once: only while the file named by
    $ENSEMBLE_DIE_MARKER exists, which it removes first. When the file holds a pid, that process
    (a sweep's driver) is killed first. Otherwise the bundled beta-VAE."""

    def __init__(self, image_shape, latent_dim=10, beta=None, die_at: int = -1):
        super().__init__(image_shape, latent_dim, beta=beta)
        self.die_at = int(die_at)

    @property
    def hparams(self):
        return {**super().hparams, "die_at": self.die_at}

    def objective(self, reconstruction, kl, step):
        marker = os.environ.get(DIE_MARKER_ENV)
        if step == self.die_at and marker:
            try:
                driver = open(marker).read().strip()
                os.unlink(marker)
            except FileNotFoundError:
                pass
            else:
                if driver:  # the machine lost: the sweep's driver (its pid) killed first
                    os.kill(int(driver), signal.SIGKILL)
                os.kill(os.getpid(), signal.SIGKILL)
        return super().objective(reconstruction, kl, step)


def dies_plugin_site(tmp: Path) -> Path:
    """A folder that registers ``dies`` through an entry point, as an installed plugin would:
    seen by this process once on sys.path, and by workers (local or Ray) on their PYTHONPATH."""
    site = tmp / "site"
    info = site / "dies_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dies-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[benchmark.models]\ndies = ensemble_helpers:Dies\n")
    return site


def dies_spec(data: object, betas: list[int], score_preset: str) -> str:
    """A sweep of ``Dies`` points, one per beta: 4 epochs x 4 steps (batch 16 of 64 images), a
    checkpoint at each epoch's end (steps 4, 8, 12); a worker dies at step 9, in the third
    epoch, after the second checkpoint."""
    return (
        "name: dies\n"
        "set:\n"
        "  model: dies\n"
        f"  data: {data}\n"
        "  latent_dim: 2\n"
        "  epochs: 4\n"
        "  batch_size: 16\n"
        "  die_at: 9\n"
        f"  score_preset: {score_preset}\n"
        "  final_preset: none\n"
        f"grid: {{beta: {betas}}}\n"
        "report: {x: beta}\n"
    )
