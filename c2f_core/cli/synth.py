"""`c2f synth`: generate a synthetic hand-object RGB-D take with full ground truth."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

from c2f_core.config import describe_option, first_difference
from c2f_core.errors import C2FError
from c2f_core.io.atomic import write_text_atomic
from c2f_core.io.lock import output_lock
from c2f_core.io.take import FRAME_FOLDERS, clear_take, take_has_content

SETTINGS_FILE = "synth.json"
"""Written into the take before its frames: the settings a rerun must repeat to resume it."""
_NOT_SETTINGS = {"out", "contact_sheet", "workers", "quiet", "device", "run", "command", "overwrite"}


def parse_size(text: str) -> tuple[int, int]:
    """Parse 'WxH' (e.g. 640x480) into (width, height)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise C2FError(f"--size must look like 640x480, got {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if width < 32 or height < 32 or width > 4096 or height > 4096:
        raise C2FError(f"--size {width}x{height} is outside 32x32 .. 4096x4096")
    return width, height


def synth_settings(args: argparse.Namespace, size: tuple[int, int]) -> dict[str, object]:
    """The options that shape a take's files (every option but where and how fast it is written)."""
    # An option left unset is not recorded, so takes made before the option existed still resume.
    settings = {
        key: str(value) if isinstance(value, Path) else value
        for key, value in sorted(vars(args).items())
        if key not in _NOT_SETTINGS and value is not None
    }
    settings["size"] = f"{size[0]}x{size[1]}"
    return settings


def prepare_take_folder(out: Path, settings: dict[str, object], overwrite: bool) -> None:
    """Clear `out` (--overwrite), or accept it only when empty or made with the same settings; record them.

    A rerun with the same settings is the resume of a killed run: it writes the same files again.
    """
    record = out / SETTINGS_FILE
    if overwrite:
        clear_take(out, extra_files=(SETTINGS_FILE,))
    elif take_has_content(out):
        try:
            recorded = json.loads(record.read_text())
        except (OSError, ValueError):
            recorded = None
        if not isinstance(recorded, dict):
            raise C2FError(
                f"{out} already holds a take without a record of c2f synth settings ({SETTINGS_FILE}); "
                "pass --overwrite to replace it, or choose another folder"
            )
        key = first_difference(recorded, settings)
        if key is not None:
            raise C2FError(
                f"{out} holds a take made with {describe_option(key, recorded.get(key))}, not "
                f"{describe_option(key, settings.get(key))}; rerun with the same settings to resume it, pass "
                "--overwrite to replace it, or choose another folder"
            )
    write_text_atomic(record, json.dumps(settings, indent=1) + "\n")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `c2f synth`."""
    parser = subparsers.add_parser(
        "synth",
        help="generate a synthetic take: a hand grasping an object, rendered to RGB-D with ground truth",
        epilog=(
            "Writes OUT/intrinsics.json, color/, depth/ and gt/NNNNNN.npz (meshes, joints, mask, SDF "
            "samples, hand pose) and synth.json (the settings). The same --seed gives identical files. "
            "A rerun into a take resumes it only with the same settings; --overwrite replaces it."
        ),
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="take folder to write")
    parser.add_argument("--frames", type=int, default=16, help="number of frames (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--sequence",
        action="store_true",
        help="one grasp moving smoothly at 30 fps, instead of independent frames",
    )
    parser.add_argument(
        "--turn",
        type=float,
        metavar="DEGREES",
        help="with --sequence: also turn the grasp steadily through DEGREES over the take, about the "
        "forearm as the camera sees it, so the object's far side comes into view (e.g. 180)",
    )
    parser.add_argument(
        "--reach",
        type=int,
        metavar="FRAMES",
        help="with --sequence: start with the hand reaching for the standing object, its fingers "
        "closing, and meet the grasp at frame FRAMES (the ground truth says `reaching` before it)",
    )
    parser.add_argument("--size", default="640x480", help="image size WxH (default 640x480)")
    parser.add_argument(
        "--contact-sheet", type=Path, metavar="FILE", help="also write a PNG overview of up to 16 frames"
    )
    parser.add_argument("--workers", type=int, default=1, help="parallel rendering processes (default 1)")
    parser.add_argument(
        "--sdf-samples",
        type=int,
        default=8000,
        metavar="N",
        help="SDF samples per mesh and frame (default 8000)",
    )
    parser.add_argument("--no-noise", action="store_true", help="clean depth and colour (no sensor model)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the take in OUT (its frames are deleted first); without it a rerun into a take "
        "is accepted only with the same settings (it then resumes, writing identical files)",
    )
    parser.add_argument(
        "--look",
        choices=("classic", "real"),
        default="classic",
        help="classic: the original renders (one light, clean scenes); real: like real captures "
        "(farther cameras, cluttered patterned tables, rooms, shadows, forearm class in the mask, "
        "active-stereo or LiDAR depth; independent frames only). Default classic",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Generate the take, print a summary, optionally write the contact sheet."""
    from c2f_core.synth.generate import SynthConfig, generate_take
    from c2f_core.synth.sensor import SensorConfig
    from c2f_core.synth.sequence import MotionConfig

    size = parse_size(args.size)
    for flag, value in (
        ("--sdf-samples", args.sdf_samples),
        ("--frames", args.frames),
        ("--workers", args.workers),
    ):
        if value < 1:  # before OUT is made and its settings recorded
            raise C2FError(f"{flag} must be at least 1, got {value}")
    if args.turn is not None and not args.sequence:
        raise C2FError(f"--turn {args.turn:g} turns a sequence's grasp: add --sequence")
    if args.reach is not None and not (args.sequence and 0 < args.reach < args.frames):
        raise C2FError(
            f"--reach {args.reach} is the frame a sequence's hand meets its grasp: add --sequence, "
            f"and give it from 1 to --frames - 1 ({args.frames - 1})"
        )
    config = dataclasses.replace(
        SynthConfig(),
        sdf_samples_per_mesh=args.sdf_samples,
        sensor=SensorConfig(enabled=not args.no_noise),
        look=args.look,
        motion=MotionConfig(turn_deg=args.turn or 0.0, reach_frames=args.reach or 0),
    )
    with output_lock(args.out, "synth", clean=(".", *FRAME_FOLDERS)):
        prepare_take_folder(args.out, synth_settings(args, size), args.overwrite)
        summary = generate_take(
            args.out,
            args.frames,
            args.seed,
            sequence=args.sequence,
            size=size,
            quiet=args.quiet,
            config=config,
            workers=args.workers,
        )
    if args.contact_sheet is not None:
        from c2f_core.synth.sheet import contact_sheet

        contact_sheet(args.out, args.contact_sheet)
    if not args.quiet:
        kinds = ", ".join(f"{k} {v}" for k, v in summary["grasp_types"].items())
        print(
            f"wrote {summary['frames']} frame(s) to {summary['out']} in {summary['seconds']:.1f} s "
            f"({summary['fps']:.2f} frames/s); grasps: {kinds}; mean penetration "
            f"{summary['mean_penetration_mm']:.2f} mm"
        )
        if args.contact_sheet is not None:
            print(f"contact sheet: {args.contact_sheet}")
    return 0
