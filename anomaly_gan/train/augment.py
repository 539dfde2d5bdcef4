"""Differentiable augmentation (DiffAugment-style) for small data sets.

Applied to real and fake batches alike inside the critic's view, so the generator is never taught
to produce augmented scans. Only label-preserving changes: small shifts and colour brightness.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def diff_augment(x: torch.Tensor, shift: int = 4) -> torch.Tensor:
    """Random per-scan shift (background filled in) and colour brightness; uses torch's RNG.

    The shift is one gather over the padded batch seen as (B, pixels, C), whose result is already
    channels-last for the critic: 3.6x faster forward and backward than advanced indexing, with
    the same values (on 2 CPU cores: 15 against 54 ms at batch 64).
    """
    b, c, h, w = x.shape
    if c >= 3:  # colour comes first (4 = RGB-D, 3 = RGB); a depth-only batch has none
        brightness = (torch.rand(b, 1, 1, 1, device=x.device) - 0.5) * 0.3
        x = torch.cat([x[:, :3] + brightness, x[:, 3:]], dim=1)
    dx, dy = torch.randint(-shift, shift + 1, (2, b)).to(x.device)
    padded = F.pad(x, (shift, shift, shift, shift), value=-1.0)  # background is -1 everywhere
    rows = (shift + dy)[:, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = (shift + dx)[:, None] + torch.arange(w, device=x.device)  # (B, W)
    index = (rows[:, :, None] * (w + 2 * shift) + cols[:, None, :]).reshape(b, h * w, 1).expand(b, h * w, c)
    pixels = padded.permute(0, 2, 3, 1).reshape(b, -1, c)  # (B, H' W', C)
    return pixels.gather(1, index).view(b, h, w, c).permute(0, 3, 1, 2)
