"""`c2f bench`: dense vs surface-aware reconstruction, queries, stage times, memory, Chamfer."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from c2f_core.cli.reconstruct import default_checkpoint
from c2f_core.device import resolve_device
from c2f_core.errors import C2FError
from c2f_core.io.atomic import check_output_file, write_text_atomic
from c2f_core.io.depth_lag import pair_depth
from c2f_core.io.take import Take
from c2f_core.recon.bench import format_bench, run_bench


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `c2f bench`."""
    parser = subparsers.add_parser(
        "bench",
        help="benchmark dense vs surface-aware reconstruction (queries, stage times, memory, Chamfer)",
        epilog=(
            "Prints, per method, the SDF queries and the seconds of each stage (encoder, coarse SDF, kNN,\n"
            "pixel features, decoders, the extractor's walk, marching cubes), per frame the queries and\n"
            "seconds, and the Chamfer distance between the SER and dense meshes (and to the ground truth\n"
            "when the take has it). Timings depend on the load of the machine; query counts do not."
        ),
    )
    parser.add_argument("--checkpoint", type=Path, help="trained model (default: the bundled one)")
    parser.add_argument(
        "--take",
        type=Path,
        help="a take to run on, synthetic or real: its first --frames frames, each cropped as `c2f "
        "reconstruct` crops a frame without tracking (default: synthetic frames made now)",
    )
    parser.add_argument("--frames", type=int, default=4, help="number of frames (default 4)")
    parser.add_argument("--resolution", type=int, default=128, help="grid samples per axis (default 128)")
    parser.add_argument(
        "--seed", type=int, default=90_000, help="seed of the synthetic frames (default 90000)"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the full report as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its table."""
    from c2f_core.train.checkpoint import load_model

    if args.frames < 1:
        raise C2FError(f"--frames must be at least 1, found {args.frames}")
    if args.json is not None:
        check_output_file(args.json, "--json")  # first, so a long benchmark is not lost at the end
    device = resolve_device(args.device)
    network, config = load_model(args.checkpoint or default_checkpoint(), device)
    with tempfile.TemporaryDirectory(prefix="c2f-bench-") as tmp:
        if args.take:
            # the crops `c2f reconstruct` finds: its depth pairing too
            take = pair_depth(Take.open(args.take), "auto")[0]
        else:
            from c2f_core.synth.generate import generate_take

            generate_take(Path(tmp) / "take", frames=args.frames, seed=args.seed, quiet=args.quiet)
            take = Take.open(Path(tmp) / "take")
        report = run_bench(take, network, config, args.frames, args.resolution, device, args.quiet)
    print(format_bench(report))
    if args.json:
        write_text_atomic(args.json, json.dumps(report, indent=1, default=float) + "\n")
    return 0
