"""Graspable objects as closed triangle meshes: parametric families with random proportions, plus
the random meshes that ship with `pybullet_data` (zlib licence).

Every object is a single closed, outward-oriented surface in its own frame (metres, centred on its
bounding-box centre), with real-world sizes between about 3 and 20 cm. Composite shapes (a mug and
its handle) are made watertight by marching cubes over the union of analytic signed distances, so
no mesh boolean library is needed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from c2f_core.errors import C2FError

FAMILIES = (
    "sphere",
    "box",
    "cylinder",
    "mug",
    "cup",
    "bowl",
    "bottle",
    "cone",
    "torus",
    "banana",
    "capsule",
    "random_mesh",
)
"""Object families; `random_mesh` draws from pybullet_data's random_urdfs."""

SMOOTH_FAMILIES = frozenset({"sphere", "mug", "torus", "banana", "capsule", "bowl"})
"""Families rendered with smooth normals (curved everywhere); the others keep their sharp edges."""

RANDOM_MESH_SIZE_M = (0.05, 0.14)
"""Range of the longest side a pybullet random mesh is rescaled to."""

MARCHING_VOXEL_M = 0.003
"""Voxel size for shapes built by marching cubes (the mug): below the 4.5 mm thinnest wall."""


@dataclass
class ObjectMesh:
    """A closed object mesh in its own frame (metres, centred on its bounding-box centre)."""

    family: str
    """One of `FAMILIES`."""
    vertices: np.ndarray
    """(V, 3) float64 metres."""
    faces: np.ndarray
    """(F, 3) int64, outward oriented."""
    grasp_axis: np.ndarray
    """(3,) unit vector: the axis a power grasp wraps the fingers around (the object's long axis)."""
    name: str = ""
    """A finer identifier (the pybullet mesh number for `random_mesh`)."""

    @property
    def extents(self) -> np.ndarray:
        """Side lengths (3,) of the axis-aligned bounding box, metres."""
        return self.vertices.max(0) - self.vertices.min(0)

    @property
    def smooth(self) -> bool:
        """Whether to render with interpolated normals."""
        return self.family in SMOOTH_FAMILIES


def _finish(family: str, mesh: trimesh.Trimesh, grasp_axis: np.ndarray, name: str = "") -> ObjectMesh:
    """Centre, orient outward and check a mesh; raise if it is not closed."""
    if not mesh.is_watertight:
        raise C2FError(f"{family} mesh {name} is not closed")
    if mesh.volume < 0:
        mesh.invert()
    centre = (mesh.bounds[0] + mesh.bounds[1]) / 2
    vertices = np.asarray(mesh.vertices, dtype=np.float64) - centre
    axis = np.asarray(grasp_axis, dtype=np.float64)
    return ObjectMesh(
        family, vertices, np.asarray(mesh.faces, dtype=np.int64), axis / np.linalg.norm(axis), name
    )


def _revolve(profile: np.ndarray, sections: int = 32) -> trimesh.Trimesh:
    """Revolve a (N, 2) profile of (radius, height) points, starting and ending on the axis, about z."""
    return trimesh.creation.revolve(np.asarray(profile, dtype=np.float64), sections=sections)


def _sphere(rng: np.random.Generator) -> ObjectMesh:
    diameter = rng.uniform(0.04, 0.10)
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=diameter / 2)
    mesh.apply_scale(rng.uniform(0.88, 1.12, size=3))
    return _finish("sphere", mesh, np.array([0.0, 0.0, 1.0]))


def _box(rng: np.random.Generator) -> ObjectMesh:
    extents = np.array([rng.uniform(0.06, 0.18), rng.uniform(0.03, 0.08), rng.uniform(0.015, 0.07)])
    return _finish("box", trimesh.creation.box(extents=extents), np.array([1.0, 0.0, 0.0]))


def _cylinder(rng: np.random.Generator) -> ObjectMesh:
    radius, height = rng.uniform(0.022, 0.042), rng.uniform(0.06, 0.16)
    mesh = trimesh.creation.cylinder(radius=radius, height=height, sections=32)
    return _finish("cylinder", mesh, np.array([0.0, 0.0, 1.0]))


