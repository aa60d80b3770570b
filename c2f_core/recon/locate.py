"""Where the hand is in a frame: the crop, its reference depth, the hand's side and its forearm.

Sources, in order: the box a user gives (`--bbox`); the hand detector's landmarks (every frame,
`c2f_core.detect`); in a sequence, a neighbouring frame's meshes when the detector finds nothing;
the depth-and-skin detector as the last resort (it cannot tell a hand from a forearm, so the
frame's JSON says when it was used).

A left hand is reconstructed mirrored: the frame is flipped left to right (the network knows right
hands only) and the caller flips the meshes back (`c2f_core.geometry.mirror`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from c2f_core.data.crop import Box, box_center_side, square_box, tight_box
from c2f_core.detect.base import HandDetection, HandDetector, HandSide
from c2f_core.detect.depth_skin import detect_box
from c2f_core.detect.hand_region import HandRegion, HandRegionSettings, hand_region
from c2f_core.errors import C2FError
from c2f_core.geometry.mirror import mirror_box, mirror_image, mirror_intrinsics
from c2f_core.io.frames import RGBDFrame
from c2f_core.recon.crop import check_box_in_image

TRACK_MARGIN_PX = 10.0
"""Pixels added on each side of the previous frame's mesh box (before clipping and squaring), room
for the hand to move between frames."""
CropSource = Literal["user", "landmarks", "tracked", "depth-skin"]


@dataclass
class LocateSettings:
    """How the crop of each frame is found."""

    box_scale: float = 1.25
    """Square crop side as a multiple of the larger side of a user's, landmark or tracked box (as in training)."""
    box_margin_px: float = 10.0
    """Pixels added on every side of a landmark box before squaring (as the training crops add)."""
    detector_box_scale: float = 1.05
    """The same for a box of the depth-and-skin detector, whose tight boxes run larger than the
    ground-truth box the network trained on (median side ratio 1.02 on the benchmark at 1.05)."""
    hand_side: Literal["auto", "left", "right"] = "auto"
    """Which hand to reconstruct: the side the detector reports, or the one given (left = mirrored)."""
    region: HandRegionSettings = field(default_factory=HandRegionSettings)
    """From landmarks and depth to the crop, reference depth and forearm."""


@dataclass
class FrameCrop:
    """Where and how one frame is cropped for the network."""

    box: Box
    """Square crop box in pixels of the frame the network sees (mirrored when `mirrored`)."""
    source: CropSource
    """What found the box."""
    side: HandSide
    """The hand's side; "left" means the frame was mirrored."""
    region: HandRegion | None = None
    """The hand region from the landmarks (in the frame the network sees), when a hand was detected."""
    hand_box: Box | None = None
    """The hand's own tight box in the original image (landmarks, or the source's box), for tracking."""
    warnings: list[str] = field(default_factory=list)
    """What the frame's JSON should say about how it was cropped."""

    @property
    def mirrored(self) -> bool:
        """Whether the network sees the frame flipped left to right."""
        return self.side == "left"

    @property
    def ref_z_m(self) -> float | None:
        """The reference depth from the landmarks (the palm), or None for the crop's own rule."""
        return None if self.region is None else self.region.palm_depth_m


def mirror_frame(frame: RGBDFrame) -> RGBDFrame:
    """A frame flipped left to right, with its intrinsics (ground truth left out)."""
    return replace(
        frame,
        color=mirror_image(frame.color),
        depth_m=mirror_image(frame.depth_m),
        K=mirror_intrinsics(frame.K, frame.width),
        gt=None,
    )


def _pick(detections: list[HandDetection], side: str) -> HandDetection | None:
    """The detection to reconstruct: the best of the side asked for (or of any side, if none of it)."""
    if not detections:
        return None
    if side in ("left", "right"):
        of_side = [d for d in detections if d.side == side]
        return of_side[0] if of_side else detections[0]
    return detections[0]


def _landmark_box(region: HandRegion, settings: LocateSettings) -> Box:
    return square_box(region.tight_box, scale=settings.box_scale, margin_px=settings.box_margin_px)


def _hand_box(detection: HandDetection) -> Box:
    lo, hi = detection.landmarks_px.min(0), detection.landmarks_px.max(0)
    return (float(lo[0]), float(lo[1]), float(hi[0]) + 1.0, float(hi[1]) + 1.0)


