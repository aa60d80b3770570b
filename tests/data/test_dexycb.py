"""DexYCB reader on a tiny tree in the released layout (meta.yml, calibration, models, labels npz)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from c2f_core.data.dexycb import SERIALS, SUBJECTS, YCB_CLASSES, DexYCBReader
from c2f_core.errors import C2FError
from c2f_core.hands.mano import ManoLayer
from c2f_core.hands.mano_file import MANO_DIR_ENV


def _load_mano_fixture():
    path = Path(__file__).resolve().parents[1] / "hands" / "mano_fixture.py"
    spec = importlib.util.spec_from_file_location("dexycb_test_mano_fixture", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mano_fixture = _load_mano_fixture()

H, W = 48, 64
CAMERAS = SERIALS[:2]
GRASPED, OTHER = 5, 2  # YCB ids; ycb_ids = [OTHER, GRASPED], ycb_grasp_ind = 1
CALIB = "20200709_140042_subject-01_right"
BETAS = [0.5, -0.3, 0.2, 0.0, 0.1, -0.2, 0.3, 0.0, -0.1, 0.05]
CUBE_MIN, CUBE_SIZE = np.array([0.01, 0.0, 0.02]), 0.04
SEQUENCES = {SUBJECTS[0]: 5, SUBJECTS[2]: 5}
LEFT_SEQUENCE = (SUBJECTS[0], 1)
INVALID_FRAME = (SUBJECTS[2], 0, CAMERAS[1], 5)  # (subject, sequence position, serial, frame)
FRAMES = (0, 5)  # num_frames = 7 with step 5


def cube() -> tuple[np.ndarray, np.ndarray]:
    corners = (
        CUBE_MIN + CUBE_SIZE * np.array(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij")).reshape(3, -1).T
    )
    faces = np.array(
        [
            [0, 1, 3],
            [0, 3, 2],
            [4, 6, 7],
            [4, 7, 5],
            [0, 4, 5],
            [0, 5, 1],
            [2, 3, 7],
            [2, 7, 6],
            [0, 2, 6],
            [0, 6, 4],
            [1, 5, 7],
            [1, 7, 3],
        ]
    )
    return corners, faces


def intrinsics(serial: str) -> dict:
    offset = SERIALS.index(serial)
    return {
        "fx": 610.0 + offset,
        "fy": 611.0 + offset,
        "ppx": 31.5 + offset,
        "ppy": 23.25,
        "coeffs": [0.0] * 5,
    }


def pose_y_for(hand_verts: np.ndarray, contact: bool, rng: np.random.Generator) -> np.ndarray:
    """Grasped object's pose: a cube corner 2 mm from a hand vertex, or the cube 15 cm behind the hand."""
    R = cv2.Rodrigues(rng.normal(0, 0.6, 3))[0]
    corner = cube()[0][0]
    target = hand_verts[mano_fixture.TIP_VERTEX_IDS[1]] + (
        np.array([0.0, 0.0, 0.002]) if contact else np.array([0.0, 0.0, 0.15])
    )
    return np.concatenate([R, (target - R @ corner)[:, None]], axis=1)


