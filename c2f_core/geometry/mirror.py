"""Left-right mirroring of an RGB-D frame and of what is reconstructed from it.

A right-hand network serves left hands: flip the image, depth and intrinsics left to right, and
the left hand becomes a right hand; flip the meshes and joints back afterwards.

Convention: OpenCV camera (x right, y down, z forward), metres. Flipping an image of width W maps
pixel u to W - 1 - u; with cx' = W - 1 - cx the flipped image is the exact image of the scene
mirrored in the camera's y-z plane (x -> -x), so a point (x, y, z) of the scene is (-x, y, z) in
the mirrored one. Mirroring reverses orientation, so triangles change winding to keep their
normals pointing out. Every function here is its own inverse.
"""

from __future__ import annotations

import numpy as np

from c2f_core.data.crop import Box


def mirror_image(image: np.ndarray) -> np.ndarray:
    """An (H, W, ...) image flipped left to right (a contiguous copy)."""
    return np.ascontiguousarray(np.asarray(image)[:, ::-1])


def mirror_intrinsics(K: np.ndarray, width: int) -> np.ndarray:
    """The intrinsics (3, 3) of an image of `width` pixels flipped left to right."""
    mirrored = np.array(K, dtype=np.float64)
    mirrored[0, 2] = width - 1 - mirrored[0, 2]
    return mirrored


def mirror_points(points: np.ndarray) -> np.ndarray:
    """Camera points (..., 3) mirrored in the camera's y-z plane (x -> -x)."""
    mirrored = np.array(points, copy=True)
    mirrored[..., 0] = -mirrored[..., 0]
    return mirrored


def mirror_faces(faces: np.ndarray) -> np.ndarray:
    """Triangles (F, 3) with reversed winding, as a mirrored mesh needs."""
    return np.ascontiguousarray(np.asarray(faces)[:, ::-1])


def mirror_box(box: Box, width: int) -> Box:
    """A box (x0, y0, x1, y1), x1 exclusive, in an image of `width` pixels flipped left to right."""
    x0, y0, x1, y1 = box
    return (float(width - x1), float(y0), float(width - x0), float(y1))
