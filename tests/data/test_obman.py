"""ObMan reader on a tiny tree in the released layout (rgb, depth, segm, meta pkl, ShapeNet models)."""

from __future__ import annotations

import importlib.util
import json
import pickle
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from c2f_core.data.obman import ObManReader, decode_obman_depth, obman_K
from c2f_core.errors import C2FError
from c2f_core.hands.mano import ManoLayer
from c2f_core.hands.mano_file import MANO_DIR_ENV, load_mano_model


def _load_mano_fixture():
    path = Path(__file__).resolve().parents[1] / "hands" / "mano_fixture.py"
    spec = importlib.util.spec_from_file_location("obman_test_mano_fixture", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mano_fixture = _load_mano_fixture()

SIZE = 256
GL = np.diag([1.0, -1.0, -1.0])
NEAR_Z, FAR_Z = 0.55, 0.70  # planar depth (OpenCV z) of two regions of the scene
OBJECTS = {
    "00000000": ("02876657", "aaa111", "obj"),
    "00000001": ("02876657", "aaa111", "obj"),
    "00000002": ("03797390", "bbb222", "pkl"),
}
SPLIT_IDS = ["00000000", "00000002"]


def unit_box() -> tuple[np.ndarray, np.ndarray]:
    verts = np.array(np.meshgrid([-0.5, 0.5], [-0.3, 0.3], [-0.4, 0.4], indexing="ij")).reshape(3, -1).T
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6]])
    return verts, faces


def radial_distance(z: np.ndarray) -> np.ndarray:
    """What Cycles stores for planar depth z: the distance from the camera centre along each pixel ray."""
    K = obman_K()
    v, u = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    return z * np.sqrt(1 + ((u - K[0, 2]) / K[0, 0]) ** 2 + ((v - K[1, 2]) / K[1, 1]) ** 2)


def scene_depth() -> np.ndarray:
    z = np.zeros((SIZE, SIZE))
    z[40:200, 30:130] = NEAR_Z
    z[60:230, 130:250] = FAR_Z
    return z


def encode_depth(distance: np.ndarray) -> tuple[np.ndarray, float, float]:
    """obman_render's convert_depth: 1..255 over the valid range, 0 for background; (min, max) swapped."""
    valid = distance > 0
    low, high = distance[valid].min(), distance[valid].max()
    values = np.zeros(distance.shape, np.uint8)
    values[valid] = np.round(254 * (distance[valid] - low) / (high - low) + 1).astype(np.uint8)
    return values, float(high), float(low)  # stored as depth_min=high, depth_max=low, as ObMan did


