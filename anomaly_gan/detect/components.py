"""From a scan and its reconstruction to per-scan score components and per-pixel maps.

Components (higher = more anomalous):
  colour   mean |x - G(z)| over the colour channels, on the object
  depth    mean |x - G(z)| over the depth channel, on the object
           ("on the object": pixels with depth in the scan or in its reconstruction; a mean over
           the whole frame would mostly measure how big the object is)
  feature  mean squared critic-feature residual (f-AnoGAN's kappa term)
  critic   minus the critic's realness score
  peak     99th percentile of the smoothed residual map (catches small local defects)
  search   the inversion's own final loss (seed mode: the publication's score)
  head     bundles with a segmentation head: mean of its HEAD_TOP highest defect probabilities
Maps, (B, 3, H, W): combined (the head's defect probability, or the residual map without a head),
colour residual, depth residual; the residual maps are lightly smoothed (3x3 Gaussian).
How the components become one score (standardised on held-out good scans, weighted) is the
bundle's Calibration; how the weights are fitted is detect.calibrate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from anomaly_gan.data.tensor import OBJECT_LEVEL

COMPONENTS = ("colour", "depth", "feature", "critic", "peak", "search")
HEAD = "head"
HEAD_TOP = 16  # pixels: about a 4x4 defect in the 64x64 object frame


def _smooth(maps: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) -> same, 3x3 Gaussian."""
    kernel = torch.tensor([1.0, 2.0, 1.0], device=maps.device)
    kernel = (kernel[:, None] * kernel[None, :] / 16).view(1, 1, 3, 3).repeat(maps.shape[1], 1, 1, 1)
    return F.conv2d(maps, kernel, padding=1, groups=maps.shape[1])


def residual_maps(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W): smoothed colour and depth residuals per pixel."""
    residual = (x - recon).abs()
    return _smooth(torch.stack([residual[:, :3].mean(1), residual[:, 3]], dim=1))


def components(x: torch.Tensor, recon: torch.Tensor, critic, search_loss: torch.Tensor,
               segmenter=None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-scan components (each (B,)) and the maps (B, 3, H, W)."""
    with torch.no_grad():
        score_x, feat_x = critic(x)
        _, feat_r = critic(recon)
        residual = (x - recon).abs()
        per_channel = residual_maps(x, recon)
        residual_map = per_channel.mean(1)
        on_object = ((x[:, 3] > OBJECT_LEVEL) | (recon[:, 3] > OBJECT_LEVEL)).float()
        area = on_object.flatten(1).sum(1).clamp(min=1.0)
        values = {
            "colour": (residual[:, :3].mean(1) * on_object).flatten(1).sum(1) / area,
            "depth": (residual[:, 3] * on_object).flatten(1).sum(1) / area,
            "feature": ((feat_x - feat_r) ** 2).mean(1),
            "critic": -score_x,
            "peak": torch.quantile(residual_map.flatten(1), 0.99, dim=1),
            "search": search_loss,
        }
        combined = residual_map
        if segmenter is not None:
            combined = torch.sigmoid(segmenter(x, recon))
            values[HEAD] = combined.flatten(1).topk(HEAD_TOP, dim=1).values.mean(1)
    return values, torch.cat([combined[:, None], per_channel], dim=1)
