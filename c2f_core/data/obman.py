"""ObMan (Hasson et al., CVPR 2019) read from its released layout, with gSDF's 87K/6K split lists.

Layout under ROOT (the folder holding train/, val/, test/):
    <split>/rgb/NNNNNNNN.jpg         256 x 256 colour
    <split>/depth/NNNNNNNN.png       8-bit, 3 channels written by OpenCV: (scene, hand, object)
    <split>/segm/NNNNNNNN.png        8-bit, 3 channels written by OpenCV: (scene, hand, object)
    <split>/meta/NNNNNNNN.pkl        coords_3d (21, 3), verts_3d (778, 3), depth_min, depth_max,
                                     affine_transform (4, 4), class_id, sample_id, obj_path, ...
    splits/train_87k.json, splits/test_6k.json   (optional; gSDF's lists of ids)
Objects come from ShapeNetCore.v2: <shapenet>/<class_id>/<sample_id>/models/model_normalized.obj.

Frames, as ObMan's renderer (obman_render) wrote them:
- 3D data are in Blender's camera frame (OpenGL: y up, z backward); diag(1, -1, -1) turns them
  into the OpenCV frame.
- The camera is a 60 mm lens on a 32 mm sensor at 256 x 256: fx = fy = 480 px, and the optical axis
  meets the image centre, 128 px from the edge; in this project's pixel-centre convention that is
  cx = cy = 127.5 (the reference code and ObMan's 2D labels use 128, the edge-based value).
- Depth: value v in 1..255 maps linearly to the rendered depth range, v = 0 is background. The
  renderer stored the range under swapped names (its `convert_depth` returns (depth, max, min)),
  so metric depth is d = (v - 1) / 254 * (depth_min - depth_max) + depth_max with the meta keys
  as named, as in obman_train's reader. Cycles (Blender 2.7x) wrote the distance from the camera
  centre, not the z coordinate; `depth_is_radial` converts it to z (see `ObManReader`).
- The object: ShapeNet vertices mapped by `affine_transform` (which includes the object's scale),
  as in the dataset's own loader (github hassony2/obman, `get_obj_verts_faces`).
"""

from __future__ import annotations

import json
import re
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from c2f_core.errors import C2FError
from c2f_core.hands.mano_file import ManoModel, load_mano_model, resolve_mano_path
from c2f_core.io.frames import RGBDFrame
from c2f_core.io.images import read_color
from c2f_core.io.mesh_io import read_mesh
from c2f_core.io.safe_pickle import load_restricted_pickle

IMAGE_SIZE = 256
FOCAL_PX = 480.0
PRINCIPAL_POINT_PX = 127.5
"""OpenCV (pixel-centre) principal point of ObMan's Blender camera; see the module docstring."""

OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
"""ObMan's `cam_extr` rotation: Blender camera frame (y up, z backward) to OpenCV (y down, z forward)."""

SPLIT_FILES = {"train": "train_87k.json", "test": "test_6k.json"}
"""gSDF's split lists (87,190 training and 6,285 test ids), looked for in ROOT/splits/."""

SEGM_HAND = {"right": (22, 24), "left": (21, 23)}
"""Segmentation values of the hand (hand base and fingers) per side; the object is 100."""
SEGM_OBJECT = 100

# Image channels as stored: OpenCV wrote (scene, hand, object) as (B, G, R); read as RGB the scene
# is the last channel.
_SCENE_CHANNEL_RGB = 2

_META_KEYS = ("coords_3d", "verts_3d", "depth_min", "depth_max", "affine_transform")
_ID_PATTERN = re.compile(r"^\d{8}$")
_MESH_CACHE_SIZE = 64


def obman_K() -> np.ndarray:
    """The (3, 3) float64 intrinsics shared by every ObMan image (OpenCV pixel-centre convention)."""
    return np.array(
        [[FOCAL_PX, 0.0, PRINCIPAL_POINT_PX], [0.0, FOCAL_PX, PRINCIPAL_POINT_PX], [0.0, 0.0, 1.0]]
    )


