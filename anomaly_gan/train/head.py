"""Train the segmentation head on good training scans with simulated defects, G and E frozen.

Each step takes a batch of training scans, gives most of them one simulated defect (data.simulate,
the kinds in config.head_kinds), reconstructs every scan as detection would (G(E(x)) of the
defective scan) and teaches the head the defect masks with focal + Dice loss. Its randomness comes
from its own seeded streams, so a resumed run retrains the same head.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anomaly_gan.data.simulate import simulate
from anomaly_gan.models.segmenter import Segmenter
from anomaly_gan.train.config import TrainConfig
from anomaly_gan.train.replicas import average_gradients, broadcast_buffers, rank

DEFECTIVE_SHARE = 0.8  # of each batch; the rest stay good, so the head also learns "nothing here"


def build_head(config: TrainConfig, device: torch.device) -> Segmenter:
    torch.manual_seed(config.seed + 1)
    return Segmenter(config.head_config).to(device, memory_format=torch.channels_last)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Binary focal loss: easy (mostly background) pixels weigh little."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = torch.exp(-bce)
    return ((1 - p_t) ** gamma * bce).mean()


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - Dice over the whole batch (defined when a batch holds no defect pixel)."""
    p = torch.sigmoid(logits)
    return 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)


def defective_batch(pool: np.ndarray, config: TrainConfig, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(B, 4, S, S) scans, most with one simulated defect, and their (B, S, S) masks (of what the
    networks' channels show)."""
    scans, masks = [], []
    for i in rng.integers(len(pool), size=config.head_batch):
        if rng.random() < DEFECTIVE_SHARE:
            array, mask = simulate(pool[i], rng, config.head_kinds, pool, config.channel_set)
        else:
            array, mask = pool[i], np.zeros(pool.shape[2:], bool)
        scans.append(array)
        masks.append(mask)
    return np.stack(scans), np.stack(masks)


def train_head(config: TrainConfig, head: nn.Module, generator: nn.Module, encoder: nn.Module,
               data: torch.Tensor) -> Iterator[dict[str, float]]:
    """Yields one log row per step; `head` is trained in place. `data`: 4-channel training scans."""
    rng = np.random.default_rng([config.seed, 5, *([rank()] if rank() else [])])  # ranks draw their own defects
    pool = np.ascontiguousarray(data.cpu().numpy())
    device = data.device
    optimiser = torch.optim.Adam(head.parameters(), config.head_lr)
    generator.eval(), encoder.eval(), head.train()
    for step in range(config.head_steps):
        started = time.perf_counter()
        scans, masks = defective_batch(pool, config, rng)
        x = torch.from_numpy(config.channel_set.pick(scans)).to(device).contiguous(memory_format=torch.channels_last)
        target = torch.from_numpy(masks).float().to(device)
        with torch.no_grad():
            recon = generator(encoder(x))
        logits = head(x, recon)
        focal, dice = focal_loss(logits, target), dice_loss(logits, target)
        loss = focal + dice
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(head)
        optimiser.step()
        broadcast_buffers(head)
        yield {"step": step + 1, "h_loss": loss.item(), "h_focal": focal.item(), "h_dice": dice.item(),
               "seconds": time.perf_counter() - started}
    head.eval()
