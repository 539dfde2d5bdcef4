"""Defects made in 3-D on a synthetic part before it is ray cast: a second, physically different
source of evaluation defects beside data/defects.py's image-space ones.

A dent pushes the mesh's surface in (its shading follows from the bent triangles), a chunk is cut
away by a plane (a flat facet of bare material, and the outline changes), a foreign body is a small
second mesh lying on the part, and a stain is painted on the surface colour before lighting. The
mask is where the clean render of the defective part differs from the clean render of the good one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from anomaly_gan.data.scan import Scan
from anomaly_gan.data.synth import Capture, View, capture, packaging_colour, place_part, posed, sensor

MESH_DEFECTS = ("dent", "chunk", "foreign", "stain")
SUBDIVIDE = {"rectangle": 5, "cylinder": 3, "sphere": 1}  # midpoint passes: enough vertices to bend
COLOUR_STEP, DEPTH_STEP_MM = 12.0, 3.0  # a clean-render change above these is in the mask
MIN_PIXELS = 3

Paint = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (albedo, local, which) -> albedo


@dataclass
class MeshDefect:
    meshes: list[tuple[np.ndarray, np.ndarray]]  # camera frame: the part first, then foreign bodies
    paint: Paint | None = None


def changed(good: Capture, broken: Capture) -> np.ndarray:
    """The defect's mask: where the two clean renders differ in colour, depth or coverage."""
    colour = np.abs(broken.rgb - good.rgb).max(axis=2) > COLOUR_STEP
    both = good.obj & broken.obj
    depth = np.zeros_like(both)
    depth[both] = np.abs(broken.depth_mm[both] - good.depth_mm[both]) > DEPTH_STEP_MM
    return colour | depth | (good.obj != broken.obj)


def render_defective(
    shape: str,
    rng: np.random.Generator,
    scan_id: str,
    kind: str,
    defect_rng: np.random.Generator,
    size: int = 64,
    supersample: int = 2,
) -> Scan:
    """The scan data.synth.render_scan makes from `rng`, of the same part under the same light and
    sensor noise, with one defect of `kind` (drawn from `defect_rng`); label = kind, gt = where the
    clean renders of the good and the defective part differ."""
    part = place_part(shape, rng, size, supersample)
    looks = rng.bit_generator.state  # texture, light and noise draws, replayed for the defective part
    clean = capture(part, rng)
    for _ in range(4):  # a defect too small to see from this side is made elsewhere
        made = make_defect(kind, part.mesh, part.dims, clean, part.view, defect_rng)
        rng.bit_generator.state = looks
        broken = capture(part, rng, made.meshes, made.paint)
        mask = changed(clean, broken)
        if mask.sum() >= MIN_PIXELS:
            break
    rgb, depth = sensor(broken, rng)
    return Scan(scan_id, rgb, depth, "8-bit", gt=mask, label=kind)


def make_defect(kind: str, mesh, dims: np.ndarray, clean: Capture, view: View, rng: np.random.Generator) -> MeshDefect:
    """The part with one defect of `kind`, placed where the camera sees it (from `clean`)."""
    if kind not in MESH_DEFECTS:
        raise ValueError(f"unknown mesh defect {kind!r}; choose from {', '.join(MESH_DEFECTS)}")
    margin = 2 * view.supersample
    inner = cv2.erode(clean.hit.astype(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8)).astype(bool)
    rim = clean.hit & ~cv2.erode(clean.hit.astype(np.uint8), np.ones((margin + 1,) * 2, np.uint8)).astype(bool)
    where = rim if kind == "chunk" else (inner if inner.any() else clean.hit)
    ys, xs = np.nonzero(where)
    i = rng.integers(len(ys))
    point = clean.local[ys[i], xs[i]]
    if kind == "foreign":
        return _foreign(mesh, view, point, rng)
    if kind == "stain":
        return MeshDefect([posed(mesh, view.pose)], _stain(point, rng))
    dense = _dense(mesh, view.shape)
    triangles = np.asarray(dense.triangles).copy()  # outlives `dense`
    if kind == "dent":
        vertices, paint = _dent(dense, point, rng), None
    else:
        vertices, paint = _chunk(np.asarray(dense.vertices), point, dims, rng)
    return MeshDefect([(vertices @ view.pose.rotation.T + view.pose.translation, triangles)], paint)


