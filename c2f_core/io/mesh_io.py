"""Mesh and point-cloud files through trimesh: PLY (default), OBJ, GLB, all written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from c2f_core.errors import C2FError
from c2f_core.geometry.mesh_clean import clean_mesh
from c2f_core.io.atomic import write_bytes_atomic

MESH_FORMATS = ("ply", "obj", "glb")


def write_mesh(
    path: str | Path, vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray | None = None
) -> Path:
    """Write a triangle mesh (vertices (V, 3) metres, faces (F, 3)) in the format of the suffix.

    Faces that repeat a vertex, zero-area and duplicate faces are left out (`clean_mesh`), with the
    vertices only they used; per-vertex `colors` (V, 3 or 4) follow their vertices.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in MESH_FORMATS:
        raise C2FError(f"unknown mesh format '.{fmt}' for {path} (choose one of {', '.join(MESH_FORMATS)})")
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if colors is not None and np.ndim(colors) == 2 and len(colors) == len(vertices):
        vertices, faces, colors = clean_mesh(vertices, faces, vertex_data=colors)
    else:
        vertices, faces = clean_mesh(vertices, faces)
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, vertex_colors=colors, process=False)
    data = mesh.export(file_type=fmt)
    write_bytes_atomic(path, data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def write_points(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None) -> Path:
    """Write a point cloud (points (N, 3) metres, optional (N, 3) uint8 colours) as PLY."""
    path = Path(path)
    cloud = trimesh.PointCloud(np.asarray(points, dtype=np.float64), colors=colors)
    write_bytes_atomic(path, cloud.export(file_type="ply"))
    return path


def read_mesh(path: str | Path) -> trimesh.Trimesh:
    """Read a triangle mesh file without merging or reordering its vertices."""
    path = Path(path)
    if not path.is_file():
        raise C2FError(f"mesh file not found: {path}")
    try:
        loaded = trimesh.load(path, process=False, force="mesh", maintain_order=True)
    except Exception as exc:  # noqa: BLE001 - trimesh raises many types on corrupt files
        raise C2FError(f"cannot read mesh {path}: {exc}") from None
    if not isinstance(loaded, trimesh.Trimesh):
        raise C2FError(f"{path} holds no triangle mesh")
    return loaded
