"""Full-frame synthetic captures (object on a table among clutter) to exercise `preprocess`.

What a Kinect-style camera delivers before any clean-up: a 16-bit depth image in millimetres with
the supporting plane and other objects in view.
"""

from __future__ import annotations

import numpy as np
import open3d as o3d

from anomaly_gan.data.scan import Scan
from anomaly_gan.data.synth import (
    cast,
    make_mesh,
    packaging_colour,
    posed,
    random_pose,
    shade,
    texture,
)


def render_capture(
    shape: str, rng: np.random.Generator, scan_id: str, width: int = 320, height: int = 240, focal: float = 280.0
) -> tuple[Scan, np.ndarray]:
    """A capture and the true object mask."""
    mesh, dims = make_mesh(shape, rng)
    pose = random_pose(shape, rng, allow_lying=False)
    floor = -dims[2]  # the object's base in its own frame; the table lies just below
    table = o3d.geometry.TriangleMesh.create_box(1.6, 1.6, 0.02)
    table.translate((-0.8, -0.8, floor - 0.02))
    meshes = [posed(mesh, pose), posed(table, pose)]
    for _ in range(rng.integers(1, 4)):
        size = rng.uniform(0.02, 0.05, 3)
        side = rng.choice([-1, 1])
        box = o3d.geometry.TriangleMesh.create_box(*size)
        box.translate((side * rng.uniform(0.2, 0.35), rng.uniform(-0.3, 0.1), floor))
        meshes.append(posed(box, pose))
    t, which, normals, points = cast(meshes, focal, width, height)
    local = (points - pose.translation) @ pose.rotation
    albedo = np.where(
        (which == 0)[..., None], texture(shape, local, normals @ pose.rotation, dims, rng), np.array([0.55, 0.5, 0.45])
    )
    for index in range(2, len(meshes)):
        albedo[which == index] = packaging_colour(rng)
    rgb = shade(albedo, normals, rng) * np.isfinite(t)[..., None]
    depth = np.where(np.isfinite(t), t * 1000.0 + rng.normal(0, 1.5, t.shape), np.nan)
    scan = Scan(scan_id, rgb.round().astype(np.uint8), depth.astype(np.float32), "mm")
    return scan, which == 0
