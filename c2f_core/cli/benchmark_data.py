"""`c2f benchmark-data`: the fixed, held-out synthetic benchmark (its own seed range, never for training)."""

from __future__ import annotations

import argparse
from pathlib import Path

from c2f_core.errors import C2FError

BENCHMARK_SEED = 1_000_000
"""Benchmark takes use seeds from here up; training data uses seeds below it (documented in the README)."""
REAL_LOOK_SEED = 2_000_000
"""The real-look benchmark's seed: its own range, apart from the classic takes' seeds."""
TURN_SEED = 3_000_000
"""The turned sequence's seed: its own range, so adding it changed none of the other parts."""
REACH_SEED = 4_000_000
"""The reaching sequence's seed: its own range, as the turned sequence's."""
REACH_FRAMES = 15
"""The frame at which the reaching sequence's hand meets its grasp."""
TURN_DEG = 180.0
"""How far the turned sequence turns the grasp, first frame to last (its object's far side comes into view)."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `c2f benchmark-data`."""
    parser = subparsers.add_parser(
        "benchmark-data",
        help="write the fixed synthetic benchmark: independent frames, a sequence, real-look frames, "
        "a long sequence turning the object round and one reaching for it, seeds >= 1,000,000",
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
    parser.add_argument(
        "--reach-take-frames",
        type=int,
        default=40,
        help=f"frames of the sequence whose hand reaches for the standing object and grasps it at "
        f"frame {REACH_FRAMES} (`c2f synth --sequence --reach`; default 40, 0 for none)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Generate the benchmark takes (identical files on every machine)."""
    from c2f_core.synth.generate import SynthConfig, generate_take
    from c2f_core.synth.sequence import MotionConfig

    if 0 < args.reach_take_frames <= REACH_FRAMES:
        raise C2FError(
            f"--reach-take-frames {args.reach_take_frames}: its hand meets the grasp at frame {REACH_FRAMES}, "
            f"so give more than {REACH_FRAMES} frames (or 0 for none)"
        )

    frames = generate_take(args.out / "frames", frames=args.frames, seed=BENCHMARK_SEED, quiet=args.quiet)
    sequence = generate_take(
        args.out / "sequence",
        frames=args.sequence_frames,
        seed=BENCHMARK_SEED + 1,
        sequence=True,
        quiet=args.quiet,
    )
    # the optional takes: (folder, what it is with {} for its frames, frames, seed, a sequence?, config)
    optional = [
        ("real_look", "{} real-look frames", args.real_look_frames, REAL_LOOK_SEED, False, SynthConfig(look="real")),
        ("sequence_turn", "{}-frame turning sequence", args.turn_frames, TURN_SEED, True,
         SynthConfig(motion=MotionConfig(turn_deg=TURN_DEG))),
        ("sequence_reach", "{}-frame reaching sequence", args.reach_take_frames, REACH_SEED, True,
         SynthConfig(motion=MotionConfig(reach_frames=REACH_FRAMES))),
    ]  # fmt: skip
    written = [f"{sequence['frames']}-frame sequence in {args.out / 'sequence'}"]
    for folder, what, count, seed, is_sequence, config in optional:
        if count > 0:
            made = generate_take(
                args.out / folder,
                frames=count,
                seed=seed,
                sequence=is_sequence,
                quiet=args.quiet,
                config=config,
            )
            written.append(f"{what.format(made['frames'])} in {args.out / folder}")
    if not args.quiet:
        print(f"benchmark: {frames['frames']} frames in {args.out / 'frames'}, " + ", ".join(written))
    return 0
