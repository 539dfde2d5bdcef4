"""Find the latent code whose generated scan best matches each input scan (batched).

fast:   z = E(x).
refine: start at E(x) plus random restarts, Adam on z (image MSE + kappa * critic-feature MSE +
        a small z-norm prior), all scans and restarts in one tensor; keep each scan's best.
seed:   the publication's search: 3 random restarts, 19 Adam steps on z (lr 0.05) and on a
        per-scan copy of the generator (lr 6e-9), plain MSE; score = mean final loss over
        restarts. Per-scan generator copies are batched with torch.func, so it is faithful yet fast
        on a GPU (25x the one-at-a-time form on an H100); a CPU gains little from batching it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, vmap

from anomaly_gan.bundle.meta import InvertSettings


@dataclass
class Inversion:
    z: torch.Tensor  # (B, latent)
    recon: torch.Tensor  # (B, C, H, W)
    loss: torch.Tensor  # (B,) the search's own final loss (seed mode: its score)


CriticFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _refine_loss(
    generator_out: torch.Tensor,
    target: torch.Tensor,
    target_features: torch.Tensor,
    z: torch.Tensor,
    critic: CriticFn,
    settings: InvertSettings,
) -> torch.Tensor:
    """Per-code loss (N,): image MSE + kappa * critic-feature MSE + prior * mean(z^2)."""
    loss = ((generator_out - target) ** 2).flatten(1).mean(1)
    loss = loss + settings.kappa * ((critic(generator_out)[1] - target_features) ** 2).mean(1)
    return loss + settings.prior * (z**2).mean(1)


def invert_fast(generator: nn.Module, encoder: nn.Module, x: torch.Tensor) -> Inversion:
    with torch.no_grad():
        z = encoder(x)
        recon = generator(z)
        return Inversion(z, recon, ((recon - x) ** 2).flatten(1).mean(1))


def invert_refine(
    generator: nn.Module,
    critic: CriticFn,
    encoder: nn.Module,
    x: torch.Tensor,
    settings: InvertSettings,
    starts: torch.Tensor,
) -> Inversion:
    """starts: (B, restarts, latent) random initial codes (E(x) is added as the first start)."""
    b, r = x.shape[0], settings.restarts + 1
    with torch.no_grad():
        z0 = torch.cat([encoder(x)[:, None], starts], dim=1).flatten(0, 1)  # (B*R, latent)
        target = x.repeat_interleave(r, dim=0)
        target_features = critic(target)[1]
    z = z0.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=settings.lr)
    for _ in range(settings.steps):
        loss = _refine_loss(generator(z), target, target_features, z, critic, settings)
        optimiser.zero_grad(set_to_none=True)
        # the sum gives each code its own loss's gradient; inputs=[z] skips the networks' weight
        # gradients, which refine never uses (1.4x faster)
        loss.sum().backward(inputs=[z])
        optimiser.step()
    with torch.no_grad():
        recon = generator(z)
        final = _refine_loss(recon, target, target_features, z, critic, settings).view(b, r)
        best = final.argmin(dim=1)
        pick = torch.arange(b, device=x.device) * r + best
        return Inversion(z[pick].detach(), recon[pick], final.gather(1, best[:, None])[:, 0])


def invert_seed(generator: nn.Module, x: torch.Tensor, settings: InvertSettings, starts: torch.Tensor) -> Inversion:
    """Batched form of the publication's search. generator must be an eager nn.Module.

    starts: (B, seed_restarts, latent). Every (scan, restart) pair gets its own copy of the
    generator's weights, updated by its own Adam, exactly as the one-at-a-time form does.
    """
    b, r = x.shape[0], settings.seed_restarts
    params = {k: v.detach() for k, v in generator.named_parameters()}
    buffers = {k: v.detach() for k, v in generator.named_buffers()}
    copies = {k: v.expand(b * r, *v.shape).clone().requires_grad_(True) for k, v in params.items()}
    z = starts.flatten(0, 1).clone().requires_grad_(True)
    target = x.repeat_interleave(r, dim=0)

    def one(p: dict, code: torch.Tensor) -> torch.Tensor:
        return functional_call(generator, (p, buffers), (code[None],))[0]

    run = vmap(one)
    optimiser = torch.optim.Adam(
        [{"params": [z], "lr": settings.seed_lr_z}, {"params": list(copies.values()), "lr": settings.seed_lr_g}]
    )
    for _ in range(settings.seed_steps):
        loss = ((run(copies, z) - target) ** 2).flatten(1).mean(1)
        optimiser.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimiser.step()
    with torch.no_grad():
        recon = run(copies, z)
        final = ((recon - target) ** 2).flatten(1).mean(1).view(b, r)
        best = final.argmin(dim=1)
        pick = torch.arange(b, device=x.device) * r + best
        return Inversion(z[pick].detach(), recon[pick], final.mean(dim=1))


def invert_seed_unbatched(
    generator: nn.Module, x: torch.Tensor, settings: InvertSettings, starts: torch.Tensor
) -> Inversion:
    """The publication's form, one scan and one restart at a time (reference and benchmark)."""
    zs, recons, scores = [], [], []
    for i in range(x.shape[0]):
        finals, best = [], None
        for k in range(settings.seed_restarts):
            g = copy.deepcopy(generator)
            z = starts[i, k][None].clone().requires_grad_(True)
            optimiser = torch.optim.Adam(
                [{"params": [z], "lr": settings.seed_lr_z}, {"params": list(g.parameters()), "lr": settings.seed_lr_g}]
            )
            for _ in range(settings.seed_steps):
                loss = ((g(z) - x[i : i + 1]) ** 2).mean()
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
            with torch.no_grad():
                recon = g(z)
                final = ((recon - x[i : i + 1]) ** 2).mean()
            finals.append(final)
            if best is None or final < best[0]:
                best = (final, z.detach()[0], recon[0])
        zs.append(best[1])
        recons.append(best[2])
        scores.append(torch.stack(finals).mean())
    return Inversion(torch.stack(zs), torch.stack(recons), torch.stack(scores))
