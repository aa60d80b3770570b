"""`c2f animate`: a reconstructed sequence as one rigged hand and one rigid object (OUT/animation/)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from c2f_core.errors import C2FError
from c2f_core.io.animation_output import ANIMATION_DIR
from c2f_core.io.lock import output_lock
from c2f_core.recon.resume import recorded_settings

STAGES = {
    "evidence": "reading the frames",
    "object": "fusing and tracking the object",
    "hand": "fitting the hand",
    "contact": "carving the object by the hand and refining the hand",
}
"""What each stage event of the fit is called on stderr."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `c2f animate`."""
    parser = subparsers.add_parser(
        "animate",
        help="fit one rigged hand and one rigid object over a reconstructed sequence (OUT/animation/)",
        epilog=(
            "Reads the per-frame results of 'c2f reconstruct TAKE --out OUT' and the take's depth, and\n"
            "writes OUT/animation/take.glb (skinned hand with keyed bones, object with keyed transform,\n"
            "camera), take.usdc (the same as a UsdSkel rig), object.ply (the fused object, origin at its\n"
            "centre), hand.ply (the rest hand) and poses.json. 'c2f reconstruct ... --animate' runs it\n"
            "after the frames."
        ),
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="output folder of 'c2f reconstruct'")
    parser.add_argument(
        "--take", type=Path, help="the take it reconstructed (default: the one OUT/reconstruction.json names)"
    )
    parser.add_argument(
        "--jsonl",
        action="store_true",
        help="print one JSON event per line on stdout (for the Blender add-on)",
    )
    parser.set_defaults(run=run)


def animate_folder(out: Path, take: Path | None, quiet: bool, jsonl: bool = False) -> int:
    """Fit and write OUT/animation/ (the out folder must not be locked by another run); 0 when done."""
    from c2f_core.take_fit.animate import animate_take, write_animation

    def emit(event: dict) -> None:
        if jsonl:
            print(json.dumps(event), flush=True)
        elif not quiet and event.get("event") == "animate":
            print(f"animate: {STAGES.get(str(event['stage']), event['stage'])}", file=sys.stderr)
        elif event.get("event") == "warning":
            print(f"c2f: warning: {event['message']}", file=sys.stderr)

    recorded = recorded_settings(out)
    reach = recorded.get("object_reach_m") or 0.0
    snap = recorded.get("depth_snap_m") or 0.0
    if snap:
        emit({"event": "warning", "message": f"{out}'s meshes were moved onto the depth (--depth-snap "
              f"{snap:g}): the rigged hand fits them worse than the network's own; reconstruct with "
              "--depth-snap 0 (as --animate does) to animate it"})  # fmt: skip
    if reach:
        emit({"event": "warning", "message": f"{out}'s objects were kept within {reach:g} m of their seen "
              "surface (--object-reach): the fused object is thinner than from the whole field; "
              "reconstruct with --object-reach 0 (as --animate does) to animate it"})  # fmt: skip
    animation = animate_take(out, take, on_event=emit)
    files = write_animation(out, animation)
    if jsonl:
        emit({"event": "animation", "glb": str(files.glb), "poses": str(files.poses)})
    elif not quiet:
        frames = len(animation.evidence.frames)
        total = animation.seconds["total"]
        print(f"{animation.evidence.name}: {frames} frames animated in {total:.0f} s -> {files.root}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Animate one reconstruction folder."""
    if args.out.exists() and not args.out.is_dir():
        raise C2FError(f"{args.out} is not a folder (give the output folder of 'c2f reconstruct')")
    if not args.out.is_dir():
        raise C2FError(
            f"reconstruction folder not found: {args.out} (make one with 'c2f reconstruct TAKE --out OUT')"
        )
    with output_lock(args.out, "animate", clean=(".", ANIMATION_DIR)):
        return animate_folder(args.out, args.take, args.quiet, args.jsonl)
