"""Scan <-> network tensor: 4 x S x S in [-1, 1], channels R, G, B, D (a scan without depth has
its depth channel missing throughout, one without colour black colour; data.channels).

Depth is scaled with a range fitted once on the training scans and stored in the model bundle,
never per image, so absolute geometry (a part standing 2 cm too high) stays visible. Depth is
encoded as nearness: near -> 1, far -> -0.8; missing depth (background) -> -1, like black colour.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from anomaly_gan.data.framing import CropBox, Framing, crop, locate
from anomaly_gan.data.scan import Scan

VALID_TOP, VALID_BOTTOM, MISSING = 1.0, -0.8, -1.0
OBJECT_LEVEL = (VALID_BOTTOM + MISSING) / 2  # depth channel above this: measured depth


@dataclass(frozen=True)
class DepthScale:
    """Depth range mapped onto the network's depth channel, in the scans' own unit."""

    near: float
    far: float
    unit: str

    @classmethod
    def fit(cls, scans: Iterable[Scan], margin: float = 0.1) -> DepthScale:
        """Robust range of the valid depth of training scans (1st..99th percentile + margin)."""
        samples, units = [], set()
        for scan in scans:
            depth = scan.depth[scan.valid]
            samples.append(depth[:: max(1, depth.size // 512)])
            units.add(scan.depth_unit)
        if len(units) > 1:
            raise ValueError(f"training scans mix depth units: {sorted(units)}")
        values = np.concatenate(samples)
        lo, hi = np.percentile(values, [1, 99])
        pad = margin * max(hi - lo, 1e-6)
        return cls(float(lo - pad), float(hi + pad), units.pop())

    def to_dict(self) -> dict:
        return asdict(self)


NO_DEPTH = DepthScale(0.0, 1.0, "none")  # the scale of scans that have no depth (colour-only cameras)


def resize_scan(scan: Scan, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Colour and depth at size x size; depth averaged over valid pixels only."""
    if scan.shape == (size, size):
        return scan.rgb, scan.depth
    rgb = cv2.resize(scan.rgb, (size, size), interpolation=cv2.INTER_AREA)
    valid = scan.valid.astype(np.float32)
    filled = np.nan_to_num(scan.depth, nan=0.0)
    weight = cv2.resize(valid, (size, size), interpolation=cv2.INTER_AREA)
    total = cv2.resize(filled * valid, (size, size), interpolation=cv2.INTER_AREA)
    depth = np.where(weight > 0.5, total / np.maximum(weight, 1e-6), np.nan).astype(np.float32)
    return rgb, depth


def scan_to_array(scan: Scan, scale: DepthScale, size: int = 64) -> np.ndarray:
    """(4, size, size) float32 in [-1, 1]."""
    rgb, depth = resize_scan(scan, size)
    colour = rgb.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    t = (depth - scale.near) / (scale.far - scale.near)
    d = VALID_TOP + (VALID_BOTTOM - VALID_TOP) * np.clip(t, 0.0, 1.0)
    d = np.where(np.isfinite(depth), d, MISSING).astype(np.float32)
    return np.concatenate([colour, d[None]], axis=0)


def framed_arrays(
    scans: list[Scan], scale: DepthScale, size: int, framing: Framing
) -> tuple[np.ndarray, list[CropBox]]:
    """(N, 4, size, size) network inputs in the bundle's frame, and each scan's crop box."""
    boxes = [locate(s, framing) for s in scans]
    arrays = [scan_to_array(crop(s, box), scale, size) for s, box in zip(scans, boxes, strict=True)]
    return np.stack(arrays), boxes


def array_to_scan(array: np.ndarray, scale: DepthScale, scan_id: str = "generated") -> Scan:
    """Inverse of scan_to_array (up to quantisation and the clipped depth range)."""
    rgb = np.clip((array[:3].transpose(1, 2, 0) + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    d = array[3]
    t = (d - VALID_TOP) / (VALID_BOTTOM - VALID_TOP)
    depth = scale.near + t * (scale.far - scale.near)
    missing = d < OBJECT_LEVEL
    return Scan(scan_id, rgb, np.where(missing, np.nan, depth).astype(np.float32), scale.unit)