def _cup(rng: np.random.Generator) -> ObjectMesh:
    """A tapered paper or plastic cup, hollow, with a rolled rim."""
    bottom, top = rng.uniform(0.022, 0.03), rng.uniform(0.032, 0.045)
    height, wall = rng.uniform(0.07, 0.12), rng.uniform(0.002, 0.004)
    floor = rng.uniform(0.004, 0.008)
    profile = [
        (0.0, 0.0),
        (bottom, 0.0),
        (top, height),
        (top - wall, height),
        (bottom - wall * 1.2, floor),
        (0.0, floor),
    ]
    return _finish("cup", _revolve(np.array(profile)), np.array([0.0, 0.0, 1.0]))


def _bowl(rng: np.random.Generator) -> ObjectMesh:
    radius, depth = rng.uniform(0.055, 0.09), rng.uniform(0.04, 0.065)
    wall, foot = rng.uniform(0.003, 0.005), rng.uniform(0.3, 0.5) * radius
    outer_r = np.linspace(foot, radius, 12)
    outer_z = depth * ((outer_r - foot) / (radius - foot)) ** 1.5
    inner_r = np.linspace(radius - wall, 0.0, 12)
    inner_z = wall + (depth - wall) * (inner_r / (radius - wall)) ** 2
    profile = np.concatenate([[[0.0, 0.0]], np.stack([outer_r, outer_z], 1), np.stack([inner_r, inner_z], 1)])
    return _finish("bowl", _revolve(profile, sections=40), np.array([1.0, 0.0, 0.0]))


def _bottle(rng: np.random.Generator) -> ObjectMesh:
    body, neck = rng.uniform(0.024, 0.04), rng.uniform(0.011, 0.015)
    height = rng.uniform(0.15, 0.21)
    shoulder = rng.uniform(0.55, 0.7) * height
    neck_start = shoulder + rng.uniform(0.15, 0.22) * height
    bevel = 0.004
    t = np.linspace(0.0, 1.0, 8)[1:-1]
    shoulder_r = neck + (body - neck) * 0.5 * (1 + np.cos(np.pi * t))
    shoulder_z = shoulder + (neck_start - shoulder) * t
    profile = np.concatenate(
        [
            [[0.0, 0.0], [body - bevel, 0.0], [body, bevel], [body, shoulder]],
            np.stack([shoulder_r, shoulder_z], 1),
            [[neck, neck_start], [neck, height - 0.002], [neck - 0.002, height], [0.0, height]],
        ]
    )
    return _finish("bottle", _revolve(profile), np.array([0.0, 0.0, 1.0]))


def _cone(rng: np.random.Generator) -> ObjectMesh:
    base, height = rng.uniform(0.025, 0.05), rng.uniform(0.06, 0.14)
    top = rng.uniform(0.0, 0.5) * base
    profile = (
        [(0.0, 0.0), (base, 0.0), (top, height), (0.0, height)]
        if top > 0.004
        else [
            (0.0, 0.0),
            (base, 0.0),
            (0.0, height),
        ]
    )
    return _finish("cone", _revolve(np.array(profile)), np.array([0.0, 0.0, 1.0]))


def _torus(rng: np.random.Generator) -> ObjectMesh:
    minor = rng.uniform(0.008, 0.02)
    major = rng.uniform(max(0.03, minor + 0.012), 0.06)
    mesh = trimesh.creation.torus(
        major_radius=major, minor_radius=minor, major_sections=36, minor_sections=14
    )
    return _finish("torus", mesh, np.array([1.0, 0.0, 0.0]))


def _capsule(rng: np.random.Generator) -> ObjectMesh:
    radius, length = rng.uniform(0.01, 0.025), rng.uniform(0.08, 0.17)
    mesh = trimesh.creation.capsule(height=max(length - 2 * radius, 0.01), radius=radius, count=[16, 16])
    return _finish("capsule", mesh, np.array([0.0, 0.0, 1.0]))


