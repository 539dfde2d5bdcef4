"""The segmentation head: a small U-Net that compares a scan with its GAN reconstruction.

DRAEM-style: trained after G, D and E (frozen) on good scans with simulated defects, it learns
where a scan and what the GAN makes of it differ in a way good scans never do, instead of reading
raw residuals (the GAN misses good objects by about as much as a defect changes them).
Input: the scan x, its reconstruction G(z) and |x - G(z)| (12 channels for RGB-D); output: one
defect logit per pixel.
"""

from __future__ import annotations

import torch
from torch import nn

from anomaly_gan.models.config import SegmenterConfig

PRIOR_LOGIT = -4.0  # start predicting "no defect" (p = 0.018): the loss then works on defects, not background


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
    )


class Segmenter(nn.Module):
    def __init__(self, config: SegmenterConfig) -> None:
        super().__init__()
        w = config.widths
        self.down = nn.ModuleList(
            [_block(3 * config.channels, w[0])] + [_block(a, b) for a, b in zip(w, w[1:], strict=False)]
        )
        self.up = nn.ModuleList([_block(b + a, a) for a, b in zip(w, w[1:], strict=False)])
        self.pool = nn.MaxPool2d(2)
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.out = nn.Conv2d(w[0], 1, 1)
        nn.init.constant_(self.out.bias, PRIOR_LOGIT)

    def forward(self, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x, recon, (x - recon).abs()], dim=1)  # (B, 3C, S, S)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h if i == 0 else self.pool(h))
            skips.append(h)
        for block, skip in zip(reversed(self.up), reversed(skips[:-1]), strict=True):
            h = block(torch.cat([self.upsample(h), skip], dim=1))
        return self.out(h)[:, 0]  # (B, S, S) logits