def write_frame(split_dir: Path, frame_id: str, hand_verts: np.ndarray, joints: np.ndarray, rng) -> dict:
    class_id, sample_id, _ = OBJECTS[frame_id]
    rotation = cv2.Rodrigues(rng.normal(0, 0.8, 3))[0]
    scale = 0.12
    t_gl = np.array([0.03, -0.02, -0.62])
    affine = np.eye(4)
    affine[:3, :3] = scale * rotation
    affine[:3, 3] = t_gl
    distance = radial_distance(scene_depth())
    values, depth_min, depth_max = encode_depth(distance)
    cv2.imwrite(
        str(split_dir / "depth" / f"{frame_id}.png"), np.stack([values, values // 2, 255 - values], axis=2)
    )
    segm = np.zeros((SIZE, SIZE), np.uint8)
    segm[50:60, 50:60] = 22
    segm[60:70, 50:60] = 24
    segm[100:120, 150:170] = 100
    cv2.imwrite(
        str(split_dir / "segm" / f"{frame_id}.png"),
        np.stack([segm, np.full_like(segm, 22), segm // 2], axis=2),
    )
    bgr = np.zeros((SIZE, SIZE, 3), np.uint8)
    bgr[:, :128] = (255, 0, 0)  # blue in BGR
    cv2.imwrite(str(split_dir / "rgb" / f"{frame_id}.jpg"), bgr)
    meta = {
        "side": "right",
        "coords_2d": np.zeros((21, 2), np.float32),
        "coords_3d": (joints @ GL.T).astype(np.float32),
        "verts_3d": (hand_verts @ GL.T).astype(np.float32),
        "affine_transform": affine.astype(np.float32),
        "obj_path": f"/sequoia/data2/dataset/shapenet/ShapeNetCore.v2/{class_id}/{sample_id}/models/model_normalized.obj",
        "obj_scale": scale,
        "class_id": class_id,
        "sample_id": sample_id,
        "pca_pose": rng.normal(0, 1, 45).astype(np.float32),
        "hand_pose": rng.normal(0, 0.3, 45).astype(np.float32),
        "grasp_quality": 0.1,
        "depth_min": np.float32(depth_min),
        "depth_max": np.float32(depth_max),
        "hand_depth_min": np.float32(depth_min),
        "hand_depth_max": np.float32(depth_max),
        "obj_depth_min": np.float32(depth_min),
        "obj_depth_max": np.float32(depth_max),
        "bg_path": "/sequoia/data2/lsun/img/x.jpg",
        "sh_coeffs": rng.normal(0, 1, 9),
    }
    with open(split_dir / "meta" / f"{frame_id}.pkl", "wb") as handle:
        pickle.dump(meta, handle)
    return {
        "affine": affine.astype(np.float32).astype(np.float64),
        "joints": joints,
        "hand_verts": hand_verts,
    }


def build_obman(root: Path, mano: ManoLayer) -> dict:
    rng = np.random.default_rng(0)
    expected = {}
    for split, ids in (("train", list(OBJECTS)), ("test", ["00000000", "00000001"])):
        split_dir = root / split
        for sub in ("rgb", "depth", "segm", "meta"):
            (split_dir / sub).mkdir(parents=True)
        for frame_id in ids:
            with torch.no_grad():
                out = mano(torch.tensor(rng.normal(0, 0.3, (1, 48)), dtype=torch.float32))
            # The hand in OpenCV coordinates, ~60 cm in front of the camera.
            hand_verts = out.vertices[0].double().numpy() + [0.0, 0.0, 0.6]
            joints = out.joints[0].double().numpy() + [0.0, 0.0, 0.6]
            expected[(split, frame_id)] = write_frame(split_dir, frame_id, hand_verts, joints, rng)
    (root / "splits").mkdir()
    (root / "splits" / "train_87k.json").write_text(json.dumps(SPLIT_IDS))
    return expected


def build_shapenet(root: Path) -> None:
    verts, faces = unit_box()
    for class_id, sample_id, kind in set(OBJECTS.values()):
        model_dir = root / class_id / sample_id / "models"
        model_dir.mkdir(parents=True)
        if kind == "obj":
            lines = [f"v {x} {y} {z}" for x, y, z in verts] + [
                f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces
            ]
            (model_dir / "model_normalized.obj").write_text("\n".join(lines) + "\n")
        else:
            with open(model_dir / "model_normalized.pkl", "wb") as handle:
                pickle.dump({"vertices": verts.astype(np.float32), "faces": faces}, handle)


@pytest.fixture(scope="module")
def mano_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mano_fixture.write_mano_fixture(tmp_path_factory.mktemp("mano"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, mano_path: Path) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("obman")
    shapenet = tmp_path_factory.mktemp("shapenet")
    mano = ManoLayer(mano_path, tip_vertex_ids=mano_fixture.TIP_VERTEX_IDS)
    expected = build_obman(root, mano)
    build_shapenet(shapenet)
    return root, shapenet, expected


def test_split_file_selects_frames_else_all(dataset, mano_path):
    root, shapenet, _ = dataset
    train = ObManReader(root, "train", shapenet_root=shapenet, mano=mano_path)
    assert [f.name for f in train] == [f"obman/train/{i}" for i in SPLIT_IDS]
    test = ObManReader(root, "test", shapenet_root=shapenet, mano=mano_path)  # no test_6k.json: every frame
    assert len(test) == 2 and [f.extras["id"] for f in test] == ["00000000", "00000001"]
    listed = root / "all.json"
    listed.write_text(json.dumps(list(OBJECTS)))
    assert len(ObManReader(root, "train", shapenet_root=shapenet, mano=mano_path, split_file=listed)) == 3


def test_frame_contents(dataset, mano_path):
    root, shapenet, expected = dataset
    model = load_mano_model(mano_path)
    box_verts, box_faces = unit_box()
    for frame in ObManReader(root, "train", shapenet_root=shapenet, mano=model):
        info = expected[("train", frame.extras["id"])]
        np.testing.assert_array_equal(frame.K, [[480, 0, 127.5], [0, 480, 127.5], [0, 0, 1]])
        assert frame.color.shape == (SIZE, SIZE, 3)
        assert frame.color[:, :128, 2].mean() > 200 and frame.color[:, :128, 0].mean() < 60  # RGB order
        np.testing.assert_allclose(frame.gt["hand_joints"], info["joints"], atol=1e-6)
        np.testing.assert_allclose(frame.gt["hand_verts"], info["hand_verts"], atol=1e-6)
        assert (frame.gt["hand_joints"][:, 2] > 0.4).all()  # in front of an OpenCV camera
        np.testing.assert_array_equal(frame.gt["hand_faces"], model.faces)
        affine = info["affine"]
        posed_gl = box_verts @ affine[:3, :3].T + affine[:3, 3]
        np.testing.assert_allclose(frame.gt["object_verts"], posed_gl @ GL.T, atol=1e-6)
        np.testing.assert_array_equal(frame.gt["object_faces"], box_faces)
        np.testing.assert_allclose(frame.gt["object_center"], GL @ affine[:3, 3], atol=1e-7)
        mask = frame.gt["mask"]
        assert (mask[50:70, 50:60] == 1).all() and (mask[100:120, 150:170] == 2).all()
        assert mask.sum() == 200 + 2 * 400
        assert frame.extras["class_id"] == OBJECTS[frame.extras["id"]][0]


def test_depth_is_metric_z(dataset, mano_path):
    root, shapenet, _ = dataset
    truth = scene_depth()
    distance = radial_distance(truth)
    step = (distance.max() - distance[truth > 0].min()) / 254  # one 8-bit level
    frame = ObManReader(root, "train", shapenet_root=shapenet, mano=mano_path).read(0)
    assert frame.depth_m.dtype == np.float32
    assert (frame.depth_m[truth == 0] == 0).all()
    np.testing.assert_allclose(frame.depth_m[truth > 0], truth[truth > 0], atol=0.5 * step + 1e-6)
    as_stored = ObManReader(
        root, "train", shapenet_root=shapenet, mano=mano_path, depth_is_radial=False
    ).read(0)
    np.testing.assert_allclose(as_stored.depth_m[truth > 0], distance[truth > 0], atol=0.5 * step + 1e-6)
    # The nearest valid pixel is stored as 1 and the farthest as 255, as ObMan's renderer wrote them.
    values = np.array([[0, 1, 255]], np.uint8)
    np.testing.assert_allclose(
        decode_obman_depth(values, 0.9, 0.5, obman_K(), radial=False), [[0, 0.5, 0.9]], atol=1e-7
    )


def test_missing_shapenet_and_mano_are_announced(dataset, monkeypatch):
    root, _, _ = dataset
    monkeypatch.delenv(MANO_DIR_ENV, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reader = ObManReader(root, "train")
        frames = list(reader)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert any("ShapeNet" in m and "shapenet_root" in m for m in messages)
    assert any(MANO_DIR_ENV in m and "hand_faces" in m for m in messages)
    for frame in frames:
        assert "object_verts" not in frame.gt and "hand_faces" not in frame.gt
        assert frame.gt["object_center"].shape == (3,) and frame.gt["hand_verts"].shape == (
            mano_fixture.NUM_VERTS,
            3,
        )


def test_clear_errors(tmp_path, dataset, mano_path):
    root, shapenet, _ = dataset
    with pytest.raises(C2FError, match="ObMan root not found"):
        ObManReader(tmp_path / "nowhere", "train", shapenet_root=shapenet, mano=mano_path)
    with pytest.raises(C2FError, match="ShapeNet root not found"):
        ObManReader(root, "train", shapenet_root=tmp_path / "no_shapenet", mano=mano_path)
    listed = tmp_path / "ids.json"
    listed.write_text(json.dumps(["00000009"]))
    reader = ObManReader(root, "train", shapenet_root=shapenet, mano=mano_path, split_file=listed)
    with pytest.raises(C2FError, match=r"ObMan meta file not found: .*00000009\.pkl"):
        reader.read(0)
    empty_shapenet = tmp_path / "empty_shapenet"
    empty_shapenet.mkdir()
    with pytest.raises(
        C2FError, match="ShapeNet model not found: .*02876657/aaa111/models/model_normalized.obj"
    ):
        ObManReader(root, "train", shapenet_root=empty_shapenet, mano=mano_path).read(0)


def test_unreadable_image_is_named(dataset, mano_path):
    root, shapenet, _ = dataset
    bad = root / "train" / "depth" / "00000002.png"
    original = bad.read_bytes()
    bad.write_bytes(original[:40])
    try:
        with pytest.raises(C2FError, match="00000002.png"):
            ObManReader(root, "train", shapenet_root=shapenet, mano=mano_path).read(1)
    finally:
        bad.write_bytes(original)
