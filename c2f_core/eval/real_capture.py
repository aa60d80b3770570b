"""Scoring a reconstruction of a real take that has a segmentation and labelled joints but no GT meshes.

Five numbers per frame (DexYCB-style truth, `c2f_core.io.labels`):

- hand silhouette IoU: the pixels where the hand mesh is the nearest surface (the object mesh may
  hide it, as the object hides the hand in the segmentation) against ``seg == 255``;
- observed hand points within 5 mm: the fraction of the depth pixels labelled hand, lifted to 3D,
  that lie within 5 mm of the hand mesh's surface (exact point-to-triangle distance);
- joint error: the mean distance (mm) of the 21 joints of the frame JSON to the labelled ``joint_3d``;
  the network joint error the same for the network's own joints (``network_joints`` where the
  frame's joints came from the hand detector or the fit);
- object silhouette IoU and observed object points within 10 mm, the same for ``seg == object_id``;

and, of the truth alone (`eval.truth_check`), where the hand segmentation lies against the
frame's colour and depth edges and the hand IoU a silhouette that follows the images exactly
would score against it: a ceiling to read the hand IoU against.

A frame without a result (failed or not run) scores 0 on the four mesh numbers and has no joint
error; it is counted in the means, so "every frame meshed" shows in them. Frames whose truth is
empty (no labelled pixel, no depth) give NaN for that number and are left out of its mean.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from c2f_core.errors import C2FError
from c2f_core.eval.truth_check import moved, segmentation_shift
from c2f_core.geometry.camera import depth_to_points
from c2f_core.geometry.mesh_sdf import point_mesh_distance
from c2f_core.geometry.raster import visible_silhouettes
from c2f_core.io.labels import SEG_HAND, has_labels, read_joint_labels, read_segmentation
from c2f_core.io.recon_output import Reconstruction, read_frame_meshes, read_reconstruction
from c2f_core.io.take import Take
from c2f_core.progress import progress

HAND_WITHIN_M = 0.005
"""Observed hand depth points closer than this to the hand mesh count as explained."""
OBJECT_WITHIN_M = 0.010
"""The same for the object."""
NUMBERS = (
    "hand_iou",
    "hand_within_5mm",
    "joint_error_mm",
    "object_iou",
    "object_within_10mm",
    "network_joint_error_mm",
)
"""The per-frame numbers, in table order."""


@dataclass
class RealFrameScore:
    """The five numbers of one frame (NaN where the truth has nothing to score against)."""

    frame: int
    hand_iou: float
    hand_within_5mm: float
    joint_error_mm: float
    object_iou: float
    object_within_10mm: float
    network_joint_error_mm: float = float("nan")
    """The network's own joints against the labels (the frame's joints may come from landmarks)."""
    problem: str | None = None
    """Why the frame has no result, None when it was meshed."""
    seg_shift_px: tuple[int, int] | None = None
    """The shift (dx, dy) that lays the hand segmentation on the frame's images (None: no hand in it)."""
    seg_ceiling_iou: float = float("nan")
    """The hand segmentation's IoU with itself moved by `seg_shift_px`: the best a silhouette that
    follows the images can score."""


