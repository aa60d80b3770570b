"""Surface following for the surface-aware extractor: query only the corners of cells the surface crosses.

Marching cubes turns a cell into triangles only when the field changes sign along one of its 12
edges, and such an edge is shared by 4 cells, all of which the surface crosses. So from any cell
known to be crossed, the rest of its connected piece of surface is found by walking from cell to
cell across sign-changing edges, querying the corners of each newly reached cell
(``SurfaceWalker.follow_surfaces``, all channels in one field call per step): every queried
corner belongs to a crossed cell, nothing is spent on a band around the surface, and the piece
comes out exactly as dense extraction would mesh it.

The walk needs a start on every piece to be meshed. Coarse-to-fine seeding gives it: every sample
of a coarse lattice (stride s, every s-th sample per axis) is queried; each sign-changing coarse
edge is bisected (midpoint samples queried) down to a finer stride, where the 4 cells around the
half that changes sign seed the walk at that stride (``seed_cells``); the walked cells seed the
next stride the same way, down to stride 1. Coarse cells near a surface (a corner value below
the half-diagonal) that touch no crossed cell are probed at half the stride
(``probe_isolated``), so a piece between the coarse samples is seeded too. A piece that no sample
of these lattices sees (about a voxel thick, or under half a coarse cell across and away from
every coarse sample) is not meshed, which only matters when every piece is kept; pieces that the
coarse levels do see but that are much smaller than the largest can be left out
(``largest_pieces``), since the final mesh keeps only the largest.

Convention: as ``geometry.grid`` (sample (i, j, k), axes x, y, z, linear id ``(i * N + j) * N + k``);
a cell is named by its lowest corner. A lattice of stride s holds the samples whose indices are
multiples of s; its cells are cubes of s voxels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.ndimage

CORNERS = np.array([[(b >> 2) & 1, (b >> 1) & 1, b & 1] for b in range(8)], dtype=np.int64)
"""(8, 3) corner offsets of a unit cell, also the order of a cell's corner values."""

# The 12 edges of a cell: start corner offset and axis; an edge ends at start + unit(axis).
_EDGE_START = np.array(
    [[0, j, k] for j in (0, 1) for k in (0, 1)]
    + [[i, 0, k] for i in (0, 1) for k in (0, 1)]
    + [[i, j, 0] for i in (0, 1) for j in (0, 1)],
    dtype=np.int64,
)
_EDGE_AXIS = np.repeat(np.arange(3), 4)
_EDGE_CORNERS = np.array(
    [
        [int(np.flatnonzero((CORNERS == s).all(1))[0]), int(np.flatnonzero((CORNERS == s + e).all(1))[0])]
        for s, e in zip(_EDGE_START, np.eye(3, dtype=np.int64)[_EDGE_AXIS], strict=True)
    ]
)
"""(12, 2) indices into ``CORNERS`` of each edge's two ends."""
# The 4 cells around an edge starting at p along axis a: p minus {0, 1}^2 in the two other axes.
_AROUND = np.array(
    [[[0, -dj, -dk] for dj in (0, 1) for dk in (0, 1)]]
    + [[[-di, 0, -dk] for di in (0, 1) for dk in (0, 1)]]
    + [[[-di, -dj, 0] for di in (0, 1) for dj in (0, 1)]],
    dtype=np.int64,
)
"""(3, 4, 3) cell offsets around an edge, per edge axis."""

QueryFn = Callable[[np.ndarray], None]
"""Makes sure the samples with these fine linear ids (M,) have values in the store."""


@dataclass
class Lattice:
    """The samples of an N^3 grid at every ``stride``-th index per axis (a coarse view of the grid)."""

    resolution: int
    """N, samples per axis of the fine grid."""
    stride: int
    """Fine voxels between neighbouring lattice samples."""

    @property
    def size(self) -> int:
        """Lattice samples per axis: indices 0, s, 2s, ... up to N - 1."""
        return (self.resolution - 1) // self.stride + 1

    def fine_ids(self, lattice_index: np.ndarray) -> np.ndarray:
        """Fine linear ids (...,) of lattice samples (..., 3)."""
        fine = lattice_index * self.stride
        return (fine[..., 0] * self.resolution + fine[..., 1]) * self.resolution + fine[..., 2]

    def cell_ids(self, cells: np.ndarray) -> np.ndarray:
        """Linear ids (...,) of lattice cells (..., 3) in the (size - 1)^3 cell array."""
        m = self.size - 1
        return (cells[..., 0] * m + cells[..., 1]) * m + cells[..., 2]


