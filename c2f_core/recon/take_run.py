"""Reconstruction of a take: every frame through `recon.runner.reconstruct_frame`, streamed to files.

In a sequence (a take with a frame rate or timestamps) each frame's crop may follow the previous
frame's meshes where the hand detector finds nothing (`recon.locate`). A take often starts with
the hand entering the picture, where the detector cannot find it yet and the depth-and-skin
detector takes whatever skin it sees (a forearm, a face) for the hand, and tracking follows it:
those lead-in frames are done again after the first frame with a detected hand, backwards, each
cropped around the meshes of the frame after it. Frames before the grasp then get the object
where it stands (`recon.still_object`).

A rerun skips complete frames, so a killed batch resumes where it stopped (`recon.resume`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from c2f_core.detect.base import HandDetector, HandSide
from c2f_core.detect.side_vote import MIN_VOTES, SideVote, vote_frames, vote_side
from c2f_core.errors import C2FError, NoSpaceError
from c2f_core.io.continuity import frames_follow, grey, spread_frames
from c2f_core.io.depth_lag import pair_depth
from c2f_core.io.recon_output import (
    HAND_MESH_FIT,
    HAND_MESH_SDF,
    FrameFiles,
    frame_files,
    iter_frame_meshes,
    read_reconstruction,
    write_frame_result,
    write_reconstruction_summary,
)
from c2f_core.io.take import Take
from c2f_core.model.network import C2FNetwork
from c2f_core.recon.crop import Box
from c2f_core.recon.extract import Mesh
from c2f_core.recon.locate import FrameCrop, box_jump, locate_hand
from c2f_core.recon.resume import check_resume, crop_from_files, made_with
from c2f_core.recon.runner import FrameResult, ReconstructionSettings, make_detector, reconstruct_frame
from c2f_core.recon.still_object import (
    ObjectView,
    StillObject,
    StillObjectSettings,
    carve_seen_through,
    find_still_object,
    object_view,
)
from c2f_core.train.config import C2FConfig

Event = dict[str, object]
STILL = StillObjectSettings()
"""When a frame's depth still shows the object of another (`recon.still_object`)."""


def _meshes_from_files(out: Path, frame_id: int, fmt: str) -> tuple[Mesh, Mesh] | None:
    """The hand and object meshes an earlier step wrote for `frame_id`, None when it has no result."""
    files = frame_files(out, frame_id, fmt)
    if not files.info.is_file():
        return None
    from c2f_core.io.mesh_io import read_mesh

    meshes = []
    for path in (files.hand, files.object):
        try:
            mesh = read_mesh(path)
            meshes.append(Mesh(np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int64)))
        except C2FError:
            meshes.append(Mesh.empty())
    return meshes[0], meshes[1]


def _previous_from_files(out: Path, frame_id: int, fmt: str) -> FrameResult | None:
    """The result of an earlier run for `frame_id` (meshes only), to keep tracking across a resume."""
    meshes = _meshes_from_files(out, frame_id, fmt)
    if meshes is None:
        return None
    return FrameResult(meshes[0], meshes[1], np.zeros((21, 3)), np.zeros(3), (0, 0, 0, 0), 0)


def _crop_info(crop: FrameCrop, width: int) -> dict[str, object]:
    """The frame JSON's record of how the frame was cropped (pixels of the captured image)."""
    info: dict[str, object] = {
        "crop_source": crop.source,
        "hand_side": crop.side,
        "hand_box": None if crop.hand_box is None else [float(v) for v in crop.hand_box],
    }
    if crop.region is not None:
        detection = crop.region.detection
        if crop.mirrored:
            detection = detection.mirrored(width)
        info["detector"] = detection.detector
        info["landmarks_2d"] = detection.landmarks_px.tolist()
        info["landmark_confidence"] = detection.confidence.tolist()
    return info


def _frame_event(frame_id: int, files: FrameFiles, **extra: object) -> Event:
    """The "frame" event of a finished frame: where its meshes and JSON are."""
    return {
        "event": "frame",
        "frame": frame_id,
        "hand": str(files.hand),
        "object": str(files.object),
        "json": str(files.info),
        **extra,
    }


def is_sequence(take: Take) -> bool:
    """Whether a take says its frames follow each other in time (it has a frame rate or timestamps)."""
    return take.intrinsics.fps is not None or bool(take.timestamps)


