"""Differentiable augmentation (DiffAugment-style) for small data sets.

Applied to real and fake batches alike inside the critic's view, so the generator is never taught
to produce augmented scans. Only label-preserving changes: small shifts and colour brightness.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def diff_augment(x: torch.Tensor, shift: int = 4) -> torch.Tensor:
    """Random per-scan shift (background filled in) and colour brightness; uses torch's RNG."""
    b = x.shape[0]
    brightness = (torch.rand(b, 1, 1, 1, device=x.device) - 0.5) * 0.3
    x = torch.cat([x[:, :3] + brightness, x[:, 3:]], dim=1)
    dx, dy = torch.randint(-shift, shift + 1, (2, b)).tolist()
    padded = F.pad(x, (shift, shift, shift, shift), value=-1.0)  # background is -1 everywhere
    h, w = x.shape[2:]
    return torch.stack([padded[i, :, shift + dy[i]:shift + dy[i] + h, shift + dx[i]:shift + dx[i] + w]
                        for i in range(b)])
