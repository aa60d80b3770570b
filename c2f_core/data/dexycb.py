"""DexYCB (Chao et al., CVPR 2021) read from its released layout, with the s0 split C2F-SDF uses.

Layout under ROOT (the folder the DexYCB toolkit calls DEX_YCB_DIR):
    <subject>/<sequence>/meta.yml            num_frames, ycb_ids, ycb_grasp_ind, mano_sides, mano_calib
    <subject>/<sequence>/<serial>/color_NNNNNN.jpg
    <subject>/<sequence>/<serial>/aligned_depth_to_color_NNNNNN.png     uint16 millimetres, 0 = none
    <subject>/<sequence>/<serial>/labels_NNNNNN.npz    seg, pose_y, pose_m, joint_3d, joint_2d
    calibration/intrinsics/<serial>_640x480.yml        color: fx, fy, ppx, ppy
    calibration/mano_<mano_calib>/mano.yml             betas
    models/<ycb name>/textured_simple.obj              metres

Labels are in the colour camera's frame (OpenCV, metres): `pose_y` (n_obj, 3, 4) maps each YCB
model into the camera, `joint_3d` (1, 21, 3) is already in the common joint order (-1 everywhere
when the hand is not annotated), and `pose_m` (1, 51) is MANO: global axis-angle, 45 PCA
coefficients with the mean hand added (manopth's flat_hand_mean=False), then translation.

Split s0 (the toolkit's `dex_ycb.py`): every subject and camera; a sequence's position in its
subject's sorted folder list decides it (train: position % 5 != 4; val: subjects 1-2 and
position % 5 == 4; test: subjects 3-10 and position % 5 == 4). C2F-SDF keeps right hands and every
5th frame, and keeps a test frame only when the closest object vertex lies within 5 mm of a MANO
hand vertex; that filter needs the MANO model (see `hands.mano_file`) and is skipped without it.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import yaml
from scipy.spatial import cKDTree

from c2f_core.errors import C2FError
from c2f_core.hands.mano import ManoLayer
from c2f_core.hands.mano_file import resolve_mano_path
from c2f_core.io.frames import RGBDFrame
from c2f_core.io.images import read_color, read_depth_raw
from c2f_core.io.mesh_io import read_mesh

SUBJECTS = (
    "20200709-subject-01",
    "20200813-subject-02",
    "20200820-subject-03",
    "20200903-subject-04",
    "20200908-subject-05",
    "20200918-subject-06",
    "20200928-subject-07",
    "20201002-subject-08",
    "20201015-subject-09",
    "20201022-subject-10",
)
"""Subject folders, in the toolkit's order (split rules index this list)."""

SERIALS = (
    "836212060125",
    "839512060362",
    "840412060917",
    "841412060263",
    "932122060857",
    "932122060861",
    "932122061900",
    "932122062010",
)
"""Camera serial folders, in the toolkit's order."""

YCB_CLASSES = {
    1: "002_master_chef_can",
    2: "003_cracker_box",
    3: "004_sugar_box",
    4: "005_tomato_soup_can",
    5: "006_mustard_bottle",
    6: "007_tuna_fish_can",
    7: "008_pudding_box",
    8: "009_gelatin_box",
    9: "010_potted_meat_can",
    10: "011_banana",
    11: "019_pitcher_base",
    12: "021_bleach_cleanser",
    13: "024_bowl",
    14: "025_mug",
    15: "035_power_drill",
    16: "036_wood_block",
    17: "037_scissors",
    18: "040_large_marker",
    19: "051_large_clamp",
    20: "052_extra_large_clamp",
    21: "061_foam_brick",
}
"""YCB object id (as in `ycb_ids` and the `seg` labels) to model folder name."""

S0_SUBJECTS = {"train": tuple(range(10)), "val": (0, 1), "test": tuple(range(2, 10))}
"""Indices into `SUBJECTS` of each s0 split."""

SEG_HAND = 255
"""`seg` label of hand pixels (objects are labelled by their YCB id, background 0)."""

DEPTH_UNIT_M = 0.001
"""Metres per unit of `aligned_depth_to_color_*.png`."""

CONTACT_THRESHOLD_M = 0.005
"""C2F-SDF's test filter: the object's closest vertex must lie this close to a hand vertex."""

_META_KEYS = ("num_frames", "ycb_ids", "ycb_grasp_ind", "mano_sides", "mano_calib")
_LABEL_KEYS = ("seg", "pose_y", "pose_m", "joint_3d")


def s0_keeps_sequence(split: str, position: int) -> bool:
    """Whether the sequence at `position` in its subject's sorted folder list is in s0 `split`."""
    return position % 5 != 4 if split == "train" else position % 5 == 4


