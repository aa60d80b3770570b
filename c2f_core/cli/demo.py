"""`c2f demo`: a synthetic sequence reconstructed by the bundled model, with a picture, metrics and timings."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from c2f_core.cli.reconstruct import BUNDLED_CHECKPOINT
from c2f_core.device import resolve_device
from c2f_core.eval.figures import HAND_RGB, OBJECT_RGB, draw_meshes, label_panel, side_by_side
from c2f_core.io.atomic import ensure_writable_dir, write_bytes_atomic
from c2f_core.io.images import encode_png
from c2f_core.io.take import Take

DEMO_SEED = 424_242
"""Seed of the demo sequence (outside the ranges used for training and the benchmark)."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `c2f demo`."""
    parser = subparsers.add_parser(
        "demo",
        help="make a short synthetic sequence, reconstruct it with the bundled model, write meshes and a picture",
    )
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out)")
    parser.add_argument("--frames", type=int, default=6, help="frames in the sequence (default 6)")
    parser.add_argument("--resolution", type=int, default=128, help="grid samples per axis (default 128)")
    parser.add_argument("--checkpoint", type=Path, help="model to use instead of the bundled one")
    parser.set_defaults(run=run)


def picture(take: Take, frame_id: int, recon_dir: Path | None) -> np.ndarray:
    """Input colour | reconstruction overlaid | ground truth overlaid, for one frame."""
    from c2f_core.io.recon_output import read_frame_meshes, read_reconstruction

    frame = take.read_frame(frame_id)
    panels = [label_panel(frame.color, f"input frame {frame_id}")]
    if recon_dir is not None:
        recon = read_reconstruction(recon_dir)
        if frame_id in recon.frames:
            m = read_frame_meshes(recon, frame_id)
            overlay = draw_meshes(
                frame.color,
                [(m.hand_vertices, m.hand_faces, HAND_RGB), (m.object_vertices, m.object_faces, OBJECT_RGB)],
                frame.K,
            )
            panels.append(label_panel(overlay, "reconstruction (no ground truth used)"))
        else:
            panels.append(
                label_panel(np.zeros_like(frame.color), f"frame failed: {recon.failed.get(frame_id, '')}")
            )
    gt = frame.gt or {}
    if "hand_verts" in gt:
        overlay = draw_meshes(
            frame.color,
            [
                (gt["hand_verts"], gt["hand_faces"], HAND_RGB),
                (gt["object_verts"], gt["object_faces"], OBJECT_RGB),
            ],
            frame.K,
        )
        panels.append(label_panel(overlay, "ground truth"))
    return side_by_side(panels)


def run(args: argparse.Namespace) -> int:
    """Generate, reconstruct, evaluate, draw; print where everything went."""
    from c2f_core.synth.generate import generate_take

    out = ensure_writable_dir(args.out)
    say = (lambda *a: None) if args.quiet else print
    start = time.perf_counter()
    take_dir = out / "take"
    say(f"making a {args.frames}-frame synthetic sequence (seed {DEMO_SEED}) in {take_dir} ...")
    generate_take(take_dir, frames=args.frames, seed=DEMO_SEED, sequence=True, quiet=args.quiet)
    take = Take.open(take_dir)
    checkpoint = args.checkpoint or (BUNDLED_CHECKPOINT if BUNDLED_CHECKPOINT.is_file() else None)
    recon_dir = None
    summary: dict = {"take": str(take_dir), "frames": len(take)}
    if checkpoint is None:
        print(
            "no trained model is bundled with this version yet, so the demo stops after the synthetic data:\n"
            "the picture shows the input and its ground truth. Train one with `c2f train` and pass --checkpoint."
        )
    else:
        from c2f_core.eval.protocol import evaluate_folder, format_table
        from c2f_core.recon.runner import ReconstructionSettings
        from c2f_core.recon.take_run import reconstruct_take
        from c2f_core.train.checkpoint import load_model

        device = resolve_device(args.device)
        network, config = load_model(checkpoint, device)
        recon_dir = out / "reconstruction"
        say(f"reconstructing with {checkpoint} on {device} ...")
        settings = ReconstructionSettings(resolution=args.resolution)
        from c2f_core.progress import progress

        result = reconstruct_take(
            take,
            network,
            config,
            recon_dir,
            settings,
            device=device,
            checkpoint=str(checkpoint),
            overwrite=True,
            progress_wrap=lambda ids, n: progress(
                ids, total=n, desc="reconstruct", quiet=args.quiet, unit="frame"
            ),
        )
        summary["reconstruction"] = result
        report = evaluate_folder(str(recon_dir), str(take_dir), seed=0, num_samples=30_000, quiet=args.quiet)
        summary["metrics"] = report["protocols"]
        say(format_table(report))
        if result["mean_seconds_per_frame"]:
            say(
                f"{result['reconstructed']} frame(s), {result['mean_seconds_per_frame']:.2f} s per frame, "
                f"{result['mean_queries']:.0f} SDF queries per frame on average; failed: {len(result['failed'])}"
            )
    rows = [picture(take, frame_id, recon_dir) for frame_id in take.frame_ids[:: max(1, len(take) // 3)][:3]]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    write_bytes_atomic(out / "demo.png", encode_png(np.concatenate(rows, 0)))
    summary["seconds"] = time.perf_counter() - start
    (out / "demo.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    say(f"picture: {out / 'demo.png'}")
    if recon_dir is not None:
        say(f"meshes: {recon_dir}/NNNNNN_hand.ply, NNNNNN_object.ply; USD take: {recon_dir / 'take.usdc'}")
    say(f"done in {summary['seconds']:.0f} s")
    return 0
