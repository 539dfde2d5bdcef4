"""Pinhole camera: point clouds <-> depth images, and depth units.

Depth is kept in the unit of its file. Where geometry needs millimetres (point clouds, MVTec xyz),
8-bit depth (the seed layout's Kinect exports and our synthetic scans) is read with the synthetic
renderer's convention: value v means 540 + 2 v millimetres (about the spread of the Kinect exports).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EIGHT_BIT_OFFSET_MM = 540.0
EIGHT_BIT_STEP_MM = 2.0


@dataclass(frozen=True)
class Intrinsics:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def parse(cls, text: str) -> Intrinsics:
        """From 'width,height,fx,fy,cx,cy' (the CLI's --intrinsics)."""
        parts = [float(p) for p in text.split(",")]
        if len(parts) != 6:
            raise ValueError("intrinsics must be 'width,height,fx,fy,cx,cy'")
        w, h, fx, fy, cx, cy = parts
        return cls(int(w), int(h), fx, fy, cx, cy)

    @classmethod
    def default(cls, width: int = 64, height: int | None = None) -> Intrinsics:
        """A Kinect-like horizontal field of view of about 60 degrees, centred."""
        height = height or width
        f = width / (2 * np.tan(np.radians(30)))
        return cls(width, height, f, f, (width - 1) / 2, (height - 1) / 2)


def to_mm(depth: np.ndarray, unit: str) -> np.ndarray:
    if unit == "mm":
        return depth.astype(np.float32)
    if unit == "m":
        return (depth * 1000.0).astype(np.float32)
    if unit == "8-bit":
        return (EIGHT_BIT_OFFSET_MM + EIGHT_BIT_STEP_MM * depth).astype(np.float32)
    raise ValueError(f"unknown depth unit {unit!r}")


def convert_depth(depth: np.ndarray, unit: str, to: str) -> np.ndarray:
    """Depth from one unit (mm, m, 8-bit) into another; 8-bit follows this tool's own convention
    (EIGHT_BIT_OFFSET_MM, EIGHT_BIT_STEP_MM), which other cameras' 8-bit images need not share."""
    if unit == to:
        return depth
    mm = to_mm(depth, unit)
    if to == "8-bit":
        return mm_to_8bit(mm)
    if to == "m":
        return (mm / 1000.0).astype(np.float32)
    if to == "mm":
        return mm
    raise ValueError(f"unknown depth unit {to!r}")


def mm_to_8bit(depth_mm: np.ndarray) -> np.ndarray:
    """Float 8-bit depth values (1..255, NaN kept) from millimetres."""
    v = (depth_mm - EIGHT_BIT_OFFSET_MM) / EIGHT_BIT_STEP_MM
    return np.where(np.isfinite(v), np.clip(v, 1, 255), np.nan).astype(np.float32)


def backproject(depth_mm: np.ndarray, k: Intrinsics) -> np.ndarray:
    """(H, W, 3) camera-frame points in metres; NaN where depth is missing."""
    h, w = depth_mm.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    z = depth_mm / 1000.0
    return np.stack([(u - k.cx) * z / k.fx, (v - k.cy) * z / k.fy, z], axis=-1)


def fit_intrinsics(points: np.ndarray, size: int, fill: float = 0.5) -> Intrinsics:
    """Intrinsics that frame the cloud in a size x size image, its larger side spanning `fill`."""
    uv = points[:, :2] / points[:, 2:3]
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    span = float(max(hi - lo).max()) or 1e-6
    f = fill * size / span
    centre = (lo + hi) / 2
    c = (size - 1) / 2
    return Intrinsics(size, size, f, f, c - f * centre[0], c - f * centre[1])


def project_points(points: np.ndarray, colours: np.ndarray, k: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Z-buffered projection: (rgb uint8 (H, W, 3), depth mm float32 with NaN holes)."""
    z = points[:, 2]
    u = np.round(k.fx * points[:, 0] / z + k.cx).astype(np.int64)
    v = np.round(k.fy * points[:, 1] / z + k.cy).astype(np.int64)
    inside = (u >= 0) & (u < k.width) & (v >= 0) & (v < k.height)
    u, v, z, colours = u[inside], v[inside], z[inside], colours[inside]
    order = np.argsort(-z)  # far first, so nearer points overwrite them
    depth = np.full((k.height, k.width), np.nan, np.float32)
    rgb = np.zeros((k.height, k.width, 3), np.uint8)
    depth[v[order], u[order]] = z[order] * 1000.0
    rgb[v[order], u[order]] = colours[order]
    return rgb, depth
