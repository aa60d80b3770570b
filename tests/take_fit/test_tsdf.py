"""The object-frame TSDF: fused from depth maps and meshes, meshed at its zero level."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from c2f_core.take_fit.evidence import LABEL_HAND, LABEL_OBJECT
from c2f_core.take_fit.rigid import make_pose
from c2f_core.take_fit.tsdf import TsdfConfig, TsdfVolume

RADIUS = 0.04
K = np.array([[200.0, 0.0, 40.0], [0.0, 200.0, 40.0], [0.0, 0.0, 1.0]])


def _sphere_depth(distance: float) -> tuple[np.ndarray, np.ndarray]:
    """An 80 x 80 depth map of a sphere of RADIUS at `distance` on the optical axis, and its labels."""
    v, u = np.mgrid[0:80, 0:80].astype(np.float64)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    # |t r - c|^2 = R^2 with c = (0, 0, distance): t = d r_z - sqrt((d r_z)^2 - d^2 + R^2).
    b = distance * rays[..., 2]
    disc = b**2 - distance**2 + RADIUS**2
    hit = disc > 0
    t = np.where(hit, b - np.sqrt(np.maximum(disc, 0)), 0.0)
    depth = np.where(hit, t * rays[..., 2], 1.0).astype(np.float32)  # a wall 1 m away behind it
    labels = np.where(hit, LABEL_OBJECT, 0).astype(np.uint8)
    return depth, labels


def _volume() -> TsdfVolume:
    corners = np.array([[-RADIUS, -RADIUS, -RADIUS], [RADIUS, RADIUS, RADIUS]])
    return TsdfVolume.around(corners, TsdfConfig(voxel_m=0.002, padding_m=0.01, truncation_m=0.006))


def test_a_mesh_fuses_to_itself() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=RADIUS)
    volume = _volume()
    volume.integrate_mesh(sphere.vertices, sphere.faces, 1.0)
    mesh = volume.mesh()
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert abs(np.median(radii) - RADIUS) < 0.0015
    assert radii.max() - radii.min() < 0.004


def test_a_thinning_offset_shrinks_the_mesh() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=RADIUS)
    volume = _volume()
    volume.integrate_mesh(sphere.vertices, sphere.faces, 1.0, offset_m=0.004)
    assert abs(np.median(np.linalg.norm(volume.mesh().vertices, axis=1)) - (RADIUS - 0.004)) < 0.0015


def test_depth_fuses_the_visible_side_and_carves_free_space() -> None:
    depth, labels = _sphere_depth(0.3)
    pose = make_pose(np.eye(3), [0.0, 0.0, 0.3])  # object frame at the sphere's centre
    volume = _volume()
    # A mesh that is too big (radius + 1 cm): the depth pulls the visible side back in.
    big = trimesh.creation.icosphere(subdivisions=4, radius=RADIUS + 0.01)
    volume.integrate_mesh(big.vertices, big.faces, 0.2)
    volume.integrate_depth(depth, labels, K, pose, 1.0)
    mesh = volume.mesh()
    front = mesh.vertices[mesh.vertices[:, 2] < -0.02]  # the side facing the camera (-z in the object frame)
    assert abs(np.median(np.linalg.norm(front, axis=1)) - RADIUS) < 0.002
    # Samples beside the sphere, in front of the wall, are free space.
    assert volume.sample(np.array([[RADIUS + 0.008, 0.0, -0.02]]))[0] > 0


def test_hand_pixels_carve_only_in_front_of_the_hand() -> None:
    depth, labels = _sphere_depth(0.3)
    labels[labels == LABEL_OBJECT] = LABEL_HAND
    pose = make_pose(np.eye(3), [0.0, 0.0, 0.3])
    volume = _volume()
    volume.integrate_depth(depth, labels, K, pose, 1.0)
    # No object surface was seen, and the inside stays unobserved (outside by default).
    assert (volume.weight[volume.sdf < 0] == 0).all()


def test_sampling_outside_the_grid_is_outside() -> None:
    volume = _volume()
    assert volume.sample(np.array([[1.0, 1.0, 1.0]]))[0] == pytest.approx(volume.truncation_m)


def test_a_hand_carves_the_object_it_holds() -> None:
    from c2f_core.take_fit.object_track import ObjectTrack, ObjectTrackConfig, carve_with_hand

    sphere = trimesh.creation.icosphere(subdivisions=4, radius=RADIUS)
    volume = _volume()
    volume.integrate_mesh(sphere.vertices, sphere.faces, 1.0)
    poses = np.tile(make_pose(np.eye(3), [0.0, 0.0, 0.3]), (2, 1, 1))
    track = ObjectTrack(volume.mesh(), poses, np.ones(2, bool), np.zeros(2), volume)
    # A "finger": a box reaching 1 cm into the sphere's +x side, in the camera frame.
    finger = trimesh.creation.box(extents=[0.03, 0.012, 0.012])
    finger.apply_translation([RADIUS + 0.005, 0.0, 0.3])
    hand = np.stack([finger.vertices, finger.vertices])
    carved = carve_with_hand(track, hand, finger.faces, ObjectTrackConfig(hand_carve_weight=2.0))
    # The finger's inside (its part within the sphere) is now outside the object ...
    tip_in_object = carved.poses[0][:3, :3].T @ (
        np.array([RADIUS - 0.004, 0.0, 0.3]) - carved.poses[0][:3, 3]
    )
    assert carved.volume.sample(tip_in_object[None])[0] > 0
    # ... and the rest of the sphere is untouched; the poses still place it where it was.
    world = carved.mesh.vertices @ carved.poses[0][:3, :3].T + carved.poses[0][:3, 3]
    far_side = world[world[:, 0] < -0.02]
    assert abs(np.median(np.linalg.norm(far_side - [0.0, 0.0, 0.3], axis=1)) - RADIUS) < 0.0015
