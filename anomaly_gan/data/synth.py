"""Synthetic RGB-D scans of boxes, cylinders and spheres, ray cast with open3d.

Framed like the Kinect exports in the seed layout: a 64x64 crop with the object (10-45 px across)
near the centre on a black, depth-0 background, 8-bit depth where larger = farther. Colour comes
from packaging-like textures (solid, stripes, labels, patches) lit by a random light (Lambert +
Phong specular); depth carries Kinect-like noise, grazing-angle dropouts, holes and stray points.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from anomaly_gan.data.camera import mm_to_8bit
from anomaly_gan.data.scan import Scan

if TYPE_CHECKING:  # open3d loads in ~0.5 s; only rendering needs it, not `--help` or detection
    import open3d as o3d

SHAPES = ("rectangle", "cylinder", "sphere")


@dataclass(frozen=True)
class Pose:
    rotation: np.ndarray  # (3, 3) object -> camera
    translation: np.ndarray  # (3,) metres, camera frame


def scan_rng(seed: int, shape: str, index: int) -> np.random.Generator:
    """Independent stream per (seed, shape, index): output never depends on order or workers."""
    return np.random.default_rng([seed, zlib.crc32(shape.encode()), index])


@dataclass
class Capture:
    """One clean render (no sensor noise) at the output size, plus what a defect needs to know of
    the full-resolution render: which pixels hit the part and where, in its own coordinates."""

    rgb: np.ndarray  # (S, S, 3) float 0..255
    depth_mm: np.ndarray  # (S, S), NaN off the object
    obj: np.ndarray  # (S, S) bool
    facing: np.ndarray  # (S, S) |normal z|: grazing surfaces drop out
    hit: np.ndarray  # (S*k, S*k) bool, the part itself (not a foreign body)
    local: np.ndarray  # (S*k, S*k, 3) hit points in the part's coordinates, metres


@dataclass(frozen=True)
class View:
    """How a part is seen: its shape (for its texture), pose and the camera."""

    shape: str
    pose: Pose
    focal: float  # at full resolution
    size: int
    supersample: int


@dataclass
class Part:
    """A part placed in front of the camera: its mesh (own coordinates), half extents and view."""

    mesh: o3d.geometry.TriangleMesh
    dims: np.ndarray
    view: View


def place_part(shape: str, rng: np.random.Generator, size: int = 64, supersample: int = 2) -> Part:
    mesh, dims = make_mesh(shape, rng)
    pose = random_pose(shape, rng)
    return Part(mesh, dims, View(shape, pose, size * rng.uniform(1.7, 2.3) * supersample, size, supersample))


def render_scan(shape: str, rng: np.random.Generator, scan_id: str, size: int = 64, supersample: int = 2) -> Scan:
    """One synthetic scan of a good part (data.mesh_defects renders defective ones)."""
    part = place_part(shape, rng, size, supersample)
    return Scan(scan_id, *sensor(capture(part, rng), rng), "8-bit", label="good")


def capture(
    part: Part, rng: np.random.Generator, meshes: list[tuple[np.ndarray, np.ndarray]] | None = None, paint=None
) -> Capture:
    """Ray cast, texture and light the part and bring it to the output size. `meshes` (camera
    frame) replace the part's own: a changed part first, any others are foreign bodies;
    `paint(albedo, local, which)` may change surface colours."""
    view, dims = part.view, part.dims
    meshes = meshes or [posed(part.mesh, view.pose)]
    hi = view.size * view.supersample
    t_hit, which, normal_cam, points = cast(meshes, view.focal, hi, hi)
    hit = np.isfinite(t_hit)
    local = (points - view.pose.translation) @ view.pose.rotation
    albedo = texture(view.shape, local, normal_cam @ view.pose.rotation, dims, rng)
    if paint is not None:
        albedo = paint(albedo, local, which)
    rgb_hi = shade(albedo, normal_cam, rng) * hit[..., None]
    depth_hi = np.where(hit, t_hit * 1000.0, 0.0)  # ray z-component is 1, so t is z in metres
    size = (view.size, view.size)
    rgb = cv2.resize(rgb_hi, size, interpolation=cv2.INTER_AREA)
    cover = cv2.resize(hit.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    depth_sum = cv2.resize(depth_hi.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    obj = cover > 0.5
    depth_mm = np.where(obj, depth_sum / np.maximum(cover, 1e-6), np.nan)
    rgb = np.where(obj[..., None], rgb / np.maximum(cover, 1e-6)[..., None], 0.0)
    facing = np.abs(cv2.resize(normal_cam[..., 2].astype(np.float32), size, interpolation=cv2.INTER_AREA))
    return Capture(rgb, depth_mm, obj, facing, which == 0, local)


def sensor(clean: Capture, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Kinect-like depth noise and colour noise: 8-bit colour and 8-bit depth."""
    depth_mm = _kinect_noise(clean.depth_mm, clean.obj, clean.facing, rng)
    rgb = np.clip(clean.rgb + rng.normal(0, 2.0, clean.rgb.shape), 0, 255).round().astype(np.uint8)
    rgb[~np.isfinite(depth_mm)] = 0
    return rgb, mm_to_8bit(depth_mm)


