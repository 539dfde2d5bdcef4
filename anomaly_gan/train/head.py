"""Train the segmentation head on good training scans with simulated defects, G and E frozen.

Each step takes a batch of training scans, gives most of them one simulated defect (data.simulate,
the stage's `kinds`), reconstructs every scan as detection would (G(E(x)) of the
defective scan) and teaches the head the defect masks with focal + Dice loss. Its randomness comes
from its own seeded streams, so a resumed run retrains the same head. The next batch is simulated
on a worker thread while a GPU trains on this one; on the CPU, where the networks keep every core
busy, in series (a worker made 2-core steps 7% slower).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anomaly_gan.data.simulate import simulate
from anomaly_gan.models.segmenter import Segmenter
from anomaly_gan.precision import autocast
from anomaly_gan.train.config import HeadStage
from anomaly_gan.train.replicas import average_gradients, broadcast_buffers, rank

DEFECTIVE_SHARE = 0.8  # of each batch; the rest stay good, so the head also learns "nothing here"
SCALE, SHIFT = 0.1, 0.05  # fractions (of the size, of the side): a part placed a little differently
GAIN = 0.15  # per colour channel: lighting and white balance (black background stays black)


def jitter(array: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A training scan shifted, scaled and lit a little differently (4, S, S).

    The GAN and encoder reconstruct the scans they trained on far better than new good scans
    (on Kinect spheres a head trained on them untouched gave held-out good scans a median
    probability 0.97, training scans 0.01): jittered scans are new to them, so the head learns
    what their miss on an unseen good part looks like and cannot memorise the training scans.
    Turning or mirroring the scans as well was worse on validation scans (it teaches the head
    that outlines vary: missing chunks and dents were missed).
    """
    s = array.shape[1]
    matrix = cv2.getRotationMatrix2D((s / 2 - 0.5, s / 2 - 0.5), 0.0, 1 + rng.uniform(-SCALE, SCALE))
    matrix[:, 2] += rng.uniform(-SHIFT, SHIFT, 2) * s
    colour = cv2.warpAffine(
        array[:3].transpose(1, 2, 0),
        matrix,
        (s, s),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(-1.0, -1.0, -1.0),
    )
    depth = cv2.warpAffine(
        array[3], matrix, (s, s), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=-1.0
    )
    gain = 1 + rng.uniform(-GAIN, GAIN, 3).astype(np.float32)
    colour = np.clip((colour + 1) * gain - 1, -1, 1).transpose(2, 0, 1)
    return np.concatenate([colour, depth[None]]).astype(np.float32)


def build_head(stage: HeadStage, device: torch.device) -> Segmenter:
    """The untrained head, in the default (NCHW) layout: its narrow BatchNorms (8-64 channels)
    run their backward 1.4-2.5x slower in channels-last on the CPU."""
    torch.manual_seed(stage.seed + 1)
    return Segmenter(stage.network).to(device)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Binary focal loss: easy (mostly background) pixels weigh little."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = torch.exp(-bce)
    return ((1 - p_t) ** gamma * bce).mean()


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - Dice over the whole batch (defined when a batch holds no defect pixel)."""
    p = torch.sigmoid(logits)
    return 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)


def defective_batch(pool: np.ndarray, stage: HeadStage, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(B, 4, S, S) scans, most with one simulated defect, and their (B, S, S) masks (of what the
    networks' channels show)."""
    scans, masks = [], []
    for i in rng.integers(len(pool), size=stage.batch):
        good = jitter(pool[i], rng) if stage.jitter else pool[i]
        if rng.random() < DEFECTIVE_SHARE:
            array, mask = simulate(good, rng, stage.kinds, pool, stage.channels)
        else:
            array, mask = good, np.zeros(pool.shape[2:], bool)
        scans.append(array)
        masks.append(mask)
    return np.stack(scans), np.stack(masks)


def _batches(
    pool: np.ndarray, stage: HeadStage, rng: np.random.Generator, ahead: bool
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """stage.steps defective batches; with `ahead`, each simulated while the caller trains on
    the one before. One thread draws them all from `rng` in order, so the stream is the same."""
    if not ahead:
        for _ in range(stage.steps):
            yield defective_batch(pool, stage, rng)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="simulate") as worker:
        pending = worker.submit(defective_batch, pool, stage, rng)
        for step in range(stage.steps):
            batch = pending.result()
            if step + 1 < stage.steps:
                pending = worker.submit(defective_batch, pool, stage, rng)
            yield batch


def train_head(
    stage: HeadStage, head: nn.Module, generator: nn.Module, encoder: nn.Module, data: torch.Tensor
) -> Iterator[dict[str, float]]:
    """Yields one log row per step; `head` is trained in place. `data`: 4-channel training scans."""
    rng = np.random.default_rng([stage.seed, 5, *([rank()] if rank() else [])])  # ranks draw their own defects
    pool = np.ascontiguousarray(data.cpu().numpy())
    device = data.device
    optimiser = torch.optim.Adam(head.parameters(), stage.lr)
    # decayed to zero: the head ends where its noisy trajectory settles, not at a chance point of it
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, stage.steps)
    generator.eval(), encoder.eval(), head.train()
    for step, (scans, masks) in enumerate(_batches(pool, stage, rng, device.type != "cpu")):
        started = time.perf_counter()
        x = torch.from_numpy(stage.channels.pick(scans)).to(device)
        target = torch.from_numpy(masks).float().to(device)
        with torch.no_grad(), autocast(device, stage.precision):
            recon = generator(encoder(x.contiguous(memory_format=torch.channels_last))).float()
        with autocast(device, stage.precision):
            logits = head(x, recon.contiguous()).float()
        focal, dice = focal_loss(logits, target), dice_loss(logits, target)
        loss = focal + dice
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(head)
        optimiser.step()
        schedule.step()
        broadcast_buffers(head)
        yield {
            "step": step + 1,
            "h_loss": loss.item(),
            "h_focal": focal.item(),
            "h_dice": dice.item(),
            "seconds": time.perf_counter() - started,
        }
    head.eval()
