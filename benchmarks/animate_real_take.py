"""An animated real take against its labels, beside the per-frame results it was fitted from.

    c2f reconstruct REAL_TAKE --out OUT --animate      # per-frame meshes, then OUT/animation/
    python benchmarks/animate_real_take.py REAL_TAKE OUT --object-id 6 [--json FILE] [--strip FILE]

A real take has no ground-truth meshes, only what its labels know (DexYCB's `seg/` and
`labels/`, see `c2f evaluate --real`): per frame, the hand's and the object's silhouette IoU, the
share of the observed hand (object) depth points within 5 mm (10 mm) of its mesh, and the joint
error. Prints the per-frame and the animated rows of that table, the jitter of each (a real take
has no truth to compare it with: the per-frame network joints' jitter stands beside it), and
optionally writes a strip of frames: the per-frame meshes above, the animated ones below.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from c2f_core.eval.figures import draw_meshes, label_panel, side_by_side
from c2f_core.eval.real_capture import score_real_frame, score_recon_frame, summarize_real
from c2f_core.eval.take_animation import vertex_jitter
from c2f_core.geometry.camera import project
from c2f_core.io.animation_output import animation_files, read_poses
from c2f_core.io.labels import read_joint_labels, read_segmentation
from c2f_core.io.mesh_io import read_mesh
from c2f_core.io.recon_output import read_frame_meshes, read_reconstruction
from c2f_core.io.take import Take
from c2f_core.take_fit.export import hand_from_record

HAND_RGB, OBJECT_RGB = (235, 160, 120), (90, 160, 235)


def _animated(out: Path) -> tuple[list[int], list, list, list]:
    """Frames, animated hand meshes, joints and object meshes (camera frame) of OUT/animation/."""
    poses = read_poses(out)
    frames = [int(f) for f in poses["frames"]]
    hand_vertices, hand_joints, hand_faces = hand_from_record(poses["hand"])
    mesh = read_mesh(animation_files(out).object_mesh)
    local, faces = np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces)
    objects = [
        (local @ np.array(p["rotation"]).T + np.array(p["translation"]), faces)
        for p in poses["object"]["per_frame"]
    ]
    hands = [(v, hand_faces) for v in hand_vertices]
    return frames, hands, list(hand_joints), objects


def main() -> None:
    """Measure, print, and draw the strip."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("take", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--object-id", type=int, required=True, help="the held object's value in seg/")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--strip", type=Path, help="write a strip of frames (per-frame above, animated below)"
    )
    parser.add_argument("--strip-frames", type=int, default=6, help="frames in the strip, evenly spread")
    parser.add_argument(
        "--no-footage",
        action="store_true",
        help="draw on grey (a take whose licence keeps its images private)",
    )
    args = parser.parse_args()

    recon = read_reconstruction(args.out)
    # scored on the depth each frame was reconstructed with (`c2f_core.io.depth_lag`)
    take = Take.open(args.take).with_depth_lag(recon.depth_lag)
    frames, hands, joints, objects = _animated(args.out)
    K = take.intrinsics.K
    per_frame_scores, animated_scores, network_joints = [], [], []
    per_frame_meshes = {}
    for index, frame in enumerate(frames):
        seg = read_segmentation(take.root, frame)
        labels = read_joint_labels(take.root, frame)
        depth_m = take.read_frame(frame, with_gt=False, check=False).depth_m
        animated_scores.append(
            score_real_frame(
                frame, hands[index], objects[index], joints[index], depth_m, K, seg, labels, args.object_id
            )
        )
        if frame in recon.frames:
            meshes = read_frame_meshes(recon, frame)
            per_frame_meshes[frame] = meshes
            per_frame_scores.append(score_recon_frame(recon, frame, depth_m, K, seg, labels, args.object_id))
            network_joints.append(
                meshes.network_joints if meshes.network_joints is not None else meshes.joints
            )
    results = {
        "frames": len(frames),
        "per-frame": summarize_real(per_frame_scores),
        "animated": summarize_real(animated_scores),
        "joint_jitter_mm": {
            "per-frame network joints": vertex_jitter(np.stack(network_joints)) * 1000
            if len(network_joints) == len(frames)
            else float("nan"),
            "animated joints": vertex_jitter(np.stack(joints)) * 1000,
            "animated object": vertex_jitter(np.stack([o[0] for o in objects])) * 1000,
        },
    }
    columns = ("hand_iou", "hand_within_5mm", "joint_error_mm", "object_iou", "object_within_10mm")
    print("| result | hand IoU | hand pts <=5 mm | joints mm | object IoU | object pts <=10 mm |")
    print("|---|---|---|---|---|---|")
    for name in ("per-frame", "animated"):
        cells = [results[name][c]["mean"] for c in columns]
        print(
            f"| {name} | {cells[0]:.3f} | {cells[1]:.1%} | {cells[2]:.1f} | {cells[3]:.3f} | {cells[4]:.1%} |"
        )
    print("jitter (mm/frame^2):", {k: round(v, 3) for k, v in results["joint_jitter_mm"].items()})
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if args.strip:
        picks = np.linspace(0, len(frames) - 1, args.strip_frames).round().astype(int)
        # One window for every panel: the box of the animated meshes over the picked frames, grown.
        corners = np.concatenate([project(m[0], K)[0] for i in picks for m in (hands[i], objects[i])])
        (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
        side = max(x1 - x0, y1 - y0) * 1.3
        width, height = take.intrinsics.width, take.intrinsics.height
        cx = int(np.clip((x0 + x1 - side) / 2, 0, max(width - side, 0)))
        cy = int(np.clip((y0 + y1 - side) / 2, 0, max(height - side, 0)))
        window = (slice(cy, cy + int(side)), slice(cx, cx + int(side)))
        rows = []
        for label, source in (("per-frame", "per-frame"), ("animated", "animated")):
            panels = []
            for index in picks:
                frame = frames[index]
                color = take.read_frame(frame, with_gt=False, check=False).color
                if args.no_footage:
                    color = np.full_like(color, 200)
                if source == "animated":
                    meshes = [(*hands[index], HAND_RGB), (*objects[index], OBJECT_RGB)]
                elif frame in per_frame_meshes:
                    m = per_frame_meshes[frame]
                    meshes = [
                        (m.hand_vertices, m.hand_faces, HAND_RGB),
                        (m.object_vertices, m.object_faces, OBJECT_RGB),
                    ]
                else:
                    meshes = []
                panels.append(label_panel(draw_meshes(color, meshes, K)[window], f"{label} {frame}"))
            rows.append(side_by_side(panels))
        strip = np.concatenate(rows, axis=0)
        scale = 1600 / strip.shape[1]
        strip = cv2.resize(strip, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(args.strip), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        print("strip:", args.strip)


if __name__ == "__main__":
    main()
