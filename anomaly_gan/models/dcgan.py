"""DCGAN for 32, 64 or 128-pixel scans of 4, 3 or 1 channels: generator, critic and encoder.

The critic returns (score, features): the raw score (a logit for gan, a value for the others) and
its last feature map flattened, which f-AnoGAN's feature residual compares. The encoder mirrors the
critic and maps a scan back to z, so detection can start its latent search where it should.
"""

from __future__ import annotations

import torch
from torch import nn

from anomaly_gan.models.config import IMAGE_SIZES, NetConfig


def _norm(kind: str, channels: int, size: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # LayerNorm over (C, H, W), safe with gradient penalty
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


def _levels(config: NetConfig) -> list[int]:
    """Channel counts per resolution from size/2 down to 4x4 (64 -> 4 is four stride-2 steps)."""
    steps = IMAGE_SIZES[config.image_size]
    return [config.width * 2**i for i in range(steps)]


class Generator(nn.Module):
    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        widths = list(reversed(_levels(config)))  # e.g. 256, 128, 64, 32
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(config.latent, widths[0], 4, 1, 0, bias=False),  # (B, w0, 4, 4)
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for cin, cout in zip(widths, widths[1:], strict=False):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], config.channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.latent = config.latent

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.latent, 1, 1))  # (B, C, S, S)


class _Downsampler(nn.Module):
    """Shared trunk of critic and encoder: (B, C, S, S) -> (B, widest, 4, 4)."""

    def __init__(self, config: NetConfig, norm: str, spectral: bool) -> None:
        super().__init__()
        widths = _levels(config)
        wrap = nn.utils.parametrizations.spectral_norm if spectral else (lambda m: m)
        layers: list[nn.Module] = [wrap(nn.Conv2d(config.channels, widths[0], 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        size = config.image_size // 2
        for cin, cout in zip(widths, widths[1:], strict=False):
            size //= 2
            layers += [
                wrap(nn.Conv2d(cin, cout, 4, 2, 1, bias=norm == "none")),
                _norm(norm, cout, size),
                nn.LeakyReLU(0.2, True),
            ]
        self.net = nn.Sequential(*layers)
        self.out_channels = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Critic(nn.Module):
    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.trunk = _Downsampler(config, config.critic_norm, config.spectral_norm)
        head = nn.Conv2d(self.trunk.out_channels, 1, 4, 1, 0)
        self.head = nn.utils.parametrizations.spectral_norm(head) if config.spectral_norm else head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(x)  # (B, w3, 4, 4)
        return self.head(features).flatten(), features.flatten(1)


class Encoder(nn.Module):
    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.trunk = _Downsampler(config, "batch", False)
        self.head = nn.Conv2d(self.trunk.out_channels, config.latent, 4, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)).flatten(1)  # (B, latent)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convolutions, N(1, 0.02) norm scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
