"""Block selection of surface-aware extraction (method D.2 steps 1-5): where the grid may hold a surface.

A coarse M^3 (32^3) selection of the grid built from the network's heatmap and marker points.
Coarse block (a, b, c) owns the fine samples ``[a*sub, (a+1)*sub) x [b*sub, ...) x [c*sub, ...)``
with ``sub = N / M``. ``select_coarse_blocks`` is steps 1-3 and 5; ``zoom_to_scores`` moves to a
finer grid over the tight cube of marked blocks first (step 4), as the reference does:
``zoom_to_scores(cube, coarse_scores(cube, heatmap, markers))``.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
import torch

from c2f_core.geometry.grid import GridCube, point_to_cell


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
