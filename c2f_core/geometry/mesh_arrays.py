"""A triangle mesh's two arrays checked once, for every writer and geometry routine that takes one."""

from __future__ import annotations

import numpy as np


def mesh_arrays(
    vertices: np.ndarray,
    faces: np.ndarray,
    what: str = "mesh",
    *,
    allow_empty: bool = True,
    finite: bool = True,
    vertex_dtype: type | None = None,
    face_dtype: type = np.int64,
) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) and faces (F, 3) as contiguous arrays, or a ValueError that names `what`.

    Args:
        vertices, faces: the mesh; an empty one may come as bare empty arrays.
        what: how the error messages name the mesh ("hand", "frame 3: object").
        allow_empty: whether a mesh without faces is valid.
        finite: whether NaN or infinite vertices are refused.
        vertex_dtype: the vertices' type (None keeps the given one); `face_dtype` the faces'.
    """
    vertices = np.asarray(vertices) if vertex_dtype is None else np.asarray(vertices, dtype=vertex_dtype)
    faces = np.asarray(faces)
    vertices = vertices.reshape(-1, 3) if vertices.size == 0 else vertices
    faces = faces.reshape(-1, 3) if faces.size == 0 else faces
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"{what} vertices must be (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or (not allow_empty and len(faces) == 0):
        raise ValueError(
            f"{what} faces must be (F, 3){'' if allow_empty else ' with F > 0'}, got {faces.shape}"
        )
    if finite and not np.isfinite(vertices).all():
        raise ValueError(f"{what} vertices contain NaN or infinity")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"{what} faces index outside 0..{len(vertices) - 1}")
    return np.ascontiguousarray(vertices), np.ascontiguousarray(faces, dtype=face_dtype)
