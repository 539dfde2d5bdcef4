"""Write scans in every layout the readers know (used by synth, preprocess and test fixtures)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from anomaly_gan.data.camera import Intrinsics, backproject, to_mm
from anomaly_gan.data.scan import Scan
from anomaly_gan.fsutil import atomic_imwrite, atomic_save_npy, atomic_write_bytes

LAYOUTS = ("seed", "paired", "mvtec", "npz", "npy", "ply")


def encode_depth(scan: Scan) -> np.ndarray:
    """8-bit scans stay 8-bit (0 = missing); everything else becomes 16-bit millimetres."""
    if scan.depth_unit == "8-bit":
        return np.nan_to_num(np.clip(np.round(scan.depth), 1, 255), nan=0).astype(np.uint8)
    mm = np.round(to_mm(scan.depth, scan.depth_unit))
    return np.nan_to_num(np.clip(mm, 1, 65535), nan=0).astype(np.uint16)


def write_scan(scan: Scan, folder: Path, layout: str = "seed") -> Path:
    """Write one scan under `folder`; returns the path that names it (colour or single file)."""
    bgr = cv2.cvtColor(scan.rgb, cv2.COLOR_RGB2BGR)
    if layout in ("seed", "paired", "mvtec"):
        colour_dir, depth_dir = {
            "seed": ("RGB_Final", "Depth_Final"),
            "paired": ("rgb", "depth"),
            "mvtec": ("rgb", "xyz"),
        }[layout]
        colour = folder / colour_dir / f"{scan.id}.png"
        atomic_imwrite(colour, bgr)
        if layout == "mvtec":
            xyz = np.nan_to_num(_points(scan), nan=0.0).astype(np.float32)
            atomic_imwrite(folder / depth_dir / f"{scan.id}.tiff", xyz[..., ::-1].copy())
        else:
            atomic_imwrite(folder / depth_dir / f"{scan.id}.png", encode_depth(scan))
        if scan.gt is not None:
            atomic_imwrite(folder / "gt" / f"{scan.id}.png", scan.gt.astype(np.uint8) * 255)
        return colour
    if layout in ("npz", "npy"):
        array = np.dstack([scan.rgb.astype(np.float32), to_mm(scan.depth, scan.depth_unit)])
        path = folder / f"{scan.id}.{layout}"
        if layout == "npy":
            atomic_save_npy(path, array)
        else:
            _atomic_savez(path, array)
        return path
    if layout == "ply":
        return _write_ply(scan, folder / f"{scan.id}.ply")
    raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")


def _points(scan: Scan) -> np.ndarray:
    h, w = scan.shape
    return backproject(to_mm(scan.depth, scan.depth_unit), Intrinsics.default(max(h, w)))


def _atomic_savez(path: Path, array: np.ndarray) -> None:
    with tempfile.TemporaryFile() as f:
        np.savez_compressed(f, scan=array)
        f.seek(0)
        atomic_write_bytes(path, f.read())


def _write_ply(scan: Scan, path: Path) -> Path:
    import open3d as o3d

    valid = scan.valid
    cloud = o3d.geometry.PointCloud()
    cloud.points = o3d.utility.Vector3dVector(_points(scan)[valid].astype(np.float64))
    cloud.colors = o3d.utility.Vector3dVector(scan.rgb[valid].astype(np.float64) / 255.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.ply")
    if not o3d.io.write_point_cloud(str(tmp), cloud):
        raise OSError(f"{path}: could not write point cloud")
    tmp.replace(path)
    return path
