"""From a scan and its reconstruction to per-scan score components and per-pixel maps.

Components (higher = more anomalous):
  colour   mean |x - G(z)| over the colour channels, on the object (models that see colour)
  depth    mean |x - G(z)| over the depth channel, on the object (models that see depth)
           ("on the object": pixels with depth in the scan or in its reconstruction, or the whole
           frame for scans without depth; a mean over the whole frame would mostly measure how
           big the object is)
  feature  mean squared critic-feature residual (f-AnoGAN's kappa term)
  critic   minus the critic's realness score
  peak     99th percentile of the smoothed residual map (catches small local defects)
  search   the inversion's own final loss (seed mode: the publication's score)
  head     bundles with a segmentation head: mean of its HEAD_TOP highest defect probabilities
  size, aspect, distance   the object's silhouette as framing measures it (data.framing.Silhouette),
           from the scan itself, not the networks (detect.judge.silhouette_components): the crop
           hides them from the networks
Maps, (B, 3, H, W): combined (the head's defect probability, or the residual map without a head),
colour residual, depth residual; the residual maps are lightly smoothed (3x3 Gaussian). x and
recon are always 4-channel (data.channels): the channels a model does not see are the scan's own
in recon, so their residual is zero.
How the components become the two findings and one score (standardised on held-out good scans, weighted) is the
bundle's Calibration; how the weights are fitted is detect.calibrate.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from anomaly_gan.bundle.calibration import COLOUR, CRITIC, DEPTH, FEATURE, HEAD, PEAK, RESIDUAL_COMPONENTS, SEARCH
from anomaly_gan.data.channels import RGBD, Channels
from anomaly_gan.data.tensor import OBJECT_LEVEL

COMPONENTS = RESIDUAL_COMPONENTS  # what components() measures besides the head
HEAD_TOP = 16  # pixels at 64x64 (scaled with the area at 32 and 128): about a 4x4 defect


def _smooth(maps: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) -> same, 3x3 Gaussian."""
    kernel = torch.tensor([1.0, 2.0, 1.0], device=maps.device)
    kernel = (kernel[:, None] * kernel[None, :] / 16).view(1, 1, 3, 3).repeat(maps.shape[1], 1, 1, 1)
    return F.conv2d(maps, kernel, padding=1, groups=maps.shape[1])


def upper_quantile(values: torch.Tensor, q: float) -> torch.Tensor:
    """(B, N) -> (B,): each row's q-quantile, interpolated as torch.quantile does, from the row's top
    values only (no full sort; and an ONNX export has top-k where it lacks a quantile)."""
    position = q * (values.shape[1] - 1)
    low = math.floor(position)
    k = values.shape[1] - low  # ascending[low] is top[:, k - 1]; ascending[low + 1] is top[:, k - 2]
    top = values.topk(k, dim=1).values  # descending
    if k < 2:
        return top[:, k - 1]
    return top[:, k - 1] + (position - low) * (top[:, k - 2] - top[:, k - 1])


def full_recon(x: torch.Tensor, seen: torch.Tensor, channels: Channels) -> torch.Tensor:
    """(B, 4, H, W): the networks' reconstruction of the channels they see, the scan's own elsewhere
    (so the unseen channels' residual is zero)."""
    if channels.all:
        return seen
    planes = list(x.unbind(1))
    for k, index in enumerate(channels.indices):
        planes[index] = seen[:, k]
    return torch.stack(planes, 1)


def residual_maps(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W): smoothed colour and depth residuals per pixel."""
    residual = (x - recon).abs()
    return _smooth(torch.stack([residual[:, :3].mean(1), residual[:, 3]], dim=1))


def components(
    x: torch.Tensor, recon: torch.Tensor, critic, search_loss: torch.Tensor, segmenter=None, channels: Channels = RGBD
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-scan components (each (B,)) and the maps (B, 3, H, W)."""
    with torch.no_grad():
        score_x, feat_x = critic(channels.pick(x))
        _, feat_r = critic(channels.pick(recon))
        residual = (x - recon).abs()
        per_channel = residual_maps(x, recon)
        residual_map = per_channel[:, [k for k, on in enumerate((channels.colour, channels.depth)) if on]].mean(1)
        on_object = ((x[:, 3] > OBJECT_LEVEL) | (recon[:, 3] > OBJECT_LEVEL)).float()
        no_depth = on_object.flatten(1).amax(1) == 0
        on_object = torch.where(no_depth[:, None, None], torch.ones_like(on_object), on_object)
        area = on_object.flatten(1).sum(1)
        values = {}
        if channels.colour:
            values[COLOUR] = (residual[:, :3].mean(1) * on_object).flatten(1).sum(1) / area
        if channels.depth:
            values[DEPTH] = (residual[:, 3] * on_object).flatten(1).sum(1) / area
        values |= {
            FEATURE: ((feat_x - feat_r) ** 2).mean(1),
            CRITIC: -score_x,
            PEAK: upper_quantile(residual_map.flatten(1), 0.99),
            SEARCH: search_loss,
        }
        combined = residual_map
        if segmenter is not None:
            combined = torch.sigmoid(segmenter(channels.pick(x), channels.pick(recon)))
            top = max(1, round(HEAD_TOP * combined[0].numel() / 64**2))
            values[HEAD] = combined.flatten(1).topk(top, dim=1).values.mean(1)
    return values, torch.cat([combined[:, None], per_channel], dim=1)
