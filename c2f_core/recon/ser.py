"""Surface-aware extraction (SER, method D.2) with an optional coarse-to-fine narrow band on top.

Two steps narrow down where the field is queried:

1. ``select_coarse_blocks``: a coarse M^3 (32^3) selection of the grid built from the network's
   heatmap and marker points (method D.2 steps 1-3, 5). Coarse block (a, b, c) owns the fine
   samples ``[a*sub, (a+1)*sub) x [b*sub, ...) x [c*sub, ...)`` with ``sub = N / M``. Optionally,
   ``zoom_to_scores`` first moves to a finer grid over the tight cube of marked blocks (step 4),
   as the reference does: ``zoom_to_scores(cube, coarse_scores(cube, heatmap, markers))``.
2. Inside the selected blocks, either every fine sample is queried (plain SER), or an octree-like
   descent queries only the corners of cells that may hold the surface (``octree=True``).

Marching cubes then runs only on cells whose 8 corners were all queried (an explicit mask, not a
fill value), so the edge of the selection gives an open boundary, never a phantom wall.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import torch

from c2f_core.errors import C2FError
from c2f_core.geometry.grid import GridCube, index_to_linear, point_to_cell
from c2f_core.recon.extract import (
    ExtractionResult,
    FieldFn,
    FieldSampler,
    cells_with_all_corners,
    keep_largest_component,
    marching_cubes_masked,
)

_CORNER_OFFSETS = np.array([[(b >> 2) & 1, (b >> 1) & 1, b & 1] for b in range(8)], dtype=np.int64)
"""(8, 3) the corners of a unit cell (0 or 1 per axis), also the 8 children of a cell."""

_PARENTS_PER_BATCH = 16_384
"""Parent cells handled at once when deciding which children to refine (bounds temporary memory)."""


def coarse_scores(
    cube: GridCube,
    heatmap: np.ndarray | None = None,
    markers: np.ndarray | torch.Tensor | None = None,
    threshold: float = 0.005,
    coarse_resolution: int = 32,
    marker_value: float = 2.0,
) -> np.ndarray:
    """Per-block score before smoothing: thresholded heatmap plus marker marks (D.2 steps 1-3).

    Heatmap values below ``threshold`` are zeroed; every block containing at least one marker gets
    ``+marker_value`` once (duplicates do not accumulate).

    Convention: block (a, b, c), axis order x, y, z, owns fine samples ``a*sub .. a*sub+sub-1``
    along x (likewise y, z), ``sub = cube.resolution // coarse_resolution``. A marker belongs to
    the block of the fine cell containing it, ``floor((p - origin) / voxel) // sub`` (floor
    indexing, no true division). Markers outside the cube are ignored rather than clipped onto its
    faces, where they would select blocks that hold no surface.

    Args:
        cube: the fine grid; ``cube.resolution`` must be a multiple of ``coarse_resolution``.
        heatmap: (M, M, M) float, hand + object heatmap in [0, 1] laid out like the blocks, or None.
        markers: (K, 3) metres, same frame as ``cube`` (predicted hand vertices, near-surface depth
            points and their mirror copies), or None.
        threshold: heatmap values below this count as 0 (the reference's hm_threshold).
        coarse_resolution: M, blocks per axis.
        marker_value: score added to a block holding a marker.

    Returns:
        (M, M, M) float64 scores (all 0 when there is neither heatmap nor marker).
    """
    m = coarse_resolution
    if m < 1 or cube.resolution % m != 0:
        raise ValueError(f"grid resolution {cube.resolution} is not a multiple of coarse_resolution {m}")
    sub = cube.resolution // m
    score = np.zeros((m, m, m), dtype=np.float64)
    if heatmap is not None:
        heatmap = np.asarray(heatmap, dtype=np.float64)
        if heatmap.shape != (m, m, m):
            raise ValueError(f"heatmap must be ({m}, {m}, {m}), got {heatmap.shape}")
        if not np.all(np.isfinite(heatmap)):
            raise ValueError("heatmap holds NaN or infinite values")
        score = np.where(heatmap >= threshold, heatmap, 0.0)
    if markers is not None:
        if isinstance(markers, torch.Tensor):
            markers = markers.detach().cpu().numpy()
        markers = np.asarray(markers, dtype=np.float64)
        if markers.ndim != 2 or markers.shape[1] != 3:
            raise ValueError(f"markers must be (K, 3) metres, got {markers.shape}")
        markers = markers[np.all(np.isfinite(markers), axis=1)]
        inside = markers[cube.contains(markers)]
        cells = np.minimum(point_to_cell(inside, cube), cube.resolution - 1)
        blocks = np.unique(cells // sub, axis=0)
        score[blocks[:, 0], blocks[:, 1], blocks[:, 2]] += marker_value
    return score


def blocks_from_scores(scores: np.ndarray, threshold: float = 0.005) -> np.ndarray:
    """Selected blocks: 3x3x3 mean of the scores (replicate padding) above ``threshold`` (D.2 step 5).

    A single mark of 2 gives 2/27 to each of its 27 blocks: in effect a one-block dilation.

    Args:
        scores: (M, M, M) from ``coarse_scores`` (or a crop of it).
        threshold: selection threshold on the smoothed score.

    Returns:
        (M, M, M) bool.
    """
    return (
        scipy.ndimage.uniform_filter(np.asarray(scores, dtype=np.float64), size=3, mode="nearest") > threshold
    )


def select_coarse_blocks(
    cube: GridCube,
    heatmap: np.ndarray | None = None,
    markers: np.ndarray | torch.Tensor | None = None,
    threshold: float = 0.005,
    coarse_resolution: int = 32,
    marker_value: float = 2.0,
) -> np.ndarray:
    """Coarse blocks of ``cube`` that may hold the surface (method D.2 steps 1-3 and 5).

    ``blocks_from_scores(coarse_scores(...))``; see those for the steps and the block convention.
    The reference's zoom onto a tighter cube (step 4) is ``zoom_to_scores``.

    Args:
        cube: the fine grid; ``cube.resolution`` must be a multiple of ``coarse_resolution``.
        heatmap: (M, M, M) float in [0, 1] laid out like the blocks, or None.
        markers: (K, 3) metres, same frame as ``cube``, or None.
        threshold: heatmap zeroing and selection threshold (the reference's hm_threshold).
        coarse_resolution: M, blocks per axis.
        marker_value: score added to a block holding a marker.

    Returns:
        (M, M, M) bool, True for selected blocks (all False when there is neither heatmap nor marker).
    """
    scores = coarse_scores(cube, heatmap, markers, threshold, coarse_resolution, marker_value)
    return blocks_from_scores(scores, threshold)


def zoom_to_scores(
    cube: GridCube,
    scores: np.ndarray,
    threshold: float = 0.005,
    min_marginal: float = 2.5,
    resolution: int | None = None,
) -> tuple[GridCube, np.ndarray]:
    """A finer grid over the tight cube of blocks holding the scores, and its selection (D.2 steps 4-5).

    Per axis, the blocks whose marginal score sum (over the other two axes) exceeds
    ``min_marginal`` give a [min, max] range; S = the largest extent, and the range start is moved
    down where needed so S blocks fit in the grid. The crop of S^3 blocks becomes a new grid of
    ``sub' * S`` samples per axis, ``sub' = resolution // S`` (so a tight crop gets a finer voxel),
    spanning the cells of those blocks: from the first sample of the first block to the first
    sample after the last block (a marker in the cell joining two blocks belongs to the lower
    one, so that cell must be covered). Its selection is ``blocks_from_scores`` on the cropped
    scores, so new block j stands for old block start + j.

    Args:
        cube: the grid ``scores`` refers to.
        scores: (M, M, M) from ``coarse_scores``.
        threshold: selection threshold (step 5).
        min_marginal: marginal sum a block slice needs to count for the bounding range (2.5 keeps
            slices with two marks or more, dropping a lone stray marker).
        resolution: samples per axis to aim for (default ``cube.resolution``); the result has
            ``(resolution // S) * S`` <= resolution.

    Returns:
        The new grid and its (S, S, S) bool selection. When no slice passes ``min_marginal``, the
        input grid and ``blocks_from_scores(scores)`` are returned unchanged.
    """
    scores = np.asarray(scores, dtype=np.float64)
    m = scores.shape[0]
    if scores.shape != (m, m, m) or cube.resolution % m:
        raise ValueError(
            f"scores must be (M, M, M) with {cube.resolution} a multiple of M, got {scores.shape}"
        )
    resolution = resolution or cube.resolution
    starts, extents = [], []
    for axis in range(3):
        marginal = scores.sum(axis=tuple(a for a in range(3) if a != axis))
        kept = np.flatnonzero(marginal > min_marginal)
        if len(kept) == 0:
            return cube, blocks_from_scores(scores, threshold)
        starts.append(int(kept[0]))
        extents.append(int(kept[-1] - kept[0] + 1))
    size = max(extents)
    if resolution < size:
        raise ValueError(f"resolution {resolution} is smaller than the {size} blocks to cover")
    start = np.array([min(s, m - size) for s in starts])
    cropped = scores[start[0] : start[0] + size, start[1] : start[1] + size, start[2] : start[2] + size]

    sub = cube.resolution // m
    first_sample = start * sub
    side = size * sub * cube.voxel_size  # may reach one voxel past the old grid: the field is defined there
    new_resolution = (resolution // size) * size
    zoomed = GridCube(
        origin=cube.origin + first_sample * cube.voxel_size,
        voxel_size=side / (new_resolution - 1),
        resolution=new_resolution,
    )
    return zoomed, blocks_from_scores(cropped, threshold)


@dataclass
class SurfaceAwareExtractorConfig:
    """Settings of the surface-aware extractor."""

    octree: bool = True
    """Refine coarse-to-fine inside the selected blocks (False: query every sample in them)."""
    top_stride: int = 8
    """Octree: cell size, in fine voxels, of the first level (a power of two)."""
    lipschitz: float = 1.0
    """Octree: assumed bound on the field's gradient norm. A cell is skipped only when some
    corner value v satisfies |v| > lipschitz * (farthest distance from that corner to the cell),
    which is safe for any field with that bound. Raise it for a learned SDF whose gradient
    exceeds 1; a truncated SDF needs no change (truncation only shrinks |v|)."""
    chunk_size: int = 1 << 18
    """Most points passed to the field function in one call."""
    device: str = "cpu"
    """Torch device the query points are created on (the network's device)."""
    keep_largest_component: bool = False
    """Keep only the largest connected component (by surface area) of each mesh."""

    def setup(self) -> SurfaceAwareExtractor:
        """Build the extractor these settings describe."""
        return SurfaceAwareExtractor(self)


class SurfaceAwareExtractor:
    """Queries the field only inside selected coarse blocks (and, with ``octree``, only near the
    surface), then runs masked marching cubes per channel."""

    def __init__(self, config: SurfaceAwareExtractorConfig | None = None) -> None:
        """Store and check the settings (defaults if None); C2FError names a bad setting."""
        self.config = config or SurfaceAwareExtractorConfig()
        stride = self.config.top_stride
        if stride < 1 or stride & (stride - 1):
            raise C2FError(f"extractor top_stride must be a power of two >= 1, got {stride}")
        if not self.config.lipschitz > 0:
            raise C2FError(f"extractor lipschitz must be > 0, got {self.config.lipschitz}")
        if self.config.chunk_size < 1:
            raise C2FError(f"extractor chunk_size must be >= 1, got {self.config.chunk_size}")

    def extract(
        self,
        field_fn: FieldFn,
        cube: GridCube,
        selection: np.ndarray | None = None,
        names: Sequence[str] = ("sdf",),
    ) -> ExtractionResult:
        """Meshes of the zero level sets of ``field_fn`` within the selected blocks of ``cube``.

        Args:
            field_fn: (M, 3) float32 metres -> (M,) or (M, len(names)) signed distances.
            cube: the fine grid, metres.
            selection: (M, M, M) bool from ``select_coarse_blocks`` (``cube.resolution`` a multiple
                of M), or None for the whole grid.
            names: one name per channel of the field (e.g. ("hand", "object")); all channels share
                the queried points and the selection.

        Returns:
            One mesh per channel, the exact query count, and timings.
        """
        start = time.perf_counter()
        n = cube.resolution
        sampler = FieldSampler(field_fn, cube, names, self.config.chunk_size, self.config.device)

        begin = time.perf_counter()
        in_blocks = _samples_in_blocks(selection, n)
        region = cells_with_all_corners(in_blocks)
        seconds_select = time.perf_counter() - begin

        values = np.full((len(names), n**3), np.nan, dtype=np.float32)
        if not region.any():
            cell_mask = region
            seconds_octree = 0.0
        elif self.config.octree:
            cell_mask, seconds_octree = self._narrow_band(sampler, cube, region, values)
        else:
            ids = np.flatnonzero(in_blocks)
            values[:, ids] = sampler(ids)
            cell_mask = region
            seconds_octree = 0.0

        begin = time.perf_counter()
        meshes = {
            name: marching_cubes_masked(values[c].reshape(n, n, n), cube, cell_mask)
            for c, name in enumerate(names)
        }
        seconds_mc = time.perf_counter() - begin

        begin = time.perf_counter()
        if self.config.keep_largest_component:
            meshes = {name: keep_largest_component(mesh) for name, mesh in meshes.items()}
        seconds_post = time.perf_counter() - begin

        timings = {
            "select": seconds_select,
            "query": sampler.seconds,
            "octree": seconds_octree,
            "marching_cubes": seconds_mc,
            "postprocess": seconds_post,
            "total": time.perf_counter() - start,
        }
        return ExtractionResult(meshes=meshes, queries=sampler.queries, timings=timings)

    def _narrow_band(
        self, sampler: FieldSampler, cube: GridCube, region: np.ndarray, values: np.ndarray
    ) -> tuple[np.ndarray, float]:
        """Coarse-to-fine descent: query cell corners, subdivide only cells that may hold a surface.

        Level by level, cells of stride s (in fine voxels; cells at the far end of the grid are
        shorter) have their 8 corners queried (each sample once over all levels). Each of the
        8 children of stride s/2 is kept unless, for every channel, some parent corner p proves the
        child free of the surface: |v_p| > lipschitz * maxdist(p, child), with maxdist the
        farthest distance from p to the child's box. Children outside ``region`` are dropped.
        Cells of stride 1 that survive, intersected with ``region``, are the marching-cubes mask.

        Args:
            sampler: the wrapped field function.
            cube: the fine grid.
            region: (N-1)^3 bool, the cells that may be polygonised (selected blocks).
            values: (C, N^3) float32, NaN where unqueried; filled in place.

        Returns:
            The (N-1)^3 bool cell mask and the seconds spent outside the field function.
        """
        start = time.perf_counter()
        seconds_field_before = sampler.seconds
        n = cube.resolution
        last = n - 1  # highest sample index; cells start at 0 .. n-2
        region_count = _box_counter(region)
        known = np.zeros(n**3, dtype=bool)

        stride = min(self.config.top_stride, _next_power_of_two(last))
        axis_starts = np.arange(0, last, stride, dtype=np.int64)
        lo = np.stack(np.meshgrid(axis_starts, axis_starts, axis_starts, indexing="ij"), -1).reshape(-1, 3)
        lo = lo[region_count(lo, np.minimum(lo + stride, last)) > 0]
        while len(lo):
            hi = np.minimum(lo + stride, last)
            corner_ids = index_to_linear(np.where(_CORNER_OFFSETS[None] == 1, hi[:, None], lo[:, None]), n)
            new_ids = np.unique(corner_ids[~known[corner_ids]])
            if len(new_ids):
                values[:, new_ids] = sampler(new_ids)
                known[new_ids] = True
            if stride == 1:
                break
            half = stride // 2
            lo = np.concatenate(
                [
                    self._refine(
                        lo[s : s + _PARENTS_PER_BATCH],
                        hi[s : s + _PARENTS_PER_BATCH],
                        corner_ids[s : s + _PARENTS_PER_BATCH],
                        half,
                        values,
                        cube,
                        region_count,
                    )
                    for s in range(0, len(lo), _PARENTS_PER_BATCH)
                ]
            )
            stride = half

        cell_mask = np.zeros_like(region)
        cell_mask[lo[:, 0], lo[:, 1], lo[:, 2]] = True
        cell_mask &= region
        seconds_field = sampler.seconds - seconds_field_before
        return cell_mask, time.perf_counter() - start - seconds_field

    def _refine(
        self,
        lo: np.ndarray,
        hi: np.ndarray,
        corner_ids: np.ndarray,
        half: int,
        values: np.ndarray,
        cube: GridCube,
        region_count: Callable[[np.ndarray, np.ndarray], np.ndarray],
    ) -> np.ndarray:
        """Lowest corners (K, 3) of the children of stride ``half`` that may hold a surface.

        Args:
            lo, hi: (P, 3) sample indices of the parents' lowest and highest corners.
            corner_ids: (P, 8) linear ids of the parents' corners, order ``_CORNER_OFFSETS``.
            half: the children's stride in fine voxels.
            values: (C, N^3) field values (the parents' corners are known).
            cube: the fine grid.
            region_count: counts region cells in index boxes (``_box_counter``).
        """
        last = cube.resolution - 1
        lo32, hi32 = lo.astype(np.int32), hi.astype(np.int32)  # int32 halves the temporaries
        child_lo = lo32[:, None, :] + _CORNER_OFFSETS[None].astype(np.int32) * half  # (P, 8, 3)
        child_hi = np.minimum(child_lo + half, last)
        exists = np.all(child_lo < last, axis=-1)
        corners = np.where(_CORNER_OFFSETS[None] == 1, hi32[:, None], lo32[:, None])  # (P, 8, 3)
        # Farthest distance from each parent corner to each child box, per axis then Euclidean.
        along = np.maximum(
            np.abs(corners[:, None, :, :] - child_lo[:, :, None, :]),
            np.abs(corners[:, None, :, :] - child_hi[:, :, None, :]),
        )  # (P, child 8, corner 8, 3) in voxels
        scale = np.float32(self.config.lipschitz * cube.voxel_size)
        reach = scale * np.sqrt((along * along).sum(-1, dtype=np.int32).astype(np.float32))
        magnitude = np.abs(values[:, corner_ids])  # (C, P, corner 8) float32
        cleared = np.any(magnitude[:, :, None, :] > reach[None], axis=-1)  # (C, P, child 8)
        keep = exists & ~np.all(cleared, axis=0)
        child_lo, child_hi = child_lo[keep], child_hi[keep]
        return child_lo[region_count(child_lo, child_hi) > 0]


def _samples_in_blocks(selection: np.ndarray | None, resolution: int) -> np.ndarray:
    """(N, N, N) bool: fine samples owned by selected blocks (all of them when ``selection`` is None)."""
    if selection is None:
        return np.ones((resolution,) * 3, dtype=bool)
    selection = np.asarray(selection)
    m = selection.shape[0]
    if selection.dtype != bool or selection.ndim != 3 or selection.shape != (m, m, m) or resolution % m:
        raise ValueError(
            f"selection must be a bool (M, M, M) array with {resolution} a multiple of M, "
            f"got {selection.dtype} {selection.shape}"
        )
    sub = resolution // m
    return selection.repeat(sub, 0).repeat(sub, 1).repeat(sub, 2)


def _box_counter(cells: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A function counting True cells in index boxes ``[lo, hi)`` per axis, via a summed-area table.

    Args:
        cells: (A, A, A) bool.

    Returns:
        ``count(lo, hi)`` for (..., 3) int arrays ``lo <= hi <= A``, returning (...,) int64.
    """
    table = np.zeros(tuple(s + 1 for s in cells.shape), dtype=np.int32)
    table[1:, 1:, 1:] = (
        cells.astype(np.int32).cumsum(0, dtype=np.int32).cumsum(1, dtype=np.int32).cumsum(2, dtype=np.int32)
    )

    def count(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        total = np.zeros(lo.shape[:-1], dtype=np.int64)  # int32 table, 3 int64 sums: no overflow
        for offset in _CORNER_OFFSETS:
            pick = np.where(offset == 1, hi, lo)
            sign = -1 if (3 - offset.sum()) % 2 else 1  # inclusion-exclusion over the 8 corners
            total += sign * table[pick[..., 0], pick[..., 1], pick[..., 2]]
        return total

    return count


def _next_power_of_two(value: int) -> int:
    """Smallest power of two >= value (value >= 1)."""
    return 1 << max(0, int(value - 1).bit_length())
