"""`c2f import-capture`: write a take from a RealSense .bag, a Record3D .r3d or an image folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from c2f_core.errors import C2FError
from c2f_core.io.capture import UNDERSTOOD_LAYOUTS, CaptureOptions, import_capture

EPILOG = f"""\
SOURCE is {UNDERSTOOD_LAYOUTS}.
Frames stream through one at a time; timestamps (seconds from the first frame) go to
OUT/timestamps.csv and the frame rate to OUT/intrinsics.json, so a sequence keeps its timing.
The take is complete when OUT/capture.json is written, last. A killed import resumes when rerun
with the same SOURCE and options (the frames already written are kept); other options are
refused unless --overwrite. One run at a time holds OUT (OUT/.c2f.lock).
Exit status: 0 all selected frames written, 1 some frames failed (listed), 2 nothing written.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `c2f import-capture`."""
    parser = subparsers.add_parser(
        "import-capture",
        help="turn a RealSense .bag, Record3D .r3d or DexYCB / TUM / plain image folder into a take",
        epilog=EPILOG,
    )
    parser.add_argument("source", metavar="SOURCE", type=Path, help="the capture file or folder")
    parser.add_argument("out", metavar="OUT", type=Path, help="the take folder to write")
    selection = parser.add_argument_group("frame selection (source frames count from 0)")
    selection.add_argument(
        "--start", type=int, default=0, metavar="N", help="first frame to import (default 0)"
    )
    selection.add_argument(
        "--end", type=int, default=None, metavar="N", help="stop before frame N (default: the end)"
    )
    selection.add_argument(
        "--step", type=int, default=1, metavar="K", help="keep every K-th frame (default 1)"
    )
    camera = parser.add_argument_group("camera (image folders; .bag and .r3d files record their own)")
    camera.add_argument(
        "--intrinsics",
        type=Path,
        metavar="FILE",
        help="camera file: our intrinsics.json, or JSON/YAML with fx fy cx cy (or DexYCB's "
        "<serial>_640x480.yml)",
    )
    camera.add_argument(
        "--depth-scale", type=float, metavar="M", help="metres per unit of the 16-bit depth images"
    )
    camera.add_argument("--fps", type=float, metavar="F", help="frame rate of an image folder")
    parser.add_argument(
        "--min-confidence",
        type=int,
        choices=(0, 1, 2),
        default=0,
        help="Record3D: drop depth below this ARKit confidence (0 low, 1 medium, 2 high; 0 keeps all)",
    )
    parser.add_argument(
        "--color-format", choices=("png", "jpg"), default="png", help="colour files in the take"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a take already in OUT")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Import the capture, print warnings and failed frames, and a one-line summary."""
    for flag, value in (("--depth-scale", args.depth_scale), ("--fps", args.fps)):
        if value is not None and not value > 0:
            raise C2FError(f"{flag} must be positive, got {value}")
    options = CaptureOptions(
        intrinsics=args.intrinsics,
        depth_scale=args.depth_scale,
        fps=args.fps,
        min_confidence=args.min_confidence,
    )
    result = import_capture(
        args.source,
        args.out,
        start=args.start,
        end=args.end,
        step=args.step,
        options=options,
        color_format=args.color_format,
        overwrite=args.overwrite,
        quiet=args.quiet,
    )
    for message in result.warnings:
        print(f"c2f: warning: {message}", file=sys.stderr)
    if result.stream_error:
        print(f"c2f: error: {result.stream_error}; the frames before it were written", file=sys.stderr)
    if result.failures:
        selected = result.frames_written + result.frames_existing + len(result.failures)
        print(f"c2f: {len(result.failures)} of {selected} frame(s) failed:", file=sys.stderr)
        for index, message in result.failures:
            print(f"  source frame {index}: {message}", file=sys.stderr)
    intr = result.intrinsics
    rate = f", {intr.fps:g} fps" if intr.fps else ""
    kept = f" ({result.frames_existing} already there)" if result.frames_existing else ""
    print(
        f"wrote {result.frames_written} frame(s){kept} from the {result.format_name} {args.source} to {args.out} "
        f"({intr.width}x{intr.height}, fx={intr.fx:.2f} fy={intr.fy:.2f} cx={intr.cx:.2f} cy={intr.cy:.2f}, "
        f"depth unit {intr.depth_scale:g} m{rate})"
    )
    return 1 if result.failures or result.stream_error else 0
