"""`c2f points`: back-project depth frames to coloured point clouds (a quick check of depth and intrinsics)."""

from __future__ import annotations

import argparse
from pathlib import Path

from c2f_core.cli.inputs import add_input_arguments, for_each_frame, open_input, warn_take_layout
from c2f_core.geometry.camera import depth_to_points
from c2f_core.io.atomic import ensure_writable_dir
from c2f_core.io.depth_lag import pair_depth
from c2f_core.io.lock import output_lock
from c2f_core.io.mesh_io import write_points


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `c2f points`."""
    parser = subparsers.add_parser(
        "points",
        help="back-project each depth frame to a coloured point cloud PLY (metres, camera frame)",
    )
    add_input_arguments(parser)
    parser.add_argument("--out", required=True, type=Path, help="output folder for NNNNNN_points.ply")
    parser.add_argument(
        "--stride", type=int, default=1, help="keep every STRIDE-th pixel in x and y (default 1)"
    )
    parser.add_argument(
        "--depth-lag",
        default="auto",
        metavar="auto|N",
        help="colour frame t takes its colours to depth file t+N, as c2f reconstruct pairs them (default auto)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Write one PLY per frame; frames that fail are listed and the rest are written."""
    take = open_input(args)
    out = ensure_writable_dir(args.out)
    warn_take_layout(take)
    take, lag = pair_depth(take, args.depth_lag)
    if lag.lag and not args.quiet:
        print(f"depth: {lag.describe()}")

    def convert(frame_id: int) -> None:
        frame = take.read_frame(frame_id, with_gt=False)
        s = max(1, args.stride)
        points, pixels = depth_to_points(frame.depth_m[::s, ::s], frame.K / [[s], [s], [1]])
        colors = frame.color[::s, ::s][pixels[:, 0], pixels[:, 1]]
        write_points(out / f"{frame_id:06d}_points.ply", points, colors)

    with output_lock(out, "points"):
        failures = for_each_frame(take, convert, desc="points", quiet=args.quiet)
    if not args.quiet:
        print(f"wrote {len(take) - len(failures)} point cloud(s) to {out}")
    return 1 if failures else 0
