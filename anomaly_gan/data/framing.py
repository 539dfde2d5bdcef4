"""Object-centred frame: find the object, crop a square around it, and map results back.

Kinect-style scans show a small object (15-30 px of a 64 px frame) with stray depth streaks
around it. Cropping a square around the largest connected region of valid depth (plus a margin)
and resizing it to the network size gives the networks about twice the pixels per object; maps
computed in the crop are pasted back into the scan's own frame for panels, .npy maps and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from anomaly_gan.data.scan import Scan

MIN_SIDE = 8  # pixels: a smaller crop would magnify noise


@dataclass(frozen=True)
class Framing:
    """How scans are framed for the networks: 'object' (crop around the object) or 'full'."""

    kind: str = "object"
    margin: float = 0.25  # added on each side, as a fraction of the object's larger side
    side: int = 0  # pixels: one crop size for every scan, centred on its object (keeps its scale); 0: sized per scan


@dataclass(frozen=True)
class CropBox:
    """A square in the scan's pixel coordinates; may reach past the image edge (padded)."""

    top: int
    left: int
    side: int


def object_region(valid: np.ndarray) -> np.ndarray:
    """The largest 8-connected region of valid depth (all False when there is none)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(valid.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros_like(valid, bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


@dataclass(frozen=True)
class Silhouette:
    """What framing measures of the object itself, which the object-centred crop hides from the
    networks: its size (square root of its area, as a share of the frame's larger side), its
    aspect (height / width of its bounding box) and its distance (median depth, in the scan's
    unit). NaN throughout when the scan has no object region (no depth)."""

    size: float
    aspect: float
    distance: float


NO_SILHOUETTE = Silhouette(np.nan, np.nan, np.nan)


def silhouette(scan: Scan) -> Silhouette:
    region = object_region(scan.valid)
    if not region.any():
        return NO_SILHOUETTE
    ys, xs = np.nonzero(region)
    height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    return Silhouette(
        float(np.sqrt(region.sum()) / max(scan.shape)), float(height / width), float(np.median(scan.depth[region]))
    )


def locate(scan: Scan, framing: Framing) -> CropBox:
    """The crop box of a scan; the whole frame for 'full' framing or when no object is found."""
    h, w = scan.shape
    region = object_region(scan.valid) if framing.kind == "object" else None
    if region is None or not region.any():
        side = max(h, w)
        return CropBox((h - side) // 2, (w - side) // 2, side)
    ys, xs = np.nonzero(region)
    extent = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
    side = framing.side or max(MIN_SIDE, int(round(extent * (1 + 2 * framing.margin))))
    cy, cx = (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2
    return CropBox(int(round(cy - side / 2)), int(round(cx - side / 2)), side)


def _cut(image: np.ndarray, box: CropBox, fill) -> np.ndarray:
    """The box's pixels, padded with `fill` where the box leaves the image."""
    h, w = image.shape[:2]
    out = np.full((box.side, box.side, *image.shape[2:]), fill, image.dtype)
    y0, x0 = max(box.top, 0), max(box.left, 0)
    y1, x1 = min(box.top + box.side, h), min(box.left + box.side, w)
    if y1 > y0 and x1 > x0:
        out[y0 - box.top : y1 - box.top, x0 - box.left : x1 - box.left] = image[y0:y1, x0:x1]
    return out


def crop(scan: Scan, box: CropBox) -> Scan:
    """The scan inside the box (colour 0 and depth missing outside the image)."""
    gt = None if scan.gt is None else _cut(scan.gt, box, False)
    return replace(scan, rgb=_cut(scan.rgb, box, 0), depth=_cut(scan.depth, box, np.nan), gt=gt)


def uncrop(maps: np.ndarray, box: CropBox, shape: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """(C, S, S) maps of the crop -> (C, H, W) in the scan's frame (0 outside the box)."""
    h, w = shape
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    out = np.zeros((maps.shape[0], h, w), np.float32)
    y0, x0 = max(box.top, 0), max(box.left, 0)
    y1, x1 = min(box.top + box.side, h), min(box.left + box.side, w)
    if y1 <= y0 or x1 <= x0:
        return out
    for c, m in enumerate(maps):
        big = cv2.resize(m.astype(np.float32), (box.side, box.side), interpolation=interpolation)
        out[c, y0:y1, x0:x1] = big[y0 - box.top : y1 - box.top, x0 - box.left : x1 - box.left]
    return out
