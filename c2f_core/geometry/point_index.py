"""Nearest neighbours in fixed numpy point sets: one k-d tree, built once and queried many times.

The evaluation's surface samples and ICP ask it about 30,000 points at a time, many of them far
from the set (a poor prediction): pykdtree's tree answers those 2.5x faster than scipy's, with the
same neighbours and bit-identical distances. No torch here, so that evaluation workers start fast;
batched kNN of torch tensors is ``geometry.knn``.
"""

from __future__ import annotations

import functools

import numpy as np
from pykdtree.kdtree import KDTree


def spatial_order(points: np.ndarray, bits: int = 10) -> np.ndarray:
    """A permutation (N,) visiting `points` (N, 3) along a Morton (Z-order) curve over their bounding box.

    Queries sent to a k-d tree in this order touch the same tree nodes one after another, which
    keeps them in cache: about 30% faster for 30,000 queries than a random order. The order
    changes no result, only the time.

    Args:
        points: (N, 3) any unit.
        bits: cells per axis are 2**bits (at most 21).
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got {points.shape}")
    if len(points) == 0:
        return np.zeros(0, dtype=np.int64)
    low = points.min(0)
    span = float((points.max(0) - low).max())
    cells = np.zeros(points.shape, dtype=np.int64)
    if span > 0 and np.isfinite(span):
        scaled = np.clip((points - low) * ((1 << bits) / span), 0, (1 << bits) - 1)
        cells = np.nan_to_num(scaled).astype(np.int64)
    spread = _spread_bits(bits)
    # Axis 0 takes the highest bit of each triple: x, y, z interleaved from the top.
    code = (spread[cells[:, 0]] << np.uint64(2)) | (spread[cells[:, 1]] << np.uint64(1)) | spread[cells[:, 2]]
    return np.argsort(code, kind="stable")


@functools.lru_cache(maxsize=4)
def _spread_bits(bits: int) -> np.ndarray:
    """(2**bits,) uint64: each integer with its bit b moved to bit 3b (a table instead of a loop per bit)."""
    values = np.arange(1 << bits, dtype=np.uint64)
    spread = np.zeros(1 << bits, dtype=np.uint64)
    for bit in range(bits):
        spread |= ((values >> np.uint64(bit)) & np.uint64(1)) << np.uint64(3 * bit)
    return spread


class PointIndex:
    """A k-d tree over a fixed point set, built once and queried many times (nearest neighbours).

    The one spatial index of numpy point sets: the evaluation's surface samples and ICP. It is
    pykdtree's tree, not scipy's cKDTree: the same neighbours and bit-identical distances (both
    take the root of the same sum of squares), 2.5x faster for the far queries of a poor
    prediction (30,000 queries 5 mm from 30,000 points: 25 against 64 ms on one core). Queries go
    to the tree in ``spatial_order`` and the answers come back in the caller's order.
    """

    def __init__(self, points: np.ndarray):
        """Build the tree over `points` (N, 3), N >= 1, any unit (kept as float64)."""
        points = np.ascontiguousarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
            raise ValueError(f"points must be (N, 3) with N >= 1, got {points.shape}")
        self.points = points
        self.tree = KDTree(points)

    def query(
        self, queries: np.ndarray, k: int = 1, order: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Distances and indices of the k nearest points of each query, nearest first.

        Threads: pykdtree's OpenMP threads (``OMP_NUM_THREADS``, all cores by default).

        Args:
            queries: (M, 3) same unit as the points.
            k: neighbours per query (>= 1).
            order: (M,) the permutation to send the queries in, for a caller that asks about
                the same moving points many times (ICP); None computes their ``spatial_order``.

        Returns:
            dist: (M,) for k = 1, else (M, k) float64 Euclidean distances.
            idx: the same shape, int64 indices into the points.
        """
        queries = np.asarray(queries, dtype=np.float64)
        if queries.ndim != 2 or queries.shape[1] != 3:
            raise ValueError(f"queries must be (M, 3), got {queries.shape}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if order is None:
            order = spatial_order(queries)
        elif order.shape != (len(queries),):
            raise ValueError(f"order must be ({len(queries)},), got {order.shape}")
        dist_sorted, idx_sorted = self.tree.query(np.ascontiguousarray(queries[order]), k=k)
        dist = np.empty_like(dist_sorted)
        idx = np.empty(idx_sorted.shape, dtype=np.int64)
        dist[order] = dist_sorted
        idx[order] = idx_sorted
        return dist, idx
