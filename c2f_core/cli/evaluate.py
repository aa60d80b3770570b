"""`c2f evaluate`: the paper's metrics of a reconstruction folder against a take's ground truth."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from c2f_core.cli.inputs import parse_frames
from c2f_core.errors import C2FError
from c2f_core.eval.protocol import PROTOCOLS, evaluate_folder, format_table
from c2f_core.eval.real_capture import evaluate_real_take, format_real_table, format_truth_check
from c2f_core.io.atomic import check_output_file, write_text_atomic
from c2f_core.io.labels import has_labels
from c2f_core.io.recon_output import read_reconstruction
from c2f_core.io.take import Take


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `c2f evaluate`."""
    parser = subparsers.add_parser(
        "evaluate",
        help="Chamfer, F-scores and contact metrics of a `c2f reconstruct` output against a take's ground truth",
        epilog=(
            "Protocols: 'aligned' fits the predicted hand to the GT hand (scale + translation ICP) and moves\n"
            "the object with it, as the paper's reference code does; 'raw' uses no ground truth at all\n"
            "(what a user gets). CD in cm^2 (sum of two mean squared distances, 30,000 samples), F-scores\n"
            "at 1/5 mm (hand) and 5/10 mm (object).\n"
            "A real take (seg/NNNNNN.png: 255 hand, ID object; labels/labels_NNNNNN.npz: joint_3d) is scored by\n"
            "silhouette IoU, the share of observed hand (object) depth points within 5 (10) mm of the mesh and\n"
            "the mean joint error (mm); frames without a result score 0."
        ),
    )
    parser.add_argument("pred", type=Path, metavar="PRED", help="output folder of `c2f reconstruct`")
    parser.add_argument(
        "gt",
        type=Path,
        metavar="GT",
        help="the take with gt/NNNNNN.npz ground truth, or a real take with DexYCB-style seg/ and labels/",
    )
    parser.add_argument(
        "--real",
        action="store_true",
        help="score against seg/ and labels/ (silhouette IoU, observed depth points near the meshes, joint "
        "error) instead of GT meshes; the default for a take that has seg/ or labels/ and no gt/",
    )
    parser.add_argument(
        "--object-id",
        type=int,
        metavar="ID",
        help="the held object's value in seg/ (a real take's score needs it; DexYCB: the YCB object id)",
    )
    parser.add_argument(
        "--protocol", choices=("aligned", "raw", "both"), default="both", help="default: both"
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="write the full report (per frame too) as JSON"
    )
    parser.add_argument(
        "--frames",
        metavar="FRAMES",
        help="evaluate only these frames: A:B (inclusive) or A,B,C (default: all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the surface sampling (default 0)")
    parser.add_argument("--samples", type=int, default=30_000, help="surface points per mesh (default 30000)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="evaluate N frames at once in separate processes, the cores shared out among them: the "
        "same numbers, sooner (default: one per core, at least 4 frames each; GT-mesh evaluation only)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, optionally write JSON."""
    if args.json is not None:
        check_output_file(args.json, "--json")  # first, so a long evaluation is not lost at the end
    warn_other_camera(args.pred, args.gt)
    if args.real or _is_real_take(args.gt):
        return _run_real(args)
    protocols = PROTOCOLS if args.protocol == "both" else (args.protocol,)
    frames = parse_frames(args.frames, Take.open(args.gt).frame_ids) if args.frames else None
    report = evaluate_folder(
        str(args.pred),
        str(args.gt),
        protocols,
        seed=args.seed,
        num_samples=args.samples,
        quiet=args.quiet,
        frames=frames,
        workers=args.workers,
    )
    print(format_table(report))
    if report["missing"]:
        print(
            f"{len(report['missing'])} frame(s) without a reconstruction count as failures (skipped in means)"
        )
    if args.json:
        write_text_atomic(args.json, json.dumps(report, indent=1, default=float) + "\n")
    return 0


def warn_other_camera(pred: Path, gt: Path) -> str | None:
    """Warn (stderr) and return the warning when the reconstruction was made from images of another
    size or another camera than the take's: most likely it is a reconstruction of another take."""
    try:
        made, truth = read_reconstruction(pred).intrinsics, Take.open(gt).intrinsics
    except C2FError:
        return None  # the evaluation itself reports an unreadable folder
    differ = [k for k in ("fx", "fy", "cx", "cy") if not math.isclose(getattr(made, k), getattr(truth, k))]
    if (made.width, made.height) != (truth.width, truth.height):
        detail = f"from {made.width}x{made.height} images, the take's are {truth.width}x{truth.height}"
    elif differ:
        key = differ[0]
        detail = f"with {key} {getattr(made, key):g}, the take's is {getattr(truth, key):g}"
    else:
        return None
    warning = f"the reconstruction {pred} was made {detail}: is it a reconstruction of another take?"
    print(f"c2f: warning: {warning}", file=sys.stderr)
    return warning


def _is_real_take(path: Path) -> bool:
    """A take with DexYCB-style truth and no GT meshes."""
    return has_labels(path) and not (path / "gt").is_dir()


def _run_real(args: argparse.Namespace) -> int:
    """Score a reconstruction of a real take against its segmentation and labelled joints."""
    if args.object_id is None:
        raise C2FError("a real take is scored against one object: give its value in seg/ with --object-id ID")
    frames = parse_frames(args.frames, Take.open(args.gt).frame_ids) if args.frames else None
    report = evaluate_real_take(str(args.pred), str(args.gt), args.object_id, frames, quiet=args.quiet)
    print(format_real_table(report))
    truth_line = format_truth_check(report)
    if truth_line:
        print(truth_line)
    missing = report["frames"] - report["meshed"]
    if missing:
        print(f"{missing} frame(s) without a reconstruction score 0 (IoU and points within)")
    if report["depth_lag"]:
        lag = report["depth_lag"]
        print(
            f"observed depth points of colour frame t from depth file t{lag:+d}, as the reconstruction paired them"
        )
    if args.json:
        write_text_atomic(args.json, json.dumps(report, indent=1, default=float) + "\n")
    return 0
