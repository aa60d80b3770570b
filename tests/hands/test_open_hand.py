"""The open hand layer: the shipped asset, posing, inverse kinematics, and agreement with anny."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from c2f_core.geometry.mesh_sdf import MeshSDF
from c2f_core.hands.base import JOINT_NAMES, PARENTS
from c2f_core.hands.open_hand import (
    FINGER_BONES,
    JOINT_BONES,
    OpenHandLayer,
    load_open_hand_arrays,
    rotation_between,
)


@pytest.fixture(scope="module")
def layer() -> OpenHandLayer:
    return OpenHandLayer(dtype=torch.float64)


def random_angles(rng: np.random.Generator, batch: int, twist: bool = True) -> torch.Tensor:
    """Plausible finger angles (B, 19, 3): flexion 0-1.2 rad, small abduction and twist."""
    angles = np.zeros((batch, 19, 3))
    angles[..., 0] = rng.uniform(0.0, 1.2, (batch, 19))
    angles[..., 1] = rng.uniform(-0.2, 0.2, (batch, 19))
    if twist:
        angles[..., 2] = rng.uniform(-0.1, 0.1, (batch, 19))
    # Metacarpals (bones 4, 8, 12, 16) hardly move in a real hand.
    angles[:, [3, 7, 11, 15]] *= 0.1
    return torch.as_tensor(angles)


def random_rotation(rng: np.random.Generator, batch: int) -> torch.Tensor:
    q, _ = np.linalg.qr(rng.normal(size=(batch, 3, 3)))
    q *= np.sign(np.linalg.det(q))[:, None, None]
    return torch.as_tensor(q)


def test_asset_mesh_is_closed_and_outward(layer: OpenHandLayer) -> None:
    vertices = layer.template_vertices.numpy()
    faces = layer.faces.numpy()
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.euler_number == 2
    assert 2.0e-4 < mesh.volume < 6.0e-4  # an adult hand holds 200-600 ml
    weights = layer.skinning_weights.numpy()
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-5)
    assert (weights >= 0).all()


def test_rest_joints_follow_the_common_order(layer: OpenHandLayer) -> None:
    joints = layer.rest_joints()[0].numpy()
    assert joints.shape == (21, 3) and len(JOINT_NAMES) == 21
    np.testing.assert_allclose(joints[0], 0.0, atol=1e-6)  # canonical frame: wrist at the origin
    # Every joint lies farther from the wrist than its parent, along its finger.
    for joint, parent in enumerate(PARENTS):
        if parent > 0:
            assert np.linalg.norm(joints[joint]) > np.linalg.norm(joints[parent]) - 1e-3, JOINT_NAMES[joint]
    # The thumb is on the +y side; the fingers' bases run from index (+y) to little (-y).
    bases = joints[[5, 9, 13, 17], 1]
    assert np.all(np.diff(bases) < 0)
    assert joints[4, 1] > bases[0]
    # The middle fingertip is 15-23 cm from the wrist for an adult hand.
    assert 0.15 < np.linalg.norm(joints[12]) < 0.23
    # Tips are mesh vertices.
    vertices, _ = layer.rest()
    np.testing.assert_allclose(joints[[4, 8, 12, 16, 20]], vertices[0, layer.tip_vertex_ids].numpy())


def test_zero_pose_is_rest_and_global_pose_is_rigid(layer: OpenHandLayer) -> None:
    rng = np.random.default_rng(0)
    betas = torch.as_tensor(layer.shape_samples[:3].numpy(), dtype=torch.float64)
    rest_vertices, _ = layer.rest(betas)
    out = layer(betas=betas)
    torch.testing.assert_close(out.vertices, rest_vertices)
    rotation, transl = random_rotation(rng, 3), torch.as_tensor(rng.normal(size=(3, 3)))
    angles = random_angles(rng, 3)
    local = layer(finger_rotations=layer.angles_to_rotations(angles), betas=betas)
    moved = layer(rotation, layer.angles_to_rotations(angles), betas, transl)
    wrist = local.joints[:, :1]
    expected = (local.vertices - wrist) @ rotation.transpose(1, 2) + wrist + transl[:, None]
    torch.testing.assert_close(moved.vertices, expected)
    assert out.faces.shape == (3216, 3)


def test_positive_flexion_curls_towards_the_palm(layer: OpenHandLayer) -> None:
    angles = torch.zeros(1, 19, 3, dtype=torch.float64)
    for bones in FINGER_BONES[1:]:
        angles[0, [b - 1 for b in bones], 0] = 0.35
    rest = layer().joints[0]
    bent = layer(finger_rotations=layer.angles_to_rotations(angles)).joints[0]
    for tip in (8, 12, 16, 20):
        assert bent[tip, 2] < rest[tip, 2] - 0.02  # the palm faces -z
        assert bent[tip, 0] < rest[tip, 0] - 0.01  # and the tip comes back towards the wrist
    torch.testing.assert_close(
        layer.angles_to_rotations(torch.zeros(1, 19, 3)), torch.eye(3).expand(1, 19, 3, 3).to(torch.float64)
    )


def test_pose_from_joints_round_trip(layer: OpenHandLayer) -> None:
    rng = np.random.default_rng(1)
    betas = torch.as_tensor(layer.shape_samples[5:9].numpy(), dtype=torch.float64)
    angles = random_angles(rng, 4, twist=False)
    target = layer(
        random_rotation(rng, 4),
        layer.angles_to_rotations(angles),
        betas,
        torch.as_tensor(rng.normal(size=(4, 3))),
    )
    pose = layer.pose_from_joints(target.joints, betas)
    again = layer(pose.global_orient, pose.finger_rotations, betas, pose.transl)
    error = (again.joints - target.joints).norm(dim=-1)
    assert error.max() < 1.5e-3, error.max()
    # Swing-only IK: the vertices come back too, up to small twists.
    assert (again.vertices - target.vertices).norm(dim=-1).mean() < 2e-3


def test_pose_from_joints_is_differentiable(layer: OpenHandLayer) -> None:
    joints = layer(
        finger_rotations=layer.angles_to_rotations(random_angles(np.random.default_rng(2), 2))
    ).joints
    joints = joints.clone().requires_grad_(True)
    pose = layer.pose_from_joints(joints)
    layer(pose.global_orient, pose.finger_rotations, transl=pose.transl).vertices.sum().backward()
    assert joints.grad is not None and torch.isfinite(joints.grad).all()


def test_rotation_between_handles_parallel_and_opposite() -> None:
    u = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    t = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -3.0]], dtype=torch.float64)
    rot = rotation_between(u, t)
    turned = (rot @ u[..., None])[..., 0]
    torch.testing.assert_close(turned / turned.norm(dim=-1, keepdim=True), t / t.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(3, 3, 3))


def test_signed_distance_inside_fingers_and_palm(layer: OpenHandLayer) -> None:
    rng = np.random.default_rng(3)
    out = layer(finger_rotations=layer.angles_to_rotations(random_angles(rng, 1)))
    vertices, joints = out.vertices[0].numpy(), out.joints[0].numpy()
    sdf = MeshSDF(vertices, out.faces.numpy())
    # Midpoints of phalanges (joint to child joint) are inside the fingers (the bone axes run
    # 3-4 mm below the back of the finger, so they are at least 1 mm deep).
    mids = np.array([(joints[j] + joints[j + 1]) / 2 for j in range(1, 21) if j % 4 != 0])
    assert (sdf(mids) < -0.001).all()
    # The palm centre (between wrist and middle MCP, within the hand) is inside; far points outside.
    palm = 0.5 * (joints[0] + joints[9])
    assert sdf(palm[None])[0] < -0.005
    directions = rng.normal(size=(50, 3))
    far = 0.35 * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    assert (sdf(far) > 0.1).all()


def test_joint_bones_cover_all_joints() -> None:
    assert len(JOINT_BONES) == 21
    assert [i for i, b in enumerate(JOINT_BONES) if b < 0] == [4, 8, 12, 16, 20]


# -- agreement with anny itself (builds anny's model once; ~1.5 min the first time, then cached) --------


@pytest.fixture(scope="session")
def anny_hand():
    pytest.importorskip("anny")
    pytest.importorskip("warp")
    from c2f_core.hands.build_open_hand import load_anny_hand

    return load_anny_hand()


def test_layer_matches_anny_posed_output(anny_hand, layer: OpenHandLayer) -> None:
    """Our layer and anny give the same posed mesh for the same shapes and bone rotations."""
    from c2f_core.hands.build_open_hand import ANNY_BONE_NAMES, anny_rest_states, canonical_transform

    arrays = load_open_hand_arrays()
    rng = np.random.default_rng(4)
    picks = rng.choice(len(arrays["phenotype_samples"]), 3, replace=False)
    phenotypes = arrays["phenotype_samples"][picks].astype(np.float64)
    betas = torch.as_tensor(arrays["shape_samples"][picks], dtype=torch.float64)
    labels = list(anny_hand.bone_labels)
    ids = {name: i for i, name in enumerate(labels)}
    anny_ids = [ids[name] for name in ANNY_BONE_NAMES]

    global_orient, angles = random_rotation(rng, 3), random_angles(rng, 3)
    ours = layer(global_orient, layer.angles_to_rotations(angles), betas)
    # Our world rotation and head position of every bone, from our own forward kinematics.
    local = torch.cat([global_orient[:, None], layer.angles_to_rotations(angles)], 1)
    _, heads = layer.rest(betas)
    world_rot, world_pos = [], []
    for bone, parent in enumerate(layer.parents):
        if parent < 0:
            world_rot.append(local[:, 0])
            world_pos.append(heads[:, 0])
        else:
            world_rot.append(world_rot[parent] @ local[:, bone])
            world_pos.append(
                world_pos[parent]
                + (world_rot[parent] @ (heads[:, bone] - heads[:, parent])[..., None])[..., 0]
            )

    rest = anny_rest_states(anny_hand, phenotypes)
    for k in range(3):
        to_canonical = canonical_transform(rest["heads"][k], ids)
        rot_c, shift_c = to_canonical[:3, :3], to_canonical[:3, 3]
        # anny 'world-orient' poses: each bone's world orientation; heads follow its own chain.
        deltas = np.tile(np.eye(4), (len(labels), 1, 1))
        for ours_bone, anny_bone in enumerate(anny_ids):
            g_anny = rot_c.T @ world_rot[ours_bone][k].numpy() @ rot_c
            deltas[anny_bone, :3, :3] = g_anny @ rest["poses"][k, anny_bone, :3, :3]
        deltas[ids["root"], :3, :3] = deltas[ids["wrist.R"], :3, :3]
        deltas[ids["root"], :3, 3] = rest["heads"][k, ids["root"]]
        with torch.no_grad():
            params = torch.as_tensor(phenotypes[k : k + 1], dtype=anny_hand.dtype)
            zeros = params.new_zeros((1, 0))
            coeffs = anny_hand._get_phenotype_blendshape_coefficients(params, zeros, zeros)
            result = super(type(anny_hand), anny_hand).forward(
                torch.as_tensor(deltas[None], dtype=anny_hand.dtype),
                coeffs,
                pose_parameterization="world-orient",
            )
        anny_vertices = result["vertices"][0].numpy() @ rot_c.T + shift_c
        # Both are relative to the same wrist: ours turns about our rest wrist, anny's about its own.
        anny_vertices += ours.joints[k, 0].numpy() - (rest["heads"][k, ids["wrist.R"]] @ rot_c.T + shift_c)
        error = np.linalg.norm(anny_vertices - ours.vertices[k, :-1].numpy(), axis=1)
        assert error.max() < 1.5e-3, error.max()
        assert error.mean() < 3e-4, error.mean()
