"""What the take-level fit sees of each frame: the per-frame results of `c2f reconstruct` and the depth.

Per frame: the network's hand and object meshes and joints (read from the output folder), and the
take's depth map cropped around them, its pixels labelled object / hand / other by which per-frame
mesh they lie nearest. No ground truth is read. A frame that failed, or whose part is empty, has that
part marked missing; the fits bridge it over time.

Convention: metres, OpenCV camera frame (x right, y down, z forward); pixel (u, v) at its centre.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from c2f_core.errors import C2FError
from c2f_core.geometry.camera import backproject_pixels, project
from c2f_core.io.recon_output import Reconstruction, read_frame_meshes, read_reconstruction
from c2f_core.io.take import Take

LABEL_OTHER, LABEL_HAND, LABEL_OBJECT = 0, 1, 2
"""Values of `FrameEvidence.labels` (the same as the synthetic takes' masks)."""


@dataclass
class EvidenceConfig:
    """How depth pixels are cropped and labelled."""

    crop_margin_px: int = 24
    """Pixels added around the box of the projected per-frame meshes."""
    label_band_m: float = 0.012
    """A depth point within this distance of a per-frame mesh may take that mesh's label."""
    max_points: int = 3000
    """Depth points kept per label and frame (a fixed-seed random subset)."""
    min_part_points: int = 30
    """A part with fewer labelled depth points and an empty mesh counts as missing."""
    seed: int = 0
    """Seed of the subsets, so a fit is repeatable."""


@dataclass
class FrameEvidence:
    """One frame's evidence, camera metres; arrays are empty where the frame has none."""

    frame: int
    hand_surface: np.ndarray
    """(M, 3) float32 vertices of the per-frame hand mesh."""
    hand_faces: np.ndarray
    """(G, 3) int64 faces of the per-frame hand mesh."""
    joints: np.ndarray | None
    """(21, 3) float64 the frame's joints as `c2f reconstruct` wrote them (the per-frame fit's, the
    detector's landmarks lifted with depth, or the network's), or None."""
    landmarks_px: np.ndarray | None
    """(21, 2) the hand detector's 2D landmarks, pixels of the full image, or None."""
    landmark_confidence: np.ndarray | None
    """(21,) their confidence in [0, 1], or None."""
    object_vertices: np.ndarray
    """(V, 3) float32 per-frame object mesh."""
    object_faces: np.ndarray
    """(F, 3) int64."""
    hand_points: np.ndarray
    """(P, 3) float32 depth points labelled hand."""
    object_points: np.ndarray
    """(Q, 3) float32 depth points labelled object."""
    depth_m: np.ndarray
    """(h, w) float32 the depth crop, 0 = missing."""
    labels: np.ndarray
    """(h, w) uint8 label of each crop pixel (`LABEL_*`)."""
    K_crop: np.ndarray
    """(3, 3) float64 intrinsics of the crop (the take's, principal point shifted)."""

    @property
    def has_hand(self) -> bool:
        """Whether the frame has any hand evidence."""
        return len(self.hand_surface) > 0 or self.joints is not None

    @property
    def has_object(self) -> bool:
        """Whether the frame has any object evidence."""
        return len(self.object_points) > 0 or len(self.object_vertices) > 0


@dataclass
class TakeEvidence:
    """The evidence of a whole take: one entry per frame of the timeline, None where it failed."""

    name: str
    fps: float
    K: np.ndarray
    """(3, 3) the take's intrinsics."""
    image_size: tuple[int, int]
    """(width, height) pixels."""
    frames: list[int]
    """The timeline: every frame with a result or a failure, increasing."""
    per_frame: list[FrameEvidence | None]
    """Evidence per timeline frame; None for a failed frame."""
    intrinsics: dict[str, float]
    """The take's intrinsics as `reconstruction.json` stores them."""


def _array(value: object, shape: tuple[int, ...]) -> np.ndarray | None:
    """`value` as a float64 array of `shape`, or None when it is missing, misshapen or not finite."""
    if value is None:
        return None
    try:
        array = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        return None
    return array if array.shape == shape and np.isfinite(array).all() else None


def _frame_record(recon: Reconstruction, frame: int) -> dict:
    """A frame's JSON (joints, landmarks)."""
    data = json.loads(recon.files(frame).info.read_text())
    return data if isinstance(data, dict) else {}


def _crop_box(points: np.ndarray, K: np.ndarray, size: tuple[int, int], margin: int) -> tuple[int, ...]:
    """(x0, y0, x1, y1) integer pixel box around the projection of `points` (N, 3), inside the image."""
    width, height = size
    uv, _ = project(points[points[:, 2] > 1e-3], K)
    if len(uv) == 0:
        return 0, 0, width, height
    x0, y0 = np.floor(uv.min(0)).astype(int) - margin
    x1, y1 = np.ceil(uv.max(0)).astype(int) + margin + 1
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def _subset(points: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    if len(points) <= count:
        return points.astype(np.float32)
    return points[rng.choice(len(points), count, replace=False)].astype(np.float32)


def frame_evidence(
    frame: int,
    depth_m: np.ndarray,
    K: np.ndarray,
    hand_mesh: tuple[np.ndarray, np.ndarray],
    joints: np.ndarray | None,
    object_mesh: tuple[np.ndarray, np.ndarray],
    config: EvidenceConfig,
    landmarks: tuple[np.ndarray, np.ndarray] | None = None,
) -> FrameEvidence:
    """Crop and label one frame's depth by its per-frame meshes.

    Args:
        frame: the frame number.
        depth_m: (H, W) metres, 0 = missing.
        K: (3, 3) intrinsics.
        hand_mesh: per-frame hand (vertices (M, 3), faces (G, 3)), camera metres, may be empty.
        joints: (21, 3) the frame's joints or None.
        object_mesh: per-frame object (vertices (V, 3), faces (F, 3)), may be empty.
        config: cropping and labelling settings.
        landmarks: the detector's (21, 2) pixels and (21,) confidences, or None.
    """
    height, width = depth_m.shape
    object_vertices = np.asarray(object_mesh[0], np.float32).reshape(-1, 3)
    object_faces = np.asarray(object_mesh[1], np.int64).reshape(-1, 3)
    hand_surface = np.asarray(hand_mesh[0], np.float32).reshape(-1, 3)
    hand_faces = np.asarray(hand_mesh[1], np.int64).reshape(-1, 3)
    anchors = [hand_surface, object_vertices] + ([joints.astype(np.float32)] if joints is not None else [])
    every = np.concatenate(anchors, 0)
    if len(every) == 0:
        box = (0, 0, 0, 0)
    else:
        box = _crop_box(every, K, (width, height), config.crop_margin_px)
    x0, y0, x1, y1 = box
    crop = np.ascontiguousarray(depth_m[y0:y1, x0:x1], dtype=np.float32)
    K_crop = np.asarray(K, np.float64).copy()
    K_crop[0, 2] -= x0
    K_crop[1, 2] -= y0
    labels = np.zeros(crop.shape, np.uint8)
    rows, cols = np.nonzero(crop > 0)
    points = backproject_pixels(cols.astype(np.float64), rows.astype(np.float64), crop[rows, cols], K_crop)
    far = np.full(len(points), np.inf)
    d_hand = cKDTree(hand_surface).query(points)[0] if len(hand_surface) and len(points) else far
    d_object = cKDTree(object_vertices).query(points)[0] if len(object_vertices) and len(points) else far
    is_object = (d_object < config.label_band_m) & (d_object < d_hand)
    is_hand = (d_hand < config.label_band_m) & ~is_object
    labels[rows[is_hand], cols[is_hand]] = LABEL_HAND
    labels[rows[is_object], cols[is_object]] = LABEL_OBJECT
    rng = np.random.default_rng(config.seed + frame)
    return FrameEvidence(
        frame=int(frame),
        hand_surface=hand_surface,
        hand_faces=hand_faces,
        joints=joints,
        landmarks_px=None if landmarks is None else np.asarray(landmarks[0], np.float64),
        landmark_confidence=None if landmarks is None else np.asarray(landmarks[1], np.float64),
        object_vertices=object_vertices,
        object_faces=object_faces,
        hand_points=_subset(points[is_hand], config.max_points, rng),
        object_points=_subset(points[is_object], config.max_points, rng),
        depth_m=crop,
        labels=labels,
        K_crop=K_crop,
    )


def load_take_evidence(
    out_dir: str | Path, take_dir: str | Path | None = None, config: EvidenceConfig | None = None
) -> TakeEvidence:
    """Read every frame's evidence from a `c2f reconstruct` output folder and its take.

    Args:
        out_dir: the output folder of `c2f reconstruct`.
        take_dir: the take it reconstructed; None for the one `reconstruction.json` names.
        config: cropping and labelling settings.

    Raises:
        C2FError: when the folder or take cannot be read, or fewer than two frames have results.
    """
    config = config or EvidenceConfig()
    recon = read_reconstruction(out_dir)
    take_path = take_dir if take_dir is not None else recon.take
    if take_path is None:
        raise C2FError(f"{out_dir}: reconstruction.json names no take; pass the take folder")
    take = Take.open(take_path).with_depth_lag(recon.depth_lag)
    if len(recon.frames) < 2:
        raise C2FError(
            f"{out_dir}: a take-level fit needs at least 2 reconstructed frames, found {len(recon.frames)}"
        )
    timeline = sorted(set(recon.frames) | set(recon.failed))
    per_frame: list[FrameEvidence | None] = []
    for frame in timeline:
        if frame not in recon.frames:
            per_frame.append(None)
            continue
        meshes = read_frame_meshes(recon, frame)
        rgbd = take.read_frame(frame, with_gt=False)
        record = _frame_record(recon, frame)
        pixels = _array(record.get("landmarks_2d"), (21, 2))
        obj = (meshes.object_vertices, meshes.object_faces)
        if record.get("object_from_frame") is not None:
            # Another frame's mesh (`recon.still_object`): no evidence of this frame's own, and the
            # object's track and fusion would count that frame's mesh again.
            obj = (np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64))
        confidence = _array(record.get("landmark_confidence"), (21,))
        per_frame.append(
            frame_evidence(
                frame,
                rgbd.depth_m,
                rgbd.K,
                (meshes.hand_vertices, meshes.hand_faces),
                _array(record.get("joints"), (21, 3)),
                obj,
                config,
                None if pixels is None or confidence is None else (pixels, confidence),
            )
        )
    intr = recon.intrinsics
    return TakeEvidence(
        name=recon.name,
        fps=recon.fps,
        K=intr.K,
        image_size=(int(intr.width), int(intr.height)),
        frames=timeline,
        per_frame=per_frame,
        intrinsics=intr.to_dict(),
    )
