"""Inject realistic local defects, with pixel masks, into any good scan (synthetic or real).

Defects act in image space on colour and depth together, so the same injector serves the
synthetic generator and real scans (`synth --from`), and a model can be validated on real data
before a single real defect exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import cv2
import numpy as np

from anomaly_gan.data.camera import to_mm
from anomaly_gan.data.scan import Scan, ScanError

Defect = Callable[[Scan, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray, np.ndarray]]


def object_mask(scan: Scan) -> np.ndarray:
    """Pixels of the object: measured depth, not a black (removed) colour pixel."""
    return scan.valid & (scan.rgb.max(axis=2) > 8)


def inject(scan: Scan, kind: str, rng: np.random.Generator) -> Scan:
    """A copy of `scan` with one defect of `kind`; label = kind, gt = changed pixels."""
    obj = object_mask(scan)
    core = cv2.erode(obj.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    core = core if core.sum() >= 12 else obj
    if core.sum() < 6:
        raise ScanError(f"{scan.source or scan.id}: object too small to place a defect")
    for _ in range(8):  # a defect clipped away by the object's outline is tried elsewhere
        rgb, depth, mask = DEFECTS[kind](scan, core, rng)
        if mask.sum() >= 4:
            break
    defective = replace(scan, id=f"{scan.id}_{kind}", rgb=rgb, depth=depth.astype(np.float32), gt=mask, label=kind)
    defective.gt = mask & (obj | object_mask(defective))  # a mask never marks empty background
    return defective


def _mm(scan: Scan, millimetres: float) -> float:
    """A length in the scan's own depth unit."""
    one, zero = (float(to_mm(np.float32(v), scan.depth_unit)) for v in (1.0, 0.0))
    return millimetres / (one - zero)


def _pick(core: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    ys, xs = np.nonzero(core)
    i = rng.integers(len(ys))
    return int(xs[i]), int(ys[i])


def _blob(
    shape: tuple[int, int], centre: tuple[int, int], rng: np.random.Generator, radius: tuple[float, float] = (2.0, 5.0)
) -> np.ndarray:
    """Smooth elliptical profile in 0..1 (1 at the centre)."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    a, b = rng.uniform(*radius, 2)
    angle = rng.uniform(0, np.pi)
    dx, dy = x - centre[0], y - centre[1]
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / a
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / b
    return np.exp(-(u**2 + v**2) * 1.5).astype(np.float32)


def _relief(scan: Scan, core: np.ndarray, rng: np.random.Generator, sign: float):
    """Dent (sign +1, surface pushed away) or bump (sign -1): depth and shading change."""
    profile = _blob(scan.shape, _pick(core, rng), rng) * core
    offset = sign * rng.uniform(12, 30) * profile
    depth = scan.depth + _mm(scan, 1.0) * offset
    gy, gx = np.gradient(offset)
    light = 1.0 - 0.12 * sign * (gx + gy) - 0.15 * sign * profile
    rgb = np.clip(scan.rgb * light[..., None], 0, 255).astype(np.uint8)
    return rgb, depth, profile > 0.25


def _dent(scan, core, rng):
    return _relief(scan, core, rng, +1.0)


def _bump(scan, core, rng):
    return _relief(scan, core, rng, -1.0)


def _line_mask(shape, core, rng, width: int) -> np.ndarray:
    """A random-walk polyline across the object."""
    points = [np.array(_pick(core, rng), np.float32)]
    heading = rng.uniform(0, 2 * np.pi)
    for _ in range(rng.integers(3, 7)):
        heading += rng.normal(0, 0.5)
        points.append(points[-1] + rng.uniform(2, 5) * np.array([np.cos(heading), np.sin(heading)]))
    canvas = np.zeros(shape, np.uint8)
    cv2.polylines(canvas, [np.round(np.array(points)).astype(np.int32)], False, 1, width)
    return canvas.astype(bool) & core


def _crack(scan, core, rng):
    mask = _line_mask(scan.shape, core, rng, width=1)
    rgb = scan.rgb.copy()
    rgb[mask] = (rgb[mask] * rng.uniform(0.15, 0.35)).astype(np.uint8)
    depth = scan.depth + mask * _mm(scan, rng.uniform(4, 10))
    return rgb, depth, mask


def _stain(scan, core, rng):
    alpha = 0.8 * _blob(scan.shape, _pick(core, rng), rng, (2.0, 6.0)) * core
    tint = rng.choice([np.array([40, 30, 20]), np.array([20, 20, 20]), rng.integers(0, 255, 3)])
    rgb = scan.rgb * (1 - alpha[..., None]) + tint * alpha[..., None]
    return rgb.astype(np.uint8), scan.depth.copy(), alpha > 0.2


def _missing(scan, core, rng):
    """A chunk broken off at the rim: no material, so no depth and no colour."""
    edge = core & ~cv2.erode(core.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    mask = (_blob(scan.shape, _pick(edge if edge.any() else core, rng), rng, (3, 6)) > 0.3) & scan.valid
    rgb, depth = scan.rgb.copy(), scan.depth.copy()
    rgb[mask], depth[mask] = 0, np.nan
    return rgb, depth, mask


def _foreign(scan, core, rng):
    """A small object (screw, debris, tape) lying on the part: nearer and differently coloured."""
    centre = _pick(core, rng)
    mask = _blob(scan.shape, centre, rng, (1.5, 3.5)) > 0.3
    colour = rng.integers(0, 256, 3).astype(np.float32)
    shade = 0.6 + 0.4 * _blob(scan.shape, centre, rng, (2, 4))[..., None]
    rgb = scan.rgb.copy()
    rgb[mask] = np.clip(colour * shade[mask], 0, 255).astype(np.uint8)
    base = np.nanmedian(scan.depth[core])
    depth = scan.depth.copy()
    depth[mask] = np.fmin(np.nan_to_num(depth[mask], nan=base), base) - _mm(scan, rng.uniform(15, 35))
    return rgb, depth, mask


def _deformation(scan, core, rng):
    """A local warp of the surface (crushed corner, bulge): colour and depth pushed sideways."""
    centre = _pick(core, rng)
    profile = _blob(scan.shape, centre, rng, (4, 8))
    direction = rng.normal(size=2)
    direction *= rng.uniform(2.5, 4.0) / np.linalg.norm(direction)
    h, w = scan.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = (x - direction[0] * profile).astype(np.float32)
    map_y = (y - direction[1] * profile).astype(np.float32)
    rgb = cv2.remap(scan.rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    filled = np.nan_to_num(scan.depth, nan=0.0).astype(np.float32)
    warped = cv2.remap(filled, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    depth = np.where(warped > 0, warped + _mm(scan, 10.0) * profile, np.nan)
    changed = (np.abs(rgb.astype(int) - scan.rgb).max(axis=2) > 12) | (np.isfinite(depth) != scan.valid)
    return rgb, depth, changed & (profile > 0.2)


DEFECTS: dict[str, Defect] = {
    "dent": _dent,
    "bump": _bump,
    "crack": _crack,
    "stain": _stain,
    "missing": _missing,
    "foreign": _foreign,
    "deformation": _deformation,
}