def tracks(take: Take, track: str) -> tuple[bool, str | None]:
    """Whether frames are cropped around their neighbours' meshes (`ReconstructionSettings.track`), and
    why, where the take does not say: "auto" tracks a take with a frame rate or timestamps, and one
    whose consecutive frames show one scene (`io.continuity`)."""
    if track != "auto":
        return track == "on", None
    if is_sequence(take):
        return True, None
    found = frames_follow(
        take.read_depth_file,
        lambda n: grey(take.read_frame(n, with_gt=False, check=False).color),
        take.frame_ids,  # each has its colour and its own depth file
    )
    return found.follows, found.describe()


def lead_in_frames(ids: list[int], sources: dict[int, str], fresh: set[int]) -> list[int]:
    """The frames to do again backwards, last first: those this run reconstructed before the first
    frame whose crop came from the landmarks, cropped by the depth-and-skin detector or tracked
    from such a crop (`sources`: each done frame's crop source; `fresh`: the frames this run
    reconstructed, so that a rerun still skips every complete frame)."""
    first = next((i for i, frame_id in enumerate(ids) if sources.get(frame_id) == "landmarks"), None)
    if first is None:
        return []
    return [
        frame_id
        for frame_id in reversed(ids[:first])
        if frame_id in fresh and sources.get(frame_id) in ("depth-skin", "tracked")
    ]


@dataclass
class _TakeRun:
    """What every frame of one `reconstruct_take` call shares."""

    take: Take
    network: C2FNetwork
    config: C2FConfig
    settings: ReconstructionSettings
    out: Path
    fmt: str
    device: str
    detector: HandDetector | None
    user_box: Box | None
    record: dict
    emit: Callable[[Event], None]
    vote_ids: list[int] = field(default_factory=list)
    """The frames the hand side is voted over (`detect.side_vote`); empty: no vote."""
    vote: SideVote | None = None
    """The vote, once the first frame to reconstruct asked for it."""

    def take_side(self) -> HandSide | None:
        """The side voted for over the take, voting first if no frame asked yet; None: each frame's own."""
        if self.vote is None and self.vote_ids and self.detector is not None:
            self.vote = take_side_vote(self.take, self.vote_ids, self.detector)
            self.emit({"event": "hand_side", "message": self.vote.describe()})
        return self.vote.side if self.vote is not None else None

    def frame(
        self,
        frame_id: int,
        neighbour: FrameResult | None,
        side: HandSide | None,
        hand_box: Box | None,
    ) -> tuple[FrameResult, FrameCrop]:
        """Reconstruct one frame and write its files; `neighbour` is the result to track from (None: don't).

        Raises:
            C2FError: when the frame cannot be reconstructed (nothing is written for it).
        """
        frame = self.take.read_frame(frame_id, with_gt=False)
        neighbour_points = None
        if neighbour is not None:
            neighbour_points = np.concatenate([neighbour.hand.vertices, neighbour.object.vertices], 0)
        started = time.perf_counter()
        seen, crop = locate_hand(
            frame,
            self.settings.locate,
            self.detector,
            self.user_box,
            neighbour_points,
            side,
            self.take_side(),
        )
        locate_seconds = time.perf_counter() - started
        jump = box_jump(hand_box, crop.hand_box)
        if jump is not None and jump > 1.0:
            # Reported, not refused: a hand can move that fast, but often it is another hand.
            crop.warnings.append(f"the hand box jumped {jump:.1f} hand sizes from the neighbouring frame's")
            self.emit({"event": "warning", "frame": frame_id, "message": crop.warnings[-1]})
        result = reconstruct_frame(self.network, self.config, seen, crop, self.settings, self.device)
        if crop.mirrored:
            result = result.mirrored(frame.width)
        result.timings["locate"] = locate_seconds
        result.timings["total"] += locate_seconds
        if result.hand.is_empty and result.object.is_empty:
            raise C2FError("no surface found (empty reconstruction): is the hand inside the crop box?")
        borrowed = self.take.depth_borrowed.get(frame_id)
        if borrowed is not None:
            crop.warnings.append(
                f"no depth file {frame_id + self.take.depth_lag:06d} for the take's depth lag of "
                f"{self.take.depth_lag:+d}: paired with depth file {borrowed:06d}, the nearest"
            )
            self.emit({"event": "warning", "frame": frame_id, "message": crop.warnings[-1]})
        warnings = list(crop.warnings) + [
            f"no {name} surface found"
            for name, mesh in (("hand", result.hand), ("object", result.object))
            if mesh.is_empty
        ]
        info = {
            "joints": result.joints,
            "network_joints": None if result.network_joints is None else result.network_joints.tolist(),
            "object_center": result.object_center,
            "queries": result.queries,
            "timings": result.timings,
            "bbox": result.box,
            "hand_mesh": HAND_MESH_FIT if self.settings.hand == "fit" else HAND_MESH_SDF,
            "warnings": warnings,
            **_crop_info(crop, frame.width),
            **({"depth_file": self.take.paths(frame_id).depth.name} if self.take.depth_lag else {}),
            "made_with": self.record,
        }
        write_frame_result(
            self.out,
            frame_id,
            (result.hand.vertices, result.hand.faces),
            (result.object.vertices, result.object.faces),
            info,
            self.fmt,
        )
        return result, crop


