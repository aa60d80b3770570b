"""`c2f info`: check a take or frame and describe it (frames, size, depth range, gaps)."""

from __future__ import annotations

import argparse
import json

import numpy as np

from c2f_core.cli.inputs import add_input_arguments, for_each_frame, open_input, warn_take_layout
from c2f_core.io.depth_lag import estimate_depth_lag


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `c2f info`."""
    parser = subparsers.add_parser(
        "info",
        help="check a take (or one frame) and print its frames, resolution, intrinsics and depth range",
    )
    add_input_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Decode every frame, report problems per frame, print a summary."""
    take = open_input(args)
    warnings = warn_take_layout(take)
    depth_lo, depth_hi, valid_fraction = [], [], []

    def inspect(frame_id: int) -> None:
        frame = take.read_frame(frame_id, with_gt=False)
        valid = frame.depth_m[frame.depth_m > 0]
        depth_lo.append(float(valid.min()))
        depth_hi.append(float(valid.max()))
        valid_fraction.append(valid.size / frame.depth_m.size)

    failures = for_each_frame(take, inspect, desc="checking", quiet=args.quiet)
    lag = estimate_depth_lag(take)
    intr = take.intrinsics
    summary = {
        "take": take.name,
        "frames": len(take),
        "first_frame": take.frame_ids[0],
        "last_frame": take.frame_ids[-1],
        "gaps": [list(g) for g in take.gaps],
        "size": [intr.width, intr.height],
        "intrinsics": intr.to_dict(),
        "depth_range_m": [min(depth_lo), max(depth_hi)] if depth_lo else None,
        "valid_depth_fraction": float(np.mean(valid_fraction)) if valid_fraction else None,
        "has_ground_truth": any(take.paths(i).gt is not None for i in take.frame_ids),
        "depth_lag": lag.lag,
        "depth_lag_found": lag.describe(),
        "failed_frames": [i for i, _ in failures],
        "warnings": warnings,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"take        {summary['take']}")
        print(f"frames      {summary['frames']} ({summary['first_frame']}..{summary['last_frame']})")
        print(f"size        {intr.width}x{intr.height}")
        print(f"intrinsics  fx={intr.fx:.2f} fy={intr.fy:.2f} cx={intr.cx:.2f} cy={intr.cy:.2f}")
        print(f"depth unit  {intr.depth_scale} m")
        if depth_lo:
            print(
                f"depth       {summary['depth_range_m'][0]:.3f}..{summary['depth_range_m'][1]:.3f} m, "
                f"{100 * summary['valid_depth_fraction']:.1f}% valid"
            )
        print(f"ground truth {'yes' if summary['has_ground_truth'] else 'no'}")
        print(f"depth lag   {lag.lag:+d}: {lag.describe()}")
    return 1 if failures else 0
