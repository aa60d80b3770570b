"""Pictures of results: meshes drawn over the input image (no OpenGL needed), side-by-side panels."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from c2f_core.geometry.camera import project

HAND_RGB = (230, 160, 120)
"""Colour of hand meshes in pictures."""
OBJECT_RGB = (90, 150, 230)
"""Colour of object meshes in pictures."""


def draw_meshes(
    image: np.ndarray,
    meshes: Sequence[tuple[np.ndarray, np.ndarray, tuple[int, int, int]]],
    K: np.ndarray,
    alpha: float = 0.85,
) -> np.ndarray:
    """Draw meshes (vertices (V, 3) metres in the camera frame, faces (F, 3), RGB) over an RGB image.

    Faces are filled far to near (painter's algorithm) and shaded by how much they face the camera.
    """
    canvas = image.copy()
    polygons, colours, depths = [], [], []
    for vertices, faces, rgb in meshes:
        if len(faces) == 0:
            continue
        vertices = np.asarray(vertices, np.float64)
        tri = vertices[np.asarray(faces)]
        normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
        centres = tri.mean(1)
        view = -centres / (np.linalg.norm(centres, axis=1, keepdims=True) + 1e-12)
        facing = (normals * view).sum(1)
        front = (facing > 0) & (tri[:, :, 2] > 1e-3).all(1)
        uv, _ = project(tri[front].reshape(-1, 3), K)
        polygons.append(np.round(uv.reshape(-1, 3, 2) * 16).astype(np.int32))
        shade = 0.35 + 0.65 * facing[front]
        colours.append(np.asarray(rgb, np.float64)[None] * shade[:, None])
        depths.append(centres[front, 2])
    if not polygons:
        return canvas
    polygons_all = np.concatenate(polygons)
    colours_all = np.concatenate(colours)
    order = np.argsort(-np.concatenate(depths))
    layer = canvas.copy()
    mask = np.zeros(canvas.shape[:2], np.uint8)
    for index in order:
        colour = tuple(int(c) for c in colours_all[index])
        cv2.fillConvexPoly(layer, polygons_all[index], colour, lineType=cv2.LINE_AA, shift=4)
        cv2.fillConvexPoly(mask, polygons_all[index], 255, shift=4)
    covered = mask > 0
    canvas[covered] = (alpha * layer[covered] + (1 - alpha) * canvas[covered]).astype(np.uint8)
    return canvas


def label_panel(image: np.ndarray, text: str) -> np.ndarray:
    """Write a caption in the top-left corner of a panel."""
    out = image.copy()
    cv2.putText(out, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def side_by_side(panels: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """Join RGB panels of equal height left to right with a white gap."""
    height = max(p.shape[0] for p in panels)
    parts = []
    for i, panel in enumerate(panels):
        if panel.shape[0] != height:
            scale = height / panel.shape[0]
            panel = cv2.resize(panel, (round(panel.shape[1] * scale), height))
        if i:
            parts.append(np.full((height, gap, 3), 255, np.uint8))
        parts.append(panel)
    return np.concatenate(parts, axis=1)
