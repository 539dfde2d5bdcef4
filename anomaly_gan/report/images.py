"""Turn network tensors and anomaly maps into pictures a person can read."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from anomaly_gan.data.tensor import OBJECT_LEVEL, VALID_BOTTOM, VALID_TOP
from anomaly_gan.fsutil import atomic_imwrite


def colour_image(array: np.ndarray) -> np.ndarray:
    """(4, H, W) in [-1, 1] -> (H, W, 3) uint8 RGB."""
    return np.clip((array[:3].transpose(1, 2, 0) + 1) * 127.5, 0, 255).round().astype(np.uint8)


def _lut(colormap: int) -> np.ndarray:
    """An OpenCV colormap as a (256, 3) RGB table: indexing it is several times cheaper than
    applyColorMap on tiles this small."""
    return cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], colormap)[:, 0, ::-1].copy()


_VIRIDIS, _INFERNO = _lut(cv2.COLORMAP_VIRIDIS), _lut(cv2.COLORMAP_INFERNO)


def depth_image(array: np.ndarray) -> np.ndarray:
    """Depth channel (the last of 4, or the only one) as a viridis picture (near = yellow), missing
    depth black."""
    d = array[-1]
    level = np.clip((d - VALID_BOTTOM) * (255 / (VALID_TOP - VALID_BOTTOM)), 0, 255).astype(np.uint8)
    rgb = _VIRIDIS[level]
    rgb[d < OBJECT_LEVEL] = 0
    return rgb


def heat_overlay(rgb: np.ndarray, amap: np.ndarray, vmax: float) -> np.ndarray:
    """Anomaly map in 'inferno' over a dimmed colour image; vmax sets full heat."""
    level = np.clip(amap * (255 / max(vmax, 1e-8)), 0, 255).astype(np.uint8)
    alpha = (0.25 + (0.75 / 255) * level.astype(np.float32))[..., None]
    return (rgb * (0.5 * (1 - alpha)) + _INFERNO[level] * alpha).astype(np.uint8)


def grid(tiles: list[np.ndarray], columns: int, gap: int = 2) -> np.ndarray:
    """Lay out equally sized RGB tiles on a dark grey sheet."""
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + columns - 1) // columns
    sheet = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap, 3), 40, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[gap + r * (h + gap) : gap + r * (h + gap) + h, gap + c * (w + gap) : gap + c * (w + gap) + w] = tile
    return sheet


def scan_tile(array: np.ndarray) -> np.ndarray:
    """Colour and depth side by side; one of them for a 3-channel (colour) or 1-channel (depth)
    network output."""
    if array.shape[0] == 3:
        return colour_image(array)
    if array.shape[0] == 1:
        return depth_image(array)
    return np.hstack([colour_image(array), depth_image(array)])


def captioned_row(tiles: list[np.ndarray], captions: list[str], factor: int) -> np.ndarray:
    """Tiles side by side, enlarged `factor` times, each with its caption in a strip above it.
    Laid out at 1x and enlarged once: a panel is drawn for every flagged scan, so it must be cheap."""
    row = upscale(np.hstack(tiles), factor)
    strip = np.full((18, row.shape[1], 3), 30, np.uint8)
    width = tiles[0].shape[1] * factor
    for k, caption in enumerate(captions):
        cv2.putText(strip, caption, (k * width + 4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (235, 235, 235), 1, cv2.LINE_AA)
    return np.vstack([strip, row])


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)


def save_rgb(path: Path, image: np.ndarray) -> None:
    """PNG or JPEG from the suffix; JPEG at quality 90 (panels: a tenth of the PNG's encode time)."""
    atomic_imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
