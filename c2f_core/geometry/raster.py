"""A z-buffer rasteriser for triangle meshes in numpy: depth and silhouettes as a pinhole camera sees them.

Used where a mesh must be compared with an image (silhouettes against a segmentation). Pixel
(u, v) is covered when its centre (u, v) lies inside the projected triangle (edges included), the
depth there is interpolated linearly in screen space (exact enough for pixel-sized triangles), and
the nearest triangle wins.

Convention: OpenCV camera, metres; x right, y down, z forward; K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]].
"""

from __future__ import annotations

import numpy as np

from c2f_core.geometry.camera import project

SMALL_TRIANGLE_PX = 8
"""Triangles whose pixel box fits in this many pixels a side are rasterised together, vectorised;
larger ones one at a time."""
WINDOW_SIZES = (2, 4, SMALL_TRIANGLE_PX)
"""Window sides (pixels) the small triangles are grouped by; the last is `SMALL_TRIANGLE_PX`."""
NEAR_PLANE_M = 1e-3
"""Triangles with a corner closer to the camera than this are skipped (they cannot be projected)."""


def _cover(
    uv: np.ndarray, z: np.ndarray, origin: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of `size`x`size` windows at `origin` (T, 2) that triangles uv (T, 3, 2) cover.

    Returns the covering triangle index, u, v and the interpolated depth of each covered pixel.
    """
    offsets = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="xy"), -1).reshape(-1, 2)
    pix = origin[:, None, :] + offsets[None]  # (T, P, 2) integer pixel indices
    a, b, c = uv[:, 0], uv[:, 1], uv[:, 2]
    v0, v1 = b - a, c - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    ok = np.abs(den) > 1e-12
    d = pix - a[:, None, :]
    inv = np.where(ok, 1.0 / np.where(ok, den, 1.0), 0.0)[:, None]
    w1 = (d[..., 0] * v1[:, None, 1] - v1[:, None, 0] * d[..., 1]) * inv
    w2 = (v0[:, None, 0] * d[..., 1] - d[..., 0] * v0[:, None, 1]) * inv
    w0 = 1.0 - w1 - w2
    tol = -1e-9
    inside = (w0 >= tol) & (w1 >= tol) & (w2 >= tol) & ok[:, None]
    depth = w0 * z[:, None, 0] + w1 * z[:, None, 1] + w2 * z[:, None, 2]
    tri, slot = np.nonzero(inside)
    return tri, pix[tri, slot, 0], pix[tri, slot, 1], depth[tri, slot]


def rasterize_depth(
    vertices: np.ndarray, faces: np.ndarray, K: np.ndarray, width: int, height: int
) -> np.ndarray:
    """The depth (H, W) metres of the nearest surface of a mesh at each pixel centre; inf where none.

    Args:
        vertices: (V, 3) metres, camera frame.
        faces: (F, 3) vertex indices.
        K: (3, 3) intrinsics.
        width, height: image size in pixels.
    """
    zbuf = np.full(height * width, np.inf)
    vertices = np.asarray(vertices, np.float64).reshape(-1, 3)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    if len(vertices) == 0 or len(faces) == 0:
        return zbuf.reshape(height, width)
    corners = vertices[faces]
    faces = faces[(corners[..., 2] > NEAR_PLANE_M).all(1)]
    uv_all, _ = project(vertices, np.asarray(K, np.float64))
    uv = uv_all[faces]
    z = vertices[faces][..., 2]
    lo = np.ceil(uv.min(1) - 1e-9).astype(np.int64)
    hi = np.floor(uv.max(1) + 1e-9).astype(np.int64)
    onscreen = (
        (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] < width) & (lo[:, 1] < height) & (hi >= lo).all(1)
    )
    span = (hi - lo + 1).max(1)
    small = onscreen & (span <= SMALL_TRIANGLE_PX)
    pieces = []
    # a window per triangle as small as its pixel box allows: a pixel-sized triangle (the usual
    # marching-cubes one) tests 4 pixels, not 64
    below = 0
    for size in WINDOW_SIZES:
        group = np.nonzero(small & (span > below) & (span <= size))[0]
        below = size
        for chunk in np.array_split(group, max(1, len(group) * size * size // 1_280_000 + 1)):
            if len(chunk):
                pieces.append(_cover(uv[chunk], z[chunk], lo[chunk], size)[1:])
    for index in np.nonzero(onscreen & ~small)[0]:
        # Clip the window to the image so a huge triangle costs at most one image of pixels.
        x0, y0 = max(lo[index, 0], 0), max(lo[index, 1], 0)
        size = int(max(min(hi[index, 0], width - 1) - x0, min(hi[index, 1], height - 1) - y0) + 1)
        pieces.append(_cover(uv[index : index + 1], z[index : index + 1], np.array([[x0, y0]]), size)[1:])
    for u, v, depth in pieces:
        keep = (u >= 0) & (u < width) & (v >= 0) & (v < height)
        np.minimum.at(zbuf, v[keep] * width + u[keep], depth[keep])
    return zbuf.reshape(height, width)


def visible_silhouettes(
    meshes: list[tuple[np.ndarray, np.ndarray]], K: np.ndarray, width: int, height: int
) -> list[np.ndarray]:
    """The (H, W) bool masks where each mesh is the nearest of all, as a segmentation labels them."""
    depths = np.stack([rasterize_depth(v, f, K, width, height) for v, f in meshes])
    nearest = np.argmin(depths, axis=0)
    seen = np.isfinite(depths.min(0))
    return [seen & (nearest == i) for i in range(len(meshes))]
