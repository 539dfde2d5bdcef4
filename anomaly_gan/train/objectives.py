"""GAN objectives: one small class each behind one interface.

The critic always returns raw scores; each objective decides what they mean. Every loss method
returns (loss, stats) where stats are floats for the training log.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

CriticFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
Stats = dict[str, float]


class Objective:
    name = ""
    n_critic = 1
    critic_norm = "batch"
    # Generator updates that fit the 15-minute CPU budget for 375 scans (benchmarks/detect_kinect.py).
    default_steps = 1500

    def __init__(self, lr_g: float = 2e-4, lr_d: float = 2e-4) -> None:
        self.lr_g, self.lr_d = lr_g, lr_d

    def critic_loss(self, critic: CriticFn, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        raise NotImplementedError

    def generator_loss(self, critic: CriticFn, fake: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        raise NotImplementedError

    def optimizers(self, g: nn.Module, d: nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        return (torch.optim.Adam(g.parameters(), self.lr_g, betas=(0.5, 0.999)),
                torch.optim.Adam(d.parameters(), self.lr_d, betas=(0.5, 0.999)))

    def after_critic_step(self, critic: nn.Module) -> None:
        """Hook for constraints applied to the weights after each critic update."""

    def update_critic(self, step: int) -> bool:
        """Whether to update the critic on this generator step (alternating updates)."""
        return True


def _accuracy(real_score: torch.Tensor, fake_score: torch.Tensor, boundary: float) -> Stats:
    return {"acc_real": (real_score > boundary).float().mean().item(),
            "acc_fake": (fake_score < boundary).float().mean().item()}


class GAN(Objective):
    """Non-saturating GAN (binary cross-entropy on logits).

    Options: one-sided label smoothing (real target 0.9), alternating critic updates (every other
    step) and separate learning rates for G and D (TTUR).
    """

    name = "gan"

    def __init__(self, lr_g: float = 2e-4, lr_d: float = 2e-4, smooth: float = 0.9,
                 alternate: bool = False) -> None:
        super().__init__(lr_g, lr_d)
        self.smooth, self.alternate = smooth, alternate

    def critic_loss(self, critic, real, fake):
        # update D: maximise log D(x) + log(1 - D(G(z)))
        real_score, fake_score = critic(real)[0], critic(fake)[0]
        loss = (F.binary_cross_entropy_with_logits(real_score, torch.full_like(real_score, self.smooth))
                + F.binary_cross_entropy_with_logits(fake_score, torch.zeros_like(fake_score)))
        stats = {"d_x": torch.sigmoid(real_score).mean().item(),
                 "d_g_z": torch.sigmoid(fake_score).mean().item()}
        return loss, stats | _accuracy(real_score, fake_score, 0.0)

    def generator_loss(self, critic, fake):
        # update G: maximise log D(G(z)) (non-saturating)
        score = critic(fake)[0]
        return F.binary_cross_entropy_with_logits(score, torch.ones_like(score)), {}

    def update_critic(self, step: int) -> bool:
        return not self.alternate or step % 2 == 0


class LSGAN(Objective):
    """Least-squares GAN: real target 1, fake target -1, the generator aims at 1."""

    name = "lsgan"

    def critic_loss(self, critic, real, fake):
        # update D: minimise (D(x) - 1)^2 + (D(G(z)) + 1)^2
        real_score, fake_score = critic(real)[0], critic(fake)[0]
        loss = 0.5 * ((real_score - 1) ** 2).mean() + 0.5 * ((fake_score + 1) ** 2).mean()
        stats = {"d_x": real_score.mean().item(), "d_g_z": fake_score.mean().item()}
        return loss, stats | _accuracy(real_score, fake_score, 0.0)

    def generator_loss(self, critic, fake):
        # update G: minimise (D(G(z)) - 1)^2
        return 0.5 * ((critic(fake)[0] - 1) ** 2).mean(), {}


class WGANClip(Objective):
    """Wasserstein GAN with weight clipping (0.01), 5 critic steps per G step, RMSprop."""

    name = "wgan-clip"
    n_critic = 5
    critic_norm = "none"
    default_steps = 700

    def __init__(self, lr_g: float = 5e-5, lr_d: float = 5e-5, clip: float = 0.01) -> None:
        super().__init__(lr_g, lr_d)
        self.clip = clip

    def critic_loss(self, critic, real, fake):
        # update D: maximise D(x) - D(G(z))
        real_score, fake_score = critic(real)[0], critic(fake)[0]
        distance = real_score.mean() - fake_score.mean()
        return -distance, {"d_x": real_score.mean().item(), "d_g_z": fake_score.mean().item(),
                           "wasserstein": distance.item()}

    def generator_loss(self, critic, fake):
        # update G: maximise D(G(z))
        return -critic(fake)[0].mean(), {}

    def optimizers(self, g, d):
        return torch.optim.RMSprop(g.parameters(), self.lr_g), torch.optim.RMSprop(d.parameters(), self.lr_d)

    def after_critic_step(self, critic):
        with torch.no_grad():
            for p in critic.parameters():
                p.clamp_(-self.clip, self.clip)


class WGANGP(WGANClip):
    """Wasserstein GAN with gradient penalty (10); the critic has no BatchNorm (LayerNorm).

    The critic learns faster than the generator (TTUR): with equal rates the generator outruns
    the critic and the Wasserstein estimate turns negative (seen on the half-rings toy).
    The penalty is an expectation over interpolates; estimating it on the first `penalty_samples`
    pairs of the (randomly drawn) batch keeps it unbiased and makes the double backward, the
    dearest part of a critic step, 4x cheaper at batch 64.
    """

    name = "wgan-gp"
    critic_norm = "layer"
    default_steps = 600  # each step is 5 critic steps with a double backward: about 1 s on 2 cores

    def __init__(self, lr_g: float = 1e-4, lr_d: float = 3e-4, penalty: float = 10.0,
                 penalty_samples: int = 16) -> None:
        Objective.__init__(self, lr_g, lr_d)
        self.penalty, self.penalty_samples = penalty, penalty_samples

    def critic_loss(self, critic, real, fake):
        # update D: maximise D(x) - D(G(z)) - lambda (||grad D(x_hat)|| - 1)^2
        loss, stats = super().critic_loss(critic, real, fake)
        n = self.penalty_samples
        gp = gradient_penalty(critic, real[:n], fake[:n])
        return loss + self.penalty * gp, stats | {"gradient_penalty": gp.item()}

    def optimizers(self, g, d):
        return (torch.optim.Adam(g.parameters(), self.lr_g, betas=(0.0, 0.9)),
                torch.optim.Adam(d.parameters(), self.lr_d, betas=(0.0, 0.9)))

    def after_critic_step(self, critic):
        pass


def gradient_penalty(critic: CriticFn, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates of real and fake."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    score = critic(mixed)[0]
    (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


OBJECTIVES: dict[str, type[Objective]] = {o.name: o for o in (GAN, LSGAN, WGANClip, WGANGP)}