def decode_obman_depth(
    values: np.ndarray, depth_min_key: float, depth_max_key: float, K: np.ndarray, radial: bool = True
) -> np.ndarray:
    """Metric depth z (H, W) float32 metres from ObMan's 8-bit scene depth channel (0 = none).

    Args:
        values: (H, W) uint8 scene channel of `depth/NNNNNNNN.png`.
        depth_min_key: the meta's `depth_min` (the far end of the range, despite its name).
        depth_max_key: the meta's `depth_max` (the near end).
        K: (3, 3) intrinsics, used to turn distance along the ray into z when `radial`.
        radial: the stored value is the distance from the camera centre (Cycles' Z pass).
    """
    v = values.astype(np.float64)
    distance = (v - 1.0) / 254.0 * (depth_min_key - depth_max_key) + depth_max_key
    if radial:
        height, width = values.shape
        u, w = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
        x = (u - K[0, 2]) / K[0, 0]
        y = (w - K[1, 2]) / K[1, 1]
        distance = distance / np.sqrt(1.0 + x * x + y * y)
    distance[values == 0] = 0.0
    return distance.astype(np.float32)


def _shapenet_ids(meta: dict, source: Path) -> tuple[str, str]:
    """(class_id, sample_id) of the object, from the meta's ids or its original `obj_path`."""
    if "class_id" in meta and "sample_id" in meta:
        return str(meta["class_id"]), str(meta["sample_id"])
    if "obj_path" in meta:
        parts = Path(str(meta["obj_path"])).parts
        if len(parts) >= 4 and parts[-2] == "models":
            return parts[-4], parts[-3]
    raise C2FError(f"ObMan meta {source} names no object (no class_id/sample_id or obj_path)")