@dataclass
class _Tally:
    """What a take's run has done so far, frame by frame."""

    ids: list[int]
    """The frames asked for, in order."""
    done: list[int] = field(default_factory=list)
    """Frames with a result (this run's and earlier runs' kept ones)."""
    failed: dict[int, str] = field(default_factory=dict)
    """Frames that failed, with the reason."""
    skipped: int = 0
    """Frames an earlier run had completed."""
    sources: dict[int, str] = field(default_factory=dict)
    """How each frame's crop was found (`FrameCrop.source`)."""
    totals: dict[int, float] = field(default_factory=dict)
    """Seconds of each frame reconstructed in this run."""
    queries: dict[int, int] = field(default_factory=dict)
    """SDF queries of each frame reconstructed in this run."""


def take_side_vote(take: Take, frame_ids: list[int], detector: HandDetector) -> SideVote:
    """The detector's vote for the take's hand side over a few frames spread across `frame_ids`.

    The whole image only (a detector that looks again in windows is asked without them): the
    windows are for hands too small to find, and their handedness is the least sure.
    """
    if len(frame_ids) < MIN_VOTES:
        return vote_side([])
    whole = getattr(detector, "inner", detector)
    found = []
    for frame_id in vote_frames(frame_ids):
        try:
            color = take.read_frame(frame_id, with_gt=False, check=False).color
        except C2FError:
            continue  # an unreadable frame fails on its own turn, with its own message
        found.append(whole.detect(color))
    return vote_side(found)


