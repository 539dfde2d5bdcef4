"""Score batches of scans with a set of networks, in any inversion mode, in bounded memory.

Used by calibration (right after training, eager networks) and by detection (TorchScript bundle),
so the two always compute scores the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from anomaly_gan.detect.invert import Inversion, InvertSettings, invert_fast, invert_refine, invert_seed
from anomaly_gan.detect.score import COMPONENTS, components

SEED_SCANS_PER_CPU_PASS = 2  # measured on 2 cores: 1-2 scans per pass 2.1-2.7 scans/s, 8 scans 1.6


@dataclass
class Networks:
    generator: nn.Module
    critic: nn.Module
    encoder: nn.Module
    eager_generator: Callable[[], nn.Module]  # seed mode needs an nn.Module to copy per scan
    latent: int


@dataclass
class Scored:
    values: dict[str, np.ndarray]  # component -> (N,)
    maps: np.ndarray  # (N, H, W) anomaly maps
    recon: np.ndarray  # (N, C, H, W) reconstructions in [-1, 1]


class Scorer:
    def __init__(self, nets: Networks, settings: InvertSettings, device: torch.device,
                 batch_size: int = 64, seed: int = 0) -> None:
        self.nets, self.settings, self.device = nets, settings, device
        self.batch_size, self.seed = batch_size, seed
        self._eager: nn.Module | None = None

    def _starts(self, n: int, restarts: int, chunk: int) -> torch.Tensor:
        rng = torch.Generator().manual_seed(self.seed * 100_003 + chunk)
        return torch.randn(n, restarts, self.nets.latent, generator=rng).to(self.device)

    def _invert(self, x: torch.Tensor, mode: str, chunk: int):
        n = self.nets
        if mode == "fast":
            return invert_fast(n.generator, n.encoder, x)
        if mode == "refine":
            return invert_refine(n.generator, n.critic, n.encoder, x, self.settings,
                                 self._starts(x.shape[0], self.settings.restarts, chunk))
        if mode == "seed":
            return self._invert_seed(x, chunk)
        raise ValueError(f"unknown mode {mode!r}")

    def _invert_seed(self, x: torch.Tensor, chunk: int) -> Inversion:
        """Seed mode in passes of a few scans on the CPU, where vmap's per-copy (grouped)
        convolutions gain nothing from more copies and slow down beyond 4 scans (12 copies);
        the whole batch at once on a GPU. Same starts, same results either way."""
        if self._eager is None:
            self._eager = self.nets.eager_generator()
        starts = self._starts(x.shape[0], self.settings.seed_restarts, chunk)
        size = SEED_SCANS_PER_CPU_PASS if self.device.type == "cpu" else x.shape[0]
        parts = [invert_seed(self._eager, x[i:i + size], self.settings, starts[i:i + size])
                 for i in range(0, x.shape[0], size)]
        return Inversion(torch.cat([p.z for p in parts]), torch.cat([p.recon for p in parts]),
                         torch.cat([p.loss for p in parts]))

    def score(self, x: torch.Tensor, mode: str, chunk: int = 0) -> Scored:
        """Score one batch (the caller sizes batches; only seed mode on a CPU runs it in passes)."""
        x = x.to(self.device, memory_format=torch.channels_last)
        inversion = self._invert(x, mode, chunk)
        values, maps = components(x, inversion.recon, self.nets.critic, inversion.loss)
        return Scored({k: values[k].float().cpu().numpy() for k in COMPONENTS},
                      maps.float().cpu().numpy(), inversion.recon.float().cpu().numpy())

    def score_all(self, x: torch.Tensor, mode: str) -> Scored:
        """Score a tensor of any length in chunks of batch_size."""
        size = self.batch_size
        parts = [self.score(x[i:i + size], mode, chunk) for chunk, i in enumerate(range(0, len(x), size))]
        return Scored({k: np.concatenate([p.values[k] for p in parts]) for k in COMPONENTS},
                      np.concatenate([p.maps for p in parts]), np.concatenate([p.recon for p in parts]))