@dataclass(frozen=True)
class DexYCBSample:
    """One frame of one camera of one sequence, before its files are read."""

    subject: str
    sequence: str
    serial: str
    frame: int
    ycb_ids: tuple[int, ...]
    grasp_index: int
    side: str
    betas: tuple[float, ...]

    @property
    def name(self) -> str:
        """Stable id, e.g. `20200709-subject-01/20200709_141754/836212060125/000005`."""
        return f"{self.subject}/{self.sequence}/{self.serial}/{self.frame:06d}"

    @property
    def ycb_id(self) -> int:
        """YCB id of the grasped object."""
        return self.ycb_ids[self.grasp_index]


def _read_yaml(path: Path, what: str) -> Any:
    if not path.is_file():
        raise C2FError(f"DexYCB {what} file not found: {path}")
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        raise C2FError(f"cannot parse DexYCB {what} {path}: {exc}") from None


def _require(mapping: Any, keys: Sequence[str], path: Path, what: str) -> None:
    if not isinstance(mapping, dict) and not hasattr(mapping, "files"):
        raise C2FError(f"DexYCB {what} {path} is not a mapping")
    present = mapping.files if hasattr(mapping, "files") else mapping
    missing = [key for key in keys if key not in present]
    if missing:
        raise C2FError(f"DexYCB {what} {path} lacks key '{missing[0]}'")