def swept_tube(centreline: np.ndarray, radii: np.ndarray, sides: int = 16) -> trimesh.Trimesh:
    """A closed tube around a (N, 3) polyline with radius (N,) per point; the end radii should be ~0.

    The two ends collapse to single vertices, so the surface is closed. Cross-sections follow a
    rotation-minimising frame along the curve.
    """
    count = len(centreline)
    tangents = np.gradient(centreline, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    seed = np.array([0.0, 0.0, 1.0]) if abs(tangents[0, 2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    normal = np.cross(tangents[0], seed)
    normal /= np.linalg.norm(normal)
    normals = [normal]
    for i in range(1, count):
        n = normals[-1] - (normals[-1] @ tangents[i]) * tangents[i]
        normals.append(n / np.linalg.norm(n))
    normals_arr = np.array(normals)
    binormals = np.cross(tangents, normals_arr)
    angles = np.linspace(0.0, 2 * np.pi, sides, endpoint=False)
    rings = (
        centreline[1:-1, None]
        + radii[1:-1, None, None]
        * (
            np.cos(angles)[None, :, None] * normals_arr[1:-1, None]
            + np.sin(angles)[None, :, None] * binormals[1:-1, None]
        )
    ).reshape(-1, 3)
    vertices = np.concatenate([centreline[:1], rings, centreline[-1:]])
    faces = []
    ring = lambda i: 1 + i * sides
    last = len(vertices) - 1
    for k in range(sides):
        k1 = (k + 1) % sides
        faces.append([0, ring(0) + k1, ring(0) + k])
        faces.append([last, ring(count - 3) + k, ring(count - 3) + k1])
    for i in range(count - 3):
        for k in range(sides):
            k1 = (k + 1) % sides
            a, b, c, d = ring(i) + k, ring(i) + k1, ring(i + 1) + k, ring(i + 1) + k1
            faces.append([a, b, d])
            faces.append([a, d, c])
    return trimesh.Trimesh(vertices, np.array(faces), process=False)


def _banana(rng: np.random.Generator) -> ObjectMesh:
    length, radius = rng.uniform(0.14, 0.2), rng.uniform(0.014, 0.02)
    bend = rng.uniform(0.6, 1.1)
    t = np.linspace(0.0, 1.0, 33)
    arc = (t - 0.5) * bend
    curvature_radius = length / bend
    centreline = np.stack(
        [curvature_radius * np.sin(arc), curvature_radius * (1 - np.cos(arc)), np.zeros_like(t)], 1
    )
    # Full girth over the middle, tapering to the stalk and the tip.
    radii = radius * np.clip(np.sin(np.pi * t) ** 0.45, 0.0, 1.0)
    radii[0] = radii[-1] = 0.0
    return _finish("banana", swept_tube(centreline, radii, sides=14), np.array([1.0, 0.0, 0.0]))


def _mug(rng: np.random.Generator) -> ObjectMesh:
    """A hollow mug with a handle, made closed by marching cubes over unioned analytic distances."""
    from skimage.measure import marching_cubes

    radius, height = rng.uniform(0.034, 0.045), rng.uniform(0.08, 0.11)
    wall, floor = rng.uniform(0.0045, 0.006), rng.uniform(0.006, 0.01)
    handle_major = rng.uniform(0.022, 0.03) * height / 0.095
    handle_minor = rng.uniform(0.005, 0.007)
    handle_centre_z = rng.uniform(-0.08, 0.05) * height
    half_h = height / 2
    voxel = MARCHING_VOXEL_M
    pad = 2 * voxel
    lo = np.array([-radius - pad, -radius - pad, -half_h - pad])
    hi = np.array([radius + handle_major + handle_minor + pad, radius + pad, half_h + pad])
    axes = [np.arange(lo[i], hi[i] + voxel, voxel) for i in range(3)]
    x, y, z = np.meshgrid(*axes, indexing="ij")

    def cylinder(r: float, z0: float, z1: float) -> np.ndarray:
        radial = np.sqrt(x**2 + y**2) - r
        vertical = np.maximum(z0 - z, z - z1)
        outside = np.sqrt(np.maximum(radial, 0) ** 2 + np.maximum(vertical, 0) ** 2)
        return outside + np.minimum(np.maximum(radial, vertical), 0.0)

    body = cylinder(radius, -half_h, half_h)
    cavity = cylinder(radius - wall, -half_h + floor, half_h + 2 * pad)
    # The handle: a torus in the x-z plane centred on the outer wall.
    ring = np.sqrt((x - radius) ** 2 + (z - handle_centre_z) ** 2) - handle_major
    handle = np.sqrt(ring**2 + y**2) - handle_minor
    sdf = np.maximum(np.minimum(body, handle), -cavity)
    verts, faces, _, _ = marching_cubes(sdf, level=0.0, spacing=(voxel, voxel, voxel))
    # No vertex merging: skimage's output is already manifold, and merging the coincident vertices
    # of its zero-area triangles would create non-manifold edges.
    mesh = trimesh.Trimesh(verts + lo, faces, process=False)
    return _finish("mug", mesh, np.array([0.0, 0.0, 1.0]))


@functools.lru_cache(maxsize=1)
def random_mesh_paths() -> tuple[Path, ...]:
    """The OBJ files of pybullet_data's random_urdfs (1,000 meshes, zlib licence), or () if absent."""
    try:
        import pybullet_data
    except ImportError:
        return ()
    root = Path(pybullet_data.getDataPath()) / "random_urdfs"
    return tuple(sorted(root.glob("*/*.obj")))


@functools.lru_cache(maxsize=256)
def _load_random_mesh(path: Path) -> trimesh.Trimesh | None:
    mesh = trimesh.load(path, force="mesh", process=True)
    return mesh if mesh.is_watertight else None


def convex_union_surface(mesh: trimesh.Trimesh, voxels_per_side: int = 32) -> trimesh.Trimesh:
    """The outer surface of a mesh made of overlapping closed convex parts, as one closed mesh.

    pybullet's random meshes are unions of 1 to 126 interpenetrating convex hulls whose buried faces
    would corrupt distances and surface samples. Inside a convex part, the largest signed distance
    to its face planes is negative, and it is zero exactly on the part's surface; the minimum over
    parts is then zero exactly on the union's surface, which marching cubes extracts.
    """
    from skimage.measure import marching_cubes

    parts = mesh.split(only_watertight=False)
    if len(parts) == 1:
        return mesh
    voxel = float(mesh.extents.max()) / voxels_per_side
    lo = mesh.bounds[0] - 2 * voxel
    axes = [np.arange(lo[i], mesh.bounds[1][i] + 2.5 * voxel, voxel) for i in range(3)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    # Far from every part only the sign matters: a few voxels of positive distance.
    values = np.full(len(points), 3 * voxel)
    for part in parts:
        near = np.all((points > part.bounds[0] - 2 * voxel) & (points < part.bounds[1] + 2 * voxel), axis=1)
        normals = np.asarray(part.face_normals)
        offsets = np.einsum("ij,ij->i", normals, part.triangles[:, 0])
        # Coplanar triangles share a plane; keep each plane once.
        planes = np.unique(np.round(np.concatenate([normals, offsets[:, None]], 1), 9), axis=0)
        values[near] = np.minimum(values[near], (points[near] @ planes[:, :3].T - planes[:, 3]).max(axis=1))
    grid = values.reshape(*(len(a) for a in axes))
    verts, faces, _, _ = marching_cubes(grid, level=0.0, spacing=(voxel, voxel, voxel))
    return trimesh.Trimesh(verts + lo, faces, process=False)


def _random_mesh(rng: np.random.Generator) -> ObjectMesh:
    paths = random_mesh_paths()
    if not paths:
        raise C2FError("pybullet_data is not installed; install the synth extra or leave out random_mesh")
    for _ in range(20):
        path = paths[rng.integers(len(paths))]
        loaded = _load_random_mesh(path)
        if loaded is not None:
            break
    else:
        raise C2FError("no closed mesh found among 20 draws from pybullet_data random_urdfs")
    mesh = loaded.copy()
    mesh.apply_scale(rng.uniform(*RANDOM_MESH_SIZE_M) / mesh.extents.max())
    mesh = convex_union_surface(mesh)
    centred = mesh.vertices - mesh.vertices.mean(0)
    long_axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    return _finish("random_mesh", mesh, long_axis, name=path.stem)


_BUILDERS = {
    "sphere": _sphere,
    "box": _box,
    "cylinder": _cylinder,
    "mug": _mug,
    "cup": _cup,
    "bowl": _bowl,
    "bottle": _bottle,
    "cone": _cone,
    "torus": _torus,
    "banana": _banana,
    "capsule": _capsule,
    "random_mesh": _random_mesh,
}


def make_object(family: str, rng: np.random.Generator) -> ObjectMesh:
    """A random object of `family` (one of `FAMILIES`), drawn with `rng`."""
    if family not in _BUILDERS:
        raise C2FError(f"unknown object family {family!r} (choose from {', '.join(FAMILIES)})")
    return _BUILDERS[family](rng)


def random_object(rng: np.random.Generator, families: tuple[str, ...] = FAMILIES) -> ObjectMesh:
    """An object of a family drawn uniformly from `families`."""
    if not families:
        raise C2FError("no object family to draw from")
    return make_object(families[rng.integers(len(families))], rng)
