"""Pieces shared by the mesh extractors: result types, chunked field queries, masked marching cubes.

An extractor turns a *field function* into meshes. The field function stands for the network:

    field_fn(points: torch.Tensor (M, 3) float32 metres) -> torch.Tensor (M,) or (M, C)

It returns the signed distance (negative inside, any unit whose zero level is the surface) of each
point for one surface, or for C surfaces at once (e.g. hand and object heads fed by the same
per-query features). Every extractor evaluates all C channels at every point it queries, so one set
of queried points feeds both heads, and ``queries`` counts points, not points x heads.

The concrete extractors live in ``recon/dense.py`` (every grid sample) and ``recon/ser.py``
(surface-aware selection plus a coarse-to-fine narrow band).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
import torch
from skimage.measure import marching_cubes

from c2f_core.geometry.grid import GridCube, index_to_point, linear_to_index

FieldFn = Callable[[torch.Tensor], torch.Tensor]
"""(M, 3) float32 metres -> (M,) or (M, C) signed distances; see the module docstring."""


def separate_fields(sdf: torch.Tensor, object_priority_m: float | torch.Tensor = 0.0) -> torch.Tensor:
    """Hand and object SDFs (M, 2) made exclusive: where both say inside, the deeper one keeps the point.

    With half the gap g = (hand - object) / 2, hand' = max(hand, g) and object' = max(object, -g):
    hand' < 0 exactly where hand < 0 and hand < object, and the same for the object, so the two
    surfaces meet on the set where both SDFs are equal instead of passing through each other. Away
    from the other surface (its SDF >= 0 near this one's zero level) each zero level is unchanged.

    With `object_priority_m` = d > 0, a point inside both goes to the object unless the hand is
    deeper by more than d: hand' = max(hand, min(-object, (hand - object + d) / 2)) and
    object' = max(object, min(-hand, (object - hand - d) / 2)). Only points inside both change
    owner, so neither surface moves away from the other where they do not overlap.
    """
    hand, obj = sdf[..., 0], sdf[..., 1]
    if not torch.is_tensor(object_priority_m) and object_priority_m <= 0:
        gap = 0.5 * (hand - obj)
        return torch.stack([torch.maximum(hand, gap), torch.maximum(obj, -gap)], dim=-1)
    gap = 0.5 * (hand - obj + object_priority_m)
    return torch.stack(
        [torch.maximum(hand, torch.minimum(-obj, gap)), torch.maximum(obj, torch.minimum(-hand, -gap))],
        dim=-1,
    )


@dataclass
class Mesh:
    """A triangle mesh in metres."""

    vertices: np.ndarray
    """(V, 3) float32 metres, same frame as the grid the mesh came from."""
    faces: np.ndarray
    """(F, 3) int64 vertex indices, counter-clockwise seen from outside (normals point outwards)."""

    @property
    def is_empty(self) -> bool:
        """True when the mesh has no faces."""
        return len(self.faces) == 0

    @classmethod
    def empty(cls) -> Mesh:
        """A mesh with no vertices and no faces."""
        return cls(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64))


@dataclass
class ExtractionResult:
    """The meshes an extractor produced, with its query count and timings."""

    meshes: dict[str, Mesh]
    """One mesh per field channel, keyed by channel name (e.g. "hand", "object")."""
    queries: int
    """Exact number of points at which the field function was evaluated (all channels at once)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage: "select", "query", "octree", "marching_cubes", "postprocess", "total"."""

    @property
    def vertices(self) -> np.ndarray:
        """(V, 3) float32 metres of the only mesh; ValueError if there are several channels."""
        return self._single().vertices

    @property
    def faces(self) -> np.ndarray:
        """(F, 3) int64 faces of the only mesh; ValueError if there are several channels."""
        return self._single().faces

    def _single(self) -> Mesh:
        """The only mesh of a single-channel result."""
        if len(self.meshes) != 1:
            raise ValueError(
                f"result holds {len(self.meshes)} meshes {list(self.meshes)}; index .meshes by name"
            )
        return next(iter(self.meshes.values()))


class FieldSampler:
    """Evaluates a field function on grid samples in bounded chunks, without gradients.

    Keeps the exact query count and the seconds spent inside the field function.
    """

    def __init__(
        self, field_fn: FieldFn, cube: GridCube, names: Sequence[str], chunk_size: int, device: str
    ) -> None:
        """Wrap ``field_fn`` for the grid ``cube``.

        Args:
            field_fn: the field function (module docstring).
            cube: the grid whose samples are queried.
            names: one name per channel the field returns.
            chunk_size: most points passed to ``field_fn`` in one call.
            device: torch device the query points are created on.
        """
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if len(names) == 0 or len(set(names)) != len(names):
            raise ValueError(f"channel names must be non-empty and distinct, got {list(names)}")
        self.field_fn = field_fn
        self.cube = cube
        self.names = tuple(names)
        self.chunk_size = chunk_size
        self.device = torch.device(device)
        self.queries = 0
        self.seconds = 0.0

    def __call__(self, linear_ids: np.ndarray) -> np.ndarray:
        """Field values at the grid samples with these linear ids.

        Args:
            linear_ids: (M,) int64 linear sample ids of ``cube``.

        Returns:
            (C, M) float32 values, C = number of channel names.
        """
        channels = len(self.names)
        values = np.empty((channels, len(linear_ids)), dtype=np.float32)
        for start in range(0, len(linear_ids), self.chunk_size):
            ids = torch.from_numpy(np.ascontiguousarray(linear_ids[start : start + self.chunk_size]))
            points = index_to_point(linear_to_index(ids.to(self.device), self.cube.resolution), self.cube)
            begin = time.perf_counter()
            with torch.no_grad():
                out = self.field_fn(points)
            out = out.detach().to("cpu", torch.float32)
            self.seconds += time.perf_counter() - begin
            self.queries += len(ids)
            values[:, start : start + len(ids)] = self._check_output(out, len(ids)).T.numpy()
        return values

    def _check_output(self, out: torch.Tensor, count: int) -> torch.Tensor:
        """The field output as (M, C), or ValueError naming the shape or non-finite values."""
        channels = len(self.names)
        if out.ndim == 1 and channels == 1:
            out = out[:, None]
        if out.shape != (count, channels):
            raise ValueError(
                f"field function returned shape {tuple(out.shape)} for {count} points; expected "
                f"({count}, {channels}) for channels {list(self.names)}"
                + (f" or ({count},)" if channels == 1 else "")
            )
        if not torch.isfinite(out).all():
            raise ValueError("field function returned NaN or infinite values")
        return out


def marching_cubes_masked(volume: np.ndarray, cube: GridCube, cell_mask: np.ndarray | None = None) -> Mesh:
    """Zero level set of a sampled field as a mesh in metres, optionally on a subset of cells.

    Args:
        volume: (N, N, N) float field values at the samples of ``cube`` (negative inside). Samples
            that were never queried hold NaN; every corner of a masked cell must be finite.
        cube: the grid; vertices come out at ``origin + continuous_index * voxel_size``.
        cell_mask: (N-1, N-1, N-1) bool, True for cells (indexed by their lowest corner) whose 8
            corners all hold real values. Only these cells produce triangles, so unqueried
            regions give an open boundary, never a phantom wall. None means every cell.

    Returns:
        The mesh (empty if no masked cell contains the surface).
    """
    n = cube.resolution
    if volume.shape != (n, n, n):
        raise ValueError(f"volume must be ({n}, {n}, {n}) for this grid, got {volume.shape}")
    finite = np.isfinite(volume)
    if cell_mask is None and not finite.all():
        raise ValueError("volume holds NaN or infinite samples; pass a cell_mask that excludes them")
    skimage_mask = None
    if cell_mask is not None:
        if cell_mask.shape != (n - 1,) * 3:
            raise ValueError(f"cell_mask must be ({n - 1},)*3, got {cell_mask.shape}")
        if not cell_mask.any():
            return Mesh.empty()
        if (cell_mask & ~cells_with_all_corners(finite)).any():
            raise ValueError("cell_mask includes cells with an unqueried (NaN) corner")
        # Unqueried samples only border masked-out cells; skimage needs finite numbers there, and
        # the value chosen cannot reach a triangle because those cells are never polygonised.
        volume = np.where(finite, volume, np.float32(1.0))
        # skimage's mask has the volume's shape and flags one corner of each cell; which corner
        # (lowest or highest) is an implementation detail, probed once instead of assumed.
        offset = _skimage_mask_corner_offset()
        skimage_mask = np.zeros((n, n, n), dtype=bool)
        skimage_mask[offset : offset + n - 1, offset : offset + n - 1, offset : offset + n - 1] = cell_mask
    if not volume.min() <= 0.0 <= volume.max():  # skimage refuses a level outside the data range
        return Mesh.empty()
    try:
        verts, faces, _, _ = marching_cubes(
            np.ascontiguousarray(volume, dtype=np.float32), level=0.0, mask=skimage_mask
        )
    except RuntimeError:  # skimage raises when no cell contains the level
        return Mesh.empty()
    # Lewiner's vertices are continuous sample indices (i, j, k): sample i is at origin + i * voxel.
    vertices = (cube.origin + verts.astype(np.float64) * cube.voxel_size).astype(np.float32)
    return Mesh(vertices, faces.astype(np.int64))


@functools.cache
def _skimage_mask_corner_offset() -> int:
    """0 if skimage's mask flags a cell by its lowest corner sample, 1 if by its highest."""
    probe = np.ones((3, 3, 3), dtype=np.float32)
    probe[0, 0, 0] = -1.0  # only cell (0, 0, 0) contains the level
    for offset in (0, 1):
        mask = np.zeros((3, 3, 3), dtype=bool)
        mask[offset, offset, offset] = True
        try:
            marching_cubes(probe, level=0.0, mask=mask)
            return offset
        except RuntimeError:
            continue
    raise RuntimeError("cannot determine how skimage.measure.marching_cubes interprets its mask")


def cells_with_all_corners(known: np.ndarray) -> np.ndarray:
    """Cells whose 8 corner samples are all known.

    Args:
        known: (N, N, N) bool per sample.

    Returns:
        (N-1, N-1, N-1) bool per cell (indexed by its lowest corner).
    """
    cells = known[:-1, :-1, :-1].copy()
    for di in (0, 1):
        for dj in (0, 1):
            for dk in (0, 1):
                if di or dj or dk:
                    cells &= known[
                        di : di + known.shape[0] - 1,
                        dj : dj + known.shape[1] - 1,
                        dk : dk + known.shape[2] - 1,
                    ]
    return cells


def keep_largest_component(mesh: Mesh) -> Mesh:
    """The connected component of ``mesh`` with the largest surface area (method D.2 step 10).

    Vertices at identical positions are merged first, so marching cubes' duplicate vertices do not
    split a component. Unused vertices are dropped.

    Args:
        mesh: any triangle mesh.

    Returns:
        A new mesh holding only the largest component (the input itself if it is empty).
    """
    if mesh.is_empty:
        return mesh
    unique_vertices, inverse = np.unique(mesh.vertices, axis=0, return_inverse=True)
    faces = inverse.reshape(-1)[mesh.faces]
    num_vertices = len(unique_vertices)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    graph = scipy.sparse.coo_matrix(
        (np.ones(len(edges), dtype=np.int8), (edges[:, 0], edges[:, 1])), shape=(num_vertices, num_vertices)
    )
    _, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
    face_labels = labels[faces[:, 0]]
    corners = unique_vertices[faces].astype(np.float64)
    areas = 0.5 * np.linalg.norm(
        np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1
    )
    largest = np.argmax(np.bincount(face_labels, weights=areas))
    kept = faces[face_labels == largest]
    used, remapped = np.unique(kept, return_inverse=True)
    return Mesh(unique_vertices[used].astype(np.float32), remapped.reshape(-1, 3).astype(np.int64))