def _check_crop_depth(frame: RGBDFrame, box: Box) -> None:
    x0, y0, x1, y1 = (round(v) for v in box)
    x0, y0 = max(x0, 0), max(y0, 0)
    if not (frame.depth_m[y0:y1, x0:x1] > 0).any():
        raise C2FError(f"no valid depth inside the crop box {[round(v, 1) for v in box]}")


def locate_hand(
    frame: RGBDFrame,
    settings: LocateSettings,
    detector: HandDetector | None,
    user_box: Box | None = None,
    previous_points: np.ndarray | None = None,
    previous_side: HandSide | None = None,
    take_side: HandSide | None = None,
) -> tuple[RGBDFrame, FrameCrop]:
    """The frame as the network should see it (mirrored for a left hand) and its crop.

    Args:
        frame: the frame as captured.
        settings: crop and side settings.
        detector: the landmark detector, or None to use the depth-and-skin detector only.
        user_box: a box the user gave (pixels of the captured frame), or None.
        previous_points: (N, 3) vertices of a neighbouring frame's meshes (the previous frame, or
            the next one for a lead-in frame; camera frame of the captured frame) when tracking a
            sequence, else None.
        previous_side: the previous frame's hand side in a sequence (kept when nothing is detected).
        take_side: the side the detector voted for over the whole take (`detect.side_vote`), used
            when `settings.hand_side` is "auto"; None: each frame's own detection decides.

    Raises:
        C2FError: when no crop with valid depth can be found.
    """
    warnings: list[str] = []
    detections = detector.detect(frame.color) if detector is not None else []
    asked = settings.hand_side if settings.hand_side != "auto" else take_side
    chosen = _pick(detections, asked or "auto")
    if asked is not None:
        side: HandSide = asked
        if chosen is not None and chosen.side != side:
            why = "as asked" if settings.hand_side != "auto" else "the side the take's frames voted for"
            warnings.append(f"the detector calls the hand {chosen.side}; reconstructing it as {side} {why}")
    elif chosen is not None:
        side = chosen.side
    else:
        side = previous_side or "right"
    seen = mirror_frame(frame) if side == "left" else frame
    width = frame.width

    def to_seen(box: Box) -> Box:
        return mirror_box(box, width) if side == "left" else box

    region = None
    if chosen is not None:
        detection = chosen.mirrored(width) if side == "left" else chosen
        try:
            region = hand_region(detection, seen.depth_m, seen.K, settings.region)
        except C2FError as exc:
            warnings.append(f"the detected hand was not used: {exc}")
    if user_box is not None:
        tight = check_box_in_image(to_seen(user_box), width, frame.height)
        box, source = square_box(tight, scale=settings.box_scale), "user"
        hand_box = user_box
    elif region is not None:
        box, source = _landmark_box(region, settings), "landmarks"
        hand_box = _hand_box(chosen)
    else:
        box = None
        if previous_points is not None and len(previous_points):
            try:
                x0, y0, x1, y1 = tight_box(previous_points, frame.K)
                m = TRACK_MARGIN_PX
                tight = check_box_in_image((x0 - m, y0 - m, x1 + m, y1 + m), width, frame.height)
                box, source, hand_box = square_box(to_seen(tight), scale=settings.box_scale), "tracked", tight
            except C2FError:
                box = None  # the previous result left the image: find the hand afresh
        if box is None:
            tight = detect_box(seen.color, seen.depth_m, seen.K)
            box, source = square_box(tight, scale=settings.detector_box_scale), "depth-skin"
            hand_box = to_seen(tight)
        if detector is not None:
            warnings.append(
                f"{detector.name} found no hand; the crop comes from "
                + ("a neighbouring frame's meshes" if source == "tracked" else "the depth-and-skin detector")
            )
    _check_crop_depth(seen, box)
    return seen, FrameCrop(box, source, side, region, hand_box, warnings)


def box_jump(previous: Box | None, current: Box | None) -> float | None:
    """How far (pixels) a hand box's centre moved, as a multiple of the previous hand's size; None if unknown."""
    if previous is None or current is None:
        return None
    (c0, side0), (c1, _) = box_center_side(previous), box_center_side(current)
    return float(np.linalg.norm(c1 - c0)) / max(side0, 1.0)
