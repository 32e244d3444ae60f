"""G models of one architecture as one set of stacked parameters, run with ``torch.func.vmap``.

Members may differ in latent size D: every parameter is zero-padded to the shape it has in the
largest-D member. A padded head row gives mu = logvar = 0 on a padded dimension and the padded
noise is 0, so z is 0 there and the padded decoder columns see 0: padded entries get zero
gradients and Adam leaves them at zero. The network (``encode``/``decode``) runs under vmap; the
noise, the loss terms and the objective are computed per member outside it, on that member's D
only, with the model's own functions, so each member's loss is the one a single run computes.

Only ``GaussianVAE`` models that keep its ``loss`` qualify, and ``vmap_problem`` checks by a dry
run that the stacked network gives the members' own outputs; anything else trains with the loop
engine (benchmark.ensemble.trainer).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, vmap

from benchmark.models.base import (
    GaussianVAE,
    bernoulli_reconstruction,
    has_auxiliary_objective,
    kl_per_dim,
)

#: Largest difference between a member's own encode/decode and the stacked one on the dry run.
DRY_RUN_TOLERANCE = 1e-4


class _Net(nn.Module):
    """The network part of a model as a module whose forward picks encode or decode."""

    def __init__(self, model: GaussianVAE) -> None:
        super().__init__()
        self.m = model

    def forward(
        self, x: torch.Tensor, decode: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        return self.m.decode(x) if decode else self.m.encode(x)


def _pad(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    if t.shape == shape:
        return t.detach().clone()
    out = t.new_zeros(shape)
    out[tuple(slice(0, s) for s in t.shape)] = t.detach()
    return out


def _unpad(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    return t[tuple(slice(0, s) for s in shape)]


def vmap_problem(models: Sequence[nn.Module]) -> str | None:
    """Why these models cannot share stacked parameters, or None when they can.

    Checked: the class keeps ``GaussianVAE.loss`` (the stacked step rebuilds exactly that loss),
    has no auxiliary optimiser hook, all members have the same parameter names and ranks, and a
    dry run on two images gives each member's own ``encode``/``decode`` outputs.
    """
    first = models[0]
    vaes: list[GaussianVAE] = []
    for m in models:
        if not isinstance(m, GaussianVAE) or type(m).loss is not GaussianVAE.loss:
            return f"{type(m).__name__} has its own loss (the stacked step rebuilds GaussianVAE's)"
        if has_auxiliary_objective(m):
            return f"{type(m).__name__} trains an auxiliary optimiser"
        if type(m) is not type(first):
            return "members are of different model classes"
        names = [(n, p.ndim) for n, p in m.named_parameters()]
        if names != [(n, p.ndim) for n, p in first.named_parameters()]:
            return "members have different parameter layouts"
        if list(m.buffers()):
            return f"{type(m).__name__} has buffers (batch statistics are not stacked)"
        vaes.append(m)
    try:
        stack = StackedMembers(vaes)
        device = next(first.parameters()).device
        gen = torch.Generator(device=device).manual_seed(0)
        x = torch.rand((len(vaes), 2, *vaes[0].image_shape), generator=gen, device=device)
        with torch.no_grad():
            mu, logvar = stack.encode(x)
            z = torch.randn(mu.shape, generator=gen, device=device) * stack.mask
            logits = stack.decode(z)
            for i, vae in enumerate(vaes):
                d = vae.latent_dim
                own_mu, own_lv = vae.encode(x[i])
                own_logits = vae.decode(z[i, :, :d])
                worst = max(
                    float((own_mu - mu[i, :, :d]).abs().max()),
                    float((own_lv - logvar[i, :, :d]).abs().max()),
                    float((own_logits - logits[i]).abs().max()),
                )
                if not worst <= DRY_RUN_TOLERANCE:
                    return (
                        f"the stacked network differs from member {i}'s own by {worst:.3g} "
                        f"(its latent size is not only the heads' width)"
                    )
    except Exception as exc:  # vmap cannot trace the modules: any error means "not batchable"
        return f"vmap cannot run its modules ({type(exc).__name__}: {exc})"
    return None


class StackedMembers:
    """Stacked, padded parameters of G members and the vmapped network over them.

    ``params`` are leaf tensors of shape (G, *padded_shape); ``optimizer`` is one
    ``torch.optim.Adam`` over them, elementwise and therefore the members' own Adams. Members
    must be ``GaussianVAE``s: the stacked step rebuilds that class's loss with their
    ``objective`` (``vmap_problem`` says whether a set of models qualifies).
    """

    def __init__(self, models: Sequence[nn.Module], lr: float = 5e-4) -> None:
        self.models: list[GaussianVAE] = []
        for m in models:
            if not isinstance(m, GaussianVAE):
                raise TypeError(
                    f"{type(m).__name__} is not a GaussianVAE; only those can be stacked "
                    "(see vmap_problem)"
                )
            self.models.append(m)
        self.lr = lr
        widest = max(self.models, key=lambda m: m.latent_dim)
        self.dims = [int(m.latent_dim) for m in self.models]
        self.d_max = int(widest.latent_dim)
        self.names = [n for n, _ in widest.named_parameters()]
        self.shapes = {n: p.shape for n, p in widest.named_parameters()}
        device = next(widest.parameters()).device
        self.template = _Net(copy.deepcopy(widest)).to("meta")
        padded = [
            {n: _pad(p, self.shapes[n]) for n, p in m.named_parameters()} for m in self.models
        ]
        self.params = {
            f"m.{n}": torch.stack([p[n] for p in padded]).requires_grad_() for n in self.names
        }
        self.mask = torch.zeros((len(self.models), 1, self.d_max), device=device)
        for i, d in enumerate(self.dims):
            self.mask[i, :, :d] = 1.0
        self.optimizer = torch.optim.Adam(list(self.params.values()), lr=lr)
        self._vencode = vmap(lambda p, x: functional_call(self.template, p, (x,)))
        self._vdecode = vmap(lambda p, z: functional_call(self.template, p, (z, True)))

    def __len__(self) -> int:
        return len(self.models)

    # -- the network -----------------------------------------------------------------------

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(G, B, C, H, W) -> mu, logvar (G, B, D_max); padded dimensions are exactly 0."""
        return self._vencode(self.params, x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._vdecode(self.params, z)

    def loss_terms(
        self, x: torch.Tensor, eps: Sequence[torch.Tensor], step: int
    ) -> list[dict[str, torch.Tensor]]:
        """Each member's loss dict, as ``GaussianVAE.loss`` computes it, for inputs x (G, B, ...)
        and each member's own noise ``eps[i]`` of shape (B, D_i)."""
        mu, logvar = self.encode(x)
        noise = torch.stack([_pad(e, mu.shape[1:]) for e in eps])
        z = mu + (0.5 * logvar).exp() * noise
        logits = self.decode(z)
        out = []
        for i, (m, d) in enumerate(zip(self.models, self.dims)):
            rec = bernoulli_reconstruction(logits[i], x[i])
            kld = kl_per_dim(mu[i, :, :d].float(), logvar[i, :, :d].float())
            kl = kld.sum()
            terms = {"reconstruction": rec, "kl": kl, "kl_per_dim": kld}
            terms.update(m.objective(rec, kl, step))
            out.append(terms)
        return out

    # -- members in and out ----------------------------------------------------------------

    def sync_to_models(self) -> None:
        """Copy the stacked weights back into each member's own module (unpadded)."""
        with torch.no_grad():
            for i, m in enumerate(self.models):
                for n, p in m.named_parameters():
                    p.copy_(_unpad(self.params[f"m.{n}"][i], p.shape))

    def member_optimizer_state(self, i: int) -> dict:
        """Member i's Adam state as ``torch.optim.Adam(model.parameters()).state_dict()``."""
        m = self.models[i]
        reference = torch.optim.Adam(m.parameters(), lr=self.lr).state_dict()
        state = {}
        for k, (n, p) in enumerate(m.named_parameters()):
            st = self.optimizer.state.get(self.params[f"m.{n}"])
            if not st:
                continue
            state[k] = {
                "step": st["step"].detach().clone(),
                "exp_avg": _unpad(st["exp_avg"][i], p.shape).detach().clone(),
                "exp_avg_sq": _unpad(st["exp_avg_sq"][i], p.shape).detach().clone(),
            }
        return {"state": state, "param_groups": reference["param_groups"]}

    def load_member_optimizer_state(self, i: int, sd: dict) -> None:
        """Put a single run's Adam state (``optimizer.state_dict()``) into member i's slots."""
        m = self.models[i]
        for k, (n, _p) in enumerate(m.named_parameters()):
            st_in = sd["state"].get(k)
            if st_in is None:
                continue
            param = self.params[f"m.{n}"]
            st = self.optimizer.state[param]
            if not st:
                st["step"] = st_in["step"].detach().clone()
                st["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                st["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            with torch.no_grad():
                st["step"] = st_in["step"].detach().clone()
                st["exp_avg"][i] = _pad(st_in["exp_avg"], self.shapes[n])
                st["exp_avg_sq"][i] = _pad(st_in["exp_avg_sq"], self.shapes[n])

    def load_member_weights(self, i: int) -> None:
        """Copy member i's own module weights into its stacked slot (after a checkpoint load)."""
        with torch.no_grad():
            for n, p in self.models[i].named_parameters():
                self.params[f"m.{n}"][i] = _pad(p, self.shapes[n])

    def keep(self, keep: Sequence[int]) -> None:
        """Drop every member not in ``keep`` (a stopped member): weights and Adam state sliced."""
        idx = torch.as_tensor(list(keep), dtype=torch.long, device=self.mask.device)
        old_state = {name: self.optimizer.state.get(p) for name, p in self.params.items()}
        self.params = {
            name: p.detach()[idx].clone().requires_grad_() for name, p in self.params.items()
        }
        self.models = [self.models[i] for i in keep]
        self.dims = [self.dims[i] for i in keep]
        self.mask = self.mask[idx]
        self.optimizer = torch.optim.Adam(list(self.params.values()), lr=self.lr)
        for name, p in self.params.items():
            st = old_state[name]
            if st:
                self.optimizer.state[p] = {
                    "step": st["step"].clone(),
                    "exp_avg": st["exp_avg"][idx].clone(),
                    "exp_avg_sq": st["exp_avg_sq"][idx].clone(),
                }


__all__ = ["StackedMembers", "vmap_problem"]
