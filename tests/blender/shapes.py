"""Tiny meshes for the Blender tests (numpy only, so fake workers can import it cheaply)."""

from __future__ import annotations

import numpy as np


def cone(radius: float, depth: float, rim: int, x: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A closed cone pointing at the camera: vertices (rim + 2, 3) metres, OpenCV camera frame; faces (2 rim, 3)."""
    angles = np.linspace(0, 2 * np.pi, rim, endpoint=False)
    ring = np.c_[x + radius * np.cos(angles), radius * np.sin(angles), np.full(rim, depth)]
    vertices = np.vstack([ring, [x, 0, depth - radius], [x, 0, depth]])
    # Wound counter-clockwise seen from outside, so normals point out (shading in renders).
    faces = [[(i + 1) % rim, i, rim] for i in range(rim)] + [[i, (i + 1) % rim, rim + 1] for i in range(rim)]
    return vertices, np.array(faces)
