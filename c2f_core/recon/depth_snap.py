"""Each part's seen side laid onto the depth the camera measured.

The network's zero levels are learned guesses: on a real take the hand's visible side lies a few
millimetres in front of or behind the measured surface (on the DexYCB take 8% of the hand pixels
it covers miss their depth by more than 5 mm). The depth is a measurement of exactly that side:

1. Where the part is the nearest surface (not the other part, whose mesh may explain the depth
   better), the gap between the measured depth and the part's rendered depth, within
   `max_offset_m`, is smoothed over the image (normalised Gaussian convolution): one correction
   per patch of surface, so the mesh keeps its own relief and the sensor's speckle stays out.
2. Every vertex of the seen side (facing the camera, at most 1 cm behind the part's nearest
   surface at its pixel) takes that correction as its target offset along its ray. The other
   vertices follow smoothly: the offsets s minimise

       sum_seen (s_i - r_i)^2 + sum_edges (s_i - s_j)^2 + screen * sum_all s_i^2,

   a sparse linear solve over the mesh's edges (conjugate gradients), so the hidden side moves
   with the seen side near it and the part keeps its thickness.
3. Vertices within `contact_m` of the other part stay (the grasp's contact), a vertex the move
   would put inside the other part is held too (one more solve), and faces the move would turn
   over (marching cubes' slivers) are mended.

Convention: metres, OpenCV camera frame; offsets are along each vertex's camera ray, in depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import scipy.sparse.linalg as sparse_linalg
from scipy import sparse
from scipy.spatial import cKDTree

from c2f_core.geometry.camera import project
from c2f_core.geometry.mesh_normals import face_normals, vertex_normals
from c2f_core.geometry.mesh_sdf import MeshSDF
from c2f_core.geometry.raster import rasterize_depth
from c2f_core.recon.extract import Mesh

SEEN_DEPTH_M = 0.01
"""A vertex facing the camera is on the seen side when the part's nearest surface at its pixel
lies within this in front of it (farther: a layer of the part hidden behind another)."""
HOLD = 1000.0
"""Weight keeping a held vertex's offset at 0, relative to one seen vertex: in effect fixed."""
CG_STEPS = 2000
"""Upper bound on the conjugate-gradient iterations of the offsets' solve (it takes ~150)."""
OFFSET_BLUR_PX = 3.0
"""Gaussian sigma (pixels) of the smoothing of the depth-minus-surface field."""
FIELD_SUPPORT = 0.25
"""The smoothed field holds where at least this share of its Gaussian weight had a gap to go on."""
SMOOTHING = 1.0
"""Weight of the offsets' differences along the mesh's edges, relative to a seen vertex's fit."""
MAX_TURN_COSINE = 0.7071
"""A face whose normal the move turns by more than 45 degrees is mended (`_unflip`)."""
UNFLIP_PASSES = 40
"""Passes of `_unflip` at most: a lone sliver is mended in one or two, a cluster of slivers sharing
corners in tens (8 passes left 29 turned faces per real-take frame, 40 leave 2); each pass after
the first asks only the faces around the vertices the last one changed."""
SCREEN = 0.01
"""Weight pulling every offset towards 0, relative to one seen vertex: far from any seen vertex the
mesh keeps its place."""


@dataclass
class SnapResult:
    """A part laid onto the depth, and what moved."""

    mesh: Mesh
    seen: int
    """Vertices that met their measured depth (the anchors)."""
    held: int
    """Vertices kept in place by the other part (contact, or a move into it)."""
    mean_offset_m: float
    """Mean absolute offset of the seen vertices before the move."""


