"""A truncated signed-distance volume in the object's own frame, fused from depth maps and meshes.

Two kinds of observation are averaged (weighted running mean) into each sample:

- a depth map seen from a known object pose: a sample that projects onto a pixel labelled object
  gets the projective distance (observed depth - its depth), truncated; a sample in front of any
  other observed surface (hand, background) by more than the truncation is free space (+trunc);
  samples behind a non-object surface, or on pixels without depth, learn nothing;
- a per-frame mesh of the object (the network's surface) moved into the object frame: its signed
  distance, truncated, with a lower weight. Depth wins where it saw the object; the meshes fill
  the side no frame saw.

Samples never observed count as outside. The surface is the zero level, by marching cubes.

Convention: metres; the grid (`GridCube`) lies in the object frame; sdf negative inside; poses
`T_obj_to_cam` (4, 4) map object points to the OpenCV camera frame (see `take_fit.rigid`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt, map_coordinates

from c2f_core.geometry.grid import GridCube, index_to_point
from c2f_core.geometry.mesh_sdf import MeshSDF
from c2f_core.recon.extract import Mesh, keep_largest_component, marching_cubes_masked
from c2f_core.take_fit.evidence import LABEL_OBJECT
from c2f_core.take_fit.rigid import transform_points


@dataclass
class TsdfConfig:
    """Resolution, truncation and weights of the fused volume (metres)."""

    voxel_m: float = 0.002
    """Sample spacing (made coarser when the object needs more than `max_resolution` samples per axis)."""
    max_resolution: int = 128
    """Largest number of samples per axis."""
    padding_m: float = 0.015
    """Space added around the object's box on every side."""
    truncation_m: float = 0.008
    """Distances are clamped to +-this."""
    depth_weight: float = 1.0
    """Weight of one depth observation."""
    mesh_weight: float = 0.15
    """Weight of one per-frame mesh."""
    hand_weight: float = 0.15
    """Weight of one per-frame hand mesh, whose inside is marked as outside the object."""


class TsdfVolume:
    """A cubic TSDF grid in the object frame with per-sample weights."""

    def __init__(self, cube: GridCube, truncation_m: float):
        """An empty volume over `cube` (every sample at +truncation, weight 0)."""
        self.cube = cube
        self.truncation_m = float(truncation_m)
        shape = (cube.resolution,) * 3
        self.sdf = np.full(shape, self.truncation_m, np.float32)
        self.weight = np.zeros(shape, np.float32)
        n = cube.resolution
        index = np.stack(np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij"), -1)
        self._points = index_to_point(index.reshape(-1, 3), cube)

    @classmethod
    def around(cls, points_obj: np.ndarray, config: TsdfConfig) -> TsdfVolume:
        """A volume covering the box of `points_obj` (N, 3) plus padding, at the configured spacing."""
        points_obj = np.asarray(points_obj, np.float64).reshape(-1, 3)
        low = points_obj.min(0) - config.padding_m
        high = points_obj.max(0) + config.padding_m
        side = float((high - low).max())
        voxel = max(config.voxel_m, side / (config.max_resolution - 1))
        resolution = int(np.ceil(side / voxel)) + 1
        cube = GridCube.from_center((low + high) / 2, (resolution - 1) * voxel, resolution)
        return cls(cube, config.truncation_m)

    def _accumulate(self, flat_index: np.ndarray, values: np.ndarray, weight: float) -> None:
        if weight <= 0:
            return
        sdf, total = self.sdf.reshape(-1), self.weight.reshape(-1)
        updated = total[flat_index] + weight
        sdf[flat_index] = (sdf[flat_index] * total[flat_index] + weight * values) / updated
        total[flat_index] = updated

    def integrate_depth(
        self, depth_m: np.ndarray, labels: np.ndarray, K: np.ndarray, T_obj_to_cam: np.ndarray, weight: float
    ) -> None:
        """Fuse one depth map (h, w) with its pixel labels (h, w) and intrinsics K (3, 3) seen from a pose (4, 4)."""
        camera = transform_points(T_obj_to_cam, self._points)
        z = camera[:, 2]
        ahead = z > 1e-3
        u = np.full(len(z), -1, np.int64)
        v = np.full(len(z), -1, np.int64)
        u[ahead] = np.round(K[0, 0] * camera[ahead, 0] / z[ahead] + K[0, 2]).astype(np.int64)
        v[ahead] = np.round(K[1, 1] * camera[ahead, 1] / z[ahead] + K[1, 2]).astype(np.int64)
        height, width = depth_m.shape
        inside = ahead & (u >= 0) & (u < width) & (v >= 0) & (v < height)
        index = np.nonzero(inside)[0]
        observed = depth_m[v[index], u[index]]
        is_object = labels[v[index], u[index]] == LABEL_OBJECT
        distance = observed - z[index]
        trunc = self.truncation_m
        surface = (observed > 0) & is_object & (distance > -trunc)
        free = (observed > 0) & ~is_object & (distance > trunc)
        self._accumulate(index[surface], np.minimum(distance[surface], trunc), weight)
        self._accumulate(index[free], np.full(int(free.sum()), trunc), weight)

    def integrate_mesh(
        self, vertices_obj: np.ndarray, faces: np.ndarray, weight: float, offset_m: float = 0.0
    ) -> None:
        """Fuse a closed mesh given in the object frame (vertices (V, 3), faces (F, 3)) as its truncated SDF.

        The distance is that of the voxelised inside (winding number > 1/2) to the nearest sample
        of the other side, less half a voxel (accurate to about half a voxel): an exact
        point-to-triangle distance at every sample costs ~20x more, for meshes that are rougher
        than that anyway.
        """
        if len(faces) == 0:
            return
        shape = self.sdf.shape
        inside = MeshSDF(vertices_obj, faces).contains(self._points).reshape(shape)
        if not inside.any():
            return
        to_inside = distance_transform_edt(~inside)
        to_outside = distance_transform_edt(inside)
        samples = np.where(inside, 0.5 - to_outside, to_inside - 0.5) * self.cube.voxel_size + offset_m
        trunc = self.truncation_m
        self._accumulate(np.arange(samples.size), np.clip(samples.reshape(-1), -trunc, trunc), weight)

    def observed_sdf(self) -> np.ndarray:
        """The SDF samples (R, R, R), indexed [x, y, z], with the unobserved ones at +truncation (outside)."""
        return np.where(self.weight > 0, self.sdf, self.truncation_m)

    def mesh(self, keep_largest: bool = True) -> Mesh:
        """The fused surface (zero level), object frame; unobserved samples count as outside."""
        mesh = marching_cubes_masked(self.observed_sdf().astype(np.float32), self.cube)
        return keep_largest_component(mesh) if keep_largest else mesh

    def integrate_free(self, vertices_obj: np.ndarray, faces: np.ndarray, weight: float) -> None:
        """Mark the samples inside a closed mesh in the object frame (another body: the hand) as outside."""
        if len(faces) == 0:
            return
        inside = np.nonzero(MeshSDF(vertices_obj, faces).contains(self._points))[0]
        self._accumulate(inside, np.full(len(inside), self.truncation_m), weight)

    def sample(self, points_obj: np.ndarray) -> np.ndarray:
        """Trilinear SDF (N,) at object-frame points (N, 3); +truncation outside the grid and where unobserved."""
        coords = (np.asarray(points_obj, np.float64).reshape(-1, 3) - self.cube.origin) / self.cube.voxel_size
        return map_coordinates(
            self.observed_sdf(), coords.T, order=1, mode="constant", cval=self.truncation_m
        )
