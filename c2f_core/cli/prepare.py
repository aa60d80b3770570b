"""`c2f prepare`: DexYCB or ObMan converted into takes with ground truth and SDF samples."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from c2f_core.data.prepare import DATASETS, DEFAULT_SDF_SAMPLES, OBMAN_TAKE_FRAMES, prepare_dataset

MAX_FAILURES_SHOWN = 20
"""Failed frames listed by name; the rest are counted."""

EPILOG = f"""\
examples:
  c2f prepare dexycb /data/DexYCB --out /data/cache/dexycb --split train
  c2f prepare dexycb /data/DexYCB --out /data/cache/dexycb --split test
  c2f prepare obman /data/obman --shapenet /data/ShapeNetCore.v2 --out /data/cache/obman --split train
  c2f train --config configs/dexycb.yaml --data /data/cache/dexycb/train --out runs/dexycb

Writes CACHE/<split>/<take>/ (intrinsics.json, color/, depth/, gt/NNNNNN.npz): DexYCB one take per
sequence and camera (<subject>__<sequence>__<serial>, frame numbers = DexYCB frame indices), ObMan
{OBMAN_TAKE_FRAMES} frames per take (obman_000, ..., frame numbers = ObMan ids). Ground truth holds the
hand (MANO, closed at the wrist) and object meshes, joints, object centre, mask and SDF training samples
(metres, camera frame). Hand meshes need the MANO model (https://mano.is.tue.mpg.de, not shipped): set
C2F_MANO_DIR to the folder holding MANO_RIGHT.pkl, or pass --mano-dir. A rerun skips finished frames,
so an interrupted run just continues.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `c2f prepare`."""
    parser = subparsers.add_parser(
        "prepare",
        help="convert DexYCB or ObMan into takes with ground truth and SDF samples (for train/evaluate)",
        epilog=EPILOG,
    )
    parser.add_argument("dataset", choices=DATASETS, help="which dataset ROOT holds")
    parser.add_argument("root", type=Path, metavar="ROOT", help="the dataset folder as released")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="CACHE", help="cache folder (takes go to CACHE/<split>/)"
    )
    parser.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default="train",
        help="DexYCB s0 split or ObMan split (default train)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="conversion processes (default min(4, CPU count))",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=DEFAULT_SDF_SAMPLES,
        help=f"SDF samples per mesh and frame (default {DEFAULT_SDF_SAMPLES})",
    )
    parser.add_argument("--limit", type=int, metavar="N", help="convert only the split's first N frames")
    parser.add_argument(
        "--mano-dir", type=Path, metavar="DIR", help="folder holding MANO_RIGHT.pkl (default: $C2F_MANO_DIR)"
    )
    parser.add_argument(
        "--shapenet", type=Path, metavar="DIR", help="ObMan: the ShapeNetCore.v2 folder (required)"
    )
    parser.add_argument(
        "--split-file",
        type=Path,
        metavar="FILE",
        help="ObMan: JSON list of ids (default ROOT/splits/train_87k.json or test_6k.json)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Convert, print warnings and a summary; exit 1 when some frames failed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = prepare_dataset(
            args.dataset,
            args.root,
            args.out,
            args.split,
            workers=args.workers,
            samples=args.samples,
            limit=args.limit,
            mano=args.mano_dir,
            shapenet=args.shapenet,
            split_file=args.split_file,
            quiet=args.quiet,
        )
    for message in dict.fromkeys(str(w.message) for w in caught):
        print(f"c2f: warning: {message}", file=sys.stderr)
    if summary.skipped_no_hand:
        count, reason = summary.skipped_no_hand, summary.no_hand_reason
        print(f"c2f: warning: {count} frame(s) skipped without a hand mesh ({reason})", file=sys.stderr)
    if summary.failed:
        print(f"c2f: {len(summary.failed)} frame(s) failed:", file=sys.stderr)
        failures = sorted(summary.failed.items())
        for name, message in failures[:MAX_FAILURES_SHOWN]:
            print(f"  {name}: {message}", file=sys.stderr)
        if len(failures) > MAX_FAILURES_SHOWN:
            print(f"  ... and {len(failures) - MAX_FAILURES_SHOWN} more", file=sys.stderr)
    print(
        f"{args.dataset} {args.split}: {summary.written} frame(s) written, "
        f"{summary.skipped_existing} already done, {summary.skipped_no_hand} skipped without hand mesh, "
        f"{len(summary.failed)} failed; {summary.takes} take(s) in {summary.out}"
    )
    return 1 if summary.failed else 0
