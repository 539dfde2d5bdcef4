"""From a scan and its reconstruction to per-scan score components and a per-pixel anomaly map.

Components (higher = more anomalous):
  colour   mean |x - G(z)| over the colour channels, on the object
  depth    mean |x - G(z)| over the depth channel, on the object
           ("on the object": pixels with depth in the scan or in its reconstruction; a mean over
           the whole frame would mostly measure how big the object is)
  feature  mean squared critic-feature residual (f-AnoGAN's kappa term)
  critic   minus the critic's realness score
  peak     99th percentile of the smoothed anomaly map (catches small local defects)
  search   the inversion's own final loss (seed mode: the publication's score)
How they become one score (standardised on held-out good scans, weighted) is the bundle's
Calibration; how the weights are fitted is detect.calibrate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

OBJECT_LEVEL = -0.9  # depth channel above this: measured depth (background and holes sit at -1)
COMPONENTS = ("colour", "depth", "feature", "critic", "peak", "search")


def anomaly_map(x: torch.Tensor, recon: torch.Tensor, depth_weight: float = 1.0) -> torch.Tensor:
    """(B, H, W): colour and depth residual per pixel, lightly smoothed (3x3 Gaussian)."""
    residual = (x - recon).abs()
    raw = (residual[:, :3].mean(1) + depth_weight * residual[:, 3]) / (1 + depth_weight)
    kernel = torch.tensor([1.0, 2.0, 1.0], device=x.device)
    kernel = (kernel[:, None] * kernel[None, :] / 16).view(1, 1, 3, 3)
    return F.conv2d(raw[:, None], kernel, padding=1)[:, 0]


def components(x: torch.Tensor, recon: torch.Tensor, critic, search_loss: torch.Tensor
               ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-scan components (each (B,)) and the anomaly maps (B, H, W)."""
    with torch.no_grad():
        score_x, feat_x = critic(x)
        _, feat_r = critic(recon)
        residual = (x - recon).abs()
        maps = anomaly_map(x, recon)
        on_object = ((x[:, 3] > OBJECT_LEVEL) | (recon[:, 3] > OBJECT_LEVEL)).float()
        area = on_object.flatten(1).sum(1).clamp(min=1.0)
        values = {
            "colour": (residual[:, :3].mean(1) * on_object).flatten(1).sum(1) / area,
            "depth": (residual[:, 3] * on_object).flatten(1).sum(1) / area,
            "feature": ((feat_x - feat_r) ** 2).mean(1),
            "critic": -score_x,
            "peak": torch.quantile(maps.flatten(1), 0.99, dim=1),
            "search": search_loss,
        }
    return values, maps
