"""A reconstructed sequence as animation: the object fused and tracked, then the hand fitted over the take.

Reads the per-frame results of `c2f reconstruct` and the take's depth (`take_fit.evidence`), fits
the object (`take_fit.object_track`), then the hand with the object's volume as an obstacle
(`take_fit.hand_track`), moves what is left of the hand inside the object out (`take_fit.contact`),
and writes `OUT/animation/` (`io.animation_output`): `take.glb`, `take.usdc`, the fused
object mesh, the rest hand mesh and `poses.json` (written last, marking the folder complete).
A take whose object cannot be tracked (never seen in depth) is animated without it, with a warning.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from c2f_core.errors import C2FError
from c2f_core.io.animation_output import AnimationFiles, animation_files, write_poses
from c2f_core.io.atomic import ensure_writable_dir
from c2f_core.io.gltf_take import write_take_glb
from c2f_core.io.mesh_io import write_mesh
from c2f_core.io.usd_skel_take import write_take_usd
from c2f_core.take_fit.contact import ContactConfig, push_out
from c2f_core.take_fit.evidence import EvidenceConfig, TakeEvidence, load_take_evidence
from c2f_core.take_fit.export import gltf_take, hand_record, object_record, rest_mesh
from c2f_core.take_fit.hand_track import HandTrack, HandTrackConfig, track_hand
from c2f_core.take_fit.object_track import ObjectTrack, ObjectTrackConfig, carve_with_hand, track_object

Event = dict[str, object]


@dataclass
class AnimateConfig:
    """Settings of the take-level fit."""

    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    """How each frame's depth is cropped and labelled."""
    object: ObjectTrackConfig = field(default_factory=ObjectTrackConfig)
    """The object's tracking and fusion."""
    hand: HandTrackConfig = field(default_factory=HandTrackConfig)
    """The hand's fit over the take."""
    contact: ContactConfig = field(default_factory=ContactConfig)
    """How the fitted hand is finally moved out of the object."""


@dataclass
class TakeAnimation:
    """The fitted take."""

    evidence: TakeEvidence
    hand: HandTrack | None
    object: ObjectTrack | None
    warnings: list[str]
    seconds: dict[str, float]
    """Seconds per stage: "evidence", "object", "hand", "contact" (carving and refining), "total"."""


def animate_take(
    out_dir: str | Path,
    take_dir: str | Path | None = None,
    config: AnimateConfig | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> TakeAnimation:
    """Fit one rigid object and one articulated hand over a reconstructed take (no files written).

    Raises:
        C2FError: when the folder or take cannot be read, or neither hand nor object can be fitted.
    """
    config = config or AnimateConfig()
    emit = on_event or (lambda event: None)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    emit({"event": "animate", "stage": "evidence"})
    evidence = load_take_evidence(out_dir, take_dir, config.evidence)
    seconds["evidence"] = time.perf_counter() - start
    warnings: list[str] = []
    emit({"event": "animate", "stage": "object"})
    obj: ObjectTrack | None
    try:
        obj = track_object(evidence, config.object)
    except C2FError as exc:
        obj = None
        warnings.append(f"no object animation: {exc}")
    seconds["object"] = obj.seconds if obj is not None else 0.0
    if obj is not None and (~obj.tracked).any():
        warnings.append(f"object: {int((~obj.tracked).sum())} frame(s) bridged by the smoother")
    emit({"event": "animate", "stage": "hand"})
    hand: HandTrack | None
    try:
        hand = track_hand(evidence, obj, config.hand)
    except ValueError as exc:
        hand = None
        warnings.append(f"no hand animation: {exc}")
    seconds["hand"] = hand.seconds if hand is not None else 0.0
    if hand is not None and obj is not None:
        # The fitted hand carves the object's swelling around the fingers; the hand is then refined
        # against the carved object and what is left inside it is pushed out, so the two meet
        # without entering each other.
        emit({"event": "animate", "stage": "contact"})
        contact_start = time.perf_counter()
        obj = carve_with_hand(obj, hand.vertices, hand.faces, config.object)
        hand = track_hand(evidence, obj, config.hand, start=hand)
        hand = push_out(hand, obj, config.contact)
        seconds["contact"] = time.perf_counter() - contact_start
    if hand is not None and hand.bridged.any():
        warnings.append(f"hand: {int(hand.bridged.sum())} frame(s) without evidence, bridged by the smoother")
    if hand is not None and hand.unseen is not None and hand.unseen.any():
        warnings.append(
            f"hand: the detector lost the hand in {int(hand.unseen.sum())} frame(s) (hidden?): "
            "their pose follows the frames around them (`unseen` in poses.json)"
        )
    if hand is None and obj is None:
        raise C2FError(
            f"take {evidence.name}: neither the hand nor the object could be animated ({'; '.join(warnings)})"
        )
    seconds["total"] = time.perf_counter() - start
    for message in warnings:
        emit({"event": "warning", "message": message})
    return TakeAnimation(evidence, hand, obj, warnings, seconds)


def write_animation(out_dir: str | Path, animation: TakeAnimation) -> AnimationFiles:
    """Write `OUT/animation/`: take.glb, take.usdc, object.ply, hand.ply, then poses.json."""
    files = animation_files(out_dir)
    ensure_writable_dir(files.root)
    evidence = animation.evidence
    frames = evidence.frames
    rig = gltf_take(frames, evidence.fps, evidence.intrinsics, animation.hand, animation.object)
    write_take_glb(files.glb, rig)
    write_take_usd(files.usd, rig)
    record: dict[str, object] = {
        "name": evidence.name,
        "fps": evidence.fps,
        "frames": frames,
        "intrinsics": evidence.intrinsics,
        "hand": None,
        "object": None,
        "warnings": animation.warnings,
        "seconds": animation.seconds,
    }
    if animation.object is not None and not animation.object.mesh.is_empty:
        write_mesh(files.object_mesh, animation.object.mesh.vertices, animation.object.mesh.faces)
        record["object"] = object_record(frames, animation.object, files.object_mesh.name)
    if animation.hand is not None:
        rest = rest_mesh(animation.hand)
        write_mesh(files.hand_mesh, rest.vertices, rest.faces)
        record["hand"] = hand_record(frames, animation.hand)
    write_poses(out_dir, record)
    return files