class SurfaceWalker:
    """Walks the surfaces of one or more field channels on lattices of decreasing stride.

    Args:
        values: (C, N^3) float32 field values, NaN where not queried; read after every query.
        query: fills ``values`` at the given fine ids (``QueryFn``), counting the queries.
        allowed: (N, N, N) bool, the samples a walked cell may use as corners (the selected blocks).
    """

    def __init__(self, values: np.ndarray, query: QueryFn, allowed: np.ndarray):
        self.values = values
        self.query = query
        self.allowed = allowed
        self._usable: dict[int, np.ndarray] = {}

    def corner_values(self, lattice: Lattice, cells: np.ndarray, channel: int) -> np.ndarray:
        """(K, 8) values of `channel` at the corners of lattice cells (K, 3), order ``CORNERS``."""
        return self.values[channel, lattice.fine_ids(cells[:, None, :] + CORNERS)]

    def usable_cells(self, lattice: Lattice) -> np.ndarray:
        """((size - 1)^3,) bool: the lattice cells whose 8 corners are allowed samples."""
        if lattice.stride not in self._usable:
            samples = self.allowed[:: lattice.stride, :: lattice.stride, :: lattice.stride]
            corners = samples[:-1, :-1, :-1].copy()
            for offset in CORNERS[1:]:
                i, j, k = offset
                corners &= samples[
                    i : i + len(samples) - 1, j : j + len(samples) - 1, k : k + len(samples) - 1
                ]
            self._usable[lattice.stride] = corners.reshape(-1)
        return self._usable[lattice.stride]

    def follow_surfaces(self, lattice: Lattice, seeds: list[np.ndarray], crossed: list[np.ndarray]) -> None:
        """Mark every cell reachable from the seeds across sign-changing edges as crossed, per channel.

        The channels are walked together, so each step queries the new corners of all of them in one
        call of the field.

        Args:
            lattice: the lattice walked.
            seeds: per channel, (K, 3) lattice cells known to be crossed (corners not yet queried).
            crossed: per channel, ((size - 1)^3,) bool, updated in place; cells already marked are
                not revisited.
        """
        frontiers = self._admit(lattice, seeds, crossed)
        while any(len(f) for f in frontiers):
            reached = []
            for channel, frontier in enumerate(frontiers):
                ends = self.corner_values(lattice, frontier, channel)[:, _EDGE_CORNERS]  # (K, 12, 2)
                cell, edge = np.nonzero((ends.min(-1) <= 0.0) & (ends.max(-1) >= 0.0))
                start = frontier[cell] + _EDGE_START[edge]
                reached.append((start[:, None, :] + _AROUND[_EDGE_AXIS[edge]]).reshape(-1, 3))
            frontiers = self._admit(lattice, reached, crossed)

    def _admit(
        self, lattice: Lattice, cells: list[np.ndarray], crossed: list[np.ndarray]
    ) -> list[np.ndarray]:
        """Per channel, the new usable cells among `cells` (K, 3), marked crossed; queries their corners."""
        m = lattice.size - 1
        admitted, corner_ids = [], []
        for channel_cells, channel_crossed in zip(cells, crossed, strict=True):
            channel_cells = channel_cells[np.all((channel_cells >= 0) & (channel_cells < m), axis=1)]
            ids = np.unique(lattice.cell_ids(channel_cells))
            ids = ids[~channel_crossed[ids] & self.usable_cells(lattice)[ids]]
            channel_crossed[ids] = True
            new = np.stack(np.unravel_index(ids, (m, m, m)), axis=-1)
            admitted.append(new)
            corner_ids.append(lattice.fine_ids(new[:, None, :] + CORNERS).reshape(-1))
        ids = np.concatenate(corner_ids)
        if len(ids):
            self.query(np.unique(ids))
        return admitted

    def probe_isolated(
        self, lattice: Lattice, near: list[np.ndarray], crossed: list[np.ndarray]
    ) -> list[np.ndarray]:
        """Per channel, crossed cells at half the stride inside near cells that touch no crossed cell.

        A piece of surface smaller than a coarse cell can lie between its corners; the cells near a
        surface (some corner value below the half-diagonal) next to a crossed cell are reached by
        the walk anyway, the others have their half-stride samples queried here.

        Args:
            lattice: the coarse lattice.
            near: per channel, (K, 3) its cells near that channel's surface, not crossed.
            crossed: per channel, ((size - 1)^3,) bool, the crossed cells.

        Returns:
            Per channel, (S, 3) crossed cells of ``Lattice(N, lattice.stride // 2)``.
        """
        m = lattice.size - 1
        half = Lattice(lattice.resolution, lattice.stride // 2)
        probed = []
        for channel_near, channel_crossed in zip(near, crossed, strict=True):
            touching = scipy.ndimage.binary_dilation(
                channel_crossed.reshape(m, m, m), structure=np.ones((3, 3, 3), bool)
            )
            isolated = channel_near[~touching[channel_near[:, 0], channel_near[:, 1], channel_near[:, 2]]]
            children = (isolated[:, None, :] * 2 + CORNERS).reshape(-1, 3)
            children = children[np.all(children < half.size - 1, axis=1)]
            probed.append(children[self.usable_cells(half)[half.cell_ids(children)]])
        ids = np.concatenate([half.fine_ids(c[:, None, :] + CORNERS).reshape(-1) for c in probed])
        if len(ids):
            self.query(np.unique(ids))
        found = []
        for channel, children in enumerate(probed):
            values = self.corner_values(half, children, channel)
            found.append(
                children[(values.min(1, initial=np.inf) <= 0.0) & (values.max(1, initial=-np.inf) >= 0.0)]
            )
        return found

    def seed_cells(self, coarse: Lattice, cells: list[np.ndarray], stride: int) -> list[np.ndarray]:
        """Per channel, cells of a finer lattice that the surface crosses, found by bisecting coarse edges.

        Every sign-changing edge of the coarse `cells` is halved (its midpoint sample queried, all
        channels in one call) and the half that changes sign kept, until it is `stride` long; the 4
        cells around it on the lattice of that stride are crossed.

        Args:
            coarse: the lattice of `cells`.
            cells: per channel, (K, 3) crossed cells of `coarse`.
            stride: the finer lattice's stride (``coarse.stride`` divided by a power of two).

        Returns:
            Per channel, (S, 3) cells of ``Lattice(N, stride)`` (duplicates possible).
        """
        unit = Lattice(coarse.resolution, 1)
        begins, steps, axes = [], [], []
        for channel, channel_cells in enumerate(cells):
            ends = self.corner_values(coarse, channel_cells, channel)[:, _EDGE_CORNERS]
            cell, edge = np.nonzero((ends.min(-1) <= 0.0) & (ends.max(-1) >= 0.0))
            axes.append(_EDGE_AXIS[edge])
            steps.append(np.eye(3, dtype=np.int64)[_EDGE_AXIS[edge]] * coarse.stride)  # fine voxels
            begins.append((channel_cells[cell] + _EDGE_START[edge]) * coarse.stride)  # fine indices
        length = coarse.stride
        while length > stride:
            length //= 2
            steps = [step // 2 for step in steps]
            self.query(
                np.unique(np.concatenate([unit.fine_ids(b + s) for b, s in zip(begins, steps, strict=True)]))
            )
            for channel, (begin, step) in enumerate(zip(begins, steps, strict=True)):
                a = self.values[channel, unit.fine_ids(begin)]
                m = self.values[channel, unit.fine_ids(begin + step)]
                first_half = (np.minimum(a, m) <= 0.0) & (np.maximum(a, m) >= 0.0)
                begins[channel] = np.where(first_half[:, None], begin, begin + step)
        return [
            (begin[:, None, :] // stride + _AROUND[axis]).reshape(-1, 3)
            for begin, axis in zip(begins, axes, strict=True)
        ]


def largest_pieces(lattice: Lattice, crossed: np.ndarray, fraction: float) -> np.ndarray:
    """Crossed cells (K, 3) of the connected pieces holding at least `fraction` of the largest's cells.

    Args:
        lattice: the lattice of `crossed`.
        crossed: ((size - 1)^3,) bool.
        fraction: in [0, 1]; 0 keeps every piece.
    """
    m = lattice.size - 1
    grid = crossed.reshape(m, m, m)
    if fraction <= 0.0 or not grid.any():
        return np.argwhere(grid)
    labels, count = scipy.ndimage.label(grid, structure=np.ones((3, 3, 3), dtype=bool))
    sizes = np.bincount(labels.reshape(-1), minlength=count + 1)
    sizes[0] = 0
    keep = sizes >= fraction * sizes.max()
    keep[0] = False
    return np.argwhere(keep[labels])
