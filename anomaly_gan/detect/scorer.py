"""Networks -> score components, maps and reconstructions, in any inversion mode.

Used by calibration (right after training, eager networks) and by detection (TorchScript bundle),
so the two always compute scores the same way. Random restarts are seeded from each scan's id,
so a scan scores the same whatever batch it arrives in.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from anomaly_gan.bundle.meta import InvertSettings
from anomaly_gan.bundle.store import Bundle
from anomaly_gan.data.channels import RGBD, Channels
from anomaly_gan.detect.components import components, full_recon
from anomaly_gan.detect.invert import Inversion, invert_fast, invert_refine, invert_seed
from anomaly_gan.detect.judge import Scored

SEED_SCANS_PER_CPU_PASS = 2  # measured on 2 cores: 1-2 scans per pass 2.1-2.7 scans/s, 8 scans 1.6


@dataclass
class Networks:
    generator: nn.Module
    critic: nn.Module
    encoder: nn.Module
    eager_generator: Callable[[], nn.Module]  # seed mode needs an nn.Module to copy per scan
    latent: int
    segmenter: nn.Module | None = None  # the segmentation head: (x, recon) -> defect logits
    channels: Channels = RGBD  # which of the scan's 4 channels the networks see

    @classmethod
    def of(cls, bundle: Bundle) -> Networks:
        """A loaded bundle's networks, as scoring uses them."""
        return cls(
            bundle.generator,
            bundle.critic,
            bundle.encoder,
            bundle.eager_generator,
            bundle.meta.network.latent,
            bundle.segmenter,
            bundle.meta.channels,
        )


def scan_key(scan_id: str, seed: int) -> int:
    """A stable integer per scan (and run seed) for its random restarts."""
    return zlib.crc32(f"{seed}:{scan_id}".encode())


class Scorer:
    def __init__(
        self, nets: Networks, settings: InvertSettings, device: torch.device, batch_size: int = 64, seed: int = 0
    ) -> None:
        self.nets, self.settings, self.device = nets, settings, device
        self.batch_size, self.seed = batch_size, seed
        self._eager: nn.Module | None = None

    def _starts(self, ids: Sequence[str], restarts: int) -> torch.Tensor:
        """(B, restarts, latent): each scan's random starts, from its own stream."""
        streams = [torch.Generator().manual_seed(scan_key(i, self.seed)) for i in ids]
        codes = [torch.randn(restarts, self.nets.latent, generator=g) for g in streams]
        return torch.stack(codes).to(self.device)

    def _invert(self, x: torch.Tensor, mode: str, ids: Sequence[str]) -> Inversion:
        n = self.nets
        if mode == "fast":
            return invert_fast(n.generator, n.encoder, x)
        if mode == "refine":
            return invert_refine(
                n.generator, n.critic, n.encoder, x, self.settings, self._starts(ids, self.settings.restarts)
            )
        if mode == "seed":
            return self._invert_seed(x, ids)
        raise ValueError(f"unknown mode {mode!r}")

    def _invert_seed(self, x: torch.Tensor, ids: Sequence[str]) -> Inversion:
        """Seed mode in passes of a few scans on the CPU, where vmap's per-copy (grouped)
        convolutions gain nothing from more copies and slow down beyond 4 scans (12 copies);
        the whole batch at once on a GPU. Same starts, same results either way."""
        if self._eager is None:
            self._eager = self.nets.eager_generator()
        starts = self._starts(ids, self.settings.seed_restarts)
        size = SEED_SCANS_PER_CPU_PASS if self.device.type == "cpu" else x.shape[0]
        parts = [
            invert_seed(self._eager, x[i : i + size], self.settings, starts[i : i + size])
            for i in range(0, x.shape[0], size)
        ]
        return Inversion(
            torch.cat([p.z for p in parts]), torch.cat([p.recon for p in parts]), torch.cat([p.loss for p in parts])
        )

    def score_batch(self, x: torch.Tensor, mode: str, ids: Sequence[str]) -> Scored:
        """Score one batch of 4-channel scans as given (only seed mode on a CPU splits it into
        passes); the networks see the bundle's channels."""
        x = x.to(self.device, memory_format=torch.channels_last)
        channels = self.nets.channels
        inversion = self._invert(channels.pick(x).contiguous(memory_format=torch.channels_last), mode, ids)
        recon = full_recon(x, inversion.recon, channels)
        values, maps = components(x, recon, self.nets.critic, inversion.loss, self.nets.segmenter, channels)
        return Scored(
            {k: v.float().cpu().numpy() for k, v in values.items()},
            maps.float().cpu().numpy(),
            recon.float().cpu().numpy(),
        )

    def score(self, x: torch.Tensor, mode: str, ids: Sequence[str]) -> Scored:
        """Score a tensor of any length in batches of batch_size; ids name the scans (N,)."""
        if len(ids) != len(x):
            raise ValueError(f"{len(ids)} ids for {len(x)} scans")
        size = self.batch_size
        return Scored.concat(
            [self.score_batch(x[i : i + size], mode, ids[i : i + size]) for i in range(0, len(x), size)]
        )