def _dense(mesh, shape: str):
    """The part subdivided (same surface, more vertices), with vertex normals."""
    dense = mesh.subdivide_midpoint(number_of_iterations=SUBDIVIDE[shape])
    dense.compute_vertex_normals()
    return dense


def _dent(dense, point: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The surface around `point` pushed inwards along its normals, a smooth round profile."""
    radius, depth = rng.uniform(0.010, 0.022), rng.uniform(0.006, 0.015)
    vertices, normals = np.asarray(dense.vertices), np.asarray(dense.vertex_normals)
    distance = np.linalg.norm(vertices - point, axis=1)
    profile = np.exp(-((distance / radius) ** 2))[:, None]
    outward = np.sign(np.sum(normals * vertices, axis=1, keepdims=True))  # parts are centred on 0
    return vertices - outward * normals * depth * profile


def _chunk(
    vertices: np.ndarray, point: np.ndarray, dims: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, Paint]:
    """Material near `point` (at the outline) cut away by a plane, leaving a bare flat facet."""
    depth = rng.uniform(0.008, 0.018)
    normal = point / dims
    normal /= np.linalg.norm(normal)  # from the centre out, diagonal at a box's edges and corners
    plane = point - depth * normal
    reach = 3 * depth
    beyond = (vertices - plane) @ normal
    cut = (beyond > 0) & (np.linalg.norm(vertices - point, axis=1) < reach)
    out = vertices.copy()
    out[cut] -= beyond[cut, None] * normal
    bare = np.full(3, rng.uniform(0.35, 0.65)) * np.array([1.0, 0.95, 0.85])

    def paint(albedo: np.ndarray, local: np.ndarray, which: np.ndarray) -> np.ndarray:
        on_facet = (np.abs((local - plane) @ normal) < 0.0015) & (np.linalg.norm(local - point, axis=-1) < reach)
        albedo = albedo.copy()
        albedo[on_facet & (which == 0)] = bare
        return albedo

    return out, paint


def _stain(point: np.ndarray, rng: np.random.Generator) -> Paint:
    """A round stain painted on the surface around `point` (lit like the surface around it)."""
    radius, strength = rng.uniform(0.008, 0.02), rng.uniform(0.6, 0.9)
    colour = [np.array([0.25, 0.17, 0.1]), np.full(3, 0.08), rng.uniform(0, 1, 3)][rng.integers(3)]

    def paint(albedo: np.ndarray, local: np.ndarray, which: np.ndarray) -> np.ndarray:
        distance = np.linalg.norm(local - point, axis=-1)
        weight = (strength * np.clip((radius - distance) / (0.3 * radius), 0, 1) * (which == 0))[..., None]
        return albedo * (1 - weight) + colour * weight

    return paint


def _foreign(mesh, view: View, point: np.ndarray, rng: np.random.Generator) -> MeshDefect:
    """A small ball or block (debris, a screw head, a lump of glue) lying on the part at `point`,
    on the camera's side of it, in a colour of its own."""
    import open3d as o3d

    size = rng.uniform(0.006, 0.013)
    if rng.random() < 0.5:
        body = o3d.geometry.TriangleMesh.create_sphere(size, resolution=12)
    else:
        body = o3d.geometry.TriangleMesh.create_box(*(2 * size * rng.uniform(0.6, 1.2, 3)))
        body.translate(-body.get_center())
    at = point @ view.pose.rotation.T + view.pose.translation
    at = at - at / np.linalg.norm(at) * 0.8 * size  # towards the camera: it sits on the surface
    vertices = np.asarray(body.vertices) + at
    colour = packaging_colour(rng) if rng.random() < 0.5 else rng.uniform(0, 1, 3)

    def paint(albedo: np.ndarray, local: np.ndarray, which: np.ndarray) -> np.ndarray:
        albedo = albedo.copy()
        albedo[which == 1] = colour
        return albedo

    return MeshDefect([posed(mesh, view.pose), (vertices, np.asarray(body.triangles))], paint)
