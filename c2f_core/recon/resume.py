"""What an output folder of earlier runs holds for a rerun: how its frames were made, and their crops.

Each frame JSON records what made it ("made_with": the checkpoint's SHA-256 and every setting that
changes the meshes); a rerun with another checkpoint or other settings is refused (`check_resume`),
so one folder never mixes results. A resumed sequence keeps tracking from the hand side and box an
earlier run recorded (`crop_from_files`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from c2f_core.config import first_difference
from c2f_core.detect.base import HandSide
from c2f_core.errors import C2FError
from c2f_core.io.recon_output import FrameFiles
from c2f_core.recon.crop import Box


def crop_from_files(files: FrameFiles) -> tuple[HandSide | None, Box | None, str | None]:
    """The hand side, hand box and crop source ("landmarks", "depth-skin", ...) an earlier run
    recorded for a frame (to keep tracking across a resume)."""
    try:
        data = json.loads(files.info.read_text())
        side = data.get("hand_side")
        box = data.get("hand_box")
        source = data.get("crop_source")
        return (
            (side if side in ("left", "right") else None),
            (tuple(box) if box and len(box) == 4 else None),
            (source if isinstance(source, str) else None),
        )
    except (OSError, ValueError, AttributeError, TypeError):
        return None, None, None


FRAME_JSON = re.compile(r"^([0-9]{6,})\.json$")


def made_with(settings: Any, fmt: str, checkpoint: str | None) -> dict[str, object]:
    """What makes a frame's result (recorded in its JSON): the checkpoint and every setting that
    changes the meshes, not the chunk size (only the speed) nor a --bbox (a per-frame hint, with
    which failed frames may be redone; the frame JSON records its crop)."""
    digest = None
    if checkpoint is not None and Path(checkpoint).is_file():
        with Path(checkpoint).open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    shaping = dataclasses.asdict(settings)
    del shaping["chunk_size"]
    record = {
        "checkpoint": checkpoint,
        "checkpoint_sha256": digest,
        "settings": {**shaping, "format": fmt},
    }
    return json.loads(json.dumps(record))  # tuples as lists, as they read back


def check_resume(out: Path, record: dict[str, object], redone: set[int]) -> None:
    """Refuse to add frames to `out` when its frames (but those in `redone`) were made otherwise.

    Frames from a c2f that did not record "made_with" are not compared.
    """
    if not out.is_dir():
        return
    for path in sorted(out.iterdir()):
        match = FRAME_JSON.match(path.name)
        if not match or int(match.group(1)) in redone:
            continue
        try:
            earlier = json.loads(path.read_text()).get("made_with")
        except (OSError, ValueError, AttributeError):
            continue  # an unreadable frame JSON is that frame's problem, found when it is read
        if not isinstance(earlier, dict):
            continue
        frame = f"frame {int(match.group(1)):06d}"
        advice = "rerun with those to resume, pass --overwrite to redo the frames, or choose another --out"
        if earlier.get("checkpoint_sha256") != record["checkpoint_sha256"]:
            raise C2FError(
                f"{out} holds frames made with another checkpoint ({frame}: {earlier.get('checkpoint')}; "
                f"now {record['checkpoint']}): {advice}"
            )
        key = first_difference(earlier.get("settings"), record["settings"])
        if key is not None:
            old = _value_at(earlier.get("settings"), key)
            new = _value_at(record["settings"], key)
            raise C2FError(f"{out} holds frames made with {key} {old!r} ({frame}), not {new!r}: {advice}")


def _value_at(tree: object, dotted: str) -> object:
    """The value at a dotted key of nested dicts (None where the path ends early)."""
    for part in dotted.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def recorded_settings(out: Path) -> dict[str, Any]:
    """The settings the first frame JSON of `out` records in "made_with" (empty: no frames, or not recorded)."""
    if not out.is_dir():
        return {}
    for path in sorted(out.iterdir()):
        if FRAME_JSON.match(path.name):
            try:
                settings = json.loads(path.read_text())["made_with"]["settings"]
            except (OSError, ValueError, KeyError, TypeError):
                return {}
            return settings if isinstance(settings, dict) else {}
    return {}