def silhouette_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two (H, W) bool masks; NaN when both are empty."""
    union = int((pred | truth).sum())
    if union == 0:
        return float("nan")
    return float((pred & truth).sum()) / union


def segmentation_ceiling(
    hand_truth: np.ndarray, color: np.ndarray, depth_m: np.ndarray
) -> tuple[tuple[int, int], float]:
    """The shift that lays a hand segmentation (H, W) on its frame's images (`eval.truth_check`), and
    the segmentation's IoU with itself moved there: the best a silhouette that follows the images
    can score against it (NaN for an empty segmentation)."""
    shift = segmentation_shift(hand_truth, color, depth_m)
    return shift, silhouette_iou(moved(hand_truth, shift), hand_truth)


def fraction_within(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, tol_m: float) -> float:
    """Fraction of `points` (N, 3) within `tol_m` of the mesh surface; 0 for an empty mesh, NaN for no points."""
    if len(points) == 0:
        return float("nan")
    if len(vertices) == 0 or len(faces) == 0:
        return 0.0
    return float((point_mesh_distance(points, vertices, faces) <= tol_m).mean())


def score_real_frame(
    frame: int,
    hand: tuple[np.ndarray, np.ndarray],
    obj: tuple[np.ndarray, np.ndarray],
    joints_m: np.ndarray | None,
    depth_m: np.ndarray,
    K: np.ndarray,
    seg: np.ndarray | None,
    joint_labels_m: np.ndarray | None,
    object_id: int,
    network_joints_m: np.ndarray | None = None,
) -> RealFrameScore:
    """The five numbers of one frame's meshes (metres, camera frame) against its truth.

    Args:
        frame: frame number.
        hand, obj: (vertices (V, 3), faces (F, 3)) of each mesh.
        joints_m: (21, 3) predicted joints, or None.
        depth_m: (H, W) the frame's depth, metres, 0 = missing.
        K: (3, 3) intrinsics.
        seg: (H, W) uint8 labels, or None (then the four mesh numbers are NaN).
        joint_labels_m: (21, 3) labelled joints, or None (then the joint error is NaN).
        object_id: the held object's value in `seg`.
        network_joints_m: (21, 3) the network's own joints, or None (then its error is NaN).
    """
    nan = float("nan")
    hand_iou = hand_within = object_iou = object_within = nan
    if seg is not None:
        if seg.shape != depth_m.shape:
            raise C2FError(f"frame {frame}: segmentation {seg.shape} and depth {depth_m.shape} sizes differ")
        height, width = depth_m.shape
        hand_sil, object_sil = visible_silhouettes([hand, obj], K, width, height)
        hand_truth, object_truth = seg == SEG_HAND, seg == object_id
        hand_iou = silhouette_iou(hand_sil, hand_truth)
        object_iou = silhouette_iou(object_sil, object_truth)
        points, rows_cols = depth_to_points(depth_m, K)
        labels = seg[rows_cols[:, 0], rows_cols[:, 1]]
        hand_within = fraction_within(points[labels == SEG_HAND], *hand, HAND_WITHIN_M)
        object_within = fraction_within(points[labels == object_id], *obj, OBJECT_WITHIN_M)
    joint_error, network_error = (
        nan
        if predicted is None or joint_labels_m is None
        else 1000.0 * float(np.linalg.norm(np.asarray(predicted) - joint_labels_m, axis=1).mean())
        for predicted in (joints_m, network_joints_m)
    )
    return RealFrameScore(frame, hand_iou, hand_within, joint_error, object_iou, object_within, network_error)


def score_recon_frame(
    recon: Reconstruction,
    frame: int,
    depth_m: np.ndarray,
    K: np.ndarray,
    seg: np.ndarray | None,
    joint_labels_m: np.ndarray | None,
    object_id: int,
) -> RealFrameScore:
    """`score_real_frame` of the meshes and joints `c2f reconstruct` wrote for `frame`."""
    meshes = read_frame_meshes(recon, frame)
    return score_real_frame(
        frame,
        (meshes.hand_vertices, meshes.hand_faces),
        (meshes.object_vertices, meshes.object_faces),
        meshes.joints,
        depth_m,
        K,
        seg,
        joint_labels_m,
        object_id,
        meshes.network_joints,
    )


def _missing_score(frame: int, reason: str, has_seg: bool) -> RealFrameScore:
    zero = 0.0 if has_seg else float("nan")
    return RealFrameScore(frame, zero, zero, float("nan"), zero, zero, problem=reason)


def summarize_real(scores: list[RealFrameScore]) -> dict[str, dict[str, float]]:
    """Mean, median and count of each number over the frames where it is defined."""
    summary: dict[str, dict[str, float]] = {}
    for name in NUMBERS:
        values = np.array([getattr(s, name) for s in scores], np.float64)
        values = values[np.isfinite(values)]
        summary[name] = {
            "mean": float(values.mean()) if len(values) else float("nan"),
            "median": float(np.median(values)) if len(values) else float("nan"),
            "count": len(values),
        }
    return summary


def evaluate_real_take(
    pred_dir: str, take_dir: str, object_id: int, frames: Iterable[int] | None = None, quiet: bool = False
) -> dict:
    """Score every frame of a real take (all, or `frames`) against a `c2f reconstruct` folder."""
    recon = read_reconstruction(pred_dir)
    # The depth each frame was reconstructed with is the depth its observed points are scored on.
    take = Take.open(take_dir).with_depth_lag(recon.depth_lag)
    if not has_labels(take.root):
        raise C2FError(f"take {take_dir} has neither seg/ nor labels/ to score a real capture against")
    ids = list(take.frame_ids)
    if frames is not None:
        wanted = set(frames)
        ids = [i for i in ids if i in wanted]
    if recon.intrinsics.width != take.intrinsics.width or recon.intrinsics.height != take.intrinsics.height:
        raise C2FError(
            f"reconstruction {pred_dir} is of {recon.intrinsics.width}x{recon.intrinsics.height} images, "
            f"take {take_dir} of {take.intrinsics.width}x{take.intrinsics.height}: not a reconstruction of it"
        )
    scores: list[RealFrameScore] = []
    for frame in progress(ids, total=len(ids), desc="scoring", quiet=quiet, unit="frame"):
        seg = read_segmentation(take.root, frame)
        labels = read_joint_labels(take.root, frame)
        data = take.read_frame(frame, with_gt=False, check=False)
        if frame not in recon.frames:
            reason = recon.failed.get(frame, "no reconstruction for this frame")
            score = _missing_score(frame, reason, seg is not None)
        else:
            score = score_recon_frame(recon, frame, data.depth_m, take.intrinsics.K, seg, labels, object_id)
        hand_truth = None if seg is None else seg == SEG_HAND
        if hand_truth is not None and hand_truth.any():
            score.seg_shift_px, score.seg_ceiling_iou = segmentation_ceiling(
                hand_truth, data.color, data.depth_m
            )
        scores.append(score)
    return {
        "prediction": str(recon.root),
        "take": str(take.root),
        "object_id": int(object_id),
        "depth_lag": recon.depth_lag,
        "frames": len(ids),
        "meshed": sum(s.problem is None for s in scores),
        "summary": summarize_real(scores),
        "truth_check": summarize_truth(scores),
        "per_frame": [asdict(s) for s in scores],
    }


def summarize_truth(scores: list[RealFrameScore]) -> dict:
    """The hand segmentation's mean shift onto the images and the ceiling IoU's mean and median
    over the frames that have a hand in their segmentation (empty when none has)."""
    checked = [s for s in scores if s.seg_shift_px is not None]
    if not checked:
        return {}
    ceiling = np.array([s.seg_ceiling_iou for s in checked])
    return {
        "frames": len(checked),
        "seg_shift_mean_px": np.mean([s.seg_shift_px for s in checked], axis=0).tolist(),
        "ceiling_hand_iou": {"mean": float(ceiling.mean()), "median": float(np.median(ceiling))},
    }


def format_truth_check(report: dict) -> str:
    """One line on where the take's hand segmentation lies and the hand IoU it allows ('' without one)."""
    check = report.get("truth_check") or {}
    if not check:
        return ""
    # where it lies is minus the shift that brings it onto the images (+ 0.0: no "-0.0")
    dx, dy = (-v + 0.0 for v in check["seg_shift_mean_px"])
    return (
        f"the take's hand segmentation lies ({dx:+.1f}, {dy:+.1f}) px from the hand its images show "
        f"(mean over {check['frames']} frame(s); x right, y down): a silhouette that follows the images "
        f"exactly would score hand IoU {check['ceiling_hand_iou']['mean']:.3f} against it"
    )


REAL_COLUMNS = (
    ("hand IoU", "hand_iou", "{:.3f}"),
    ("hand pts <=5 mm", "hand_within_5mm", "{:.1%}"),
    ("joint err mm", "joint_error_mm", "{:.1f}"),
    ("object IoU", "object_iou", "{:.3f}"),
    ("object pts <=10 mm", "object_within_10mm", "{:.1%}"),
    ("network joint err mm", "network_joint_error_mm", "{:.1f}"),
)


def format_real_table(report: dict) -> str:
    """The five means (and medians) of an `evaluate_real_take` report, as Markdown."""
    header = "| | " + " | ".join(c[0] for c in REAL_COLUMNS) + " | frames meshed |"
    lines = [header, "|" + "---|" * (len(REAL_COLUMNS) + 2)]
    for stat in ("mean", "median"):
        cells = []
        for _, key, fmt in REAL_COLUMNS:
            value = report["summary"][key][stat]
            cells.append("n/a" if not np.isfinite(value) else fmt.format(value))
        lines.append(f"| {stat} | " + " | ".join(cells) + f" | {report['meshed']}/{report['frames']} |")
    return "\n".join(lines)
