"""Exact generalised winding numbers of a triangle mesh at many points, from signed ray crossings.

Why not libigl alone: ``igl.signed_distance`` with the exact winding number (the sign of the contact
metrics, method E.2) builds its hierarchy again on every call, 60 ms for 20,000 faces, and then
costs about 35 us a point; the contact metrics ask it about 10^4 points per mesh and protocol.

Method: the mesh M, open or closed, is closed by cones C over its holes (``hole_cone``), so that
M + C has no boundary. Off M + C its winding number is an integer W(q), the signed count of the
crossings of a ray from q (+1 where the ray leaves through the front of a triangle, -1 where it
enters), and the winding number of M is

    w_M(q) = W(q) - w_C(q),

w_C being the solid angles of the cones' triangles over 4 pi, which libigl's flat
``winding_number`` sums in C++ (van Oosterom and Strackee). Both equal libigl's exact winding
number up to rounding (1e-13 on the meshes of the tests). A closed mesh has no cone: w_C = 0.

Rays run along the axes of a fixed oblique frame (``RAY_FRAME``), not the mesh's: marching-cubes
vertices and grid points share coordinates with whole planes of the mesh's edges, and a ray in
such a plane grazes every edge in it. They try the frame's x, then y and z where that fails. A
point is left undecided when it lies within ``NEAR_SURFACE`` (relative to the coordinates' size)
of a triangle of the mesh or its cones, where libigl's own rounding grows and the two could
differ, or when its rays graze an edge along all three axes; callers ask libigl about those. The
margins are far above rounding, so the decisions never rest on the last bits: a point decided
is farther than the tolerance from every triangle, and each of its crossings is a sure one.

Convention: any unit and frame; faces (F, 3) index vertices, front side by the right-hand rule
(counter-clockwise seen from the front), as libigl, so w = 1 inside an outward-facing closed mesh.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.transform import Rotation

from c2f_core.geometry.point_index import spatial_order

NEAR_SURFACE = 1e-9
"""Points closer than this times the coordinates' size (max |coordinate|, at least the mesh's
extent) to a triangle are undecided: 5e-10 m for a mesh 0.5 m from the camera."""
ROUNDING_MARGIN = 1e-9
"""Relative margin over float64 rounding (1e-16) of an edge function or a crossing's position."""
CONE_BOUND = 0.25
"""The cones' solid angles are computed exactly unless |w_C| is proven below this (< 1/2 with a
wide margin): then w_M > 1/2 exactly where W >= 1."""
HALF_MARGIN = 1e-9
"""A winding number within this of 1/2 is undecided for the inside test (libigl's rounding is ~1e-14)."""
RAY_FRAME = Rotation.from_rotvec(0.6 * np.array([0.3, 0.5, 0.4]) / np.sqrt(0.5)).as_matrix()
"""Rows: the ray directions, an orthonormal frame at no simple angle to the coordinate axes (a
rotation of 0.6 rad about (0.3, 0.5, 0.4)). Rotated coordinates carry rounding (1e-16 relative),
far below ``NEAR_SURFACE``."""
APEX_LIFT = 0.2
"""A hole's apex is its centre moved by this times the hole's RMS radius along ``APEX_DIRECTION``."""
APEX_DIRECTION = RAY_FRAME[2]
"""A direction at no simple angle to the axes (any closing cone gives the same w_M)."""
_CLUSTER = 8
"""Cone triangles per cluster of the bound on |w_C|."""


