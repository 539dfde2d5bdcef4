"""Decode one file of a scan, with a clear ScanError for every way a file can be bad."""

from __future__ import annotations

import stat
from pathlib import Path

import cv2
import cv2.utils.logging
import numpy as np

from anomaly_gan.data.camera import Intrinsics, fit_intrinsics, project_points
from anomaly_gan.data.scan import ScanError
from anomaly_gan.deps import MissingDependency, native_output, open3d

# We report bad files ourselves: OpenCV's own log lines would only confuse users. libjpeg's
# "Corrupt JPEG data" and libpng's "libpng error" lines bypass that log; _decode captures them and
# names the file.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def _regular(path: Path) -> Path:
    """`path` if it is a regular file: opening a FIFO waits for a writer forever, and a device or
    socket is no scan (stat itself never blocks)."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        raise ScanError(f"{path}: cannot read ({e.strerror or e})") from None
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device or folder"
        raise ScanError(f"{path}: {kind}, not a regular file; only files are read")
    return path


def _read_bytes(path: Path) -> bytes:
    try:
        data = _regular(path).read_bytes()
    except PermissionError:
        raise ScanError(f"{path}: permission denied") from None
    except OSError as e:
        raise ScanError(f"{path}: cannot read ({e.strerror or e})") from None
    if not data:
        raise ScanError(f"{path}: empty file")
    return data


def _decode(path: Path) -> np.ndarray:
    data = _read_bytes(path)
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg") and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        raise ScanError(f"{path}: truncated JPEG (no end-of-image marker)")
    if suffix == ".png" and b"IEND" not in data[-32:]:
        raise ScanError(f"{path}: truncated PNG (no IEND chunk)")
    with native_output() as said:  # libjpeg and libpng report damaged data on stderr, past OpenCV's log
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    corrupt = [line for line in said if line.startswith("Corrupt JPEG data")]
    if corrupt:
        raise ScanError(f"{path}: damaged JPEG (libjpeg: {corrupt[0]})")
    damaged = [line.removeprefix("libpng error: ") for line in said if line.startswith("libpng error:")]
    if image is None or image.size == 0:
        raise ScanError(f"{path}: damaged PNG (libpng: {damaged[0]})" if damaged else f"{path}: not a readable image")
    return image


def read_colour(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB."""
    image = _decode(path)
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels != 3:
        raise ScanError(f"{path}: colour image has {channels} channel(s), expected 3 (RGB)")
    if image.dtype != np.uint8:
        raise ScanError(f"{path}: colour image is {image.dtype}, expected 8-bit")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a lone 8-bit image: colour as it is, grayscale with its one channel
    repeated (the networks always see three colour channels; a bundle notes that it learned
    grayscale), an alpha channel dropped."""
    image = _decode(path)
    if image.dtype != np.uint8:
        raise ScanError(f"{path}: image is {image.dtype}, expected 8-bit (a depth image belongs in a depth/ folder)")
    if image.ndim == 2 or image.shape[2] == 1:
        return np.repeat(image.reshape(*image.shape[:2], 1), 3, axis=2)
    return cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)


def read_depth(path: Path) -> tuple[np.ndarray, str]:
    """(H, W) float32 depth with NaN for missing, and its unit (8-bit, mm or m)."""
    image = _decode(path)
    if image.ndim != 2:
        raise ScanError(f"{path}: depth image has {image.shape[2]} channels, expected 1")
    if image.dtype == np.uint8:
        unit = "8-bit"
    elif image.dtype == np.uint16:
        unit = "mm"
    elif image.dtype in (np.float32, np.float64):
        finite = image[np.isfinite(image) & (image > 0)]
        unit = "m" if finite.size and np.median(finite) < 20 else "mm"
    else:
        raise ScanError(f"{path}: unsupported depth type {image.dtype}")
    return check_depth(image.astype(np.float32), path), unit


def read_xyz(path: Path) -> np.ndarray:
    """Depth in mm from an MVTec 3D-AD organised point cloud (x, y, z in metres, 0 = missing)."""
    image = _decode(path)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.float32:
        raise ScanError(f"{path}: expected a 3-channel float32 xyz TIFF")
    z = image[..., 0]  # OpenCV returns channels reversed: (z, y, x)
    return check_depth(z * 1000.0, path)


def read_array(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(rgb uint8, depth float32) from an .npy/.npz holding one HxWx4 array (R, G, B, D)."""
    try:
        loaded = np.load(_regular(path), allow_pickle=False)
        array = loaded[loaded.files[0]] if isinstance(loaded, np.lib.npyio.NpzFile) else loaded
    except PermissionError:
        raise ScanError(f"{path}: permission denied") from None
    except (OSError, ValueError, IndexError, EOFError) as e:
        raise ScanError(f"{path}: not a readable array file ({e})") from None
    if array.ndim != 3 or array.shape[2] != 4 or array.size == 0:
        raise ScanError(f"{path}: array has shape {array.shape}, expected HxWx4 (R, G, B, D)")
    if array.dtype.kind not in "biuf":
        raise ScanError(f"{path}: array of {array.dtype} values, expected real numbers")
    rgb = array[..., :3].astype(np.float32)
    if not np.isfinite(rgb).all() or rgb.min() < 0 or rgb.max() > 255:
        raise ScanError(f"{path}: colour channels must be finite values in 0..255")
    return rgb.round().astype(np.uint8), check_depth(array[..., 3].astype(np.float32), path)


def read_cloud(path: Path, intrinsics: Intrinsics | None, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Project a .ply/.pcd cloud (camera frame, metres) to (rgb uint8, depth mm)."""
    try:
        o3d = open3d()
    except MissingDependency as e:
        raise ScanError(f"{path}: cannot read point clouds: {e}") from None
    _read_bytes(path)
    with native_output() as said:
        cloud = o3d.io.read_point_cloud(str(path))
    points = np.asarray(cloud.points)
    if points.size == 0:
        why = "; ".join(line.removeprefix("[Open3D WARNING] ") for line in said) or "no points"
        raise ScanError(f"{path}: not a readable point cloud ({why})")
    if (points[:, 2] <= 0).any():
        raise ScanError(f"{path}: points with z <= 0; expected a camera-frame cloud")
    colours = np.asarray(cloud.colors) if cloud.has_colors() else np.full_like(points, 0.5)
    k = intrinsics or fit_intrinsics(points, size)
    rgb, depth = project_points(points, (colours * 255).round().astype(np.uint8), k)
    return rgb, check_depth(depth, path)


def read_mask(path: Path) -> np.ndarray:
    image = _decode(path)
    if image.ndim == 3:
        image = image.max(axis=2)
    return image > 0


def check_depth(depth: np.ndarray, path: Path) -> np.ndarray:
    """Zero and NaN mean 'not measured'; infinities or negatives mean a broken file."""
    bad = np.isinf(depth) | (depth < 0)
    if bad.any():
        raise ScanError(f"{path}: depth has {int(bad.sum())} infinite or negative values")
    depth = np.where(depth > 0, depth, np.nan).astype(np.float32)
    if not np.isfinite(depth).any():
        raise ScanError(f"{path}: depth has no valid pixel (all zero or NaN)")
    return depth
