"""Shared input options: a take folder, or one frame given as --color/--depth/--intrinsics."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from c2f_core.errors import C2FError, NoSpaceError
from c2f_core.io.take import Take
from c2f_core.progress import progress


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `INPUT` and the single-frame options to a subcommand's parser."""
    parser.add_argument(
        "input",
        nargs="?",
        metavar="INPUT",
        help="a take folder (intrinsics.json, color/, depth/), or a capture: RealSense .bag, Record3D .r3d, "
        "DexYCB/TUM image folder (converted on the fly, cached)",
    )
    single = parser.add_argument_group("single frame instead of a take")
    single.add_argument("--color", metavar="FILE", help="8-bit RGB image (PNG or JPEG)")
    single.add_argument("--depth", metavar="FILE", help="16-bit depth PNG aligned to the colour image")
    single.add_argument("--intrinsics", metavar="FILE", help="intrinsics.json for that frame")


def open_input(args: argparse.Namespace) -> Take:
    """Open what the user named: a take folder, or a single frame from three files."""
    single = [args.color, args.depth, args.intrinsics]
    if args.input and any(single):
        raise C2FError("give either a take folder or --color/--depth/--intrinsics, not both")
    if args.input:
        from c2f_core.io.capture import is_capture_source, open_capture_as_take

        if is_capture_source(args.input):
            return open_capture_as_take(args.input, quiet=getattr(args, "quiet", False))
        return Take.open(args.input)
    if all(single):
        return Take.from_files(args.color, args.depth, args.intrinsics)
    if any(single):
        missing = [f"--{n}" for n, v in zip(("color", "depth", "intrinsics"), single) if not v]
        raise C2FError(
            f"a single frame needs --color, --depth and --intrinsics; missing {', '.join(missing)}"
        )
    raise C2FError("no input: give a take folder, or --color FILE --depth FILE --intrinsics FILE")


def warn_take_layout(take: Take) -> list[str]:
    """Print (to stderr) and return warnings about an unfinished import, numbering gaps and unpaired files."""
    warnings = []
    if take.gaps:
        spans = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in take.gaps[:5])
        if len(take.gaps) > 5:
            spans += f" and {len(take.gaps) - 5} more gap(s)"
        warnings.append(f"take {take.name}: frame numbering has gaps (missing {spans}); processing the rest")
    if take.import_incomplete:
        warnings.append(
            f"take {take.name}: its import did not finish (no capture.json); rerun the same "
            "c2f import-capture to complete it"
        )
    if take.unpaired:
        shown = ", ".join(take.unpaired[:5]) + (" ..." if len(take.unpaired) > 5 else "")
        warnings.append(f"take {take.name}: {len(take.unpaired)} file(s) without a partner, skipped: {shown}")
    for warning in warnings:
        print(f"c2f: warning: {warning}", file=sys.stderr)
    return warnings


def for_each_frame(
    take: Take,
    work: Callable[[int], None],
    frame_ids: Sequence[int] | None = None,
    desc: str = "frames",
    quiet: bool = False,
) -> list[tuple[int, str]]:
    """Run `work(frame_id)` on every frame; a frame's user error is recorded and the others go on.

    A full disk (`NoSpaceError`) is no frame's error: it stops the run.

    Returns the failures as (frame_id, message) and prints them as a summary.
    """
    failures: list[tuple[int, str]] = []
    ids = list(take.frame_ids if frame_ids is None else frame_ids)
    for frame_id in progress(ids, total=len(ids), desc=desc, quiet=quiet, unit="frame"):
        try:
            work(frame_id)
        except NoSpaceError:
            raise  # not this frame's fault: the run stops, what was written stays
        except C2FError as exc:
            failures.append((frame_id, str(exc)))
            if len(ids) == 1:
                raise
    if failures and len(failures) == len(ids):
        first_id, first_message = failures[0]
        raise C2FError(
            f"every frame failed ({len(failures)} of {len(ids)} frame(s)); first, frame {first_id:06d}: {first_message}"
        )
    if failures:
        print(f"c2f: {len(failures)} of {len(ids)} frame(s) failed:", file=sys.stderr)
        for frame_id, message in failures:
            print(f"  frame {frame_id:06d}: {message}", file=sys.stderr)
    return failures


def parse_frames(text: str | None, frame_ids: list[int]) -> list[int]:
    """Select frames by "A:B" (inclusive, either end optional) or "A,B,C" from a take's frame numbers."""
    if not text:
        return frame_ids
    try:
        if ":" in text:
            lo_text, hi_text = text.split(":", 1)
            lo = int(lo_text) if lo_text else min(frame_ids)
            hi = int(hi_text) if hi_text else max(frame_ids)
            chosen = [f for f in frame_ids if lo <= f <= hi]
        else:
            wanted = {int(v) for v in text.split(",")}
            chosen = [f for f in frame_ids if f in wanted]
    except ValueError:
        raise C2FError(f"--frames must be A:B or A,B,C (frame numbers), found {text!r}") from None
    if not chosen:
        raise C2FError(f"--frames {text} selects none of the take's frames ({frame_ids[0]}..{frame_ids[-1]})")
    return chosen
