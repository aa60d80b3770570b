"""MANO layer: loading the official file structure safely, and the model's defining properties."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from c2f_core.errors import C2FError
from c2f_core.hands.base import JOINT_NAMES
from c2f_core.hands.base import PARENTS as COMMON_PARENTS
from c2f_core.hands.mano import MANO_TO_COMMON, ManoLayer
from c2f_core.hands.mano_file import MANO_DIR_ENV, load_mano_model
from c2f_core.hands.rotations import axis_angle_to_matrix
from c2f_core.io.safe_pickle import load_restricted_pickle


def _load_mano_fixture():
    # Loaded by path so the import works however pytest puts test folders on sys.path.
    path = Path(__file__).resolve().parent / "mano_fixture.py"
    spec = importlib.util.spec_from_file_location("hands_test_mano_fixture", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mano_fixture = _load_mano_fixture()
NUM_VERTS = mano_fixture.NUM_VERTS
PARENTS = mano_fixture.PARENTS
TIP_ORDER = mano_fixture.TIP_ORDER
TIP_VERTEX_IDS = mano_fixture.TIP_VERTEX_IDS
Ch = mano_fixture.Ch
ChumpyAdd = mano_fixture.ChumpyAdd
Evil = mano_fixture.Evil
make_mano_arrays = mano_fixture.make_mano_arrays
write_mano_fixture = mano_fixture.write_mano_fixture

ATOL = 1e-6  # metres; float32 evaluation of a ~10 cm hand


@pytest.fixture(scope="module")
def mano_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mano")
    write_mano_fixture(folder, "right", seed=0)
    write_mano_fixture(folder, "left", seed=1)
    return folder


def layer(mano_dir: Path, **kwargs) -> ManoLayer:
    return ManoLayer(mano_dir, tip_vertex_ids=TIP_VERTEX_IDS, **kwargs)


def reference_mano(arrays: dict, full_pose: np.ndarray, betas: np.ndarray, trans: np.ndarray) -> tuple:
    """The published equations, written out independently in float64 with 4x4 matrices."""
    rot = Rotation.from_rotvec(full_pose.reshape(16, 3)).as_matrix()
    v_shaped = arrays["v_template"] + arrays["shapedirs"] @ betas
    J = arrays["J_regressor"] @ v_shaped
    lrotmin = np.concatenate([(r - np.eye(3)).ravel() for r in rot[1:]])
    v_posed = v_shaped + arrays["posedirs"] @ lrotmin
    G = np.zeros((16, 4, 4))
    for k, parent in enumerate(PARENTS):
        local = np.eye(4)
        local[:3, :3] = rot[k]
        local[:3, 3] = J[k] - (J[parent] if parent >= 0 else 0.0)
        G[k] = local if parent < 0 else G[parent] @ local
    posed_joints = G[:, :3, 3].copy()
    for k in range(16):
        unpose = np.eye(4)
        unpose[:3, 3] = -J[k]
        G[k] = G[k] @ unpose
    T = np.einsum("vk,kij->vij", arrays["weights"], G)
    verts = np.einsum("vij,vj->vi", T, np.concatenate([v_posed, np.ones((len(v_posed), 1))], axis=1))[:, :3]
    tips = verts[list(TIP_VERTEX_IDS)]
    joints = np.concatenate([posed_joints, tips])[list(MANO_TO_COMMON)]
    return verts + trans, joints + trans


def test_common_joint_order_is_wrist_then_fingers_base_to_tip():
    assert len(JOINT_NAMES) == 21 and JOINT_NAMES[0] == "wrist"
    assert JOINT_NAMES[1:5] == ("thumb1", "thumb2", "thumb3", "thumb_tip")
    assert JOINT_NAMES[17:21] == ("little1", "little2", "little3", "little_tip")
    assert COMMON_PARENTS[:6] == (-1, 0, 1, 2, 3, 0)
    # MANO's raw kinematic tree, reordered, gives the same tree as the common order.
    raw_parents = list(PARENTS) + [15, 3, 6, 12, 9]  # tips hang off thumb3, index3, middle3, ring3, little3
    position = {raw: common for common, raw in enumerate(MANO_TO_COMMON)}
    for common, raw in enumerate(MANO_TO_COMMON):
        expected = -1 if raw_parents[raw] < 0 else position[raw_parents[raw]]
        assert COMMON_PARENTS[common] == expected


def test_loader_turns_chumpy_and_old_scipy_into_numpy(mano_dir: Path):
    model = load_mano_model(mano_dir / "MANO_RIGHT.pkl")
    arrays = make_mano_arrays("right", seed=0)
    for key in (
        "v_template",
        "shapedirs",
        "posedirs",
        "J_regressor",
        "weights",
        "hands_components",
        "hands_mean",
    ):
        np.testing.assert_array_equal(getattr(model, key), arrays[key], err_msg=key)
    assert model.parents == PARENTS
    assert model.faces.dtype == np.int64
    np.testing.assert_array_equal(model.faces, arrays["f"].astype(np.int64))


def test_left_file_carries_its_own_data(mano_dir: Path):
    right = layer(mano_dir)
    left = layer(mano_dir, side="left")
    np.testing.assert_allclose(
        left.v_template.numpy(), make_mano_arrays("left", seed=1)["v_template"], atol=1e-7
    )
    assert not torch.allclose(left.v_template, right.v_template)


def test_directory_from_environment_variable(mano_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(MANO_DIR_ENV, str(mano_dir))
    model = load_mano_model()
    assert model.path == str(mano_dir / "MANO_RIGHT.pkl")


def test_missing_file_says_where_to_get_mano(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(MANO_DIR_ENV, raising=False)
    with pytest.raises(C2FError, match=MANO_DIR_ENV) as info:
        load_mano_model()
    assert "mano.is.tue.mpg.de" in str(info.value)
    monkeypatch.setenv(MANO_DIR_ENV, str(tmp_path))
    with pytest.raises(C2FError, match="MANO_RIGHT.pkl") as info:
        ManoLayer()
    assert MANO_DIR_ENV in str(info.value) and "Models & Code" in str(info.value)


def test_refuses_a_pickle_that_would_run_code(tmp_path: Path):
    marker = tmp_path / "pwned"
    path = write_mano_fixture(tmp_path, overrides={"extra": Evil(f"touch {marker}")})
    with pytest.raises(C2FError, match="refusing to load class (posix|os|nt).system"):
        load_mano_model(path)
    assert not marker.exists()
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": Evil(f"touch {marker}")}))
    with pytest.raises(C2FError, match="refusing"):
        load_restricted_pickle(plain)
    assert not marker.exists()


def test_chumpy_expression_in_a_needed_key_is_reported(tmp_path: Path):
    arrays = make_mano_arrays()
    half = Ch(arrays["shapedirs"] / 2)
    path = write_mano_fixture(tmp_path, overrides={"shapedirs": ChumpyAdd(half, half)})
    with pytest.raises(C2FError, match="'shapedirs'.*chumpy expression of class chumpy.ch_ops.add"):
        load_mano_model(path)


def test_corrupt_file_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(b"\x80\x02}q\x00(X")
    with pytest.raises(C2FError, match="not a readable pickle"):
        load_mano_model(path)


def test_default_fingertips_need_the_full_mesh(mano_dir: Path):
    with pytest.raises(C2FError, match=f"{NUM_VERTS} vertices"):
        ManoLayer(mano_dir)


def test_axis_angle_matches_scipy_and_is_smooth_at_zero():
    rotvecs = torch.tensor(np.random.default_rng(3).normal(0, 1.2, (50, 3)))
    expected = Rotation.from_rotvec(rotvecs.numpy()).as_matrix()
    np.testing.assert_allclose(axis_angle_to_matrix(rotvecs).numpy(), expected, atol=1e-12)
    tiny = torch.tensor([[1e-5, -2e-5, 3e-6]], dtype=torch.float64)
    np.testing.assert_allclose(
        axis_angle_to_matrix(tiny).numpy(), Rotation.from_rotvec(tiny.numpy()).as_matrix(), atol=1e-15
    )
    zero = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    (axis_angle_to_matrix(zero) * torch.arange(9.0, dtype=torch.float64).reshape(3, 3)).sum().backward()
    assert torch.isfinite(zero.grad).all() and zero.grad.abs().sum() > 0


def test_zero_pose_and_shape_give_the_template(mano_dir: Path):
    arrays = make_mano_arrays()
    out = layer(mano_dir)(torch.zeros(1, 48))
    np.testing.assert_allclose(out.vertices[0].numpy(), arrays["v_template"], atol=ATOL)
    raw = np.concatenate([arrays["rest_joints"], arrays["v_template"][list(TIP_VERTEX_IDS)]])
    np.testing.assert_allclose(out.joints[0].numpy(), raw[list(MANO_TO_COMMON)], atol=ATOL)
    np.testing.assert_allclose(out.joints[0, 0].numpy(), 0.0, atol=ATOL)  # the fixture's wrist is the origin
    assert out.faces.dtype == torch.int64 and out.faces.shape == (len(arrays["f"]), 3)


def test_betas_add_shape_blend_shapes(mano_dir: Path):
    arrays = make_mano_arrays()
    betas = np.random.default_rng(1).normal(0, 1, 10)
    out = layer(mano_dir)(torch.zeros(1, 48), torch.tensor(betas, dtype=torch.float32))
    np.testing.assert_allclose(
        out.vertices[0].numpy(), arrays["v_template"] + arrays["shapedirs"] @ betas, atol=ATOL
    )


@pytest.mark.parametrize("flat_hand_mean", [True, False])
def test_matches_the_published_equations(mano_dir: Path, flat_hand_mean: bool):
    arrays = make_mano_arrays()
    rng = np.random.default_rng(7)
    pose, betas, trans = rng.normal(0, 0.4, 48), rng.normal(0, 1, 10), rng.normal(0, 0.3, 3)
    out = layer(mano_dir, flat_hand_mean=flat_hand_mean)(
        torch.tensor(pose[None], dtype=torch.float32),
        torch.tensor(betas, dtype=torch.float32),
        torch.tensor(trans, dtype=torch.float32),
    )
    full_pose = pose + np.concatenate(
        [np.zeros(3), 0 * arrays["hands_mean"] if flat_hand_mean else arrays["hands_mean"]]
    )
    verts, joints = reference_mano(arrays, full_pose, betas, trans)
    np.testing.assert_allclose(out.vertices[0].numpy(), verts, atol=5 * ATOL)
    np.testing.assert_allclose(out.joints[0].numpy(), joints, atol=5 * ATOL)


def test_rotating_a_joint_moves_only_what_it_skins(mano_dir: Path):
    arrays = make_mano_arrays()
    hand = layer(mano_dir)
    rest = hand(torch.zeros(1, 48))
    raw_joint = 2  # index2
    pose = torch.zeros(1, 48)
    pose[0, 3 * raw_joint : 3 * raw_joint + 3] = torch.tensor([0.0, 0.0, 0.8])
    bent = hand(pose)
    subtree = {raw_joint, 3}  # index2 and its child index3
    influence = arrays["weights"][:, sorted(subtree)].sum(axis=1)
    moved = (bent.vertices[0] - rest.vertices[0]).norm(dim=1).numpy()
    assert np.all(moved[influence == 0] < ATOL)
    assert np.all(moved[influence > 0.05] > 1e-4)
    moved_joints = (bent.joints[0] - rest.joints[0]).norm(dim=1).numpy() > 1e-4
    tips_skinned = [f"{finger}_tip" for finger, v in zip(TIP_ORDER, TIP_VERTEX_IDS) if influence[v] > 0]
    assert "index_tip" in tips_skinned
    assert {JOINT_NAMES[i] for i in np.flatnonzero(moved_joints)} == {"index3", *tips_skinned}


def test_global_rotation_is_rigid_about_the_wrist(mano_dir: Path):
    hand = layer(mano_dir)
    rng = np.random.default_rng(5)
    betas = torch.tensor(rng.normal(0, 1, 10), dtype=torch.float32)
    fingers = torch.tensor(rng.normal(0, 0.3, 45), dtype=torch.float32)
    rotvec = np.array([0.3, -1.1, 0.7])
    base = hand(torch.cat([torch.zeros(3), fingers])[None], betas)
    turned = hand(torch.cat([torch.tensor(rotvec, dtype=torch.float32), fingers])[None], betas)
    R = Rotation.from_rotvec(rotvec).as_matrix()
    wrist = base.joints[0, 0].numpy()  # the wrist does not move under the global rotation
    expected_verts = (base.vertices[0].numpy() - wrist) @ R.T + wrist
    expected_joints = (base.joints[0].numpy() - wrist) @ R.T + wrist
    np.testing.assert_allclose(turned.vertices[0].numpy(), expected_verts, atol=ATOL)
    np.testing.assert_allclose(turned.joints[0].numpy(), expected_joints, atol=ATOL)


def test_batched_equals_looped(mano_dir: Path):
    hand = layer(mano_dir, use_pca=True, num_pca_comps=12, flat_hand_mean=False)
    gen = torch.Generator().manual_seed(0)
    pose = torch.randn(5, 15, generator=gen) * 0.5
    betas = torch.randn(5, 10, generator=gen)
    trans = torch.randn(5, 3, generator=gen) * 0.2
    batch = hand(pose, betas, trans)
    for i in range(5):
        one = hand(pose[i : i + 1], betas[i : i + 1], trans[i])
        torch.testing.assert_close(batch.vertices[i], one.vertices[0], atol=ATOL, rtol=0)
        torch.testing.assert_close(batch.joints[i], one.joints[0], atol=ATOL, rtol=0)


def test_pca_with_all_components_equals_axis_angle(mano_dir: Path):
    arrays = make_mano_arrays()
    pca = layer(mano_dir, use_pca=True, num_pca_comps=45, flat_hand_mean=False)
    axis_angle = layer(mano_dir, flat_hand_mean=False)
    coeffs = np.random.default_rng(2).normal(0, 0.5, 45)
    root = np.array([0.2, 0.1, -0.3])
    hand_pose = coeffs @ arrays["hands_components"]
    a = pca(torch.tensor(np.concatenate([root, coeffs])[None], dtype=torch.float32))
    b = axis_angle(torch.tensor(np.concatenate([root, hand_pose])[None], dtype=torch.float32))
    torch.testing.assert_close(a.vertices, b.vertices, atol=ATOL, rtol=0)
    torch.testing.assert_close(a.joints, b.joints, atol=ATOL, rtol=0)


def test_flat_and_mean_hand_differ_by_hands_mean(mano_dir: Path):
    arrays = make_mano_arrays()
    pose = torch.tensor(np.random.default_rng(4).normal(0, 0.3, 48)[None], dtype=torch.float32)
    mean_hand = layer(mano_dir, flat_hand_mean=False)(pose)
    shifted = pose + torch.tensor(np.concatenate([np.zeros(3), arrays["hands_mean"]]), dtype=torch.float32)
    flat_hand = layer(mano_dir, flat_hand_mean=True)(shifted)
    torch.testing.assert_close(mean_hand.vertices, flat_hand.vertices, atol=ATOL, rtol=0)
    assert (layer(mano_dir)(pose).vertices - mean_hand.vertices).abs().max() > 1e-3


def test_center_idx_makes_joint_the_origin_before_translation(mano_dir: Path):
    hand = layer(mano_dir, center_idx=9)  # middle1
    pose = torch.tensor(np.random.default_rng(6).normal(0, 0.3, (2, 48)), dtype=torch.float32)
    trans = torch.tensor([[0.1, -0.2, 0.5]])
    out = hand(pose, trans=trans)
    torch.testing.assert_close(out.joints[:, 9], trans.expand(2, 3), atol=ATOL, rtol=0)
    plain = layer(mano_dir)(pose)
    torch.testing.assert_close(
        out.vertices - trans[:, None], plain.vertices - plain.joints[:, 9:10], atol=ATOL, rtol=0
    )


def test_gradients_reach_pose_shape_and_translation(mano_dir: Path):
    hand = layer(mano_dir, use_pca=True, num_pca_comps=10, flat_hand_mean=False)
    pose = torch.zeros(2, 13, requires_grad=True)  # exactly zero: the Rodrigues series branch
    betas = torch.zeros(2, 10, requires_grad=True)
    trans = torch.zeros(2, 3, requires_grad=True)
    out = hand(pose, betas, trans)
    target = torch.linspace(0, 1, out.vertices.numel()).reshape(out.vertices.shape)
    ((out.vertices - target) ** 2).sum().add(out.joints.square().sum()).backward()
    for tensor in (pose, betas, trans):
        assert torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0


def test_checkpoints_do_not_carry_mano_data(mano_dir: Path):
    assert layer(mano_dir).state_dict() == {}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda(mano_dir: Path):
    pose = torch.tensor(np.random.default_rng(8).normal(0, 0.3, (3, 48)), dtype=torch.float32)
    cpu = layer(mano_dir)(pose)
    gpu = layer(mano_dir).to("cuda")(pose.cuda())
    torch.testing.assert_close(gpu.vertices.cpu(), cpu.vertices, atol=1e-5, rtol=0)