def _edge_laplacian(faces: np.ndarray, count: int) -> sparse.csr_matrix:
    """The graph Laplacian (V, V) of a triangle mesh's edges."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    adjacency = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(count, count))
    adjacency = ((adjacency + adjacency.T) > 0).astype(np.float64)
    return (sparse.diags(np.asarray(adjacency.sum(1)).ravel()) - adjacency).tocsr()


def _entered(other: Mesh, tree: cKDTree, before: np.ndarray, after: np.ndarray, reach_m: float) -> np.ndarray:
    """Vertices the move put inside the other part (only those that end near it are asked)."""
    entered = np.zeros(len(after), dtype=bool)
    near = tree.query(after, distance_upper_bound=reach_m)[0] < reach_m
    if near.any():
        inside = MeshSDF(other.vertices.astype(np.float64), other.faces)
        entered[near] = inside.contains(after[near]) & ~inside.contains(before[near])
    return entered


def _unflip(
    vertices: np.ndarray, faces: np.ndarray, shift: np.ndarray, z: np.ndarray, fixed: np.ndarray
) -> np.ndarray:
    """The vertices moved by `shift` along their rays, with no face turned far from its normal.

    Marching cubes leaves slivers a hundredth of a square millimetre in area; a smooth offset
    field still differs across one by enough to turn it over, and an angle-weighted normal (as
    Blender shades) then shows a pit. A face turned by more than 45 degrees has its corners take
    their mean offset, or the mean of its `fixed` corners' where it has any (a vertex held at the
    other part's contact keeps its place), for a few passes; a pass after the first asks only the
    faces whose corners the last one changed.
    """
    before = face_normals(vertices, faces)
    before /= np.maximum(np.linalg.norm(before, axis=1, keepdims=True), 1e-30)
    shift = shift.copy()
    asked = np.arange(len(faces))
    for _ in range(UNFLIP_PASSES):
        corners = faces[asked]
        moved = vertices[corners] * (1.0 + shift[corners] / z[corners])[..., None]
        after = np.cross(moved[:, 1] - moved[:, 0], moved[:, 2] - moved[:, 0])
        cosine = np.einsum("ij,ij->i", after, before[asked]) / np.maximum(
            np.linalg.norm(after, axis=1), 1e-30
        )
        turned = asked[cosine < MAX_TURN_COSINE]
        if len(turned) == 0:
            break
        corners = faces[turned]
        pinned = fixed[corners]
        anchor = pinned.any(1)
        # the face's target offset: its fixed corners' mean where it has one, else all corners'
        target = np.where(
            anchor,
            (shift[corners] * pinned).sum(1) / np.maximum(pinned.sum(1), 1),
            shift[corners].mean(1),
        )
        total, count = np.zeros(len(shift)), np.zeros(len(shift))
        np.add.at(total, corners.ravel(), np.repeat(target, 3))
        np.add.at(count, corners.ravel(), 1.0)
        touched = (count > 0) & ~fixed
        shift[touched] = total[touched] / count[touched]
        asked = np.nonzero(touched[faces].any(1))[0]
    return vertices * (1.0 + shift / z)[:, None]


def _window(uv: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """The pixel box (x0, y0, x1, y1) around projected points (N, 2), clipped to the image."""
    u, v = uv[:, 0], uv[:, 1]
    x0, x1 = int(np.clip(np.floor(u.min()) - 1, 0, width)), int(np.clip(np.ceil(u.max()) + 2, 0, width))
    y0, y1 = int(np.clip(np.floor(v.min()) - 1, 0, height)), int(np.clip(np.ceil(v.max()) + 2, 0, height))
    return x0, y0, x1, y1


def _render(mesh: Mesh, K: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The mesh's nearest depth in the pixel box (inf where none)."""
    x0, y0, x1, y1 = box
    if mesh.is_empty:
        return np.full((y1 - y0, x1 - x0), np.inf)
    shifted = K.astype(np.float64).copy()
    shifted[0, 2] -= x0
    shifted[1, 2] -= y0
    return rasterize_depth(mesh.vertices.astype(np.float64), mesh.faces, shifted, x1 - x0, y1 - y0)


