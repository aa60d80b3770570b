"""The one conversion between the OpenCV camera frame and Blender's (and the USD take's) Z-up world.

Convention: our reconstructions live in the OpenCV camera frame (metres; x right, y down,
z forward). Blender and the USD take use a right-handed Z-up world in metres. We place the
capture camera at the world origin looking along world +Y with world +Z up, so

    (x, y, z)_opencv  ->  (x, z, -y)_world

i.e. a right-handed rotation of -90 degrees about x (determinant +1, lengths kept). Camera right
stays world +X, camera forward becomes world +Y, camera down becomes world -Z.

A Blender camera object looks down its local -Z with local +Y up. To look along world +Y with
+Z up it needs the rotation `BLENDER_CAMERA_EULER_XYZ` = (pi/2, 0, 0) (local -Z -> world +Y,
local +Y -> world +Z, local +X -> world +X) at the origin; with that camera, a point of the
OpenCV frame converted here projects to the same pixel in Blender as through the intrinsics
(checked in tests/blender/test_scene.py).

Every importer (the USD writer, the Blender scene builder) calls these functions, so the
convention is defined once.
"""

from __future__ import annotations

import math

import numpy as np

OPENCV_TO_BLENDER: np.ndarray = np.array(
    [
        [1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.0, -1.0, 0.0],
    ]
)
"""(3, 3) rotation taking OpenCV camera coordinates to Blender world coordinates (column vectors)."""

BLENDER_CAMERA_EULER_XYZ: tuple[float, float, float] = (math.pi / 2, 0.0, 0.0)
"""XYZ Euler angles (radians) of a Blender camera object at the origin that sees what the OpenCV camera sees."""


def _check_points(points: np.ndarray, name: str) -> np.ndarray:
    points = np.asarray(points)
    if points.ndim < 1 or points.shape[-1] != 3:
        raise ValueError(f"{name} must be (..., 3), got {points.shape}")
    return points


def opencv_to_blender(points: np.ndarray) -> np.ndarray:
    """Convert points from the OpenCV camera frame to Blender world coordinates.

    Convention: input (..., 3) metres, OpenCV camera frame (x right, y down, z forward); output
    (..., 3) metres, Blender world (Z up, camera at the origin looking along +Y). The mapping is
    (x, y, z) -> (x, z, -y); the dtype is kept (float32 stays float32).

    Args:
        points: (..., 3) points in the OpenCV camera frame, metres.

    Returns:
        (..., 3) points in Blender world coordinates, metres, same dtype.
    """
    points = _check_points(points, "points")
    out = np.empty_like(points)
    out[..., 0] = points[..., 0]
    out[..., 1] = points[..., 2]
    out[..., 2] = -points[..., 1]
    return out


def blender_to_opencv(points: np.ndarray) -> np.ndarray:
    """Convert points from Blender world coordinates back to the OpenCV camera frame (inverse of the above).

    Convention: input (..., 3) metres, Blender world (Z up, camera at the origin looking along
    +Y); output (..., 3) metres, OpenCV camera frame. The mapping is (x, y, z) -> (x, -z, y).

    Args:
        points: (..., 3) points in Blender world coordinates, metres.

    Returns:
        (..., 3) points in the OpenCV camera frame, metres, same dtype.
    """
    points = _check_points(points, "points")
    out = np.empty_like(points)
    out[..., 0] = points[..., 0]
    out[..., 1] = -points[..., 2]
    out[..., 2] = points[..., 1]
    return out
