"""`c2f benchmark-data`: the fixed, held-out synthetic benchmark (its own seed range, never for training)."""

from __future__ import annotations

import argparse
from pathlib import Path

BENCHMARK_SEED = 1_000_000
"""Benchmark takes use seeds from here up; training data uses seeds below it (documented in the README)."""
REAL_LOOK_SEED = 2_000_000
"""The real-look benchmark's seed: its own range, apart from the classic takes' seeds."""
TURN_SEED = 3_000_000
"""The turned sequence's seed: its own range, so adding it changed none of the other parts."""
TURN_DEG = 180.0
"""How far the turned sequence turns the grasp, first frame to last (its object's far side comes into view)."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `c2f benchmark-data`."""
    parser = subparsers.add_parser(
        "benchmark-data",
        help="write the fixed synthetic benchmark: independent frames, a sequence, real-look frames and "
        "a long sequence turning the object round, seeds >= 1,000,000",
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="folder for the benchmark takes")
    parser.add_argument("--frames", type=int, default=50, help="independent test frames (default 50)")
    parser.add_argument(
        "--sequence-frames", type=int, default=30, help="frames of the test sequence (default 30)"
    )
    parser.add_argument(
        "--real-look-frames",
        type=int,
        default=50,
        help="independent frames of the real look (`c2f synth --look real`; default 50, 0 for none)",
    )
    parser.add_argument(
        "--turn-frames",
        type=int,
        default=120,
        help=f"frames of the sequence whose grasp turns through {TURN_DEG:g} degrees "
        "(`c2f synth --sequence --turn`; default 120, 0 for none)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Generate both benchmark takes (identical files on every machine)."""
    from c2f_core.synth.generate import SynthConfig, generate_take
    from c2f_core.synth.sequence import MotionConfig

    frames = generate_take(args.out / "frames", frames=args.frames, seed=BENCHMARK_SEED, quiet=args.quiet)
    sequence = generate_take(
        args.out / "sequence",
        frames=args.sequence_frames,
        seed=BENCHMARK_SEED + 1,
        sequence=True,
        quiet=args.quiet,
    )
    real = None
    if args.real_look_frames > 0:
        real = generate_take(
            args.out / "real_look",
            frames=args.real_look_frames,
            seed=REAL_LOOK_SEED,
            quiet=args.quiet,
            config=SynthConfig(look="real"),
        )
    turn = None
    if args.turn_frames > 0:
        turn = generate_take(
            args.out / "sequence_turn",
            frames=args.turn_frames,
            seed=TURN_SEED,
            sequence=True,
            quiet=args.quiet,
            config=SynthConfig(motion=MotionConfig(turn_deg=TURN_DEG)),
        )
    if not args.quiet:
        print(
            f"benchmark: {frames['frames']} frames in {args.out / 'frames'}, "
            f"{sequence['frames']}-frame sequence in {args.out / 'sequence'}"
            + (f", {real['frames']} real-look frames in {args.out / 'real_look'}" if real else "")
            + (f", {turn['frames']}-frame turning sequence in {args.out / 'sequence_turn'}" if turn else "")
        )
    return 0
