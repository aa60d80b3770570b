"""`c2f reconstruct`: hand and object meshes of every frame of one or more takes."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from c2f_core.cli.inputs import add_input_arguments, open_input, parse_frames, warn_take_layout
from c2f_core.device import resolve_device
from c2f_core.errors import C2FError, NoSpaceError
from c2f_core.io.atomic import ensure_writable_dir
from c2f_core.io.depth_lag import parse_depth_lag
from c2f_core.io.lock import output_lock
from c2f_core.io.mesh_io import MESH_FORMATS
from c2f_core.io.take import Take
from c2f_core.progress import progress
from c2f_core.recon.crop import parse_bbox
from c2f_core.recon.resume import recorded_settings
from c2f_core.recon.runner import ReconstructionSettings
from c2f_core.recon.take_run import reconstruct_take

BUNDLED_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets" / "c2f_synthetic.pt"


# The finest grid --resolution accepts. Dense extraction holds resolution^3 samples per field
# (512^3 float32 is 0.5 GiB each, with the hand and object fields and marching cubes about 2-3 GiB),
# and the next multiple of the heatmap above it, 1024 or 2048, needs 8-64 GiB and ends in MemoryError.
MAX_RESOLUTION = 512


def default_checkpoint() -> Path:
    """The checkpoint shipped in the package, or a clear error when none is bundled."""
    if BUNDLED_CHECKPOINT.is_file():
        return BUNDLED_CHECKPOINT
    raise C2FError("no trained model is bundled with this install; pass --checkpoint RUN/best.pt")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `c2f reconstruct`."""
    parser = subparsers.add_parser(
        "reconstruct",
        help="reconstruct hand and object meshes of a frame, a take or many takes",
        epilog=(
            "Writes OUT/NNNNNN_hand.ply, OUT/NNNNNN_object.ply, OUT/NNNNNN.json and, for a sequence,\n"
            "OUT/take.usdc; with several takes, OUT/<take name>/... each. A rerun skips frames already\n"
            "done; it must use the same checkpoint and settings as those frames (or --overwrite). One run\n"
            "at a time holds an output folder (OUT/.c2f.lock). Several takes scale out with torchrun:\n"
            "each rank (RANK/WORLD_SIZE) takes its share."
        ),
    )
    add_input_arguments(parser)
    parser.add_argument("more_inputs", nargs="*", metavar="MORE", help="further take folders (batch)")
    parser.add_argument("--checkpoint", type=Path, help="trained model (default: the bundled one)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--format", choices=MESH_FORMATS, default="ply", help="mesh file format (default ply)"
    )
    parser.add_argument(
        "--bbox",
        help="crop box x0,y0,x1,y1 in pixels (default: the detected hand, else tracked, else found in depth)",
    )
    parser.add_argument(
        "--detector",
        choices=("auto", "mediapipe", "depth-skin"),
        default="auto",
        help="hand detector: MediaPipe Hands' landmarks (auto: when mediapipe is installed), or the "
        "depth-and-skin detector alone (it takes a bare forearm for the hand)",
    )
    parser.add_argument(
        "--hand-side",
        choices=("auto", "left", "right"),
        default="auto",
        help="which hand: the side the detector reports (auto: in a take, the side its frames vote "
        "for, when they agree), or the one given; a left hand is reconstructed from the mirrored "
        "frame and mirrored back",
    )
    parser.add_argument(
        "--depth-lag",
        default="auto",
        metavar="auto|N",
        help="pair colour frame t with depth file t+N, for a capture whose depth runs behind (or ahead "
        "of) its colour; auto (default) tells N from where colour and depth change together over the "
        "take's frames, and keeps the files' own pairing unless one lag clearly fits better",
    )
    parser.add_argument(
        "--track",
        choices=("auto", "on", "off"),
        default="auto",
        help="where the detector finds no hand, crop around a neighbouring frame's meshes "
        "(frames before the first detection: the next frame's): auto = in sequences (takes with fps or timestamps, "
        "or whose consecutive frames show one scene)",
    )
    parser.add_argument(
        "--still-object",
        choices=("on", "off"),
        default=None,
        help="in a tracked sequence, give the frames before the grasp the object the grasp's frame "
        "meshed, where their depth shows it standing still (the network, cropped around the reaching "
        "hand, cannot see it there); default on, off with --animate, whose fit places the object there itself",
    )
    parser.add_argument("--frames", help="frame range A:B (inclusive) or list A,B,C")
    parser.add_argument(
        "--resolution",
        type=int,
        default=128,
        help=f"grid samples per axis, 8 to {MAX_RESOLUTION} and a multiple of the model's heatmap "
        f"resolution (default 128); at most {MAX_RESOLUTION} because finer grids need 8-64 GiB of memory",
    )
    parser.add_argument(
        "--method",
        choices=("ser", "dense"),
        default="ser",
        help="surface-aware (default) or dense extraction",
    )
    parser.add_argument("--no-octree", action="store_true", help="SER without the coarse-to-fine narrow band")
    parser.add_argument(
        "--all-components", action="store_true", help="keep every connected piece of the meshes"
    )
    parser.add_argument(
        "--hand",
        choices=("sdf", "fit"),
        default="sdf",
        help="hand mesh: the network's surface (default), or the open hand model fitted to it, the "
        "depth and the predicted joints (clean fingers, the same topology every frame; about 3-5 s "
        "more per frame on a CPU)",
    )
    parser.add_argument(
        "--overlap",
        action="store_true",
        help="mesh the hand and object fields as they are, even where both say inside "
        "(default: make them exclusive, so the meshes touch without passing through each other)",
    )
    parser.add_argument(
        "--hand-reach",
        type=float,
        default=0.0,
        metavar="M",
        help="keep the hand within M metres of the depth points seen on it (e.g. 0.05: a thinner, "
        "truer hand on single frames; not for --animate takes; default 0: off)",
    )
    parser.add_argument(
        "--object-reach",
        type=float,
        default=None,
        metavar="M",
        help=f"keep the object within M metres of the depth points seen on it, or behind them: less "
        f"object spread behind the hand (default {ReconstructionSettings.object_reach_m}; 0 with --animate, whose fusion of "
        "the take's objects wants all the network saw; 0: off)",
    )
    parser.add_argument(
        "--depth-snap",
        type=float,
        default=None,
        metavar="M",
        help="move each part's seen side onto the measured depth where it lies within M metres, the "
        f"rest of the part following (default {ReconstructionSettings.depth_snap_m}; 0 with --animate, "
        "whose hand fit lost with it; 0: off)",
    )
    parser.add_argument("--no-usd", action="store_true", help="do not write take.usdc for sequences")
    parser.add_argument(
        "--animate",
        action="store_true",
        help="then fit one rigged hand and one rigid object over the sequence (OUT/animation/, see 'c2f animate')",
    )
    parser.add_argument("--overwrite", action="store_true", help="redo frames that already have results")
    parser.add_argument(
        "--jsonl",
        action="store_true",
        help="print one JSON event per line on stdout (for the Blender add-on)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Reconstruct every input (this rank's share of them), print a summary."""
    emit_json = args.jsonl

    def emit(event: dict) -> None:
        if emit_json:
            print(json.dumps(event), flush=True)

    try:
        return _run(args, emit)
    except C2FError as exc:
        if emit_json:
            emit({"event": "fatal", "message": str(exc)})
        raise


def _animate(out: Path, take: Take, quiet: bool, jsonl: bool, emit) -> int:
    """Fit the take over its frames (`c2f animate`); 0 when done, 1 when it failed (the frames stand)."""
    from c2f_core.cli.animate import animate_folder

    try:
        animate_folder(out, take.root, quiet, jsonl)
    except NoSpaceError:
        raise
    except C2FError as exc:
        emit({"event": "animation", "error": str(exc)})
        print(f"c2f: error: animating {take.name}: {exc}", file=sys.stderr)
        return 1
    return 0


ANIMATE_OFF: dict[str, object] = {"object_reach_m": 0.0, "still_object": False, "depth_snap_m": 0.0}
"""Settings `--animate` turns off unless asked: the take-level fit wants all the network saw of the
object in each frame (trimmed objects fused worse: the 30-frame take's fused object 0.769 -> 0.786
cm²), and carries the fused object back to where it stood before the grasp by itself (with the
per-frame copies it scored lower on the real DexYCB take: hand points 49.8% -> 43.7%). Hands laid
onto the depth made the fitted hand worse (real DexYCB take hand points 49.8% -> 43.2%, the turned
take's joints 17.0 -> 19.0 mm) though the fused objects better (object IoU 0.726 -> 0.752)."""


def animate_defaults(
    settings: ReconstructionSettings, asked: dict[str, bool], animate: bool
) -> ReconstructionSettings:
    """`settings` with those of `ANIMATE_OFF` not `asked` for turned off for a take to animate."""
    return dataclasses.replace(settings, **{k: v for k, v in ANIMATE_OFF.items() if animate and not asked[k]})


def follow_folder(
    settings: ReconstructionSettings, asked: dict[str, bool], out: Path, overwrite: bool
) -> ReconstructionSettings:
    """`settings` with those of `ANIMATE_OFF` not `asked` for as the frames in `out` were made, so
    that `--animate` on a folder reconstructed without it resumes (and `c2f animate` says what
    it got)."""
    earlier = {} if overwrite else recorded_settings(out)
    return dataclasses.replace(
        settings, **{k: earlier[k] for k in ANIMATE_OFF if not asked[k] and earlier.get(k) is not None}
    )


def _run(args: argparse.Namespace, emit) -> int:
    from c2f_core.train.checkpoint import load_model

    settings = ReconstructionSettings(
        resolution=args.resolution,
        method=args.method,
        octree=not args.no_octree,
        keep_largest_component=not args.all_components,
        separate=not args.overlap,
        hand=args.hand,
        track=args.track,
        still_object=args.still_object != "off",
        detector=args.detector,
        hand_reach_m=args.hand_reach,
        object_reach_m=ReconstructionSettings.object_reach_m
        if args.object_reach is None
        else args.object_reach,
        depth_lag=args.depth_lag,
        depth_snap_m=ReconstructionSettings.depth_snap_m if args.depth_snap is None else args.depth_snap,
    )
    asked = {
        "object_reach_m": args.object_reach is not None,
        "still_object": args.still_object is not None,
        "depth_snap_m": args.depth_snap is not None,
    }
    settings = animate_defaults(settings, asked, args.animate)
    parse_depth_lag(args.depth_lag)  # a bad value fails before the model loads
    settings.locate.hand_side = args.hand_side
    for flag, value in (
        ("--hand-reach", args.hand_reach),
        ("--object-reach", settings.object_reach_m),
        ("--depth-snap", settings.depth_snap_m),
    ):
        if not 0.0 <= value <= 1.0:
            raise C2FError(f"{flag} is a distance in metres from 0 (off) to 1, found {value}")
    if not 8 <= settings.resolution <= MAX_RESOLUTION:
        raise C2FError(
            f"--resolution must be from 8 to {MAX_RESOLUTION} (finer grids need 8-64 GiB of memory), "
            f"found {settings.resolution}"
        )
    user_box = parse_bbox(args.bbox) if args.bbox else None
    takes: list[Take] = [open_input(args)]
    takes += [Take.open(p) for p in args.more_inputs]
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    mine = takes[rank::world]
    out_root = ensure_writable_dir(args.out)
    device = resolve_device(args.device)
    if device == "cuda" and world > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    checkpoint = args.checkpoint or default_checkpoint()
    network, config = load_model(checkpoint, device)
    quiet = args.quiet or args.jsonl
    failures = 0
    failed_takes = 0
    for take in mine:
        warn_take_layout(take)
        out = out_root if len(takes) == 1 else out_root / take.name
        take_settings = follow_folder(settings, asked, out, args.overwrite)
        try:
            with output_lock(out, "reconstruct"):
                summary = reconstruct_take(
                    take,
                    network,
                    config,
                    out,
                    take_settings,
                    parse_frames(args.frames, take.frame_ids),
                    user_box,
                    args.format,
                    args.overwrite,
                    device,
                    checkpoint=str(checkpoint),
                    write_usd=not args.no_usd,
                    on_event=emit,
                    progress_wrap=lambda ids, n, name=take.name: progress(
                        ids, total=n, desc=name, quiet=quiet, unit="frame"
                    ),
                )
                if args.animate:
                    failures += _animate(out, take, quiet, args.jsonl, emit)
        except NoSpaceError:
            raise  # the next takes would fail the same way
        except C2FError as exc:
            if len(mine) == 1:
                raise
            # In a batch, a take that fails as a whole is reported and the other takes go on.
            failed_takes += 1
            print(f"c2f: error: {exc}", file=sys.stderr)
            continue
        failures += len(summary["failed"])
        if summary["failed"]:
            print(
                f"c2f: {len(summary['failed'])} of {summary['frames']} frame(s) of {take.name} failed:",
                file=sys.stderr,
            )
            for frame, message in summary["failed"].items():
                print(f"  frame {int(frame):06d}: {message}", file=sys.stderr)
        if not quiet:
            mean = summary["mean_seconds_per_frame"]
            print(
                f"{take.name}: {summary['reconstructed']} reconstructed, {summary['skipped_existing']} already done, "
                f"{len(summary['failed'])} failed" + (f", {mean:.2f} s/frame" if mean else "") + f" -> {out}"
            )
            if summary["frames_follow"] and summary["tracked"]:
                print(f"  frames: {summary['frames_follow']}; tracked")
            if summary["depth_lag"]:
                print(f"  depth: {summary['depth_lag_found']}")
            if summary["still_object"]:
                print(f"  object: {summary['still_object']}")
            if summary["hand_side_vote"]:
                print(f"  hand side: {summary['hand_side_vote']}")
            if summary["lead_in"]:
                print(
                    f"  {len(summary['lead_in'])} lead-in frame(s) before the first detected hand done again, "
                    "tracked back from it"
                )
    if failed_takes:
        return 2
    return 1 if failures else 0
