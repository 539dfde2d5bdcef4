"""A coloured point cloud of a scan, optionally painted with its anomaly map, for any 3-D viewer."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import open3d as o3d

from anomaly_gan.data.camera import Intrinsics, backproject, to_mm
from anomaly_gan.data.scan import Scan
from anomaly_gan.data.tensor import resize_scan
from anomaly_gan.deps import native_output

FLAT_MM = 1000.0  # a colour-only scan is drawn as a flat picture this far from the camera
GREY = 150  # points of a depth-only scan


def scan_cloud(scan: Scan, amap: np.ndarray | None = None, scale: float = 1.0) -> o3d.geometry.PointCloud:
    """Points from the depth image (60-degree pinhole), or a flat sheet for a colour-only scan;
    colour = scan colour (grey without one) or inferno heat."""
    if amap is not None and amap.shape != scan.shape:
        rgb, depth = resize_scan(scan, amap.shape[0])
        scan = Scan(scan.id, rgb, depth, scan.depth_unit, has_colour=scan.has_colour)
    h, w = scan.shape
    depth_mm = to_mm(scan.depth, scan.depth_unit) if scan.has_depth else np.full((h, w), FLAT_MM, np.float32)
    points = backproject(depth_mm, Intrinsics.default(w, h))
    valid = np.isfinite(depth_mm)
    if amap is None:
        colours = scan.rgb if scan.has_colour else np.full((h, w, 3), GREY, np.uint8)
    else:
        level = (np.clip(amap / max(scale, 1e-8), 0, 1) * 255).astype(np.uint8)
        colours = cv2.cvtColor(cv2.applyColorMap(level, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points[valid].astype(np.float64)))
    cloud.colors = o3d.utility.Vector3dVector(colours[valid].astype(np.float64) / 255.0)
    return cloud


def write_cloud(cloud: o3d.geometry.PointCloud, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    with native_output() as said:  # RPly says why on stderr ("RPly: Unable to open file")
        written = o3d.io.write_point_cloud(str(tmp), cloud)
    if not written:
        why = f" ({said[0]})" if said else ""
        raise OSError(f"{path}: could not write the point cloud{why}")
    tmp.replace(path)
