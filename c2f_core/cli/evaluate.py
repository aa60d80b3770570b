"""`c2f evaluate`: the paper's metrics of a reconstruction folder against a take's ground truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from c2f_core.cli.reconstruct import parse_frames
from c2f_core.eval.protocol import PROTOCOLS, evaluate_folder, format_table
from c2f_core.io.atomic import write_text_atomic
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
            "at 1/5 mm (hand) and 5/10 mm (object)."
        ),
    )
    parser.add_argument("pred", type=Path, metavar="PRED", help="output folder of `c2f reconstruct`")
    parser.add_argument("gt", type=Path, metavar="GT", help="the take with gt/NNNNNN.npz ground truth")
    parser.add_argument(
        "--protocol", choices=("aligned", "raw", "both"), default="both", help="default: both"
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="write the full report (per frame too) as JSON"
    )
    parser.add_argument(
        "--frames", metavar="FRAMES", help="evaluate only these frames: A:B (inclusive) or A,B,C (default: all)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the surface sampling (default 0)")
    parser.add_argument("--samples", type=int, default=30_000, help="surface points per mesh (default 30000)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, optionally write JSON."""
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
    )
    print(format_table(report))
    if report["missing"]:
        print(
            f"{len(report['missing'])} frame(s) without a reconstruction count as failures (skipped in means)"
        )
    if args.json:
        write_text_atomic(args.json, json.dumps(report, indent=1, default=float) + "\n")
    return 0
