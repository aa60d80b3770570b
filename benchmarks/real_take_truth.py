"""How well a DexYCB-style take's own truth agrees with its images, to read its scores against.

`c2f evaluate --real` scores meshes against the take's segmentation and labelled joints. Where
those disagree with the colour and depth they were meant to describe, no mesh can score full
marks. Per frame this script measures, without any reconstruction:

- `off_skeleton`: the share of the depth points labelled hand (``seg == 255``) that lie more than
  3 cm from the labelled skeleton (bones between the 21 ``joint_3d``): no hand surface is that far
  from its bones, so these points are background or motion-blurred depth under a hand label
  (with the depth the reconstruction paired the frame with: `--recon`'s depth lag, else none);
- `off_skeleton_by_depth`: the same share with the depth file frame + k instead: where depth runs
  behind the colour the labels were made on, another k fits best (`c2f_core.io.depth_lag`; on the
  shared DexYCB take k = +1);
- `seg_shift_px`: the image shift (dx, dy) that lays the hand segmentation's outline best onto
  the frame's own edges, the colour image's and the depth's (two sensors) summed, each normalised
  by its mean around the outline, searched over +-15 px (`c2f_core.eval.truth_check`, which
  `c2f evaluate --real` also reports): (0, 0) when the truth is in place;
- `seg_shift_colour_px`, `seg_shift_depth_px`: the same from each image alone (they should agree);
- `moved_seg_iou`: the IoU of the hand segmentation with itself moved by `seg_shift_px`: what a
  silhouette that follows the images exactly scores against the truth, if the segmentation's
  shape is right (a ceiling on the hand IoU that no reconstruction can pass);

and, given a reconstruction folder (`--recon OUT`, from `c2f reconstruct`), with the segmentation
and labels of the frames before and after each frame (offset k):

- `iou_by_offset`: the hand silhouette IoU of the frame's meshes against ``seg`` of frame + k;
- `landmarks_by_offset`: the mean distance (px) of the frame's detected 2D landmarks (from the
  colour image, `landmarks_2d` of the frame JSON) to ``joint_2d`` of frame + k;
- `joints_by_offset`: the mean distance (mm) of the frame's 3D joints to ``joint_3d`` of frame + k;
- `iou_to_moved_seg`: the hand silhouette IoU against the segmentation moved by `seg_shift_px`
  (a diagnostic of where the meshes sit, never a score).

When the truth is in step with the images, k = 0 fits best; a labelled frame that fits the images
of another frame better says the labels are displaced there (by the hand's motion over k frames).

    python benchmarks/real_take_truth.py ../shared/real/dexycb_tuna --recon OUT --json truth.json
    python benchmarks/real_take_truth.py ../shared/real/dexycb_tuna --recon OUT --frames 30:57   # the lift
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import numpy as np

from c2f_core.cli.inputs import parse_frames
from c2f_core.eval.real_capture import silhouette_iou
from c2f_core.eval.truth_check import colour_edges, depth_edges, moved, outline_shift
from c2f_core.geometry.camera import depth_to_points
from c2f_core.geometry.raster import visible_silhouettes
from c2f_core.hands.base import PARENTS
from c2f_core.io.labels import SEG_HAND, read_joint_2d, read_joint_labels, read_segmentation
from c2f_core.io.recon_output import read_frame_meshes, read_reconstruction
from c2f_core.io.take import Take

OFF_SKELETON_M = 0.03
"""Hand-labelled depth points farther than this from every labelled bone are not on the hand."""
OFFSETS = (-2, -1, 0, 1, 2)
"""Frame offsets k of the truth compared with each frame's images."""


