"""Surface-aware extraction (SER, method D.2): query the field only near the surfaces, then mesh.

Three steps narrow down where the field is queried:

1. Block selection (``recon.ser_blocks``): coarse blocks of the grid marked by the network's heatmap
   and marker points (method D.2 steps 1-5).
2. Inside the selected blocks, either every fine sample is queried (plain SER, ``octree=False``),
   or a coarse-to-fine descent queries far fewer:
   - surface following (default, ``recon.ser_surface``): the samples of a coarse lattice of the
     blocks, then, stride by stride, only the corners of cells that the surface crosses, walking
     from cell to cell across sign-changing edges; coarse pieces much smaller than the largest
     are not refined when only the largest piece is kept;
   - a Lipschitz narrow band (``follow_surface=False``): cells are subdivided unless a corner value
     proves them free of the surface; slower, but it meshes every piece dense extraction meshes.
3. Marching cubes only on cells whose 8 corners were all queried (an explicit mask, not a fill
   value), so the edge of the selection gives an open boundary, never a phantom wall.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from c2f_core.errors import C2FError
from c2f_core.geometry.grid import GridCube, index_to_linear
from c2f_core.recon.extract import (
    ExtractionResult,
    FieldFn,
    FieldSampler,
    cells_with_all_corners,
    keep_largest_component,
    marching_cubes_masked,
)
from c2f_core.recon.ser_surface import CORNERS, Lattice, SurfaceWalker, largest_pieces

_PARENTS_PER_BATCH = 16_384
"""Parent cells handled at once when deciding which children to refine (bounds temporary memory)."""


@dataclass
class SurfaceAwareExtractorConfig:
    """Settings of the surface-aware extractor."""

    octree: bool = True
    """Refine coarse-to-fine inside the selected blocks (False: query every sample in them)."""
    top_stride: int = 8
    """Band (``follow_surface=False``): cell size, in fine voxels, of the first level (a power of two)."""
    lipschitz: float = 1.0
    """Octree: assumed bound on the field's gradient norm. The band skips a cell only when some
    corner value v satisfies |v| > lipschitz * (farthest distance from that corner to the cell),
    which is safe for any field with that bound; surface following probes a coarse cell when some
    corner's |v| is below lipschitz * its half-diagonal. Raise it for a learned SDF whose gradient
    exceeds 1; a truncated SDF needs no change (truncation only shrinks |v|)."""
    chunk_size: int = 1 << 18
    """Most points passed to the field function in one call."""
    device: str = "cpu"
    """Torch device the query points are created on (the network's device)."""
    keep_largest_component: bool = False
    """Keep only the largest connected component (by surface area) of each mesh."""
    follow_surface: bool = True
    """Octree: follow the surfaces cell to cell below the coarsest lattice (``recon.ser_surface``)
    instead of refining a Lipschitz band. Pieces that no sample of the coarse lattices sees (small
    or thin ones away from the others) are not meshed: use the band where every piece must be kept."""
    coarse_cell_m: float = 0.03
    """Surface following: the longest cell (metres) of the coarsest lattice, whose every sample in the
    selected blocks is queried (8 voxels at 128^3 over the 40 cm cube). Coarser is cheaper, but a
    piece of surface must show between its samples (or near them, where cells are probed at half
    the stride) to be found."""
    walk_strides: tuple[int, ...] = (4, 1)
    """Surface following: the strides (powers of two, descending, ending at 1) at which the
    surfaces are followed below the coarsest lattice; seeds reach each from the previous one by
    bisecting sign-changing edges."""
    piece_fraction: float = 0.0
    """Surface following: coarse pieces with fewer crossed cells than this fraction of the largest
    piece of their channel are not refined (0 refines every piece). Only with
    ``keep_largest_component``, where the mesh drops such pieces anyway; about 0.25 leaves margin
    for a piece that is larger at the fine level than at the coarse one."""

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
        walks = tuple(self.config.walk_strides)
        if (
            not walks
            or walks[-1] != 1
            or any(w < 1 or w & (w - 1) for w in walks)
            or list(walks) != sorted(set(walks), reverse=True)
        ):
            raise C2FError(
                f"extractor walk_strides must be descending powers of two ending at 1, got {walks}"
            )
        if not self.config.coarse_cell_m > 0:
            raise C2FError(f"extractor coarse_cell_m must be > 0 metres, got {self.config.coarse_cell_m}")
        if not 0.0 <= self.config.piece_fraction <= 1.0:
            raise C2FError(f"extractor piece_fraction must be in [0, 1], got {self.config.piece_fraction}")

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
        cell_masks = [region] * len(names)
        seconds_octree = 0.0
        if not region.any():
            pass
        elif self.config.octree and self.config.follow_surface:
            cell_masks, seconds_octree = self._follow_surfaces(sampler, cube, in_blocks, values)
        elif self.config.octree:
            cell_mask, seconds_octree = self._narrow_band(sampler, cube, region, values)
            cell_masks = [cell_mask] * len(names)
        else:
            ids = np.flatnonzero(in_blocks)
            values[:, ids] = sampler(ids)

        begin = time.perf_counter()
        meshes = {
            name: marching_cubes_masked(values[c].reshape(n, n, n), cube, cell_masks[c])
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

    def _follow_surfaces(
        self, sampler: FieldSampler, cube: GridCube, in_blocks: np.ndarray, values: np.ndarray
    ) -> tuple[list[np.ndarray], float]:
        """Coarse lattice, then surface following stride by stride down to the fine grid, per channel.

        The coarsest lattice has the largest power-of-two stride whose cells are at most
        ``coarse_cell_m`` long; all its samples inside the selected blocks are queried. A channel's
        crossed cells there seed the walk at the next stride of ``walk_strides`` (bisecting their
        sign-changing edges, ``SurfaceWalker.seed_cells``), which follows them to their whole pieces
        (``follow_surface``), and so on down to stride 1. Cells near a surface but far from any
        crossed cell are probed at half the stride first (``probe_isolated``), so a piece that slips
        between the coarse samples is still seeded. With a ``piece_fraction``, only the largest
        pieces of the last coarse level seed the fine grid.

        Args:
            sampler: the wrapped field function.
            cube: the fine grid.
            in_blocks: (N, N, N) bool, samples of the selected blocks.
            values: (C, N^3) float32, NaN where unqueried; filled in place.

        Returns:
            One (N-1)^3 bool cell mask per channel (the crossed cells) and the seconds spent
            outside the field function.
        """
        start = time.perf_counter()
        seconds_field_before = sampler.seconds
        n = in_blocks.shape[0]
        known = np.zeros(n**3, dtype=bool)

        def query(ids: np.ndarray) -> None:
            new = ids[~known[ids]]
            if len(new):
                values[:, new] = sampler(new)
                known[new] = True

        walker = SurfaceWalker(values, query, in_blocks)
        stride = 1
        while 2 * stride * cube.voxel_size <= self.config.coarse_cell_m and 2 * stride < n:
            stride *= 2
        lattice = Lattice(n, stride)
        size = lattice.size
        cells = np.stack(np.unravel_index(np.flatnonzero(walker.usable_cells(lattice)), (size - 1,) * 3), -1)
        query(np.unique(lattice.fine_ids(cells[:, None, :] + CORNERS)))
        strides = [s for s in self.config.walk_strides if s < stride]
        # A cell is near a surface when some corner is closer to it than the cell's half-diagonal.
        reach = self.config.lipschitz * stride * cube.voxel_size * np.sqrt(3.0) / 2.0
        crossed, near = [], []
        for channel in range(values.shape[0]):
            corner_values = walker.corner_values(lattice, cells, channel)
            changes = (corner_values.min(1) <= 0.0) & (corner_values.max(1) >= 0.0)
            crossed.append(np.zeros((size - 1) ** 3, dtype=bool))
            crossed[-1][lattice.cell_ids(cells[changes])] = True
            near.append(cells[~changes & (np.abs(corner_values).min(1) < reach)])
        hidden = walker.probe_isolated(lattice, near, crossed) if strides else None
        level = lattice
        for finer in strides:
            # Pieces are compared at the last coarse level, where their sizes are closest to the mesh's.
            fraction = (
                self.config.piece_fraction if finer == 1 and self.config.keep_largest_component else 0.0
            )
            seeds = walker.seed_cells(level, [largest_pieces(level, c, fraction) for c in crossed], finer)
            if hidden is not None:
                extra = walker.seed_cells(Lattice(n, stride // 2), hidden, finer)
                seeds = [np.concatenate(pair) for pair in zip(seeds, extra, strict=True)]
                hidden = None
            level = Lattice(n, finer)
            crossed = [np.zeros((level.size - 1) ** 3, dtype=bool) for _ in crossed]
            walker.follow_surfaces(level, seeds, crossed)
        masks = [c.reshape((n - 1,) * 3) for c in crossed]
        seconds_field = sampler.seconds - seconds_field_before
        return masks, time.perf_counter() - start - seconds_field

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
            corner_ids = index_to_linear(np.where(CORNERS[None] == 1, hi[:, None], lo[:, None]), n)
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
            corner_ids: (P, 8) linear ids of the parents' corners, order ``CORNERS``.
            half: the children's stride in fine voxels.
            values: (C, N^3) field values (the parents' corners are known).
            cube: the fine grid.
            region_count: counts region cells in index boxes (``_box_counter``).
        """
        last = cube.resolution - 1
        lo32, hi32 = lo.astype(np.int32), hi.astype(np.int32)  # int32 halves the temporaries
        child_lo = lo32[:, None, :] + CORNERS[None].astype(np.int32) * half  # (P, 8, 3)
        child_hi = np.minimum(child_lo + half, last)
        exists = np.all(child_lo < last, axis=-1)
        corners = np.where(CORNERS[None] == 1, hi32[:, None], lo32[:, None])  # (P, 8, 3)
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
        for offset in CORNERS:
            pick = np.where(offset == 1, hi, lo)
            sign = -1 if (3 - offset.sum()) % 2 else 1  # inclusion-exclusion over the 8 corners
            total += sign * table[pick[..., 0], pick[..., 1], pick[..., 2]]
        return total

    return count


def _next_power_of_two(value: int) -> int:
    """Smallest power of two >= value (value >= 1)."""
    return 1 << max(0, int(value - 1).bit_length())