def make_mesh(shape: str, rng: np.random.Generator) -> tuple[o3d.geometry.TriangleMesh, np.ndarray]:
    """Mesh centred on the origin (cylinder axis = z) and its half extents."""
    import open3d as o3d

    if shape == "rectangle":
        dims = rng.uniform(0.05, 0.11, 3) * np.array([1.0, rng.uniform(0.5, 1.2), rng.uniform(0.4, 1.0)])
        mesh = o3d.geometry.TriangleMesh.create_box(*(2 * dims))
        mesh.translate(-dims)
    elif shape == "cylinder":
        r, half = rng.uniform(0.025, 0.06), rng.uniform(0.05, 0.13)
        dims = np.array([r, r, half])
        mesh = o3d.geometry.TriangleMesh.create_cylinder(r, 2 * half, resolution=64)
    elif shape == "sphere":
        r = rng.uniform(0.04, 0.09)
        dims = np.array([r, r, r])
        mesh = o3d.geometry.TriangleMesh.create_sphere(r, resolution=40)
    else:
        raise ValueError(f"unknown shape {shape!r}; choose from {', '.join(SHAPES)}")
    return mesh, dims


def rot(axis: int, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    i, j = [a for a in range(3) if a != axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def random_pose(shape: str, rng: np.random.Generator, allow_lying: bool = True) -> Pose:
    """Object standing on a table seen from slightly above (camera y points down)."""
    upright = rot(0, np.pi / 2)  # object z (cylinder axis, box height) -> camera -y
    if allow_lying and shape == "cylinder" and rng.random() < 0.25:
        upright = upright @ rot(0, np.pi / 2)  # lying on its side
    spin = rot(2, rng.uniform(0, 2 * np.pi))
    pitch = rot(0, np.radians(rng.uniform(15, 40)))
    roll = rot(2, np.radians(rng.normal(0, 4)))
    distance = rng.uniform(0.75, 1.05)
    offset = rng.normal(0, 0.02, 2)
    return Pose(roll @ pitch @ upright @ spin, np.array([offset[0], offset[1] + 0.02, distance]))


def cast(
    meshes: list[tuple[np.ndarray, np.ndarray]], focal: float, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ray cast camera-frame meshes (vertices, triangles) through a pinhole at the image centre.

    Returns z in metres (inf = miss), the index of the mesh hit (-1 = none), camera-frame normals
    and hit points, each per pixel.
    """
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    ids = [scene.add_triangles(v.astype(np.float32), t.astype(np.uint32)) for v, t in meshes]
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    dirs = np.stack([(u - (width - 1) / 2) / focal, (v - (height - 1) / 2) / focal, np.ones_like(u)], axis=-1)
    rays = np.concatenate([np.zeros_like(dirs), dirs], axis=-1).reshape(-1, 6)
    result = scene.cast_rays(o3d.core.Tensor(rays))
    t = result["t_hit"].numpy().reshape(height, width)  # ray z-component is 1, so t is z
    geometry = result["geometry_ids"].numpy().reshape(height, width).astype(np.int64)
    which = np.where(np.isfinite(t), np.searchsorted(ids, geometry), -1)
    normals = result["primitive_normals"].numpy().reshape(height, width, 3)
    points = np.nan_to_num(dirs * t[..., None], posinf=0.0)
    return t, which, normals, points


def posed(mesh: o3d.geometry.TriangleMesh, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(mesh.vertices) @ pose.rotation.T + pose.translation, np.asarray(mesh.triangles)


def texture(
    shape: str, local: np.ndarray, normal: np.ndarray, dims: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Albedo (H, W, 3) in 0..1 from surface coordinates (s, t) in [0, 1]."""
    if shape == "sphere":
        unit = local / np.maximum(np.linalg.norm(local, axis=-1, keepdims=True), 1e-9)
        s = (np.arctan2(unit[..., 1], unit[..., 0]) / (2 * np.pi)) % 1.0
        t = np.arccos(np.clip(unit[..., 2], -1, 1)) / np.pi
    elif shape == "cylinder":
        s = (np.arctan2(local[..., 1], local[..., 0]) / (2 * np.pi)) % 1.0
        t = local[..., 2] / (2 * dims[2]) + 0.5
    else:
        face = np.argmax(np.abs(normal), axis=-1)[..., None]
        other = np.array([[1, 2], [0, 2], [0, 1]])[face[..., 0]]
        coords = (local / dims + 1) / 2
        s = np.take_along_axis(coords, other[..., :1], -1)[..., 0]
        t = np.take_along_axis(coords, other[..., 1:], -1)[..., 0]
    base = packaging_colour(rng)
    albedo = np.broadcast_to(base, local.shape).copy()
    style = rng.choice(["solid", "stripes", "label", "patches"], p=[0.25, 0.25, 0.3, 0.2])
    second = packaging_colour(rng)
    if style == "stripes":
        along = s if rng.random() < 0.5 else t
        albedo[np.sin(2 * np.pi * rng.integers(2, 7) * along) > rng.uniform(-0.3, 0.5)] = second
    elif style == "label":
        s0, t0 = rng.uniform(0.1, 0.5, 2)
        inside = (s > s0) & (s < s0 + rng.uniform(0.2, 0.45)) & (t > t0) & (t < t0 + rng.uniform(0.2, 0.45))
        albedo[inside] = second
        lines = inside & (np.sin(2 * np.pi * 14 * t) > 0.6) & (np.sin(2 * np.pi * 5 * s) > -0.2)
        albedo[lines] = second * 0.3
    elif style == "patches":
        unit = local / np.maximum(np.linalg.norm(local, axis=-1, keepdims=True), 1e-9)
        for centre in rng.normal(size=(rng.integers(3, 9), 3)):
            centre /= np.linalg.norm(centre)
            albedo[unit @ centre > rng.uniform(0.8, 0.95)] = second
    grain = rng.normal(0, 0.02, local.shape[:2])[..., None]
    return np.clip(albedo + grain, 0, 1)


def packaging_colour(rng: np.random.Generator) -> np.ndarray:
    kind = rng.choice(["cardboard", "white", "saturated", "dark"], p=[0.3, 0.3, 0.32, 0.08])
    if kind == "cardboard":
        return np.array([0.78, 0.62, 0.45]) * rng.uniform(0.85, 1.15)
    if kind == "white":
        return np.full(3, rng.uniform(0.85, 1.0))
    if kind == "dark":
        return np.full(3, rng.uniform(0.15, 0.3))
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(90, 230), rng.integers(190, 256)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0] / 255.0


def shade(albedo: np.ndarray, normal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lambert + Phong from a light on the camera's side; returns 0..255 float colour."""
    light = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.8, 0.1), -1.0])
    light /= np.linalg.norm(light)
    n = normal * np.where((normal[..., 2:] > 0), -1.0, 1.0)  # face the camera
    lambert = np.clip(-(n @ light), 0, 1)[..., None]
    reflect = light - 2 * (n @ light)[..., None] * n
    specular = np.clip(-reflect[..., 2], 0, 1)[..., None] ** rng.uniform(8, 40)
    colour = albedo * (rng.uniform(0.6, 0.75) + 0.45 * lambert) + rng.uniform(0.1, 0.4) * specular
    return (np.clip(colour, 0, 1) * 255).astype(np.float32)


