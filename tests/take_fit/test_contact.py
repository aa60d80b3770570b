"""The fitted hand moved out of the fused object: no vertex left inside, shifts smooth over the take."""

from __future__ import annotations

import numpy as np
import trimesh

from c2f_core.take_fit.contact import ContactConfig, push_out
from c2f_core.take_fit.hand_track import HandTrack
from c2f_core.take_fit.object_track import ObjectTrack
from c2f_core.take_fit.rigid import make_pose
from c2f_core.take_fit.tsdf import TsdfConfig, TsdfVolume

RADIUS = 0.04
FRAMES = 40


def _sphere_track() -> ObjectTrack:
    """A sphere of RADIUS fused into its own frame, turning about y while it moves along z."""
    corners = np.array([[-RADIUS, -RADIUS, -RADIUS], [RADIUS, RADIUS, RADIUS]])
    volume = TsdfVolume.around(corners, TsdfConfig(voxel_m=0.002, padding_m=0.01, truncation_m=0.006))
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=RADIUS)
    volume.integrate_mesh(sphere.vertices, sphere.faces, 1.0)
    poses = np.stack(
        [
            make_pose(
                trimesh.transformations.rotation_matrix(0.05 * t, [0, 1, 0])[:3, :3], [0, 0, 0.4 + 0.002 * t]
            )
            for t in range(FRAMES)
        ]
    )
    count = len(poses)
    return ObjectTrack(volume.mesh(), poses, np.ones(count, bool), np.zeros(count), volume)


def _finger(depth_m: np.ndarray, poses: np.ndarray) -> HandTrack:
    """A 'hand': a 1 cm box whose face lies `depth_m[t]` inside the sphere's +x side in frame t."""
    box = trimesh.creation.box(extents=[0.01, 0.01, 0.01])
    vertices = np.stack(
        [box.vertices + poses[t, :3, 3] + [RADIUS + 0.005 - d, 0.0, 0.0] for t, d in enumerate(depth_m)]
    )
    joints = vertices[:, :1].repeat(21, 1)
    return HandTrack(
        betas=np.zeros(10),
        global_orient=np.tile(np.eye(3), (FRAMES, 1, 1)),
        finger_rotations=np.tile(np.eye(3), (FRAMES, 19, 1, 1)),
        transl=np.zeros((FRAMES, 3)),
        vertices=vertices.astype(np.float32),
        joints=joints,
        faces=np.asarray(box.faces, np.int64),
        bridged=np.zeros(FRAMES, bool),
    )


def _deepest(hand: HandTrack, track: ObjectTrack) -> np.ndarray:
    """Per frame, the object's lowest signed distance (metres) at a hand vertex."""
    local = [(v - p[:3, 3]) @ p[:3, :3] for v, p in zip(hand.vertices.astype(np.float64), track.poses)]
    return np.array([track.volume.sample(points).min() for points in local])


def test_push_out_leaves_no_vertex_deeper_than_the_margin() -> None:
    track = _sphere_track()
    # The finger sinks in smoothly to 5 mm and comes out again, mid-take.
    depth = np.clip(0.007 * np.sin(np.pi * (np.arange(FRAMES) - 8) / 24), -0.002, 0.005)
    depth[np.arange(FRAMES) >= 32] = -0.002
    hand = _finger(depth, track.poses)
    before = _deepest(hand, track)
    assert before.min() < -0.003
    # Shifts free to follow a finger that sinks in within a second (the default is stiffer).
    config = ContactConfig(margin_m=0.0005, stiffness=100.0, ridge=0.01)
    pushed = push_out(hand, track, config)
    # No vertex deeper than the margin (to a tenth of a millimetre: the trilinear samples of 2 mm voxels).
    assert _deepest(pushed, track).min() > -0.0001
    shifts = pushed.transl - hand.transl
    np.testing.assert_allclose(pushed.vertices - hand.vertices, shifts[:, None].repeat(8, 1), atol=1e-6)
    np.testing.assert_allclose(pushed.joints - hand.joints, shifts[:, None].repeat(21, 1), atol=1e-9)
    # Out along the surface's normal (+x), by about the depth; far from the contact, much less.
    inside = before < -0.002
    assert (shifts[inside, 0] > -before[inside]).all() and (shifts[inside, 0] < 0.003 - before[inside]).all()
    assert np.abs(shifts[:, 1:]).max() < 0.0005
    assert np.abs(shifts[:2]).max() < 0.5 * shifts[:, 0].max()
    # Smooth over the take: the shifts' acceleration stays below a tenth of a millimetre per frame^2.
    assert np.linalg.norm(np.diff(shifts, 2, axis=0), axis=1).max() < 0.0001
    # Already outside everywhere: nothing moves.
    free = _finger(np.full(FRAMES, -0.003), track.poses)
    np.testing.assert_allclose(push_out(free, track, config).transl, free.transl, atol=1e-12)


def test_push_out_by_default_adds_no_jitter() -> None:
    track = _sphere_track()
    # Sunk 3 mm in, with a frame-to-frame wobble of a millimetre: the shifts do not follow the wobble.
    depth = 0.003 + 0.001 * (-1.0) ** np.arange(FRAMES)
    hand = _finger(depth, track.poses)
    shifts = push_out(hand, track).transl - hand.transl
    assert shifts[:, 0].mean() > 0.002
    assert np.linalg.norm(np.diff(shifts, 2, axis=0), axis=1).max() < 0.0002
