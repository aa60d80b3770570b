"""An animated synthetic take against its ground truth, beside the per-frame results (the README's numbers).

    c2f reconstruct TAKE --out OUT                    # the per-frame network hand and objects
    c2f reconstruct TAKE --out OUT_FIT --hand fit     # (optional) the per-frame open hand fit
    c2f animate OUT                                   # OUT/animation/
    python benchmarks/animate_take.py TAKE OUT [--fit OUT_FIT] [--json FILE]

Prints one Markdown table per part (raw metrics, no alignment) and the take's jitter, contact and
seconds per frame.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from c2f_core.eval.contact import contact_metrics
from c2f_core.eval.take_animation import contact_summary, hand_summary, object_summary, vertex_jitter
from c2f_core.io.animation_output import animation_files, read_poses
from c2f_core.io.mesh_io import read_mesh
from c2f_core.io.recon_output import read_frame_meshes, read_reconstruction
from c2f_core.io.take import read_gt
from c2f_core.take_fit.export import hand_from_record


def _per_frame(out: Path, frames: list[int]) -> dict:
    recon = read_reconstruction(out)
    hands, objects, joints, network_joints, seconds = [], [], [], [], []
    for frame in frames:
        if frame not in recon.frames:
            hands.append(None), objects.append(None), joints.append(None), network_joints.append(None)
            continue
        meshes = read_frame_meshes(recon, frame)
        info = json.loads(recon.files(frame).info.read_text())
        hands.append((meshes.hand_vertices, meshes.hand_faces))
        objects.append((meshes.object_vertices, meshes.object_faces))
        joints.append(np.array(info["joints"]) if info.get("joints") else None)
        network_joints.append(np.array(info.get("network_joints") or info["joints"]))
        seconds.append(info["timings"]["total"])
    return {
        "hands": hands,
        "objects": objects,
        "joints": joints,
        "network_joints": network_joints,
        "seconds": float(np.mean(seconds)),
    }


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("take", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--fit", type=Path, help="a reconstruction of the take with --hand fit")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    poses = read_poses(args.out)
    frames = poses["frames"]
    gt = [read_gt(args.take / "gt" / f"{frame:06d}.npz") for frame in frames]
    gt_hands = [(g["hand_verts"], g["hand_faces"]) for g in gt]
    gt_objects = [(g["object_verts"], g["object_faces"]) for g in gt]
    gt_joints = [g["hand_joints"] for g in gt]
    network = _per_frame(args.out, frames)
    fit = _per_frame(args.fit, frames) if args.fit else None

    hand_vertices, hand_joints, hand_faces = hand_from_record(poses["hand"])
    mesh = read_mesh(animation_files(args.out).object_mesh)
    object_local = np.asarray(mesh.vertices, np.float64)
    object_faces = np.asarray(mesh.faces)
    object_vertices = np.stack(
        [object_local @ np.array(p["rotation"]).T + p["translation"] for p in poses["object"]["per_frame"]]
    )
    animated_hands = [(v, hand_faces) for v in hand_vertices]
    animated_objects = [(v, object_faces) for v in object_vertices]

    results = {
        "hand": {
            "per-frame network": hand_summary(
                network["hands"], network["network_joints"], gt_hands, gt_joints
            ),
            "animated": hand_summary(animated_hands, list(hand_joints), gt_hands, gt_joints),
        },
        "object": {
            "per-frame network": object_summary(network["objects"], gt_objects),
            "animated (fused)": object_summary(animated_objects, gt_objects),
        },
        "jitter_mm": {
            "hand ground truth": vertex_jitter(np.stack([g["hand_verts"] for g in gt])) * 1000,
            "hand animated": vertex_jitter(hand_vertices) * 1000,
            "object ground truth": vertex_jitter(np.stack([g["object_verts"] for g in gt])) * 1000,
            "object animated": vertex_jitter(object_vertices) * 1000,
        },
        "contact": {
            "ground truth": contact_summary(gt_hands, gt_objects),
            "animated": contact_summary(animated_hands, animated_objects),
        },
    }
    depths = [contact_metrics(*h, *o).penetration_depth_cm for h, o in zip(animated_hands, animated_objects)]
    results["contact"]["animated"]["penetration_depth_cm_max"] = float(max(depths))
    if fit is not None:
        results["hand"]["per-frame fit"] = hand_summary(fit["hands"], fit["joints"], gt_hands, gt_joints)
        fit_vertices = [h[0] for h in fit["hands"] if h is not None]
        if len(fit_vertices) == len(frames):
            results["jitter_mm"]["hand per-frame fit"] = vertex_jitter(np.stack(fit_vertices)) * 1000
        results["contact"]["per-frame fit"] = contact_summary(fit["hands"], network["objects"])
    seconds = poses["seconds"]
    results["seconds_per_frame"] = {
        "reconstruct": network["seconds"],
        "animate": seconds["total"] / len(frames),
        "animate_stages_total": seconds,
    }

    print("| hand | CD_h (cm^2) | F_h@1 | F_h@5 | joint error (mm) |\n|---|---|---|---|---|")
    for name, s in results["hand"].items():
        print(
            f"| {name} | {s['chamfer_cm2_mean']:.3f} | {s['fscore@0.1cm']:.3f} | {s['fscore@0.5cm']:.3f} "
            f"| {s['joint_error_mm']:.1f} |"
        )
    print("\n| object | CD_o (cm^2) | F_o@5 | F_o@10 |\n|---|---|---|---|")
    for name, s in results["object"].items():
        print(f"| {name} | {s['chamfer_cm2_mean']:.3f} | {s['fscore@0.5cm']:.3f} | {s['fscore@1cm']:.3f} |")
    print("\njitter (mm/frame^2):", {k: round(v, 3) for k, v in results["jitter_mm"].items()})
    print("contact:", json.dumps(results["contact"], indent=1))
    print("seconds per frame:", results["seconds_per_frame"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
