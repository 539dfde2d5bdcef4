"""The one value every stage passes around: a single RGB-D scan."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


class ScanError(ValueError):
    """A scan (or folder of scans) cannot be used; the message names the file and the problem."""


@dataclass
class Scan:
    """One RGB-D capture.

    rgb: (H, W, 3) uint8 in R, G, B order. depth: (H, W) float32, NaN where there is no
    measurement. gt: optional (H, W) bool defect mask. label: "good" or the defect/class name
    given by the folder it came from.
    """

    id: str
    rgb: np.ndarray
    depth: np.ndarray
    depth_unit: str = "mm"
    gt: np.ndarray | None = None
    label: str = "good"
    rgb_path: Path | None = None
    depth_path: Path | None = None
    has_colour: bool = True

    @property
    def valid(self) -> np.ndarray:
        """(H, W) bool: where depth was measured."""
        return np.isfinite(self.depth)

    @property
    def has_depth(self) -> bool:
        return bool(self.valid.any())

    @property
    def grayscale(self) -> bool:
        """Colour whose three channels are equal (a grayscale image read as RGB)."""
        return self.has_colour and bool(
            (self.rgb[..., 0] == self.rgb[..., 1]).all() and (self.rgb[..., 1] == self.rgb[..., 2]).all()
        )

    @property
    def source(self) -> Path | None:
        """The path that names this scan in records: its colour file or single file."""
        return self.rgb_path or self.depth_path

    @property
    def shape(self) -> tuple[int, int]:
        return self.depth.shape[0], self.depth.shape[1]