class ObManReader:
    """Iterate ObMan frames as `RGBDFrame`s with ground truth.

    Ground truth (`frame.gt`, metres, OpenCV camera frame): `hand_joints` (21, 3) in the common
    order (ObMan's own order), `hand_verts` (778, 3), `object_center` (the object model's origin,
    posed, as C2F-SDF defines it), `K`, and when available `hand_faces` (from the MANO file),
    `object_verts`/`object_faces` (from ShapeNet) and `mask` (0 background, 1 hand, 2 object).
    """

    def __init__(
        self,
        root: str | Path,
        split: Literal["train", "val", "test"] = "train",
        *,
        shapenet_root: str | Path | None = None,
        split_file: str | Path | None = None,
        mano: ManoModel | str | Path | None = None,
        depth_is_radial: bool = True,
    ) -> None:
        """List the split's frames.

        Args:
            root: the ObMan folder holding train/, val/, test/ (and optionally splits/).
            split: which folder to read.
            shapenet_root: ShapeNetCore.v2 folder for object meshes; None reads frames without
                object meshes (with one warning).
            split_file: a JSON list of 8-digit ids; by default ROOT/splits/train_87k.json for
                train and ROOT/splits/test_6k.json for test when present, else every meta file.
            mano: MANO model (or its file/folder) giving the hand's faces; None looks in
                `C2F_MANO_DIR` and, when nothing is there, leaves `hand_faces` out (one warning).
            depth_is_radial: ObMan's depth is Cycles' distance to the camera centre; convert it to
                z. Set False to take the stored value as z (what gSDF/C2F-SDF do).
        """
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise C2FError(
                f"ObMan root not found: {self.root} (expected the folder holding train/ and test/)"
            )
        if split not in ("train", "val", "test"):
            raise C2FError(f"ObMan split must be train, val or test, got {split!r}")
        self.split = split
        self.split_dir = self.root / split
        for sub in ("rgb", "depth", "meta"):
            if not (self.split_dir / sub).is_dir():
                raise C2FError(f"ObMan folder not found: {self.split_dir / sub}")
        self.depth_is_radial = depth_is_radial
        self.K = obman_K()
        self.shapenet_root = self._check_shapenet(shapenet_root)
        self.mano = self._load_mano(mano)
        self.split_file = self._find_split_file(split_file)
        self.ids = self._read_ids()
        self._meshes: OrderedDict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def _check_shapenet(self, shapenet_root: str | Path | None) -> Path | None:
        if shapenet_root is None:
            warnings.warn(
                "ObMan: no ShapeNet root given, so frames carry no object mesh (object_verts/"
                "object_faces); pass shapenet_root=<ShapeNetCore.v2 folder> (from shapenet.org)",
                stacklevel=3,
            )
            return None
        path = Path(shapenet_root).expanduser()
        if not path.is_dir():
            raise C2FError(
                f"ShapeNet root not found: {path} (expected ShapeNetCore.v2/<class_id>/<sample_id>/...)"
            )
        return path

    def _load_mano(self, mano: ManoModel | str | Path | None) -> ManoModel | None:
        if isinstance(mano, ManoModel):
            return mano
        if mano is None:
            try:
                resolve_mano_path(None, "right")
            except C2FError as exc:
                warnings.warn(f"ObMan: {exc}. Frames carry hand vertices but no hand_faces.", stacklevel=3)
                return None
        return load_mano_model(mano, "right")

    def _find_split_file(self, split_file: str | Path | None) -> Path | None:
        if split_file is not None:
            path = Path(split_file).expanduser()
            if not path.is_file():
                raise C2FError(f"ObMan split file not found: {path}")
            return path
        default = self.root / "splits" / SPLIT_FILES.get(self.split, "")
        return default if self.split in SPLIT_FILES and default.is_file() else None

    def _read_ids(self) -> list[str]:
        if self.split_file is None:
            return sorted(p.stem for p in (self.split_dir / "meta").glob("*.pkl"))
        try:
            ids = json.loads(self.split_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise C2FError(f"cannot read ObMan split file {self.split_file}: {exc}") from None
        if not isinstance(ids, list) or not all(isinstance(i, str) and _ID_PATTERN.match(i) for i in ids):
            raise C2FError(f"ObMan split file {self.split_file} must be a JSON list of 8-digit id strings")
        return ids

    def __len__(self) -> int:
        """Number of frames in the split."""
        return len(self.ids)

    def __iter__(self) -> Iterator[RGBDFrame]:
        """Yield the split's frames in the order of the split file (or of the ids)."""
        for index in range(len(self.ids)):
            yield self.read(index)

    def read(self, index: int) -> RGBDFrame:
        """Read frame `index` of the split."""
        frame_id = self.ids[index]
        meta_path = self.split_dir / "meta" / f"{frame_id}.pkl"
        meta = load_restricted_pickle(meta_path, what="ObMan meta")
        if not isinstance(meta, dict):
            raise C2FError(f"ObMan meta {meta_path} is not a dictionary")
        missing = [key for key in _META_KEYS if key not in meta]
        if missing:
            raise C2FError(f"ObMan meta {meta_path} lacks key '{missing[0]}'")

        color = read_color(self.split_dir / "rgb" / f"{frame_id}.jpg")
        depth_png = read_color(self.split_dir / "depth" / f"{frame_id}.png")
        depth_m = decode_obman_depth(
            depth_png[..., _SCENE_CHANNEL_RGB],
            float(meta["depth_min"]),
            float(meta["depth_max"]),
            self.K,
            radial=self.depth_is_radial,
        )
        side = str(meta.get("side", "right"))
        affine = np.asarray(meta["affine_transform"], dtype=np.float64)
        if affine.shape != (4, 4):
            raise C2FError(
                f"ObMan meta {meta_path}: affine_transform has shape {affine.shape}, expected (4, 4)"
            )
        gt: dict[str, np.ndarray] = {
            "hand_joints": self._to_opencv(meta["coords_3d"], (21, 3), "coords_3d", meta_path),
            "hand_verts": self._to_opencv(meta["verts_3d"], (None, 3), "verts_3d", meta_path),
            "object_center": (OPENGL_TO_OPENCV @ affine[:3, 3]).astype(np.float32),
            "K": self.K.copy(),
        }
        if self.mano is not None:
            if self.mano.faces.max() >= len(gt["hand_verts"]):
                raise C2FError(
                    f"MANO faces of {self.mano.path} do not fit the {len(gt['hand_verts'])} hand vertices of {meta_path}"
                )
            gt["hand_faces"] = self.mano.faces.copy()
        extras: dict[str, Any] = {"split": self.split, "id": frame_id, "side": side}
        if self.shapenet_root is not None:
            class_id, sample_id = _shapenet_ids(meta, meta_path)
            extras.update(class_id=class_id, sample_id=sample_id)
            verts, faces = self._shapenet_mesh(class_id, sample_id)
            posed = verts @ affine[:3, :3].T + affine[:3, 3]
            gt["object_verts"] = (posed @ OPENGL_TO_OPENCV.T).astype(np.float32)
            gt["object_faces"] = faces
        segm_path = self.split_dir / "segm" / f"{frame_id}.png"
        if segm_path.is_file():
            segm = read_color(segm_path)[..., _SCENE_CHANNEL_RGB]
            mask = np.zeros(segm.shape, dtype=np.uint8)
            mask[np.isin(segm, SEGM_HAND.get(side, SEGM_HAND["right"]))] = 1
            mask[segm == SEGM_OBJECT] = 2
            gt["mask"] = mask
        for key in ("class_id", "sample_id"):
            if key in meta:
                extras.setdefault(key, str(meta[key]))
        for key in ("pca_pose", "hand_pose", "obj_scale"):
            if key in meta:
                extras[key] = np.asarray(meta[key])
        return RGBDFrame(
            index=index,
            color=color,
            depth_m=depth_m,
            K=self.K.copy(),
            gt=gt,
            name=f"obman/{self.split}/{frame_id}",
            extras=extras,
        )

    @staticmethod
    def _to_opencv(points: Any, shape: tuple[int | None, int], key: str, source: Path) -> np.ndarray:
        array = np.asarray(points, dtype=np.float64)
        if (
            array.ndim != 2
            or array.shape[1] != shape[1]
            or (shape[0] is not None and array.shape[0] != shape[0])
        ):
            raise C2FError(f"ObMan meta {source}: '{key}' has shape {array.shape}, expected {shape}")
        return (array @ OPENGL_TO_OPENCV.T).astype(np.float32)

    def _shapenet_mesh(self, class_id: str, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
        """ShapeNet model vertices (V, 3) in its own frame and faces (F, 3), cached."""
        key = (class_id, sample_id)
        if key in self._meshes:
            self._meshes.move_to_end(key)
            return self._meshes[key]
        assert self.shapenet_root is not None
        model_dir = self.shapenet_root / class_id / sample_id / "models"
        obj_path, pkl_path = model_dir / "model_normalized.obj", model_dir / "model_normalized.pkl"
        if obj_path.is_file():
            mesh = read_mesh(obj_path)
            verts, faces = np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)
        elif pkl_path.is_file():  # obman_train's cache of the same mesh
            data = load_restricted_pickle(pkl_path, what="ShapeNet mesh cache")
            if not isinstance(data, dict) or "vertices" not in data or "faces" not in data:
                raise C2FError(f"{pkl_path} holds no 'vertices'/'faces'")
            verts, faces = np.asarray(data["vertices"], np.float64), np.asarray(data["faces"], np.int64)
        else:
            raise C2FError(f"ShapeNet model not found: {obj_path} (is {self.shapenet_root} ShapeNetCore.v2?)")
        self._meshes[key] = (verts, faces)
        if len(self._meshes) > _MESH_CACHE_SIZE:
            self._meshes.popitem(last=False)
        return verts, faces
