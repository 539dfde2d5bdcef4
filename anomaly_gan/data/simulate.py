"""Simulated defects for training the segmentation head, on network arrays (4, S, S) in [-1, 1].

Deliberately a different code path from `data/defects.py` (whose seven named kinds are kept for
evaluation): shapes are random blobs of thresholded smooth noise, thin random lines or outline
blobs, and the changes are generic (colour tint, foreign texture, depth relief of either sign,
holes, material added at the silhouette), so the head learns "unusual" rather than seven shapes.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from anomaly_gan.data.channels import RGBD, Channels
from anomaly_gan.data.framing import object_region
from anomaly_gan.data.tensor import OBJECT_LEVEL

KINDS = ("tint", "texture", "relief", "hole", "line", "silhouette")
# Leave-one-kind-out: the simulated kinds closest to each evaluation kind of data/defects.py,
# left out of the head's training when that evaluation kind is the held-out one.
CLOSEST = {
    "dent": ("relief",),
    "bump": ("relief",),
    "deformation": ("relief",),
    "crack": ("line",),
    "stain": ("tint",),
    "missing": ("hole",),
    "foreign": ("texture", "silhouette"),
}
MIN_PIXELS = 3


def kinds_without(held_out: str | None) -> tuple[str, ...]:
    """The simulated kinds a head trains on when `held_out` (an evaluation kind) is held out."""
    excluded = CLOSEST.get(held_out, ()) if held_out else ()
    if held_out and held_out not in CLOSEST:
        raise ValueError(f"unknown evaluation kind {held_out!r}; choose from {', '.join(CLOSEST)}")
    return tuple(k for k in KINDS if k not in excluded)


def _blob(shape: tuple[int, int], centre: tuple[float, float], radius: float, rng: np.random.Generator) -> np.ndarray:
    """An irregular blob: smooth noise plus a bump at `centre`, thresholded."""
    field = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), rng.uniform(0.8, 2.5))
    field /= field.std() + 1e-6
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    bump = np.exp(-((y - centre[0]) ** 2 + (x - centre[1]) ** 2) / radius**2)
    blob = ((0.5 * field + 2.0 * bump) > 1.0).astype(np.uint8)
    _, labels = cv2.connectedComponents(blob, connectivity=8)
    return labels == labels[centre] if blob[centre] else blob.astype(bool) & (bump > 0.3)


def _soft(mask: np.ndarray, sigma: float = 0.8) -> np.ndarray:
    return np.clip(cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma) * 1.5, 0, 1)


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(-1, 1, 3).astype(np.float32)[:, None, None]


def _pick(where: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    ys, xs = np.nonzero(where)
    i = rng.integers(len(ys))
    return int(ys[i]), int(xs[i])


def _texture(shape: tuple[int, int], rng: np.random.Generator, pool: Sequence[np.ndarray]) -> np.ndarray:
    """(3, H, W) colours: another scan's colour (shifted) or stripes / noise / checks."""
    h, w = shape
    choice = rng.integers(4) if len(pool) else 1 + rng.integers(3)
    if choice == 0:
        other = pool[rng.integers(len(pool))][:3]
        return np.roll(other, (rng.integers(-h // 4, h // 4), rng.integers(-w // 4, w // 4)), axis=(1, 2))
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    a, b = _colour(rng), _colour(rng)
    if choice == 1:
        angle, period = rng.uniform(0, np.pi), rng.uniform(2, 6)
        t = (np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period) > 0)[None]
    elif choice == 2:
        t = rng.random((1, h, w)) > 0.5
    else:
        size = rng.integers(2, 5)
        t = (((y // size + x // size) % 2) > 0)[None]
    return np.where(t, a, b).astype(np.float32)


def simulate(
    array: np.ndarray,
    rng: np.random.Generator,
    kinds: Sequence[str] = KINDS,
    pool: Sequence[np.ndarray] = (),
    channels: Channels = RGBD,
) -> tuple[np.ndarray, np.ndarray]:
    """A defective copy of `array` and its (S, S) bool mask of changed pixels in the channels a
    model sees (a depth relief is no defect to a colour-only model unless its shading shows).

    pool: other scans' arrays to borrow textures from. The object is the largest region of valid
    depth, or the whole frame for scans without depth. A scan with too small an object comes back
    unchanged with an empty mask.
    """
    measured = array[3] > OBJECT_LEVEL
    obj = object_region(measured) if measured.any() else np.ones(measured.shape, bool)
    if obj.sum() < 12:
        return array.copy(), np.zeros(obj.shape, bool)
    seen = channels.indices
    for _ in range(6):
        out = _apply(array, obj, str(kinds[rng.integers(len(kinds))]), rng, pool)
        mask = np.abs(out[seen] - array[seen]).max(0) > 0.08
        if mask.sum() >= MIN_PIXELS:
            return out, mask
    return array.copy(), np.zeros(obj.shape, bool)


def _apply(
    array: np.ndarray, obj: np.ndarray, kind: str, rng: np.random.Generator, pool: Sequence[np.ndarray]
) -> np.ndarray:
    s = array.shape[1]
    out = array.copy()
    radius = rng.uniform(0.02, 0.12) * s
    if kind == "silhouette":  # material added just outside the outline, near the object's depth
        edge = obj & ~cv2.erode(obj.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        blob = _blob(obj.shape, _pick(edge if edge.any() else obj, rng), radius, rng)
        added = blob & ~obj
        out[3][added] = np.clip(np.median(array[3][obj]) + rng.uniform(-0.1, 0.2), -0.8, 1.0)
        alpha = _soft(blob)
        out[:3] = np.where(added[None], _colour(rng), array[:3] * (1 - 0.5 * alpha) + 0.5 * alpha * _colour(rng))
        return out
    if kind == "line":
        points = [np.array(_pick(obj, rng)[::-1], np.float32)]
        heading = rng.uniform(0, 2 * np.pi)
        for _ in range(rng.integers(2, 6)):
            heading += rng.normal(0, 0.6)
            points.append(points[-1] + rng.uniform(0.05, 0.15) * s * np.array([np.cos(heading), np.sin(heading)]))
        canvas = np.zeros(obj.shape, np.uint8)
        cv2.polylines(canvas, [np.round(np.array(points)).astype(np.int32)], False, 1, int(rng.integers(1, 3)))
        line = canvas.astype(bool) & obj
        shade = rng.uniform(-0.9, 0.9)
        out[:3][:, line] = np.clip(array[:3][:, line] * rng.uniform(0.2, 1.0) + shade, -1, 1)
        out[3][line] = np.clip(array[3][line] + rng.choice([-1, 1]) * rng.uniform(0, 0.15), -0.8, 1.0)
        return out
    blob = _blob(obj.shape, _pick(obj, rng), radius, rng) & obj
    alpha = _soft(blob) * obj
    if kind == "tint":
        target = _colour(rng) if rng.random() < 0.6 else array[:3] * rng.uniform(0.0, 0.6) - rng.uniform(0, 0.5)
        out[:3] = array[:3] * (1 - alpha) + target * alpha
    elif kind == "texture":
        out[:3] = array[:3] * (1 - alpha) + _texture(obj.shape, rng, pool) * alpha
    elif kind == "relief":  # dent or bump of random size and depth, with the shading it causes
        profile = cv2.GaussianBlur(blob.astype(np.float32), (0, 0), rng.uniform(0.8, 2.0)) * obj
        offset = rng.choice([-1, 1]) * rng.uniform(0.08, 0.4) * profile
        out[3] = np.where(obj, np.clip(array[3] + offset, -0.8, 1.0), array[3])
        gy, gx = np.gradient(offset)
        out[:3] = np.clip(array[:3] * (1 + 3 * (gx + gy))[None] + offset[None] * rng.uniform(-1, 1), -1, 1)
    elif kind == "hole":
        out[:3][:, blob] = -1.0
        out[3][blob] = -1.0
    else:
        raise ValueError(f"unknown simulated defect {kind!r}")
    return out