def snap_to_depth(
    part: Mesh,
    other: Mesh,
    depth_m: np.ndarray,
    K: np.ndarray,
    max_offset_m: float = 0.02,
    contact_m: float = 0.005,
) -> SnapResult:
    """Move one part's seen side onto the measured depth, the rest following (see the module doc).

    Args:
        part: the mesh to move (the hand or the object), metres, camera frame.
        other: the frame's other part, which hides `part` where it is nearer and is not entered.
        depth_m: (H, W) the frame's depth, metres, 0 where missing, in step with the meshes.
        K: (3, 3) intrinsics of `depth_m`.
        max_offset_m: seen vertices farther than this from their depth stay (another surface).
        contact_m: vertices within this of the other part do not move.
    """
    if part.is_empty or max_offset_m <= 0:
        return SnapResult(part, 0, 0, 0.0)
    vertices = part.vertices.astype(np.float64)
    height, width = depth_m.shape
    uv, z = project(vertices, np.asarray(K, np.float64))
    z = np.maximum(z, 1e-6)  # the moves scale along rays by 1 + shift / z
    box = _window(uv, width, height)
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return SnapResult(part, 0, 0, 0.0)
    own_depth, other_depth = _render(part, K, box), _render(other, K, box)
    u = np.round(uv[:, 0]).astype(np.int64) - x0
    v = np.round(uv[:, 1]).astype(np.int64) - y0
    inside = (u >= 0) & (u < x1 - x0) & (v >= 0) & (v < y1 - y0)
    u, v = np.clip(u, 0, x1 - x0 - 1), np.clip(v, 0, y1 - y0 - 1)
    window = depth_m[y0:y1, x0:x1].astype(np.float64)
    # per pixel where this part is the nearest surface: how far the measured depth lies behind it
    gap = window - own_depth
    front = np.isfinite(own_depth) & (own_depth <= other_depth) & (window > 0) & (np.abs(gap) < max_offset_m)
    # a depth the other part's mesh explains better is the other's, seen past this one's edge
    front &= ~(np.abs(other_depth - window) < np.abs(gap))
    # smoothed over the image (normalised convolution): one correction for a whole patch of
    # surface, so the mesh keeps its own relief and the sensor's speckle is not printed into it
    weight = cv2.GaussianBlur(front.astype(np.float32), (0, 0), OFFSET_BLUR_PX)
    field = cv2.GaussianBlur(np.where(front, gap, 0.0).astype(np.float32), (0, 0), OFFSET_BLUR_PX)
    known = weight > FIELD_SUPPORT
    field = np.where(known, field / np.maximum(weight, 1e-6), 0.0)
    # every vertex of the seen side takes the field at its pixel, not only those the z-buffer
    # shows: sparse anchors would pull single vertices out of the surface (pits)
    facing = np.einsum("ij,ij->i", vertex_normals(vertices, part.faces), vertices) < 0.0
    seen = inside & facing & (z - own_depth[v, u] < SEEN_DEPTH_M) & known[v, u] & front[v, u]
    offset = field[v, u].astype(np.float64)
    held = np.zeros(len(vertices), dtype=bool)
    other_tree = None
    if not other.is_empty:
        # distance to the other's vertices: its marching-cubes vertices lie ~1.5 mm apart, finer
        # than the contact band, and a tree is several times faster than exact surface distances
        other_tree = cKDTree(other.vertices.astype(np.float64))
        held = other_tree.query(vertices, distance_upper_bound=contact_m)[0] < contact_m
    seen &= ~held
    if not seen.any():
        return SnapResult(part, 0, int(held.sum()), 0.0)
    laplacian = _edge_laplacian(part.faces, len(vertices))

    def solve(start: np.ndarray | None = None) -> np.ndarray:
        # symmetric positive definite: Jacobi-preconditioned conjugate gradients, ~8x faster than
        # a sparse LU on a 10,000-vertex hand (6 against 43 ms), to a micrometre
        system = (
            sparse.diags(seen.astype(np.float64) + HOLD * held + SCREEN) + SMOOTHING * laplacian
        ).tocsr()
        jacobi = sparse.diags(1.0 / system.diagonal())
        rhs = np.where(seen, offset, 0.0)
        shift, _ = sparse_linalg.cg(system, rhs, x0=start, rtol=1e-6, maxiter=CG_STEPS, M=jacobi)
        return shift

    mean_offset = float(np.abs(offset[seen]).mean())
    shift = solve()
    moved = vertices * (1.0 + shift / z)[:, None]
    if other_tree is not None:
        # a move is at most max_offset_m (the offsets are weighted means of the seen ones)
        entered = _entered(other, other_tree, vertices, moved, max_offset_m + contact_m)
        if entered.any():
            held |= entered
            seen &= ~entered
            shift = solve(np.where(entered, 0.0, shift))  # the first solve is a near start
    moved = _unflip(vertices, part.faces, shift, z, held)
    mesh = Mesh(moved.astype(part.vertices.dtype), part.faces)
    return SnapResult(mesh, int(seen.sum()), int(held.sum()), mean_offset)


def snap_parts_to_depth(
    hand: Mesh, obj: Mesh, depth_m: np.ndarray, K: np.ndarray, max_offset_m: float = 0.02
) -> tuple[Mesh, Mesh]:
    """The hand, then the object, laid onto the depth (each kept off the other as it then is)."""
    hand = snap_to_depth(hand, obj, depth_m, K, max_offset_m).mesh
    return hand, snap_to_depth(obj, hand, depth_m, K, max_offset_m).mesh