def reconstruct_take(
    take: Take,
    network: C2FNetwork,
    config: C2FConfig,
    out: str | Path,
    settings: ReconstructionSettings,
    frame_ids: Iterable[int] | None = None,
    user_box: Box | None = None,
    fmt: str = "ply",
    overwrite: bool = False,
    device: str = "cpu",
    checkpoint: str | None = None,
    write_usd: bool = True,
    on_event: Callable[[Event], None] | None = None,
    progress_wrap: Callable[[Iterable[int], int], Iterable[int]] | None = None,
    detector: HandDetector | None = None,
) -> dict:
    """Reconstruct frames of a take into `out`, streaming; returns a summary with failures and timings.

    `detector` finds the hand's landmarks; None makes the one `settings.detector` names.
    """
    out = Path(out)
    emit = on_event or (lambda event: None)
    ids = list(take.frame_ids if frame_ids is None else frame_ids)
    take, depth_lag = pair_depth(take, settings.depth_lag)
    if depth_lag.lag:
        emit({"event": "depth_lag", "lag": depth_lag.lag, "message": depth_lag.describe()})
    tracking, continuity = tracks(take, settings.track)
    if continuity is not None and tracking:
        emit({"event": "sequence", "message": continuity})
    # Recorded as used: a rerun that would pair or track otherwise is refused, not mixed in.
    settings = dataclasses.replace(settings, depth_lag=str(depth_lag.lag), track="on" if tracking else "off")
    record = made_with(settings, fmt, checkpoint)
    check_resume(out, record, set(ids) if overwrite else set())
    emit({"event": "start", "total": len(ids), "take": take.name})
    if detector is None and settings.detector != "depth-skin":
        detector, warning = make_detector(settings.detector)
        if warning:
            emit({"event": "warning", "message": warning})
    run = _TakeRun(take, network, config, settings, out, fmt, device, detector, user_box, record, emit)
    if settings.locate.hand_side == "auto" and user_box is None:
        run.vote_ids = ids
    tally = _Tally(ids)
    previous: FrameResult | None = None
    side: HandSide | None = None
    hand_box: Box | None = None
    iterator: Iterable[int] = progress_wrap(ids, len(ids)) if progress_wrap else ids
    for position, frame_id in enumerate(iterator):
        files = frame_files(out, frame_id, fmt)
        if files.info.is_file() and not overwrite:
            tally.skipped += 1
            tally.done.append(frame_id)
            side, hand_box, source = crop_from_files(files)
            tally.sources[frame_id] = source or ""
            previous = _previous_from_files(out, frame_id, fmt) if tracking else None
            side, hand_box = (side, hand_box) if tracking else (None, None)
            emit(_frame_event(frame_id, files, skipped=True))
            emit({"event": "progress", "done": position + 1, "total": len(ids)})
            continue
        try:
            result, crop = run.frame(frame_id, previous, side, hand_box if tracking else None)
        except NoSpaceError:
            raise  # a full disk is no frame's fault: stop; the frames written so far are complete
        except C2FError as exc:
            tally.failed[frame_id] = str(exc)
            previous, hand_box = None, None
            emit({"event": "error", "frame": frame_id, "message": str(exc)})
        else:
            tally.done.append(frame_id)
            previous = result if tracking else None
            side, hand_box = (crop.side, crop.hand_box) if tracking else (None, None)
            _count(tally, frame_id, result, crop)
            emit(_frame_event(frame_id, files))
        emit({"event": "progress", "done": position + 1, "total": len(ids)})
    redone = _redo_lead_in(run, tally) if tracking and user_box is None else []
    still = _place_still_object(run, tally) if tracking and settings.still_object else None
    summary = _finish(run, tally, checkpoint, write_usd)
    summary["still_object"] = still.describe() if still is not None and still.frames else None
    summary["lead_in"] = redone
    summary["hand_side_vote"] = run.vote.describe() if run.vote is not None else None
    summary["depth_lag"] = depth_lag.lag
    summary["tracked"] = tracking
    summary["frames_follow"] = continuity
    summary["depth_lag_found"] = depth_lag.describe()
    return summary


def _count(tally: _Tally, frame_id: int, result: FrameResult, crop: FrameCrop) -> None:
    """Record a frame reconstructed in this run."""
    tally.sources[frame_id] = crop.source
    tally.totals[frame_id] = result.timings["total"]
    tally.queries[frame_id] = result.queries


def _redo_lead_in(run: _TakeRun, tally: _Tally) -> list[int]:
    """The lead-in frames (`lead_in_frames`) reconstructed again, backwards, each tracked from the
    frame after it; a frame whose redo fails keeps its first result. Returns the frames redone."""
    ids = tally.ids
    redo = lead_in_frames(ids, tally.sources, set(tally.totals))
    redone: list[int] = []
    if not redo:
        return redone
    run.emit({"event": "lead_in", "frames": redo})
    position = {frame_id: i for i, frame_id in enumerate(ids)}
    for frame_id in redo:
        after = ids[position[frame_id] + 1]
        neighbour = _previous_from_files(run.out, after, run.fmt)
        side, hand_box, _ = crop_from_files(frame_files(run.out, after, run.fmt))
        try:
            result, crop = run.frame(frame_id, neighbour, side, hand_box)
        except NoSpaceError:
            raise
        except C2FError as exc:
            run.emit(
                {"event": "warning", "frame": frame_id, "message": f"lead-in frame kept as it was: {exc}"}
            )
            continue
        _count(tally, frame_id, result, crop)
        redone.append(frame_id)
        run.emit(_frame_event(frame_id, frame_files(run.out, frame_id, run.fmt), lead_in=True))
    return redone


