"""Each objective's losses on toy inputs, and each one learning the two half-rings toy."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from anomaly_gan.train.objectives import (
    GAN,
    LSGAN,
    OBJECTIVES,
    WGANGP,
    WGANClip,
    gradient_penalty,
    wasserstein_critic_loss,
)
from anomaly_gan.train.trainer import gan_step


def constant_critic(real_value: float, fake_value: float):
    """A critic that scores the batch it was built for; real inputs are > 0, fake < 0."""

    def critic(x):
        score = torch.where(x.flatten(1).mean(1) > 0, torch.tensor(real_value), torch.tensor(fake_value))
        return score, x.flatten(1)

    return critic


REAL, FAKE = torch.ones(4, 2), -torch.ones(4, 2)


def test_gan_losses_follow_the_critic() -> None:
    unsmoothed = GAN(replace(GAN.DEFAULTS, smooth=1.0))
    good = unsmoothed.critic_loss(constant_critic(10.0, -10.0), REAL, FAKE)[0].item()
    bad = unsmoothed.critic_loss(constant_critic(-10.0, 10.0), REAL, FAKE)[0].item()
    assert good < 1e-3 and bad > 19
    fooled = GAN().generator_loss(constant_critic(0, 10.0), FAKE)[0].item()
    caught = GAN().generator_loss(constant_critic(0, -10.0), FAKE)[0].item()
    assert fooled < 1e-3 < 9 < caught
    smoothed = GAN().critic_loss(constant_critic(10.0, -10.0), REAL, FAKE)[0].item()  # default 0.9
    assert smoothed > 0.9  # label smoothing: a perfectly confident critic is penalised


def test_gan_alternating_updates() -> None:
    assert [GAN(replace(GAN.DEFAULTS, d_every=2)).update_critic(s) for s in range(4)] == [True, False, True, False]
    assert all(GAN().update_critic(s) for s in range(4))


def test_lsgan_targets() -> None:
    perfect = LSGAN().critic_loss(constant_critic(1.0, -1.0), REAL, FAKE)[0].item()
    assert perfect == pytest.approx(0.0)
    assert LSGAN().critic_loss(constant_critic(-1.0, 1.0), REAL, FAKE)[0].item() == pytest.approx(4.0)
    assert LSGAN().generator_loss(constant_critic(0, 1.0), FAKE)[0].item() == pytest.approx(0.0)
    assert LSGAN().generator_loss(constant_critic(0, -1.0), FAKE)[0].item() == pytest.approx(2.0)


def test_wasserstein_sign_and_clipping() -> None:
    loss, stats = WGANClip().critic_loss(constant_critic(3.0, -1.0), REAL, FAKE)
    assert loss.item() == pytest.approx(-4.0) and stats["wasserstein"] == pytest.approx(4.0)
    assert WGANClip().generator_loss(constant_critic(0, 2.0), FAKE)[0].item() == pytest.approx(-2.0)
    layer = nn.Linear(3, 3)
    nn.init.constant_(layer.weight, 5.0)
    WGANClip().after_critic_step(layer)
    assert layer.weight.abs().max().item() == pytest.approx(0.01)
    assert isinstance(WGANClip().optimizers(layer, layer)[0], torch.optim.RMSprop)


def test_gradient_penalty_is_zero_for_unit_gradient_and_positive_otherwise() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(8, 2), torch.randn(8, 2)

    def unit(v):
        return v[:, 0], v  # gradient (1, 0): norm 1

    def steep(v):
        return 3 * v[:, 0], v  # norm 3 -> penalty 4

    assert gradient_penalty(unit, x, y).item() == pytest.approx(0.0, abs=1e-6)
    assert gradient_penalty(steep, x, y).item() == pytest.approx(4.0)
    assert WGANGP.critic_norm != "batch"  # no BatchNorm in a gradient-penalty critic


def test_lazy_gradient_penalty_lands_on_every_nth_update_n_times_as_heavy() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(8, 2), torch.randn(8, 2)

    def steep(v):
        return 3 * v[:, 0], v  # gradient norm 3: penalty 4 wherever it is estimated

    plain = wasserstein_critic_loss(steep, x, y)[0].item()
    lazy = WGANGP(replace(WGANGP.DEFAULTS, gp_weight=10.0, gp_every=3))
    losses = [lazy.critic_loss(steep, x, y, update) for update in range(6)]
    assert ["gradient_penalty" in stats for _, stats in losses] == [False, False, True] * 2
    assert [loss.item() for loss, _ in losses[:3]] == pytest.approx([plain, plain, plain + 3 * 10.0 * 4.0])
    every = WGANGP(replace(WGANGP.DEFAULTS, gp_weight=10.0, gp_every=1)).critic_loss(steep, x, y, 0)[0].item()
    assert every == pytest.approx(plain + 10.0 * 4.0)


def half_rings(n: int, rng: np.random.Generator) -> torch.Tensor:
    """The seed's 2-D toy: two interleaved half circles."""
    t = rng.uniform(0, math.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(t), 1 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    return torch.tensor(np.c_[x, y] + rng.normal(0, 0.05, (n, 2)), dtype=torch.float32)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = 64) -> float:
    fixed = torch.Generator().manual_seed(0)
    directions = torch.nn.functional.normalize(torch.randn(2, projections, generator=fixed), dim=0)
    pa, pb = torch.sort(a @ directions, 0)[0], torch.sort(b @ directions, 0)[0]
    return (pa - pb).abs().mean().item()


