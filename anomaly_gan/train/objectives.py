"""GAN objectives: one small class each behind one interface, with every switch in one settings value.

The critic always returns raw scores; each objective decides what they mean. Every loss method
returns (loss, stats) where stats are floats for the training log. Each objective's defaults are
its `DEFAULTS`; the settings actually used travel in the bundle's training config.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from anomaly_gan.train.objective_settings import DEFAULT_SETTINGS, DEFAULT_STEPS, ObjectiveSettings

CriticFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
Stats = dict[str, float]


class Objective:
    name = ""
    critic_norm = "batch"
    default_steps = 0  # each objective's own length and DEFAULTS come from train.objective_settings
    DEFAULTS: ObjectiveSettings

    def __init__(self, settings: ObjectiveSettings | None = None) -> None:
        self.settings = settings or self.DEFAULTS

    @property
    def n_critic(self) -> int:
        return self.settings.n_critic

    def critic_loss(
        self, critic: CriticFn, real: torch.Tensor, fake: torch.Tensor, update: int = 0
    ) -> tuple[torch.Tensor, Stats]:
        """`update`: this critic update's index since training began (for a penalty on some only)."""
        raise NotImplementedError

    def generator_loss(self, critic: CriticFn, fake: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        raise NotImplementedError

    def optimizers(self, g: nn.Module, d: nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        s = self.settings
        if s.optimiser == "rmsprop":
            return torch.optim.RMSprop(g.parameters(), s.lr_g), torch.optim.RMSprop(d.parameters(), s.lr_d)
        if s.optimiser != "adam":
            raise ValueError(f"unknown optimiser {s.optimiser!r}; use adam or rmsprop")
        return (
            torch.optim.Adam(g.parameters(), s.lr_g, betas=s.betas),
            torch.optim.Adam(d.parameters(), s.lr_d, betas=s.betas),
        )

    def after_critic_step(self, critic: nn.Module) -> None:
        """Hook for constraints applied to the weights after each critic update."""

    def update_critic(self, step: int) -> bool:
        """Whether to update the critic on this generator step (alternating updates)."""
        return step % self.settings.d_every == 0


def _accuracy(real_score: torch.Tensor, fake_score: torch.Tensor, boundary: float) -> Stats:
    return {
        "acc_real": (real_score > boundary).float().mean().item(),
        "acc_fake": (fake_score < boundary).float().mean().item(),
    }


class GAN(Objective):
    """Non-saturating GAN (binary cross-entropy on logits), one-sided label smoothing 0.9."""

    name = "gan"
    default_steps = DEFAULT_STEPS[name]
    DEFAULTS = DEFAULT_SETTINGS[name]

    def critic_loss(self, critic, real, fake, update=0):
        # update D: maximise log D(x) + log(1 - D(G(z)))
        real_score, fake_score = critic(real)[0], critic(fake)[0]
        target = torch.full_like(real_score, self.settings.smooth)
        loss = F.binary_cross_entropy_with_logits(real_score, target) + F.binary_cross_entropy_with_logits(
            fake_score, torch.zeros_like(fake_score)
        )
        stats = {"d_x": torch.sigmoid(real_score).mean().item(), "d_g_z": torch.sigmoid(fake_score).mean().item()}
        return loss, stats | _accuracy(real_score, fake_score, 0.0)

    def generator_loss(self, critic, fake):
        # update G: maximise log D(G(z)) (non-saturating)
        score = critic(fake)[0]
        return F.binary_cross_entropy_with_logits(score, torch.ones_like(score)), {}


class LSGAN(Objective):
    """Least-squares GAN: real target 1, fake target -1, the generator aims at 1."""

    name = "lsgan"
    default_steps = DEFAULT_STEPS[name]
    DEFAULTS = DEFAULT_SETTINGS[name]

    def critic_loss(self, critic, real, fake, update=0):
        # update D: minimise (D(x) - 1)^2 + (D(G(z)) + 1)^2
        real_score, fake_score = critic(real)[0], critic(fake)[0]
        loss = 0.5 * ((real_score - 1) ** 2).mean() + 0.5 * ((fake_score + 1) ** 2).mean()
        stats = {"d_x": real_score.mean().item(), "d_g_z": fake_score.mean().item()}
        return loss, stats | _accuracy(real_score, fake_score, 0.0)

    def generator_loss(self, critic, fake):
        # update G: minimise (D(G(z)) - 1)^2
        return 0.5 * ((critic(fake)[0] - 1) ** 2).mean(), {}


def wasserstein_critic_loss(critic: CriticFn, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, Stats]:
    """update D: maximise D(x) - D(G(z)), the Wasserstein estimate (so minimise its negative)."""
    real_score, fake_score = critic(real)[0], critic(fake)[0]
    distance = real_score.mean() - fake_score.mean()
    return -distance, {
        "d_x": real_score.mean().item(),
        "d_g_z": fake_score.mean().item(),
        "wasserstein": distance.item(),
    }


def wasserstein_generator_loss(critic: CriticFn, fake: torch.Tensor) -> tuple[torch.Tensor, Stats]:
    """update G: maximise D(G(z))."""
    return -critic(fake)[0].mean(), {}


class WGANClip(Objective):
    """Wasserstein GAN with weight clipping (0.01), 5 critic steps per G step, RMSprop."""

    name = "wgan-clip"
    critic_norm = "none"
    default_steps = DEFAULT_STEPS[name]
    DEFAULTS = DEFAULT_SETTINGS[name]

    def critic_loss(self, critic, real, fake, update=0):
        return wasserstein_critic_loss(critic, real, fake)

    def generator_loss(self, critic, fake):
        return wasserstein_generator_loss(critic, fake)

    def after_critic_step(self, critic):
        with torch.no_grad():
            for p in critic.parameters():
                p.clamp_(-self.settings.clip, self.settings.clip)


class WGANGP(Objective):
    """Wasserstein GAN with gradient penalty (10); the critic has no BatchNorm (LayerNorm).

    The critic learns faster than the generator (TTUR): with equal rates the generator outruns
    the critic and the Wasserstein estimate turns negative (seen on the half-rings toy).
    The penalty is an expectation over interpolates; estimating it on the first `gp_samples`
    pairs of the (randomly drawn) batch keeps it unbiased and makes the double backward, the
    dearest part of a critic step, 4x cheaper at batch 64. With `gp_every` N > 1 it is applied on
    every N-th critic update only, N times as heavy (lazy regularisation, as StyleGAN2 does with
    R1): the last update of each cycle, so that the logged row, the generator step's last, has it.
    """

    name = "wgan-gp"
    critic_norm = "layer"
    default_steps = DEFAULT_STEPS[name]
    DEFAULTS = DEFAULT_SETTINGS[name]

    def critic_loss(self, critic, real, fake, update=0):
        # update D: maximise D(x) - D(G(z)) - lambda (||grad D(x_hat)|| - 1)^2
        loss, stats = wasserstein_critic_loss(critic, real, fake)
        s = self.settings
        if (update + 1) % s.gp_every:
            return loss, stats
        gp = gradient_penalty(critic, real[: s.gp_samples], fake[: s.gp_samples])
        return loss + s.gp_every * s.gp_weight * gp, stats | {"gradient_penalty": gp.item()}

    def generator_loss(self, critic, fake):
        return wasserstein_generator_loss(critic, fake)


def gradient_penalty(critic: CriticFn, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates of real and fake."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    score = critic(mixed)[0]
    (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


OBJECTIVES: dict[str, type[Objective]] = {o.name: o for o in (GAN, LSGAN, WGANClip, WGANGP)}