def _place_still_object(run: _TakeRun, tally: _Tally) -> StillObject | None:
    """The frames before the grasp rewritten with the object where it stands (`recon.still_object`)."""
    done = set(tally.done)
    ids = [frame_id for frame_id in run.take.frame_ids if frame_id in done]

    def view_of(frame_id: int) -> ObjectView | None:
        meshes = _meshes_from_files(run.out, frame_id, run.fmt)
        if meshes is None:
            return None
        try:
            frame = run.take.read_frame(frame_id, with_gt=False)
        except C2FError:
            return None  # its files went bad since it was reconstructed: it cannot be judged
        hand, obj = ((mesh.vertices, mesh.faces) for mesh in meshes)
        return object_view(hand, obj, frame.depth_m, frame.K, STILL)

    found = find_still_object(ids, view_of, STILL)
    if found is None or not found.frames:
        return found
    source = _meshes_from_files(run.out, found.source, run.fmt)
    source_info = json.loads(frame_files(run.out, found.source, run.fmt).info.read_text())
    assert source is not None
    seen = [run.take.read_frame(f, with_gt=False) for f in spread_frames(found.frames, STILL.carve_frames)]
    copy = carve_seen_through(
        (source[1].vertices, source[1].faces), [frame.depth_m for frame in seen], seen[0].K, STILL
    )
    for frame_id in found.frames:
        files = frame_files(run.out, frame_id, run.fmt)
        hand = _meshes_from_files(run.out, frame_id, run.fmt)
        assert hand is not None
        info = {k: v for k, v in json.loads(files.info.read_text()).items() if k not in ("frame", "meshes")}
        info["object_center"] = source_info.get("object_center")
        info["object_from_frame"] = found.source
        info["warnings"] = [w for w in info.get("warnings", []) if w != "no object surface found"]
        write_frame_result(
            run.out,
            frame_id,
            (hand[0].vertices, hand[0].faces),
            copy,
            info,
            run.fmt,
        )
    run.emit({"event": "still_object", "frames": list(found.frames), "message": found.describe()})
    return found


def _finish(run: _TakeRun, tally: _Tally, checkpoint: str | None, write_usd: bool) -> dict:
    """The take's summary file, its USD and the returned summary, once every frame is done."""
    take, out, failed, done = run.take, run.out, tally.failed, tally.done
    # Earlier runs may have finished frames outside this range: keep them listed.
    existing = []
    if (out / "reconstruction.json").is_file():
        try:
            existing = list(read_reconstruction(out).frames)
        except C2FError:
            existing = []
    all_done = sorted(set(done) | {f for f in existing if f not in failed})
    if not all_done and not failed:
        raise C2FError(f"take {take.name} has no frames to reconstruct")
    if failed and not done:
        # Nothing new to record: an earlier run's reconstruction.json stays as it was, and no
        # summary listing zero frames is written.
        first_id, first_message = next(iter(failed.items()))
        raise C2FError(
            f"take {take.name}: every frame failed ({len(failed)} of {len(tally.ids)} frame(s)); "
            f"first, frame {first_id:06d}: {first_message}"
        )
    # Recorded for the footage behind the meshes: a single frame from files has no take folder.
    in_take = set(take.frame_ids)
    color_files = {f: take.paths(f).color for f in [*all_done, *failed] if f in in_take}
    write_reconstruction_summary(
        out,
        name=take.name,
        intrinsics=take.intrinsics,
        frames=all_done,
        failed=failed,
        take=take.root,
        checkpoint=checkpoint,
        fmt=run.fmt,
        color_files=color_files,
        depth_lag=take.depth_lag,
    )
    usd_path = None
    if write_usd and len(all_done) > 1:
        from c2f_core.io.usd_take import write_usd_take

        recon = read_reconstruction(out)
        usd_path = out / "take.usdc"
        write_usd_take(usd_path, iter_frame_meshes(recon), fps=recon.fps)
    summary = {
        "take": take.name,
        "out": str(out),
        "frames": len(tally.ids),
        "reconstructed": len(done) - tally.skipped,
        "skipped_existing": tally.skipped,
        "failed": {str(k): v for k, v in failed.items()},
        "mean_seconds_per_frame": float(np.mean(list(tally.totals.values()))) if tally.totals else None,
        "mean_queries": float(np.mean(list(tally.queries.values()))) if tally.queries else None,
        "usd": str(usd_path) if usd_path else None,
    }
    run.emit({"event": "done", "out": str(out)})
    return summary
