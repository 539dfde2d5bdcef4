"""scikit-learn's handwritten digits (1,797 8x8 images, shipped with the package: nothing is
downloaded) written as a class root of grayscale image folders, one class per digit: a real,
small image set for trying the colour-only (image-folder) path, and a one-class benchmark."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from anomaly_gan.fsutil import atomic_imwrite

DIGITS = tuple(str(d) for d in range(10))


def write_digits(out: Path, size: int = 32) -> Iterator[Path]:
    """OUT/<digit>/<index>.png, each upsampled (bicubic) from 8x8 to size x size, in the data set's
    order (consecutive images came from the same writers: block splits keep them together)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    for index, (image, target) in enumerate(zip(data.images, data.target, strict=True)):
        grey = cv2.resize((image * (255 / 16)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
        path = out / str(target) / f"{index:04d}.png"
        atomic_imwrite(path, np.clip(grey, 0, 255).round().astype(np.uint8))
        yield path