def build_dexycb(root: Path, mano: ManoLayer) -> dict:
    """Write the tree; return what the reader should find, keyed by frame name."""
    rng = np.random.default_rng(0)
    (root / "calibration" / "intrinsics").mkdir(parents=True)
    for serial in CAMERAS:
        calib = {"color": intrinsics(serial), "depth": intrinsics(serial)}
        (root / "calibration" / "intrinsics" / f"{serial}_640x480.yml").write_text(yaml.safe_dump(calib))
    (root / "calibration" / f"mano_{CALIB}").mkdir(parents=True)
    (root / "calibration" / f"mano_{CALIB}" / "mano.yml").write_text(yaml.safe_dump({"betas": BETAS}))
    verts, faces = cube()
    for ycb_id in (GRASPED, OTHER):
        model_dir = root / "models" / YCB_CLASSES[ycb_id]
        model_dir.mkdir(parents=True)
        lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in verts] + [
            f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces
        ]
        (model_dir / "textured_simple.obj").write_text("\n".join(lines) + "\n")

    expected = {}
    for subject, count in SEQUENCES.items():
        for position in range(count):
            sequence = f"{subject[:8]}_1417{position:02d}"
            sequence_dir = root / subject / sequence
            sequence_dir.mkdir(parents=True)
            side = "left" if (subject, position) == LEFT_SEQUENCE else "right"
            meta = {
                "serials": list(SERIALS),
                "num_frames": 7,
                "ycb_ids": [OTHER, GRASPED],
                "ycb_grasp_ind": 1,
                "mano_sides": [side],
                "mano_calib": [CALIB],
                "extrinsics": "20200702_151821",
            }
            (sequence_dir / "meta.yml").write_text(yaml.safe_dump(meta))
            for serial in CAMERAS:
                (sequence_dir / serial).mkdir()
                for frame in FRAMES:
                    pose_m = np.concatenate([rng.normal(0, 0.3, 48), [0.02, -0.01, 0.6]])[None].astype(
                        np.float32
                    )
                    with torch.no_grad():
                        out = mano(
                            torch.tensor(pose_m[:, :48]), torch.tensor([BETAS]), torch.tensor(pose_m[:, 48:])
                        )
                    hand_verts = out.vertices[0].double().numpy()
                    joints = out.joints[0].numpy()
                    invalid = (subject, position, serial, frame) == INVALID_FRAME
                    if invalid:
                        joints, pose_m = -np.ones((21, 3)), np.zeros((1, 51), np.float32)
                    contact = frame == 0
                    pose_y = np.stack(
                        [pose_y_for(hand_verts, True, rng), pose_y_for(hand_verts, contact, rng)]
                    )
                    seg = np.zeros((H, W), np.uint8)
                    seg[10:20, 10:20] = 255
                    seg[30:40, 30:40] = GRASPED
                    seg[30:40, 5:10] = OTHER
                    np.savez_compressed(
                        sequence_dir / serial / f"labels_{frame:06d}.npz",
                        seg=seg,
                        pose_y=pose_y.astype(np.float32),
                        pose_m=pose_m,
                        joint_3d=joints[None].astype(np.float32),
                        joint_2d=np.zeros((1, 21, 2), np.float32),
                    )
                    color_bgr = np.zeros((H, W, 3), np.uint8)
                    color_bgr[:, : W // 2] = (0, 0, 255)  # red in BGR
                    cv2.imwrite(str(sequence_dir / serial / f"color_{frame:06d}.jpg"), color_bgr)
                    depth = np.zeros((H, W), np.uint16)
                    depth[5:40, 8:50] = 600 + frame
                    cv2.imwrite(str(sequence_dir / serial / f"aligned_depth_to_color_{frame:06d}.png"), depth)
                    name = f"{subject}/{sequence}/{serial}/{frame:06d}"
                    expected[name] = {
                        "side": side,
                        "position": position,
                        "invalid": invalid,
                        "contact": contact,
                        "joints": joints,
                        "hand_verts": hand_verts,
                        "pose_y": pose_y[1].astype(np.float32).astype(np.float64),
                        "depth_mm": 600 + frame,
                    }
    return expected


@pytest.fixture(scope="module")
def mano(tmp_path_factory: pytest.TempPathFactory) -> ManoLayer:
    path = mano_fixture.write_mano_fixture(tmp_path_factory.mktemp("mano"))
    return ManoLayer(
        path, use_pca=True, num_pca_comps=45, flat_hand_mean=False, tip_vertex_ids=mano_fixture.TIP_VERTEX_IDS
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, mano: ManoLayer) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("dexycb")
    return root, build_dexycb(root, mano)


def reader(root: Path, split: str, **kwargs) -> DexYCBReader:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*folders of the .* split are missing")
        return DexYCBReader(root, split, **kwargs)


def expected_names(expected: dict, split: str, contact_only: bool = False) -> list[str]:
    names = []
    for name, info in expected.items():
        subject = name.split("/")[0]
        in_split = {
            "train": info["position"] % 5 != 4,
            "val": info["position"] % 5 == 4 and subject in SUBJECTS[:2],
            "test": info["position"] % 5 == 4 and subject in SUBJECTS[2:],
        }[split]
        if (
            in_split
            and info["side"] == "right"
            and not info["invalid"]
            and (info["contact"] or not contact_only)
        ):
            names.append(name)
    return names


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_s0_split_counts_and_order(dataset, mano, split):
    root, expected = dataset
    frames = list(reader(root, split, mano=mano))
    assert [f.name for f in frames] == expected_names(expected, split, contact_only=split == "test")
    assert {"train": 27, "val": 4, "test": 2}[split] == len(frames)
    assert all(int(f.name[-6:]) % 5 == 0 for f in frames)


def test_missing_subject_and_camera_folders_are_reported(dataset, mano):
    root, _ = dataset
    with pytest.warns(UserWarning, match="1 subject folders and 6 camera folders of the val split"):
        DexYCBReader(root, "val", mano=mano)
    with pytest.warns(UserWarning, match="7 subject folders and 6 camera folders of the test split"):
        DexYCBReader(root, "test", mano=mano, contact_filter=False)


def test_frame_contents(dataset, mano):
    root, expected = dataset
    frames = list(reader(root, "train", mano=mano))
    layer_faces = mano.faces.numpy()
    rest, cube_faces = cube()
    for frame in frames[:6]:
        info = expected[frame.name]
        serial = frame.name.split("/")[2]
        c = intrinsics(serial)
        np.testing.assert_array_equal(frame.K, [[c["fx"], 0, c["ppx"]], [0, c["fy"], c["ppy"]], [0, 0, 1]])
        np.testing.assert_array_equal(frame.gt["K"], frame.K)
        assert frame.color.shape == (H, W, 3) and frame.color.dtype == np.uint8
        assert (
            frame.color[:, : W // 2, 0].mean() > 200 and frame.color[:, : W // 2, 2].mean() < 60
        )  # RGB order
        assert frame.depth_m.dtype == np.float32
        assert frame.depth_m[20, 20] == pytest.approx(info["depth_mm"] / 1000)
        assert frame.depth_m[0, 0] == 0.0
        np.testing.assert_allclose(frame.gt["hand_joints"], info["joints"], atol=1e-6)
        np.testing.assert_allclose(frame.gt["hand_verts"], info["hand_verts"], atol=1e-6)
        np.testing.assert_array_equal(frame.gt["hand_faces"], layer_faces)
        # Labels and MANO agree on the common order: the wrist is MANO's root, tips are tip vertices.
        tips = frame.gt["hand_verts"][list(mano_fixture.TIP_VERTEX_IDS)]
        np.testing.assert_allclose(frame.gt["hand_joints"][[4, 8, 12, 16, 20]], tips, atol=1e-6)
        R, t = info["pose_y"][:, :3], info["pose_y"][:, 3]
        np.testing.assert_allclose(frame.gt["object_verts"], rest @ R.T + t, atol=1e-6)
        np.testing.assert_array_equal(frame.gt["object_faces"], cube_faces)
        np.testing.assert_allclose(frame.gt["object_center"], R @ (CUBE_MIN + CUBE_SIZE / 2) + t, atol=1e-6)
        mask = frame.gt["mask"]
        assert (mask[10:20, 10:20] == 1).all() and (mask[30:40, 30:40] == 2).all()
        assert (mask[30:40, 5:10] == 0).all() and mask.sum() == 100 + 2 * 100
        assert frame.extras["ycb_id"] == GRASPED and frame.extras["mano_pose"].shape == (48,)
        np.testing.assert_allclose(frame.extras["mano_betas"], BETAS, atol=1e-6)


def test_test_split_contact_filter(dataset, mano):
    root, _ = dataset
    frames = list(reader(root, "test", mano=mano))
    for frame in frames:
        hand = frame.gt["hand_verts"].astype(np.float64)
        gaps = np.linalg.norm(frame.gt["object_verts"][:, None] - hand[None], axis=2).min()
        assert gaps <= 0.005
    unfiltered = list(reader(root, "test", mano=mano, contact_filter=False))
    assert len(unfiltered) == 4 and len(frames) == 2


def test_without_mano_frames_lack_hand_mesh_and_say_so(dataset, monkeypatch):
    root, _ = dataset
    monkeypatch.delenv(MANO_DIR_ENV, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        test = DexYCBReader(root, "test")
        frames = list(test)
    messages = [str(w.message) for w in caught if "MANO" in str(w.message)]
    assert len(messages) == 1 and "contact filter is not applied" in messages[0]
    assert not test.has_hand_mesh
    assert len(frames) == 4  # no contact filter without a hand mesh
    assert all("hand_verts" not in f.gt and "hand_joints" in f.gt for f in frames)


def test_mano_layer_must_match_dexycb_convention(dataset, mano):
    root, _ = dataset
    flat = ManoLayer(
        mano.model_path,
        use_pca=True,
        num_pca_comps=45,
        flat_hand_mean=True,
        tip_vertex_ids=mano_fixture.TIP_VERTEX_IDS,
    )
    with pytest.raises(C2FError, match="flat_hand_mean=False"):
        DexYCBReader(root, "val", mano=flat)


def test_clear_errors(tmp_path, mano):
    with pytest.raises(C2FError, match="DexYCB root not found"):
        DexYCBReader(tmp_path / "nowhere", "train", mano=mano)
    with pytest.raises(C2FError, match="holds none of the test subjects"):
        DexYCBReader(tmp_path, "test", mano=mano)
    broken = tmp_path / "broken"
    (broken / SUBJECTS[2] / "20200820_135508").mkdir(parents=True)  # position 0: a train sequence
    with pytest.raises(C2FError, match=r"meta file not found: .*20200820_135508/meta\.yml"):
        DexYCBReader(broken, "train", mano=mano)


def test_unreadable_image_is_named(dataset, mano):
    root, _ = dataset
    val = reader(root, "val", mano=mano)
    sample = val.samples[0]
    bad = root / sample.subject / sample.sequence / sample.serial / "color_000000.jpg"
    original = bad.read_bytes()
    bad.write_bytes(b"not a jpeg")
    try:
        with pytest.raises(C2FError, match="color_000000.jpg"):
            val.read(0)
    finally:
        bad.write_bytes(original)