def _kinect_noise(depth_mm: np.ndarray, obj: np.ndarray, facing: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Axial noise growing with z, dropouts at grazing angles and edges, holes, stray points."""
    z = depth_mm / 1000.0
    noisy = depth_mm + rng.normal(0, 1, depth_mm.shape) * (1.0 + 2.0 * z**2)
    edge = obj & ~cv2.erode(obj.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    drop = (edge & (rng.random(obj.shape) < 0.15)) | (obj & (facing < 0.2) & (rng.random(obj.shape) < 0.5))
    for _ in range(rng.poisson(0.7)):
        ys, xs = np.nonzero(obj)
        i = rng.integers(len(ys))
        hole = np.zeros(obj.shape, np.uint8)
        cv2.ellipse(
            hole,
            (int(xs[i]), int(ys[i])),
            tuple(int(a) for a in rng.integers(1, 4, 2)),
            rng.uniform(0, 180),
            0,
            360,
            1,
            -1,
        )
        drop |= hole.astype(bool)
    noisy[drop] = np.nan
    if rng.random() < 0.6:  # thin streak left over from the removed table edge
        y0, x0 = np.nonzero(obj)
        start = np.array([x0.max() + rng.integers(-4, 3), y0.max() + rng.integers(-2, 4)])
        step = np.array([rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0)]) * rng.choice([-1, 1], 2)
        for k in range(rng.integers(4, 16)):
            x, y = (start + k * step).astype(int)
            if 0 <= x < obj.shape[1] and 0 <= y < obj.shape[0] and not obj[y, x]:
                noisy[y, x] = np.nanmedian(depth_mm) + rng.normal(0, 40)
    return noisy