def hole_cone(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cones closing a mesh's holes: triangles (B, 3, 3) and weights (B,) (B = 0 for a closed mesh).

    The boundary counts each undirected edge a < b once per face using it a -> b and minus once
    per face using it b -> a; the edges with a non-zero count c form closed loops, and the
    triangles (apex, b, a) taken c times close them, so that the mesh plus the cones has no
    boundary (every spoke apex -> v is used once each way). Each connected set of boundary edges
    gets its own apex, near the mean of its vertices, so a small hole gets a small cone.

    Args:
        vertices: (V, 3). faces: (F, 3) int, any orientation and holes.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    forward = edges[:, 0] < edges[:, 1]
    keys = np.where(forward, edges[:, 0], edges[:, 1]) * len(vertices) + np.where(
        forward, edges[:, 1], edges[:, 0]
    )
    unique, inverse = np.unique(keys, return_inverse=True)
    count = np.bincount(inverse, weights=np.where(forward, 1.0, -1.0), minlength=len(unique))
    open_edges = np.flatnonzero(count != 0)
    if len(open_edges) == 0:
        return np.zeros((0, 3, 3)), np.zeros(0)
    a, b = np.divmod(unique[open_edges], len(vertices))
    ends, end_index = np.unique(np.concatenate([a, b]), return_inverse=True)
    graph = coo_matrix(
        (np.ones(len(a)), (end_index[: len(a)], end_index[len(a) :])), shape=(len(ends), len(ends))
    )
    _, loop_of_end = connected_components(graph, directed=False)
    loops = loop_of_end.max() + 1
    size = np.bincount(loop_of_end, minlength=loops)[:, None]
    centres = np.zeros((loops, 3))
    np.add.at(centres, loop_of_end, vertices[ends])
    centres /= size
    spread = np.zeros(loops)
    np.add.at(spread, loop_of_end, ((vertices[ends] - centres[loop_of_end]) ** 2).sum(1))
    # A hole cut by a plane (a marching-cubes grid's side) is flat, and a flat cone would hold the
    # points of the other mesh cut by the same plane: the apex leaves the plane.
    apexes = centres + APEX_LIFT * np.sqrt(spread / size[:, 0])[:, None] * APEX_DIRECTION
    apex = apexes[loop_of_end[end_index[: len(a)]]]
    return np.stack([apex, vertices[b], vertices[a]], axis=1), count[open_edges]


class MeshWinding:
    """A triangle mesh closed by its hole cones, to take exact winding numbers at many points.

    Build it once per mesh (a few milliseconds) and ask it about any number of points.
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        """Close `vertices` (V, 3) and `faces` (F, 3) with their cones and group the cones for bounds."""
        self.vertices = np.ascontiguousarray(vertices, dtype=np.float64)
        self.faces = np.ascontiguousarray(faces, dtype=np.int64)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3 or len(self.vertices) == 0:
            raise ValueError(f"vertices must be (V, 3) with V > 0, got {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"faces must be (F, 3), got {self.faces.shape}")
        cone, weights = hole_cone(self.vertices, self.faces)
        # Clusters of consecutive triangles along a Morton curve are compact; the last one is
        # padded with weightless copies.
        order = spatial_order(cone.mean(1)) if len(cone) else np.zeros(0, dtype=np.int64)
        pad = -len(cone) % _CLUSTER
        self.cone = np.concatenate([cone[order], np.repeat(cone[order][-1:], pad, axis=0)])
        self.cone_weights = np.concatenate([weights[order], np.zeros(pad)])
        self.weights = np.concatenate([np.ones(len(self.faces)), self.cone_weights])
        rotated = self.vertices @ RAY_FRAME.T
        self._ray_triangles = np.concatenate([rotated[self.faces], self.cone @ RAY_FRAME.T])
        corner = [self._ray_triangles[:, i] for i in range(3)]
        self._ray_boxes = (
            np.minimum(np.minimum(corner[0], corner[1]), corner[2]),
            np.maximum(np.maximum(corner[0], corner[1]), corner[2]),
        )
        self._vertex_rows = np.unique(_rows(self.vertices))
        # The cones as a plain triangle soup for libigl: a weight -c is c reversed copies.
        repeats = np.abs(self.cone_weights).astype(np.int64)
        soup = np.repeat(self.cone, repeats, axis=0)
        reverse = np.repeat(self.cone_weights < 0, repeats)
        soup[reverse] = soup[reverse][:, ::-1]
        self._cone_vertices = np.ascontiguousarray(soup.reshape(-1, 3))
        self._cone_faces = np.arange(len(self._cone_vertices), dtype=np.int64).reshape(-1, 3)
        self._tree = None
        size = max(float(np.abs(self.vertices).max()), float(np.ptp(self.vertices, axis=0).max()))
        self.tolerance = NEAR_SURFACE * size
        """Distance (the vertices' unit) within which a point counts as on a triangle."""
        clusters = self.cone.reshape(-1, _CLUSTER, 3, 3)
        areas = 0.5 * np.linalg.norm(
            np.cross(self.cone[:, 1] - self.cone[:, 0], self.cone[:, 2] - self.cone[:, 0]), axis=1
        )
        self._cluster_area = (np.abs(self.cone_weights) * areas).reshape(-1, _CLUSTER).sum(1)
        self._cluster_low = clusters.min(axis=(1, 2))
        self._cluster_high = clusters.max(axis=(1, 2))
        corners = np.concatenate([self.vertices, self.cone.reshape(-1, 3)])
        self._low, self._high = corners.min(0), corners.max(0)

    def may_be_inside(self, points: np.ndarray) -> np.ndarray:
        """(N,) bool: False only where w at `points` (N, 3) is proven below 1/2, by two boxes (cheap).

        The mesh plus its cones is closed, so outside its box its winding number is 0 and
        w_M = -w_C, with |w_C| <= area(C) / (4 pi d^2) for d the distance to the cones' box. A
        closed mesh has no cones: every point outside its box is outside.
        """
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        # A margin of 1e-9 of the box's size keeps points on the box faces on the exact side.
        margin = 1e-9 * max(float((self._high - self._low).max()), 1e-12)
        in_box = np.all((points >= self._low - margin) & (points <= self._high + margin), axis=1)
        if len(self.cone) == 0:
            return in_box
        gap = np.maximum(
            np.maximum(self._cluster_low.min(0) - points, points - self._cluster_high.max(0)), 0.0
        )
        return in_box | (self._cluster_area.sum() >= CONE_BOUND * 4.0 * np.pi * (gap**2).sum(1))

    def crossings(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The winding number W of the mesh plus its cones at `points` (N, 3), and where it is decided.

        Returns:
            W: (N,) integer-valued float64 (0 where undecided).
            decided: (N,) bool, False within ``tolerance`` of a triangle or where the rays of
                all three axes graze an edge.
        """
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        # A mesh vertex is on the surface: no ray can decide it (marching-cubes meshes of one grid
        # share many vertices).
        todo = np.flatnonzero(~self.on_vertex(points))
        points = points @ RAY_FRAME.T
        total = np.zeros(len(points))
        decided = np.zeros(len(points), dtype=bool)
        for axis in range(3):
            if len(todo) == 0:
                break
            count, ok = _ray_crossings(
                points[todo], self._ray_triangles, self._ray_boxes, self.weights, axis, self.tolerance
            )
            total[todo[ok]] = count[ok]
            decided[todo[ok]] = True
            todo = todo[~ok]
        return total, decided

    def on_vertex(self, points: np.ndarray) -> np.ndarray:
        """(N,) bool: `points` (N, 3) that equal a vertex of the mesh bit for bit."""
        rows = _rows(points)
        found = np.searchsorted(self._vertex_rows, rows).clip(max=len(self._vertex_rows) - 1)
        return self._vertex_rows[found] == rows

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Exact unsigned distances (N,) from `points` (N, 3) to the mesh (libigl's AABB tree, built once).

        The same tree and arithmetic as ``igl.signed_distance``: its value is (1 - 2w) times this.
        """
        points = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
        if len(points) == 0:
            return np.zeros(0)
        if self._tree is None:
            import igl

            self._tree = igl.AABB()
            self._tree.init(self.vertices, self.faces)
        squared = self._tree.squared_distance(self.vertices, self.faces, points)[0]
        return np.sqrt(np.maximum(np.asarray(squared, dtype=np.float64), 0.0))

    def cone_winding(self, points: np.ndarray) -> np.ndarray:
        """(N,) w_C at `points` (N, 3): the cones' solid angles over 4 pi, exact (libigl, O(cone) a point)."""
        points = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
        if len(points) == 0 or len(self._cone_faces) == 0:
            return np.zeros(len(points))
        import igl

        return np.asarray(
            igl.winding_number(self._cone_vertices, self._cone_faces, points), dtype=np.float64
        ).reshape(-1)

    def cluster_bounds(self, points: np.ndarray) -> np.ndarray:
        """(N, G) upper bounds of |w| of each cone cluster at `points` (N, 3): area / (4 pi d^2).

        A triangle's solid angle is at most its area over its squared distance; d is the distance
        to the cluster's box (an infinite bound inside it).
        """
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        gap = np.maximum(
            np.maximum(self._cluster_low[None] - points[:, None], points[:, None] - self._cluster_high[None]),
            0.0,
        )
        with np.errstate(divide="ignore"):
            return self._cluster_area / (4.0 * np.pi * (gap**2).sum(-1))

    def winding_number(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact generalised winding numbers (N,) of the mesh at `points` (N, 3), and where decided.

        Returns:
            w: (N,) float64, W - w_C (NaN where undecided).
            decided: (N,) bool.
        """
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        count, decided = self.crossings(points)
        w = np.full(len(points), np.nan)
        w[decided] = count[decided] - self.cone_winding(points[decided])
        return w, decided

    def inside(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N,) bool w > 1/2 at `points` (N, 3), and (N,) bool where that is decided.

        A point far from every cone has |w_C| < ``CONE_BOUND``: its side is W >= 1. The others get
        the cones' solid angles exactly.
        """
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        count, decided = self.crossings(points)
        inside = decided & (count >= 1)
        if len(self.cone) == 0:
            return inside, decided
        near = np.flatnonzero(decided)
        near = near[self.cluster_bounds(points[near]).sum(1) >= CONE_BOUND]
        w = count[near] - self.cone_winding(points[near])
        inside[near] = w > 0.5
        decided[near] = np.abs(w - 0.5) > HALF_MARGIN
        return inside & decided, decided


def _ray_crossings(
    points: np.ndarray,
    triangles: np.ndarray,
    boxes: tuple[np.ndarray, np.ndarray],
    weights: np.ndarray,
    axis: int,
    tolerance: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Signed, weighted crossings of the rays from `points` (N, 3) along +axis with `triangles` (T, 3, 3).

    Args:
        boxes: the triangles' (T, 3) low and high corners.

    Returns:
        count: (N,) sum of weight * (+1 front to back, -1 back to front) over crossings beyond each point.
        decided: (N,) bool, False where a point may lie within `tolerance` of a triangle or its
            ray within rounding of a projected edge.
    """
    u, v = (axis + 1) % 3, (axis + 2) % 3
    low, high = boxes
    point_of, tri_of = _point_triangle_pairs(points[:, [u, v]], low[:, [u, v]], high[:, [u, v]], tolerance)
    # A triangle wholly behind the point by more than `tolerance` is neither crossed nor near.
    ahead = high[tri_of, axis] >= points[point_of, axis] - tolerance
    point_of, tri_of = point_of[ahead], tri_of[ahead]
    # Edge functions of the ray's foot in the projected triangle (corners relative to the foot):
    # e_ab = a x b, and so on; the same edge of two faces gives the same value with opposite signs.
    # An edge is sure when the foot is farther than `tolerance` from its line, beyond rounding.
    foot = points[point_of]
    corner = triangles[tri_of]
    cu = [corner[:, i, u] - foot[:, u] for i in range(3)]
    cv = [corner[:, i, v] - foot[:, v] for i in range(3)]
    edge, positive, negative = [], [], []
    for i, j in ((0, 1), (1, 2), (2, 0)):
        first, second = cu[i] * cv[j], cv[i] * cu[j]
        value = first - second
        bound = tolerance * np.hypot(cu[j] - cu[i], cv[j] - cv[i]) + ROUNDING_MARGIN * (
            np.abs(first) + np.abs(second)
        )
        edge.append(value)
        positive.append(value > bound)
        negative.append(value < -bound)
    hit = (positive[0] & positive[1] & positive[2]) | (negative[0] & negative[1] & negative[2])
    # A sure edge of each sign puts the foot farther than `tolerance` outside the projection.
    missed = (positive[0] | positive[1] | positive[2]) & (negative[0] | negative[1] | negative[2])
    decided = np.ones(len(points), dtype=bool)
    decided[point_of[~(hit | missed)]] = False

    point_of, tri_of = point_of[hit], tri_of[hit]
    e_ab, e_bc, e_ca = (e[hit] for e in edge)
    corner = corner[hit]
    # Barycentric weights of the foot are e_bc, e_ca, e_ab over their sum; offset along the axis.
    den = e_ab + e_bc + e_ca
    along = corner[:, :, axis] - points[point_of, axis][:, None]
    step_b, step_c = along[:, 1] - along[:, 0], along[:, 2] - along[:, 0]
    offset = along[:, 0] + (e_ca * step_b + e_ab * step_c) / den
    normal = np.cross(corner[:, 1] - corner[:, 0], corner[:, 2] - corner[:, 0])
    # Within `tolerance` of the triangle's plane is within tolerance * |n| / |n_axis| along the ray.
    error = ROUNDING_MARGIN * (np.abs(along[:, 0]) + np.abs(step_b) + np.abs(step_c)) + tolerance * np.sqrt(
        (normal**2).sum(1)
    ) / np.abs(den)
    beyond = offset > error
    count = np.bincount(
        point_of[beyond], weights=(np.sign(den) * weights[tri_of])[beyond], minlength=len(points)
    )
    decided[point_of[np.abs(offset) <= error]] = False
    return count, decided


def _point_triangle_pairs(
    feet: np.ndarray, low_t: np.ndarray, high_t: np.ndarray, padding: float
) -> tuple[np.ndarray, np.ndarray]:
    """(point, triangle) index pairs (P,), (P,): each foot (N, 2) with the triangles whose 2D box
    (T, 2) low and high corners, grown by `padding`, holds it (and a few more).

    Feet and boxes go to the cells of a uniform grid half a triangle wide; a foot pairs with the
    triangles registered in its cell. Mapping a coordinate to its cell is monotonic, so a box that
    holds a foot always covers the foot's cell.
    """
    low_t, high_t = low_t - padding, high_t + padding
    low, high = feet.min(0), feet.max(0)
    overlaps = np.flatnonzero(
        (high_t[:, 0] >= low[0])
        & (high_t[:, 1] >= low[1])
        & (low_t[:, 0] <= high[0])
        & (low_t[:, 1] <= high[1])
    )
    if len(overlaps) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    low_t, high_t = low_t[overlaps], high_t[overlaps]
    extent = np.maximum(high_t[:, 0] - low_t[:, 0], high_t[:, 1] - low_t[:, 1])
    span = float((high - low).max())
    cell = max(0.5 * float(np.median(extent)), span / 2048.0, 1e-12)
    cells = np.floor((high - low) / cell).astype(np.int64) + 1

    def cell_of(xy: np.ndarray) -> np.ndarray:
        return np.clip(np.floor((xy - low) / cell).astype(np.int64), 0, cells - 1)

    foot_cell = cell_of(feet) @ np.array([cells[1], 1])
    tri_low, tri_high = cell_of(low_t), cell_of(high_t)
    size = tri_high - tri_low + 1
    tri_of, local = _expand(np.zeros(len(overlaps), dtype=np.int64), size[:, 0] * size[:, 1])
    rows = size[tri_of, 1]
    tri_cell = (tri_low[tri_of, 0] + local // rows) * cells[1] + tri_low[tri_of, 1] + local % rows
    foot_order = np.argsort(foot_cell, kind="stable")
    sorted_cells = foot_cell[foot_order]
    start = np.searchsorted(sorted_cells, tri_cell, side="left")
    stop = np.searchsorted(sorted_cells, tri_cell, side="right")
    pair_of, slot = _expand(start, stop - start)
    return foot_order[slot], overlaps[tri_of[pair_of]]


def _rows(points: np.ndarray) -> np.ndarray:
    """(N,) one opaque 24-byte item per row of `points` (N, 3), compared bit for bit."""
    points = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
    return points.view(np.dtype((np.void, 24))).reshape(-1)


def _expand(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ragged ranges: for each i, the pairs (i, starts[i] + k) for k < counts[i], as two (sum,) arrays."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    base = np.repeat(np.cumsum(counts) - counts, counts)
    return owner, np.asarray(starts, dtype=np.int64)[owner] + np.arange(int(counts.sum())) - base
