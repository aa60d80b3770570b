"""A sheet of synthetic frames (colour over depth), optionally beside frames of a real take, same size.

    python benchmarks/look_sheet.py OUT.jpg --synth TAKE [TAKE ...] [--real ../shared/real/dexycb_tuna]

Without --real the sheet shows synthetic frames only: that is the one the README carries, since the
real takes' licence (CC BY-NC) keeps their images out of this repository. With --real, the first
column is real frames, for comparing locally.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from c2f_core.io.images import write_color
from c2f_core.io.take import Take
from c2f_core.io.visual import depth_to_rgb


def _frames(path: Path, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` frames picked evenly across a take: (colour, depth in metres)."""
    take = Take.open(path)
    ids = take.frame_ids
    picks = [ids[i] for i in np.linspace(0, len(ids) - 1, min(count, len(ids))).round().astype(int)]
    frames = []
    for frame_id in picks:
        frame = take.read_frame(frame_id, with_gt=False, check=False)
        frames.append((frame.color, frame.depth_m))
    return frames


def tile(color: np.ndarray, depth_m: np.ndarray, width: int) -> np.ndarray:
    """Colour above depth (metres shown 0.3-2.0 m), resized to `width`."""
    height = round(width * color.shape[0] / color.shape[1])
    depth = depth_to_rgb(depth_m, near_m=0.3, far_m=2.0)
    return np.concatenate(
        [cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA) for image in (color, depth)], axis=0
    )


def main() -> None:
    """Write the sheet."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--synth", type=Path, nargs="+", required=True, help="synthetic takes")
    parser.add_argument("--real", type=Path, help="a real take to show in the first column (kept local)")
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--rows", type=int, default=2)
    parser.add_argument("--width", type=int, default=240, help="panel width in pixels")
    args = parser.parse_args()
    synth_count = args.rows * (args.columns - (1 if args.real else 0))
    per_take = -(-synth_count // len(args.synth))
    synth = [f for take in args.synth for f in _frames(take, per_take)][:synth_count]
    real = _frames(args.real, args.rows) if args.real else []
    rows = []
    for r in range(args.rows):
        tiles = [tile(*real[r], args.width)] if real else []
        per_row = args.columns - len(tiles)
        tiles += [tile(*f, args.width) for f in synth[r * per_row : (r + 1) * per_row]]
        while len(tiles) < args.columns:
            tiles.append(np.zeros_like(tiles[0]))
        rows.append(np.concatenate(tiles, axis=1))
    write_color(args.out, np.ascontiguousarray(np.concatenate(rows, axis=0)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
