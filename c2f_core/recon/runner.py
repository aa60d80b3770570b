"""Reconstruction of frames and takes: crop, encode once, extract meshes, write results.

Per frame, with no ground truth anywhere on this path:
1. where the hand is (`recon.locate`): the user's `--bbox`, else the hand detector's landmarks
   (crop, reference depth, forearm left out, left hands mirrored), else (in a sequence) the box of
   the previous frame's meshes, else the depth-and-skin detector;
2. the network input (`data.inputs.make_input`) and one `encode`;
3. surface-aware extraction (default) or dense extraction at `resolution`^3 over the network's
   reconstruction cube, the field being the fine hand and object SDFs in metres (the hand ended at
   the wrist plane when landmarks were found);
4. meshes in metric camera space, joints and object centre, query count and per-stage timings,
   written by `io.recon_output` (the frame JSON last, marking the frame complete).
A rerun skips complete frames, so a killed batch resumes where it stopped. Each frame JSON records
what made it ("made_with": the checkpoint's SHA-256 and the settings), and a rerun whose checkpoint
or settings differ from those of the frames already in the folder is refused, so one folder never
mixes the results of two models or two settings.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.nn.utils import parametrize

from c2f_core.data.inputs import make_input
from c2f_core.detect.base import HandDetector, HandSide
from c2f_core.errors import C2FError, NoSpaceError
from c2f_core.geometry.camera import backproject_pixels
from c2f_core.geometry.frames import sdf_m_to_nu
from c2f_core.geometry.grid import GridCube
from c2f_core.geometry.mirror import mirror_box, mirror_faces, mirror_points
from c2f_core.io.frames import RGBDFrame
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
from c2f_core.model.network import C2FNetwork, EncodedFrames
from c2f_core.recon.constraints import ForearmExclusion, ImageHull, WristPlane, hand_hull_mask
from c2f_core.recon.crop import Box
from c2f_core.recon.dense import DenseExtractor, DenseExtractorConfig
from c2f_core.recon.extract import ExtractionResult, Mesh, separate_fields
from c2f_core.recon.hand_fit import Landmarks, fit_open_hand
from c2f_core.recon.locate import FrameCrop, LocateSettings, box_jump, locate_hand
from c2f_core.recon.resume import check_resume, crop_from_files, made_with
from c2f_core.recon.ser import SurfaceAwareExtractor, SurfaceAwareExtractorConfig
from c2f_core.recon.ser_blocks import select_coarse_blocks
from c2f_core.train.config import C2FConfig

Event = dict[str, object]

PIECE_FRACTION = 0.25
"""SER: coarse pieces of a surface with under this fraction of the largest piece's cells are not
refined, since only the largest piece is kept (``SurfaceAwareExtractorConfig.piece_fraction``)."""

DetectorChoice = Literal["auto", "mediapipe", "depth-skin"]


@dataclass
class ReconstructionSettings:
    """How meshes are extracted from the network."""

    resolution: int = 128
    """Grid samples per axis over the reconstruction cube (a multiple of the heatmap resolution)."""
    method: Literal["ser", "dense"] = "ser"
    """Surface-aware extraction (queries near the predicted surfaces only) or every grid sample."""
    octree: bool = True
    """SER: refine coarse-to-fine inside the selected blocks (fewer queries)."""
    keep_largest_component: bool = True
    """Keep only the largest connected piece of each mesh."""
    hand: Literal["sdf", "fit"] = "sdf"
    """The hand mesh: the network's SDF surface, or the open hand fitted to the frame's predictions
    (``recon.hand_fit``: a clean articulated hand with fixed topology; about 3-5 s more per frame
    on a CPU)."""
    separate: bool = True
    """Make the hand and object fields exclusive before meshing (``recon.extract.separate_fields``),
    so the meshes touch but do not pass through each other."""
    hand_band_m: float = 0.0065
    """Depth points whose coarse hand SDF is within this distance mark hand blocks (0.02 nu of DexYCB)."""
    object_band_m: float = 0.0129
    """Depth points whose coarse object SDF is within this distance mark object blocks (0.04 nu)."""
    heatmap_threshold: float = 0.005
    """Heatmap values below this count as empty (the reference's hm_threshold)."""
    chunk_size: int = 1 << 16
    """SDF queries per network call."""
    track: Literal["auto", "on", "off"] = "auto"
    """Crop each frame around the previous frame's meshes: "auto" does so in a sequence (a take with
    an "fps" or timestamps), where neighbouring frames show the same grasp; never for independent frames."""
    hand_hull_m: float = 0.015
    """With landmarks, the hand is kept within this distance (metres, at the palm's depth) of its 2D
    skeleton (``recon.constraints.hand_hull_mask``); 0 turns the hull off."""
    forearm_shell_m: float = 0.015
    """With landmarks, the object keeps this far off the forearm's observed surface (0: off)."""
    detector: DetectorChoice = "auto"
    """The hand detector: MediaPipe Hands' landmarks ("auto" when mediapipe is installed), or only the
    depth-and-skin detector (which takes a bare forearm for the hand)."""
    locate: LocateSettings = field(default_factory=LocateSettings)
    """How each frame's crop, reference depth, hand side and forearm are found."""


@dataclass
class FrameResult:
    """Meshes and predictions of one frame, metres, OpenCV camera frame."""

    hand: Mesh
    object: Mesh
    joints: np.ndarray
    object_center: np.ndarray
    box: Box
    queries: int
    timings: dict[str, float] = field(default_factory=dict)
    network_joints: np.ndarray | None = None
    """(21, 3) the network's own joints when `joints` come from elsewhere (the landmarks, the fit)."""

    def mirrored(self, width: int) -> FrameResult:
        """The result flipped left to right (see `geometry.mirror`): a left hand back from its mirror image."""
        return FrameResult(
            hand=Mesh(mirror_points(self.hand.vertices), mirror_faces(self.hand.faces)),
            object=Mesh(mirror_points(self.object.vertices), mirror_faces(self.object.faces)),
            joints=mirror_points(self.joints),
            object_center=mirror_points(self.object_center),
            box=mirror_box(self.box, width),
            queries=self.queries,
            timings=self.timings,
            network_joints=None if self.network_joints is None else mirror_points(self.network_joints),
        )


@contextlib.contextmanager
def _small_ops_threads(device: str) -> Iterator[None]:
    """One torch thread on a CPU while the encoder and the surface-aware extraction run.

    Their ops are small (one crop; field calls of a few to a few thousand points): several threads
    per op cost more than they save on a shared CPU. Measured on frame 0 of a real take, this
    project's 2-core CPU with another job on it: SER 5.9 s with two threads against 0.63 s with
    one, the encoder 2.5 s against 0.014 s. Dense extraction (65,536-point calls) keeps them.
    """
    if device != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def reconstruction_cube(ref_m: np.ndarray, cube_half_m: float, resolution: int) -> GridCube:
    """The grid over the network's cube [-1, 1]^3 nu around the reference point, metres."""
    return GridCube(
        origin=np.asarray(ref_m, np.float64) - cube_half_m,
        voxel_size=2.0 * cube_half_m / (resolution - 1),
        resolution=resolution,
    )


def _markers(state: EncodedFrames, settings: ReconstructionSettings, cube_half_m: float) -> torch.Tensor:
    """SER marker points in camera metres: hand points, near-surface depth points, their object mirrors."""
    parts = [state.hand_points_nu[0]]
    if state.pcl_sdf is not None:
        pcl = state.pcl_nu[0]
        hand_near = state.pcl_sdf[0, :, 0].abs() <= sdf_m_to_nu(settings.hand_band_m, cube_half_m)
        obj_near = state.pcl_sdf[0, :, 1].abs() <= sdf_m_to_nu(settings.object_band_m, cube_half_m)
        centre = state.object_center_nu[0]
        parts += [pcl[hand_near], pcl[obj_near], 2 * centre - pcl[obj_near]]
    return state.to_cam(torch.cat(parts, 0)[None])[0]


def reconstruct_frame(
    network: C2FNetwork,
    config: C2FConfig,
    frame: RGBDFrame,
    crop: FrameCrop,
    settings: ReconstructionSettings,
    device: str = "cpu",
) -> FrameResult:
    """Reconstruct hand and object meshes of one frame (as `locate_hand` prepared it) cropped by `crop`.

    The result is in the camera frame of `frame`: mirrored when `crop.mirrored` (flip it back with
    `FrameResult.mirrored`).
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    batch = make_input(frame, crop.box, config, device=device, ref_z_m=crop.ref_z_m)
    timings["input"] = time.perf_counter() - start
    with torch.no_grad(), _small_ops_threads(device):
        t = time.perf_counter()
        state = network.encode(batch)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        timings["encoder"] = time.perf_counter() - t
    half = config.frames.cube_half_m
    ref = state.ref_m[0].detach().cpu().numpy().astype(np.float64)
    cube = reconstruction_cube(ref, half, settings.resolution)
    network_field = network.field_fn(state)
    region = crop.region
    constraints: list[ImageHull | ForearmExclusion | WristPlane] = []
    if region is not None and settings.hand_hull_m > 0:
        shape = frame.depth_m.shape
        hand_mask = hand_hull_mask(
            region.detection.landmarks_px, region.palm_depth_m, frame.K, shape, settings.hand_hull_m
        )
        constraints.append(ImageHull(hand_mask, frame.K, 0, device))
    if region is not None and settings.forearm_shell_m > 0 and region.forearm_mask.any():
        rows, cols = np.nonzero(region.forearm_mask)
        forearm_points = backproject_pixels(cols, rows, frame.depth_m[rows, cols].astype(np.float64), frame.K)
        constraints.append(ForearmExclusion(forearm_points, settings.forearm_shell_m, device))
    if region is not None:
        constraints.append(WristPlane(region.wrist_point_m, region.wrist_normal, device))

    # Under parametrize.cached() (below) the decoders' weight-normalised weights are computed once
    # per frame instead of once per field call.
    def field_fn(points_m: torch.Tensor) -> torch.Tensor:
        sdf = network_field(points_m)
        for constraint in constraints:
            sdf = constraint.clip(sdf, points_m)
        return separate_fields(sdf) if settings.separate else sdf

    names = ("hand", "object")
    if settings.method == "dense":
        extractor = DenseExtractor(
            DenseExtractorConfig(
                chunk_size=settings.chunk_size,
                device=device,
                keep_largest_component=settings.keep_largest_component,
            )
        )
        with parametrize.cached():
            result: ExtractionResult = extractor.extract(field_fn, cube, names)
        timings["select"] = 0.0
    else:
        t = time.perf_counter()
        with torch.no_grad():
            heatmap = state.heatmap[0].sum(0).clamp(0, 1).detach().cpu().numpy()
            markers = _markers(state, settings, half).detach().cpu().numpy()
        if heatmap.shape[0] != 0 and settings.resolution % heatmap.shape[0]:
            raise C2FError(
                f"resolution {settings.resolution} must be a multiple of the heatmap's {heatmap.shape[0]}"
            )
        selection = select_coarse_blocks(
            cube, heatmap, markers, settings.heatmap_threshold, coarse_resolution=heatmap.shape[0]
        )
        timings["markers"] = time.perf_counter() - t
        extractor = SurfaceAwareExtractor(
            SurfaceAwareExtractorConfig(
                octree=settings.octree,
                chunk_size=settings.chunk_size,
                device=device,
                keep_largest_component=settings.keep_largest_component,
                # following the surfaces skips pieces too small for its coarse lattices: every
                # piece is kept only with the band
                follow_surface=settings.keep_largest_component,
                piece_fraction=PIECE_FRACTION,
            )
        )
        with parametrize.cached(), _small_ops_threads(device):
            result = extractor.extract(field_fn, cube, selection, names)
    for stage, seconds in result.timings.items():
        timings[f"extract_{stage}"] = seconds
    with torch.no_grad():
        joints = state.to_cam(state.joints_nu)[0].cpu().numpy()
        centre = state.to_cam(state.object_center_nu[:, None])[0, 0].cpu().numpy()
    hand = result.meshes["hand"]
    network_joints = None
    if region is not None:
        # The landmarks, trained on real hands, place the joints better than the network does.
        network_joints, joints = joints, region.joints_m
    if settings.hand == "fit":
        landmarks = None
        if region is not None:
            detection = region.detection
            landmarks = Landmarks(detection.landmarks_px, detection.confidence, region.joints_m)
        fit = fit_open_hand(
            network, state, frame.depth_m, frame.K, surface=hand.vertices, landmarks=landmarks
        )
        hand = Mesh(fit.vertices, fit.faces)
        network_joints = joints if network_joints is None else network_joints
        joints = fit.joints
        timings["hand_fit"] = fit.seconds
    timings["total"] = time.perf_counter() - start
    return FrameResult(
        hand=hand,
        object=result.meshes["object"],
        joints=joints.astype(np.float64),
        object_center=centre.astype(np.float64),
        box=crop.box,
        queries=result.queries,
        timings=timings,
        network_joints=None if network_joints is None else network_joints.astype(np.float64),
    )


def make_detector(choice: DetectorChoice) -> tuple[HandDetector | None, str | None]:
    """The landmark detector for a choice, and a warning when "auto" has to go without one."""
    if choice == "depth-skin":
        return None, None
    from c2f_core.detect.mediapipe_hands import INSTALL_HINT, MediaPipeHands, mediapipe_available

    if choice == "auto" and not mediapipe_available():
        return None, (
            "mediapipe is not installed: hands are found by the depth-and-skin detector, which takes a "
            f"bare forearm for the hand ({INSTALL_HINT})"
        )
    return MediaPipeHands(), None


def _previous_from_files(out: Path, frame_id: int, fmt: str) -> FrameResult | None:
    """The result of an earlier run for `frame_id` (meshes only), to keep tracking across a resume."""
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
    """Whether a take's frames follow each other in time (it has a frame rate or timestamps)."""
    return take.intrinsics.fps is not None or bool(take.timestamps)


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
    record = made_with(settings, fmt, checkpoint)
    check_resume(out, record, set(ids) if overwrite else set())
    tracking = settings.track == "on" or (settings.track == "auto" and is_sequence(take))
    emit({"event": "start", "total": len(ids), "take": take.name})
    failed: dict[int, str] = {}
    done: list[int] = []
    skipped = 0
    previous: FrameResult | None = None
    side: HandSide | None = None
    hand_box: Box | None = None
    if detector is None and settings.detector != "depth-skin":
        detector, warning = make_detector(settings.detector)
        if warning:
            emit({"event": "warning", "message": warning})
    totals: list[float] = []
    queries: list[int] = []
    iterator: Iterable[int] = progress_wrap(ids, len(ids)) if progress_wrap else ids
    for position, frame_id in enumerate(iterator):
        files = frame_files(out, frame_id, fmt)
        if files.info.is_file() and not overwrite:
            skipped += 1
            done.append(frame_id)
            previous = _previous_from_files(out, frame_id, fmt) if tracking else None
            side, hand_box = crop_from_files(files) if tracking else (None, None)
            emit(_frame_event(frame_id, files, skipped=True))
            emit({"event": "progress", "done": position + 1, "total": len(ids)})
            continue
        try:
            frame = take.read_frame(frame_id, with_gt=False)
            previous_points = None
            if previous is not None:
                previous_points = np.concatenate([previous.hand.vertices, previous.object.vertices], 0)
            started = time.perf_counter()
            seen, crop = locate_hand(frame, settings.locate, detector, user_box, previous_points, side)
            locate_seconds = time.perf_counter() - started
            jump = box_jump(hand_box, crop.hand_box) if tracking else None
            if jump is not None and jump > 1.0:
                # Reported, not refused: a hand can move that fast, but often it is another hand.
                crop.warnings.append(f"the hand box jumped {jump:.1f} hand sizes from the previous frame's")
                emit({"event": "warning", "frame": frame_id, "message": crop.warnings[-1]})
            result = reconstruct_frame(network, config, seen, crop, settings, device)
            if crop.mirrored:
                result = result.mirrored(frame.width)
            result.timings["locate"] = locate_seconds
            result.timings["total"] += locate_seconds
            if result.hand.is_empty and result.object.is_empty:
                raise C2FError("no surface found (empty reconstruction): is the hand inside the crop box?")
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
                "hand_mesh": HAND_MESH_FIT if settings.hand == "fit" else HAND_MESH_SDF,
                "warnings": warnings,
                **_crop_info(crop, frame.width),
                "made_with": record,
            }
            write_frame_result(
                out,
                frame_id,
                (result.hand.vertices, result.hand.faces),
                (result.object.vertices, result.object.faces),
                info,
                fmt,
            )
        except NoSpaceError:
            raise  # a full disk is no frame's fault: stop; the frames written so far are complete
        except C2FError as exc:
            failed[frame_id] = str(exc)
            previous, hand_box = None, None
            emit({"event": "error", "frame": frame_id, "message": str(exc)})
        else:
            done.append(frame_id)
            previous = result if tracking else None
            side, hand_box = (crop.side, crop.hand_box) if tracking else (None, None)
            totals.append(result.timings["total"])
            queries.append(result.queries)
            emit(_frame_event(frame_id, files))
        emit({"event": "progress", "done": position + 1, "total": len(ids)})
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
            f"take {take.name}: every frame failed ({len(failed)} of {len(ids)} frame(s)); "
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
        fmt=fmt,
        color_files=color_files,
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
        "frames": len(ids),
        "reconstructed": len(done) - skipped,
        "skipped_existing": skipped,
        "failed": {str(k): v for k, v in failed.items()},
        "mean_seconds_per_frame": float(np.mean(totals)) if totals else None,
        "mean_queries": float(np.mean(queries)) if queries else None,
        "usd": str(usd_path) if usd_path else None,
    }
    emit({"event": "done", "out": str(out)})
    return summary
