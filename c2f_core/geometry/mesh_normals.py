"""Face and vertex normals of a triangle mesh, for the renderer, the object track and the depth snap."""

from __future__ import annotations

import numpy as np


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unnormalised face normals (F, 3): twice each face's area along its normal (right-hand winding)."""
    corners = vertices[faces]
    return np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V, 3) of a triangle mesh (zero for a vertex on no face)."""
    per_face = face_normals(vertices, faces)
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], per_face)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
