"""Cleaning triangle meshes before they are written: no degenerate, zero-area or duplicate faces.

Blender's `Mesh.validate()` and its glTF exporter reject faces that repeat a vertex, and duplicate
faces make a surface non-manifold; marching cubes and fitted hands can produce a few of each.
"""

from __future__ import annotations

import numpy as np

from c2f_core.geometry.tolerances import MIN_FACE_AREA_M2


def clean_mesh_selection(
    vertices: np.ndarray, faces: np.ndarray, min_face_area_m2: float = MIN_FACE_AREA_M2
) -> tuple[np.ndarray, np.ndarray]:
    """Which faces and vertices a clean copy of the mesh keeps (see `clean_mesh`).

    Args:
        vertices: (V, 3) metres.
        faces: (F, 3) integer indices into `vertices`.
        min_face_area_m2: faces with a smaller area are dropped.

    Returns:
        kept_faces (F',) and kept_vertices (V',): increasing indices into `faces` and `vertices`.

    Raises:
        ValueError: on shapes other than (V, 3) and (F, 3), or face indices outside the vertices.
    """
    vertices = np.asarray(vertices)
    faces = np.asarray(faces)
    vertices = vertices.reshape(-1, 3) if vertices.size == 0 else vertices
    faces = faces.reshape(-1, 3) if faces.size == 0 else faces
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must be (F, 3), got {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"face indices must lie in 0..{len(vertices) - 1}, got {faces.min()}..{faces.max()}")
    repeated = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 0] == faces[:, 2])
    corners = vertices[faces].astype(np.float64)
    area = 0.5 * np.linalg.norm(
        np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1
    )
    candidates = np.flatnonzero(~repeated & (area >= min_face_area_m2))
    # Same vertex set = duplicate, whatever the order or winding; the first one stays.
    _, first = np.unique(np.sort(faces[candidates], axis=1), axis=0, return_index=True)
    kept_faces = candidates[np.sort(first)]
    # Only vertices that the dropped faces alone used go: vertices in no face to begin with stay,
    # so a clean mesh (a fitted hand of fixed vertex count included) passes through unchanged.
    used_before = np.zeros(len(vertices), dtype=bool)
    used_before[faces.ravel()] = True
    used_after = np.zeros(len(vertices), dtype=bool)
    used_after[faces[kept_faces].ravel()] = True
    kept_vertices = np.flatnonzero(used_after | ~used_before)
    return kept_faces, kept_vertices


def clean_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    min_face_area_m2: float = MIN_FACE_AREA_M2,
    vertex_data: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """The mesh without faces that repeat a vertex, zero-area faces and duplicate faces.

    Vertices left unused by the dropped faces are dropped too and the faces renumbered; the order
    of the remaining vertices and faces is kept. A mesh with no bad face comes back as it was (the
    same arrays).

    Args:
        vertices: (V, 3) metres.
        faces: (F, 3) integer indices into `vertices`.
        min_face_area_m2: faces with a smaller area (m^2) are dropped.
        vertex_data: optional (V, ...) per-vertex values (colours) that follow their vertices.

    Returns:
        vertices (V', 3) and faces (F', 3), of the input dtypes, then `vertex_data` (V', ...) when given.

    Raises:
        ValueError: on shapes other than (V, 3) and (F, 3), or face indices outside the vertices.
    """
    vertices = np.asarray(vertices)
    faces = np.asarray(faces)
    kept_faces, kept_vertices = clean_mesh_selection(vertices, faces, min_face_area_m2)
    extra = () if vertex_data is None else (np.asarray(vertex_data),)
    if len(kept_faces) == len(faces):
        return (vertices, faces, *extra)
    new_index = np.full(len(vertices), -1, dtype=faces.dtype)
    new_index[kept_vertices] = np.arange(len(kept_vertices), dtype=faces.dtype)
    return (vertices[kept_vertices], new_index[faces[kept_faces]], *(data[kept_vertices] for data in extra))