def mlp(inputs: int, outputs: int, width: int = 128) -> nn.Module:
    return nn.Sequential(
        nn.Linear(inputs, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, outputs),
    )


def learn_half_rings(name: str, seed: int, steps: int = 600, batch: int = 256) -> tuple[float, float]:
    """Sliced Wasserstein distance to the data before training, and its median over the last six
    snapshots (every 50 steps): GANs oscillate, one snapshot would be luck (floor: about 0.015)."""
    torch.manual_seed(seed)
    data = half_rings(4000, np.random.default_rng(seed))
    cls = OBJECTIVES[name]
    # the critic learns faster (TTUR); Adam(0.5, 0.9) for all: wgan-gp's image default beta1 = 0
    # cycles on this toy; no label smoothing
    # and wgan-gp's former critic schedule: with this toy's critic rate, its image default (4 updates, the
    # penalty on the last, 4 times as heavy) reaches 0.21-0.49 on seeds 1-3 against 0.17-0.25 (docs/decisions.md)
    toy = {"n_critic": 5, "gp_every": 1} if name == "wgan-gp" else {}
    objective = cls(replace(cls.DEFAULTS, lr_g=1e-4, lr_d=1e-3, betas=(0.5, 0.9), smooth=1.0, **toy))
    g, body = mlp(2, 2), mlp(2, 1)

    def critic(x):
        return body(x)[:, 0], x

    optimisers = objective.optimizers(g, body)
    before = sliced_wasserstein(g(torch.randn(2000, 2)).detach(), data[:2000])
    snapshots = []
    for step in range(1, steps + 1):
        gan_step(
            objective,
            g,
            body,
            critic,
            optimisers,
            step,
            lambda: data[torch.randint(len(data), (batch,))],
            lambda: torch.randn(batch, 2),
        )
        if step > steps - 300 and step % 50 == 0:
            snapshots.append(sliced_wasserstein(g(torch.randn(2000, 2)).detach(), data[:2000]))
    return before, float(np.median(snapshots))


@pytest.fixture
def one_thread():
    """GAN trajectories are chaotic: a different thread count reorders float sums and lands
    elsewhere, so the toy runs on one thread and is the same run on every machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_each_objective_learns_half_rings(name: str, one_thread) -> None:
    before, after = learn_half_rings(name, seed=1)
    assert after < 0.2 and after < before / 3, (before, after)


def test_switches_reach_the_objective_and_refuse_what_does_not_apply() -> None:
    from anomaly_gan.train.config import TrainConfig
    from anomaly_gan.train.objective_settings import DEFAULT_SETTINGS, with_switches

    gan = TrainConfig(
        name="x", objective="gan", objective_settings=with_switches("gan", lr_g=1e-4, lr_d=3e-4, d_every=2, smooth=1.0)
    ).build_objective()
    assert (gan.settings.lr_g, gan.settings.lr_d, gan.settings.d_every, gan.settings.smooth) == (1e-4, 3e-4, 2, 1.0)
    assert [gan.update_critic(step) for step in range(4)] == [True, False, True, False]
    clip = TrainConfig(
        name="x", objective="wgan-clip", objective_settings=with_switches("wgan-clip", n_critic=3, clip=0.02)
    ).build_objective()
    assert (clip.n_critic, clip.settings.clip) == (3, 0.02)
    gp = with_switches("wgan-gp", gp_weight=5.0, gp_every=2)
    assert (gp.gp_weight, gp.gp_every) == (5.0, 2)
    assert gp.n_critic == DEFAULT_SETTINGS["wgan-gp"].n_critic  # the rest stays the objective's default
    for objective, switch in (
        ("gan", "clip"),
        ("wgan-gp", "smooth"),
        ("gan", "n_critic"),
        ("wgan-clip", "d_every"),
        ("wgan-clip", "gp_every"),
    ):
        with pytest.raises(ValueError, match="applies to"):
            with_switches(objective, **{switch: 1})
