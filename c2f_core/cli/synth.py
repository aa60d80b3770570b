"""`c2f synth`: generate a synthetic hand-object RGB-D take with full ground truth."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

from c2f_core.errors import C2FError


def parse_size(text: str) -> tuple[int, int]:
    """Parse 'WxH' (e.g. 640x480) into (width, height)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise C2FError(f"--size must look like 640x480, got {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if width < 32 or height < 32 or width > 4096 or height > 4096:
        raise C2FError(f"--size {width}x{height} is outside 32x32 .. 4096x4096")
    return width, height


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `c2f synth`."""
    parser = subparsers.add_parser(
        "synth",
        help="generate a synthetic take: a hand grasping an object, rendered to RGB-D with ground truth",
        epilog=(
            "Writes OUT/intrinsics.json, color/, depth/ and gt/NNNNNN.npz (meshes, joints, mask, SDF "
            "samples, hand pose). The same --seed gives identical files."
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
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Generate the take, print a summary, optionally write the contact sheet."""
    from c2f_core.synth.generate import SynthConfig, generate_take
    from c2f_core.synth.sensor import SensorConfig

    size = parse_size(args.size)
    if args.sdf_samples < 1:
        raise C2FError(f"--sdf-samples must be at least 1, got {args.sdf_samples}")
    config = dataclasses.replace(
        SynthConfig(), sdf_samples_per_mesh=args.sdf_samples, sensor=SensorConfig(enabled=not args.no_noise)
    )
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