def distance_to_skeleton(points: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(N,) distance of points (N, 3) to the nearest bone (segment parent-child) of 21 joints (21, 3)."""
    best = np.full(len(points), np.inf)
    for child, parent in enumerate(PARENTS):
        if parent < 0:
            continue
        a, b = joints[parent], joints[child]
        ab = b - a
        t = np.clip((points - a) @ ab / max(float(ab @ ab), 1e-12), 0.0, 1.0)
        best = np.minimum(best, np.linalg.norm(points - (a + t[:, None] * ab), axis=1))
    return best


def off_skeleton_share(depth_m: np.ndarray, K: np.ndarray, seg: np.ndarray, joints: np.ndarray) -> float:
    """The share of hand-labelled depth points more than ``OFF_SKELETON_M`` from the labelled bones."""
    points, rows_cols = depth_to_points(depth_m, K)
    hand = points[seg[rows_cols[:, 0], rows_cols[:, 1]] == SEG_HAND]
    if len(hand) == 0:
        return float("nan")
    return float((distance_to_skeleton(hand, joints) > OFF_SKELETON_M).mean())


def main() -> None:
    """Measure the take's truth against its images and print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("take", type=Path)
    parser.add_argument("--recon", type=Path, help="a `c2f reconstruct` output folder of the take")
    parser.add_argument("--frames", help="only these frames: A:B (inclusive) or A,B,C (default: all)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    recon = read_reconstruction(args.recon) if args.recon else None
    raw = Take.open(args.take)
    take = raw.with_depth_lag(recon.depth_lag if recon is not None else 0)
    ids = list(take.frame_ids)
    scored = parse_frames(args.frames, ids) if args.frames else ids
    # each frame's truth is compared with up to five frames' images: read it once
    seg_of = functools.lru_cache(maxsize=8)(functools.partial(read_segmentation, args.take))
    joints_of = functools.lru_cache(maxsize=8)(functools.partial(read_joint_labels, args.take))
    joints_2d_of = functools.lru_cache(maxsize=8)(functools.partial(read_joint_2d, args.take))
    rows = []
    for frame in scored:
        data = take.read_frame(frame, with_gt=False)
        seg, joints = seg_of(frame), joints_of(frame)
        row: dict = {"frame": frame, "off_skeleton": float("nan")}
        if seg is not None and joints is not None:
            row["off_skeleton"] = off_skeleton_share(data.depth_m, data.K, seg, joints)
            row["off_skeleton_by_depth"] = {
                k: off_skeleton_share(raw.read_depth_file(frame + k), data.K, seg, joints)
                for k in OFFSETS
                if frame + k in raw.depth_files
            }
        if seg is not None and (seg == SEG_HAND).any():
            hand_truth = seg == SEG_HAND
            by_colour, by_depth = colour_edges(data.color), depth_edges(data.depth_m)
            shift = outline_shift(hand_truth, [by_colour, by_depth])
            row["seg_shift_px"] = list(shift)
            row["seg_shift_colour_px"] = list(outline_shift(hand_truth, [by_colour]))
            row["seg_shift_depth_px"] = list(outline_shift(hand_truth, [by_depth]))
            row["moved_seg_iou"] = silhouette_iou(moved(hand_truth, shift), hand_truth)
        if recon is not None and frame in recon.frames:
            meshes = read_frame_meshes(recon, frame)
            height, width = data.depth_m.shape
            hand_sil, _ = visible_silhouettes(
                [(meshes.hand_vertices, meshes.hand_faces), (meshes.object_vertices, meshes.object_faces)],
                data.K,
                width,
                height,
            )
            frame_json = json.loads((recon.root / f"{frame:06d}.json").read_text())
            landmarks, joints_m = frame_json.get("landmarks_2d"), frame_json.get("joints")
            row["iou_by_offset"], row["landmarks_by_offset"], row["joints_by_offset"] = {}, {}, {}
            if "seg_shift_px" in row:
                row["iou_to_moved_seg"] = silhouette_iou(
                    hand_sil, moved(seg == SEG_HAND, tuple(row["seg_shift_px"]))
                )
            for k in OFFSETS:
                if frame + k not in ids:
                    continue
                other = seg_of(frame + k)
                if other is not None:
                    row["iou_by_offset"][k] = silhouette_iou(hand_sil, other == SEG_HAND)
                labelled_3d = joints_of(frame + k)
                if joints_m is not None and labelled_3d is not None:
                    row["joints_by_offset"][k] = 1000.0 * float(
                        np.linalg.norm(np.asarray(joints_m) - labelled_3d, axis=1).mean()
                    )
                labelled = joints_2d_of(frame + k)
                if landmarks is not None and labelled is not None:
                    row["landmarks_by_offset"][k] = float(
                        np.linalg.norm(np.asarray(landmarks) - labelled, axis=1).mean()
                    )
        rows.append(row)
    off = np.array([r["off_skeleton"] for r in rows])
    summary: dict = {"off_skeleton_mean": float(np.nanmean(off))}
    for key in ("off_skeleton_by_depth", "iou_by_offset", "landmarks_by_offset", "joints_by_offset"):
        # frames that have every offset, so each column means the same frames
        full = [r[key] for r in rows if len(r.get(key, {})) == len(OFFSETS)]
        if full:
            summary[key] = {k: float(np.mean([r[k] for r in full])) for k in OFFSETS}
            summary[f"{key}_best_k_count"] = {
                k: sum(1 for r in full if (max if key.startswith("iou") else min)(r, key=r.get) == k)
                for k in OFFSETS
            }
    print(
        f"hand-labelled depth points > {OFF_SKELETON_M * 100:.0f} cm from the labelled bones: "
        f"{100 * summary['off_skeleton_mean']:.1f}% (mean over frames)"
    )
    for key, unit in (
        ("off_skeleton_by_depth", "off-skeleton share of the frame's truth"),
        ("iou_by_offset", "hand IoU"),
        ("landmarks_by_offset", "landmarks to joint_2d, px"),
        ("joints_by_offset", "joints to joint_3d, mm"),
    ):
        if key in summary:
            cells = ", ".join(f"k={k:+d}: {v:.3f}" for k, v in summary[key].items())
            against = (
                "with depth file frame + k"
                if key == "off_skeleton_by_depth"
                else "against the truth of frame + k"
            )
            print(f"{unit} {against}: {cells}; best k per frame: {summary[key + '_best_k_count']}")
    shifted = [r for r in rows if "seg_shift_px" in r]
    if shifted:
        shifts = np.array([r["seg_shift_px"] for r in shifted], float)
        agree = np.mean(
            [
                np.abs(np.subtract(r["seg_shift_colour_px"], r["seg_shift_depth_px"])).max() <= 3
                for r in shifted
            ]
        )
        summary["seg_shift_mean_px"] = shifts.mean(0).tolist()
        summary["seg_shift_median_length_px"] = float(np.median(np.linalg.norm(shifts, axis=1)))
        summary["seg_shift_colour_depth_agree"] = float(agree)
        summary["moved_seg_iou_mean"] = float(np.mean([r["moved_seg_iou"] for r in shifted]))
        print(
            f"hand segmentation outline onto the images' edges: mean shift (dx, dy) "
            f"({shifts[:, 0].mean():+.1f}, {shifts[:, 1].mean():+.1f}) px, median length "
            f"{summary['seg_shift_median_length_px']:.1f} px; colour and depth alone agree within 3 px "
            f"in {100 * agree:.0f}% of the frames"
        )
        print(
            f"IoU of the hand segmentation with itself moved onto the images (a silhouette that "
            f"follows the images exactly): {summary['moved_seg_iou_mean']:.3f} (mean over frames)"
        )
        moved_iou = [r["iou_to_moved_seg"] for r in shifted if "iou_to_moved_seg" in r]
        if moved_iou:
            summary["iou_to_moved_seg_mean"] = float(np.mean(moved_iou))
            print(
                f"the meshes' hand IoU against the moved segmentation (diagnostic): {np.mean(moved_iou):.3f}"
            )
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "per_frame": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
