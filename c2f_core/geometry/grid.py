"""A regular cubic sampling grid in metres, and conversions between its indices and points.

Convention (every function here):
    - Axis order x, y, z. A sample index is ``(i, j, k)`` along (x, y, z); arrays of samples are
      laid out ``[i, j, k]`` (x slowest, z fastest), which is also what marching cubes receives.
    - Sample ``(i, j, k)`` sits at ``origin + (i, j, k) * voxel_size``: the origin is the *corner
      sample*, not a cell centre, so the N samples per axis span ``[origin, origin + (N - 1) * voxel]``.
    - Cell ``(i, j, k)`` is the cube between samples ``(i, j, k)`` and ``(i + 1, j + 1, k + 1)``;
      there are N - 1 cells per axis.
    - Linear id ``= (i * N + j) * N + k``. The inverse uses floor division (``//``), never true
      division: the reference code's ``/`` on int64 tensors sheared the grid (method D.12).

Every function takes numpy arrays or torch tensors and returns the same kind, on the same device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from c2f_core.geometry.tolerances import GRID_CELL_EPS

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


@dataclass(frozen=True)
class GridCube:
    """A cubic grid of ``resolution``^3 samples spaced ``voxel_size`` metres apart.

    Convention: see the module docstring (origin = corner sample, axis order x, y, z).
    """

    origin: np.ndarray
    """(3,) float64 metres: the position of sample (0, 0, 0)."""
    voxel_size: float
    """Distance between neighbouring samples, metres."""
    resolution: int
    """Number of samples per axis (N); the grid holds N^3 samples and (N - 1)^3 cells."""

    def __post_init__(self) -> None:
        """Check the values and store the origin as a read-only float64 (3,) array."""
        origin = np.array(self.origin, dtype=np.float64).reshape(-1)
        if origin.shape != (3,) or not np.all(np.isfinite(origin)):
            raise ValueError(f"GridCube origin must be 3 finite numbers, got {self.origin!r}")
        if not (np.isfinite(self.voxel_size) and self.voxel_size > 0):
            raise ValueError(f"GridCube voxel_size must be > 0 metres, got {self.voxel_size!r}")
        if int(self.resolution) != self.resolution or self.resolution < 2:
            raise ValueError(f"GridCube resolution must be an integer >= 2, got {self.resolution!r}")
        origin.setflags(write=False)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "voxel_size", float(self.voxel_size))
        object.__setattr__(self, "resolution", int(self.resolution))

    @classmethod
    def from_center(cls, center: np.ndarray, side: float, resolution: int) -> GridCube:
        """Build the grid whose N samples per axis span ``side`` metres centred on ``center``.

        Args:
            center: (3,) metres, the cube's centre.
            side: edge length in metres between the first and the last sample.
            resolution: samples per axis N; the voxel is ``side / (N - 1)``.
        """
        center = np.asarray(center, dtype=np.float64).reshape(3)
        return cls(origin=center - side / 2.0, voxel_size=side / (resolution - 1), resolution=resolution)

    @property
    def side(self) -> float:
        """Edge length in metres from the first to the last sample, ``(N - 1) * voxel``."""
        return (self.resolution - 1) * self.voxel_size

    @property
    def num_samples(self) -> int:
        """Total number of samples, N^3."""
        return self.resolution**3

    @property
    def max_corner(self) -> np.ndarray:
        """(3,) metres: the position of the last sample (N-1, N-1, N-1)."""
        return self.origin + self.side

    def contains(self, points: ArrayT) -> ArrayT:
        """Whether each point lies in the closed box spanned by the samples.

        Args:
            points: (..., 3) metres.

        Returns:
            (...,) bool.
        """
        continuous = point_to_continuous_index(points, self)
        slack = GRID_CELL_EPS
        inside = (continuous >= -slack) & (continuous <= self.resolution - 1 + slack)
        return inside.all(-1) if isinstance(inside, torch.Tensor) else np.all(inside, axis=-1)


def index_to_linear(index: ArrayT, resolution: int) -> ArrayT:
    """Linear id ``(i * N + j) * N + k`` of integer sample (or cell) indices.

    Args:
        index: (..., 3) integer (i, j, k).
        resolution: N, the number of entries per axis of the array being indexed.

    Returns:
        (...,) int64 linear ids.
    """
    _check_last_dim(index, "index")
    i, j, k = index[..., 0], index[..., 1], index[..., 2]
    linear = (i * resolution + j) * resolution + k
    return linear.long() if isinstance(linear, torch.Tensor) else linear.astype(np.int64)


def linear_to_index(linear: ArrayT, resolution: int) -> ArrayT:
    """Inverse of ``index_to_linear``, by floor division.

    Args:
        linear: (...,) integer linear ids in ``[0, N^3)``.
        resolution: N.

    Returns:
        (..., 3) int64 (i, j, k).
    """
    n = resolution
    i = linear // (n * n)
    j = (linear // n) % n
    k = linear % n
    if isinstance(linear, torch.Tensor):
        return torch.stack([i, j, k], dim=-1).long()
    return np.stack([i, j, k], axis=-1).astype(np.int64)


def index_to_point(index: ArrayT, cube: GridCube) -> ArrayT:
    """Position in metres of sample indices (integer or continuous).

    Args:
        index: (..., 3) (i, j, k) sample indices.
        cube: the grid.

    Returns:
        (..., 3) metres: ``origin + index * voxel_size``; float32 for torch input (float64 if the
        input is float64), float64 for numpy input.
    """
    _check_last_dim(index, "index")
    if isinstance(index, torch.Tensor):
        dtype = index.dtype if index.dtype == torch.float64 else torch.float32
        origin = torch.tensor(cube.origin.tolist(), dtype=torch.float64, device=index.device)
        return (origin + index.to(torch.float64) * cube.voxel_size).to(dtype)
    return cube.origin + np.asarray(index, dtype=np.float64) * cube.voxel_size


def point_to_continuous_index(points: ArrayT, cube: GridCube) -> ArrayT:
    """Continuous sample coordinates ``(points - origin) / voxel_size`` (float64).

    Args:
        points: (..., 3) metres.
        cube: the grid.

    Returns:
        (..., 3) float64; sample (i, j, k) maps to exactly (i, j, k).
    """
    _check_last_dim(points, "points")
    if isinstance(points, torch.Tensor):
        origin = torch.tensor(cube.origin.tolist(), dtype=torch.float64, device=points.device)
        return (points.to(torch.float64) - origin) / cube.voxel_size
    return (np.asarray(points, dtype=np.float64) - cube.origin) / cube.voxel_size


def point_to_cell(points: ArrayT, cube: GridCube) -> ArrayT:
    """Index of the cell containing each point, by floor of the continuous index.

    A point on a sample plane belongs to the cell above it (the floor); points within
    ``GRID_CELL_EPS`` voxels below a plane are snapped onto it, so ``point_to_cell(index_to_point(i))
    == i`` despite rounding. No clipping: in-cube points give 0..N-2, a point on the far face gives
    N - 1, outside points give values outside that range (check with ``GridCube.contains``).

    Args:
        points: (..., 3) metres.
        cube: the grid.

    Returns:
        (..., 3) int64 cell indices.
    """
    continuous = point_to_continuous_index(points, cube) + GRID_CELL_EPS
    if isinstance(continuous, torch.Tensor):
        return torch.floor(continuous).long()
    return np.floor(continuous).astype(np.int64)


def _check_last_dim(array: np.ndarray | torch.Tensor, name: str) -> None:
    """Raise ValueError unless ``array`` has shape (..., 3)."""
    if array.ndim < 1 or array.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., 3), got {tuple(array.shape)}")
