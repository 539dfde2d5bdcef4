"""Full-frame RGB-D captures -> clean 64x64 object scans, as the seed data set was made.

Steps: cut the depth range, remove the supporting plane (RANSAC), keep the largest 3-D cluster
(the object), crop a square around it with a margin, blank everything else, resize.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomaly_gan.data.camera import Intrinsics, backproject, to_mm
from anomaly_gan.data.scan import Scan, ScanError
from anomaly_gan.data.tensor import resize_scan


@dataclass(frozen=True)
class PreprocessConfig:
    near_mm: float = 300.0
    far_mm: float = 2000.0
    plane_distance_mm: float = 12.0
    cluster_eps_mm: float = 20.0
    margin: float = 0.75  # crop side = object side * (1 + 2 * margin), like the Kinect exports
    size: int = 64
    intrinsics: Intrinsics | None = None  # None: a 60-degree Kinect-like camera


def object_pixels(scan: Scan, config: PreprocessConfig) -> np.ndarray:
    """(H, W) bool mask of the largest cluster left after removing the supporting plane."""
    import open3d as o3d  # loaded here so that commands which never prepare captures start faster

    h, w = scan.shape
    depth = to_mm(scan.depth, scan.depth_unit)
    keep = scan.valid & (depth >= config.near_mm) & (depth <= config.far_mm)
    if keep.sum() < 50:
        raise ScanError(f"{scan.source}: fewer than 50 pixels within {config.near_mm:g}-{config.far_mm:g} mm")
    k = config.intrinsics or Intrinsics.default(w, h)
    points = backproject(depth, k)[keep].astype(np.float64)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    plane, inliers = cloud.segment_plane(config.plane_distance_mm / 1000.0, 3, 300)
    normal, offset = np.asarray(plane[:3]), plane[3]
    signed = points @ normal + offset
    camera_side = np.sign(offset) or 1.0  # the camera (origin) is on the side of sign(offset)
    above = signed * camera_side > config.plane_distance_mm / 1000.0
    rest = np.flatnonzero(above)
    if rest.size < 10:
        raise ScanError(f"{scan.source}: nothing stands on the supporting plane")
    labels = np.asarray(cloud.select_by_index(rest.tolist()).cluster_dbscan(config.cluster_eps_mm / 1000.0, 10))
    if (labels >= 0).sum() == 0:
        raise ScanError(f"{scan.source}: no object cluster found above the plane")
    largest = np.bincount(labels[labels >= 0]).argmax()
    mask = np.zeros(keep.sum(), bool)
    mask[rest[labels == largest]] = True
    out = np.zeros((h, w), bool)
    out[keep] = mask
    return out


def crop_object(scan: Scan, mask: np.ndarray, config: PreprocessConfig) -> Scan:
    """Square crop around the mask with margin; background blanked; resized to config.size."""
    ys, xs = np.nonzero(mask)
    side = int(np.ceil(max(np.ptp(ys), np.ptp(xs)) * (1 + 2 * config.margin))) + 1
    cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
    top, left = cy - side // 2, cx - side // 2
    rgb = np.zeros((side, side, 3), np.uint8)
    depth = np.full((side, side), np.nan, np.float32)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + side, scan.shape[0]), min(left + side, scan.shape[1])
    window = mask[y0:y1, x0:x1]
    rgb[y0 - top : y1 - top, x0 - left : x1 - left] = scan.rgb[y0:y1, x0:x1] * window[..., None]
    depth[y0 - top : y1 - top, x0 - left : x1 - left] = np.where(window, scan.depth[y0:y1, x0:x1], np.nan)
    cropped = Scan(scan.id, rgb, depth, scan.depth_unit, rgb_path=scan.rgb_path)
    rgb, depth = resize_scan(cropped, config.size)
    rgb = rgb * np.isfinite(depth)[..., None]  # edge pixels blended with background go black
    return Scan(scan.id, rgb, depth, scan.depth_unit, rgb_path=scan.rgb_path)


def preprocess_scan(scan: Scan, config: PreprocessConfig = PreprocessConfig()) -> Scan:
    return crop_object(scan, object_pixels(scan, config), config)