class DexYCBReader:
    """Iterate the frames of one DexYCB s0 split as `RGBDFrame`s with ground truth.

    Ground truth (`frame.gt`, metres, OpenCV colour-camera frame): `hand_joints` (21, 3) common
    order, `object_verts`/`object_faces` (the grasped YCB model posed by `pose_y`),
    `object_center` (its rest bounding-box centre, posed), `mask` (H, W) uint8 (0 background,
    1 hand, 2 grasped object), `K`; with a MANO model also `hand_verts` (778, 3) and `hand_faces`
    (MANO's open mesh). `frame.extras` holds the ids and the MANO parameters.

    Frames without a hand annotation (`joint_3d` all -1) or without a pose of the grasped object
    are skipped, as are test frames failing the contact filter.
    """

    def __init__(
        self,
        root: str | Path,
        split: Literal["train", "val", "test"] = "train",
        *,
        side: Literal["right", "left"] = "right",
        frame_step: int = 5,
        mano: ManoLayer | str | Path | None = None,
        contact_filter: bool | None = None,
        contact_threshold_m: float = CONTACT_THRESHOLD_M,
    ) -> None:
        """Index the split (meta files only; images are read while iterating).

        Args:
            root: the DexYCB folder (holding the subject folders, `calibration/`, `models/`).
            split: s0 split.
            side: keep sequences of this hand (C2F-SDF: right).
            frame_step: keep frames whose number is a multiple of this (C2F-SDF: 5).
            mano: a `ManoLayer` built with `use_pca=True, num_pca_comps=45,
                flat_hand_mean=False`, or a MANO file/folder; None looks in `C2F_MANO_DIR` and,
                when nothing is there, reads frames without hand meshes (with one warning).
            contact_filter: drop frames whose object is farther than `contact_threshold_m` from
                the MANO hand; default on for the test split only (needs MANO).
            contact_threshold_m: distance for the contact filter, metres.
        """
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise C2FError(
                f"DexYCB root not found: {self.root} (expected the folder holding "
                f"{SUBJECTS[0]}/, calibration/ and models/)"
            )
        if split not in S0_SUBJECTS:
            raise C2FError(f"DexYCB split must be one of {', '.join(S0_SUBJECTS)}, got {split!r}")
        if side not in ("right", "left"):
            raise C2FError(f"DexYCB side must be 'right' or 'left', got {side!r}")
        if frame_step < 1:
            raise C2FError(f"frame_step must be >= 1, got {frame_step}")
        self.split = split
        self.side = side
        self.frame_step = frame_step
        self.contact_threshold_m = contact_threshold_m
        self.contact_filter = split == "test" if contact_filter is None else contact_filter
        self.mano = self._make_mano(mano)
        self._intrinsics: dict[str, np.ndarray] = {}
        self._objects: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.samples: list[DexYCBSample] = self._index()

    @property
    def has_hand_mesh(self) -> bool:
        """Whether frames carry `hand_verts` / `hand_faces` (a MANO model was found)."""
        return self.mano is not None

    def _make_mano(self, mano: ManoLayer | str | Path | None) -> ManoLayer | None:
        if isinstance(mano, ManoLayer):
            if not (mano.use_pca and mano.num_pca_comps == 45 and not mano.flat_hand_mean):
                raise C2FError(
                    "DexYCB's pose_m holds 45 PCA coefficients with the mean hand: build the MANO layer "
                    "with use_pca=True, num_pca_comps=45, flat_hand_mean=False"
                )
            return mano
        if mano is None:
            try:
                resolve_mano_path(None, self.side)
            except C2FError as exc:
                filtered = (
                    " and the test split's contact filter is not applied" if self.contact_filter else ""
                )
                warnings.warn(
                    f"DexYCB: {exc}. Frames carry joints and the object but no hand mesh "
                    f"(no hand_verts/hand_faces){filtered}.",
                    stacklevel=3,
                )
                return None
        return ManoLayer(mano, side=self.side, use_pca=True, num_pca_comps=45, flat_hand_mean=False)

    def _index(self) -> list[DexYCBSample]:
        wanted = [SUBJECTS[i] for i in S0_SUBJECTS[self.split]]
        present = [subject for subject in wanted if (self.root / subject).is_dir()]
        if not present:
            raise C2FError(
                f"DexYCB root {self.root} holds none of the {self.split} subjects ({', '.join(wanted)})"
            )
        samples: list[DexYCBSample] = []
        missing_cameras = 0
        for subject in present:
            sequences = sorted(p.name for p in (self.root / subject).iterdir() if p.is_dir())
            for position, sequence in enumerate(sequences):
                if not s0_keeps_sequence(self.split, position):
                    continue
                sequence_dir = self.root / subject / sequence
                meta_path = sequence_dir / "meta.yml"
                meta = _read_yaml(meta_path, "meta")
                _require(meta, _META_KEYS, meta_path, "meta")
                if meta["mano_sides"][0] != self.side:
                    continue
                betas = self._read_betas(str(meta["mano_calib"][0]))
                ycb_ids = tuple(int(i) for i in meta["ycb_ids"])
                grasp_index = int(meta["ycb_grasp_ind"])
                if not 0 <= grasp_index < len(ycb_ids) or ycb_ids[grasp_index] not in YCB_CLASSES:
                    raise C2FError(
                        f"{meta_path}: ycb_grasp_ind {grasp_index} does not pick a YCB id from {ycb_ids}"
                    )
                for serial in SERIALS:
                    if not (sequence_dir / serial).is_dir():
                        missing_cameras += 1
                        continue
                    for frame in range(0, int(meta["num_frames"]), self.frame_step):
                        samples.append(
                            DexYCBSample(
                                subject, sequence, serial, frame, ycb_ids, grasp_index, self.side, betas
                            )
                        )
        missing_subjects = len(wanted) - len(present)
        if missing_subjects or missing_cameras:
            warnings.warn(
                f"DexYCB: {missing_subjects} subject folders and {missing_cameras} camera folders of the "
                f"{self.split} split are missing under {self.root} (an incomplete download?); their frames "
                "are left out",
                stacklevel=3,
            )
        return samples

    def _read_betas(self, calib: str) -> tuple[float, ...]:
        path = self.root / "calibration" / f"mano_{calib}" / "mano.yml"
        data = _read_yaml(path, "MANO calibration")
        _require(data, ("betas",), path, "MANO calibration")
        betas = np.asarray(data["betas"], dtype=np.float64).reshape(-1)
        if betas.shape != (10,):
            raise C2FError(f"{path}: betas has {betas.size} values, expected 10")
        return tuple(float(b) for b in betas)

    def _K(self, serial: str) -> np.ndarray:
        if serial not in self._intrinsics:
            path = self.root / "calibration" / "intrinsics" / f"{serial}_640x480.yml"
            data = _read_yaml(path, "intrinsics")
            _require(data, ("color",), path, "intrinsics")
            _require(data["color"], ("fx", "fy", "ppx", "ppy"), path, "intrinsics 'color'")
            c = data["color"]
            # RealSense principal points use the OpenCV pixel-centre convention already.
            self._intrinsics[serial] = np.array(
                [[c["fx"], 0.0, c["ppx"]], [0.0, c["fy"], c["ppy"]], [0.0, 0.0, 1.0]], dtype=np.float64
            )
        return self._intrinsics[serial]

    def _object(self, ycb_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rest vertices (V, 3) metres, faces (F, 3) and the rest bounding-box centre (3,)."""
        if ycb_id not in self._objects:
            mesh = read_mesh(self.root / "models" / YCB_CLASSES[ycb_id] / "textured_simple.obj")
            verts = np.asarray(mesh.vertices, dtype=np.float64)
            center = 0.5 * (verts.min(axis=0) + verts.max(axis=0))
            self._objects[ycb_id] = (verts, np.asarray(mesh.faces, dtype=np.int64), center)
        return self._objects[ycb_id]

    def __len__(self) -> int:
        """Number of indexed frames (before skipping unannotated or filtered ones)."""
        return len(self.samples)

    def __iter__(self) -> Iterator[RGBDFrame]:
        """Yield the split's frames in the toolkit's order, skipping those `read` drops."""
        for index in range(len(self.samples)):
            frame = self.read(index)
            if frame is not None:
                yield frame

    def read(self, index: int) -> RGBDFrame | None:
        """Read indexed frame `index`; None when it has no hand/object annotation or fails the filter."""
        sample = self.samples[index]
        folder = self.root / sample.subject / sample.sequence / sample.serial
        labels = self._read_labels(folder / f"labels_{sample.frame:06d}.npz")
        joints = labels["joint_3d"].reshape(21, 3).astype(np.float64)
        pose_y = labels["pose_y"][sample.grasp_index].astype(np.float64)
        if np.all(joints == -1) or np.all(pose_y == 0):
            return None
        rest_verts, faces, rest_center = self._object(sample.ycb_id)
        R, t = pose_y[:, :3], pose_y[:, 3]
        object_verts = rest_verts @ R.T + t
        pose_m = labels["pose_m"].reshape(-1).astype(np.float64)
        K = self._K(sample.serial)
        gt: dict[str, np.ndarray] = {
            "hand_joints": joints.astype(np.float32),
            "object_verts": object_verts.astype(np.float32),
            "object_faces": faces,
            "object_center": (R @ rest_center + t).astype(np.float32),
            "K": K.copy(),
        }
        if self.mano is not None:
            hand_verts = self._hand_vertices(pose_m, sample.betas)
            if self.contact_filter:
                distances, _ = cKDTree(hand_verts).query(object_verts, k=1)
                if distances.min() > self.contact_threshold_m:
                    return None
            gt["hand_verts"] = hand_verts.astype(np.float32)
            gt["hand_faces"] = self.mano.faces.cpu().numpy()

        color = read_color(folder / f"color_{sample.frame:06d}.jpg")
        depth_m = read_depth_raw(folder / f"aligned_depth_to_color_{sample.frame:06d}.png").astype(np.float32)
        depth_m *= DEPTH_UNIT_M
        seg = labels["seg"]
        if seg.shape != depth_m.shape or color.shape[:2] != depth_m.shape:
            raise C2FError(
                f"DexYCB frame {sample.name}: colour {color.shape[:2]}, depth {depth_m.shape} and seg "
                f"{seg.shape} sizes differ"
            )
        mask = np.zeros(seg.shape, dtype=np.uint8)
        mask[seg == SEG_HAND] = 1
        mask[seg == sample.ycb_id] = 2
        gt["mask"] = mask
        extras = {
            "subject": sample.subject,
            "sequence": sample.sequence,
            "serial": sample.serial,
            "frame": sample.frame,
            "side": sample.side,
            "ycb_id": sample.ycb_id,
            "ycb_name": YCB_CLASSES[sample.ycb_id],
            "mano_pose": pose_m[:48].astype(np.float32),
            "mano_trans": pose_m[48:51].astype(np.float32),
            "mano_betas": np.asarray(sample.betas, dtype=np.float32),
        }
        return RGBDFrame(
            index=index, color=color, depth_m=depth_m, K=K.copy(), gt=gt, name=sample.name, extras=extras
        )

    def _read_labels(self, path: Path) -> dict[str, np.ndarray]:
        if not path.is_file():
            raise C2FError(f"DexYCB label file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                _require(data, _LABEL_KEYS, path, "label file")
                labels = {key: data[key] for key in _LABEL_KEYS}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise C2FError(f"cannot read DexYCB label file {path}: {exc}") from None
        for key, shape in (("joint_3d", (1, 21, 3)), ("pose_m", (1, 51))):
            if labels[key].shape != shape:
                raise C2FError(f"{path}: '{key}' has shape {labels[key].shape}, expected {shape}")
        if labels["pose_y"].ndim != 3 or labels["pose_y"].shape[1:] != (3, 4):
            raise C2FError(f"{path}: 'pose_y' has shape {labels['pose_y'].shape}, expected (n_obj, 3, 4)")
        return labels

    @torch.no_grad()
    def _hand_vertices(self, pose_m: np.ndarray, betas: Sequence[float]) -> np.ndarray:
        """MANO vertices (778, 3) in metres, camera frame, for one `pose_m` row."""
        assert self.mano is not None
        device = self.mano.v_template.device
        pose = torch.as_tensor(pose_m[None, :48], dtype=torch.float32, device=device)
        trans = torch.as_tensor(pose_m[None, 48:51], dtype=torch.float32, device=device)
        shape = torch.as_tensor(np.asarray(betas)[None], dtype=torch.float32, device=device)
        return self.mano(pose, shape, trans).vertices[0].double().cpu().numpy()
