"""Reconstruction of one frame: crop, encode once, extract meshes (a take's frames: `recon.take_run`).

Per frame, with no ground truth anywhere on this path:
1. where the hand is (`recon.locate`): the user's `--bbox`, else the hand detector's landmarks
   (crop, reference depth, forearm left out, left hands mirrored), else (in a sequence) the box of
   a neighbouring frame's meshes, else the depth-and-skin detector;
2. the network input (`data.inputs.make_input`) and one `encode`;
3. surface-aware extraction (default) or dense extraction at `resolution`^3 over the network's
   reconstruction cube, the field being the fine hand and object SDFs in metres (the hand ended at
   the wrist plane when landmarks were found);
4. meshes in metric camera space, joints and object centre, query count and per-stage timings,
   which `recon.take_run` writes (`io.recon_output`, the frame JSON last, marking the frame
   complete). Each frame JSON records what made it ("made_with": the checkpoint's SHA-256 and the
   settings), and a rerun whose checkpoint or settings differ from those of the frames already in
   the folder is refused, so one folder never mixes the results of two models or two settings.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch.nn.utils import parametrize

from c2f_core.data.inputs import make_input
from c2f_core.detect.base import HandDetector
from c2f_core.errors import C2FError
from c2f_core.geometry.camera import backproject_pixels
from c2f_core.geometry.frames import sdf_m_to_nu
from c2f_core.geometry.grid import GridCube
from c2f_core.geometry.mirror import mirror_box, mirror_faces, mirror_points
from c2f_core.io.frames import RGBDFrame
from c2f_core.model.network import C2FNetwork, EncodedFrames
from c2f_core.recon.constraints import (
    FieldConstraint,
    ForearmExclusion,
    FreeSpace,
    ImageHull,
    SeenSurfaceReach,
    WristPlane,
    hand_hull_mask,
    seen_surface_points,
)
from c2f_core.recon.crop import Box
from c2f_core.recon.dense import DenseExtractor, DenseExtractorConfig
from c2f_core.recon.depth_snap import snap_parts_to_depth, snap_to_depth
from c2f_core.recon.extract import ExtractionResult, Mesh, separate_fields
from c2f_core.recon.hand_fit import Landmarks, fit_open_hand
from c2f_core.recon.locate import FrameCrop, LocateSettings
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
    object_priority_hull_m: float = 0.007
    """With landmarks, where both fields say inside, a point that projects d metres (at the palm's
    depth) beyond this distance from the hand's 2D skeleton goes to the object unless the hand is
    deeper there by more than `object_priority_gain` * d (``recon.extract.separate_fields``). The
    network's hand swells over the object's surface beside the fingers (the top of a can under
    them), where it is deeper than the object; the landmarks say that is no finger. On the real
    DexYCB take it raised the object points within 10 mm from 68% to 76% (0.008 and gain 3: 75%),
    the 50 classic frames' raw F_o@10 0.654 -> 0.648. 0 turns it off (the deeper field keeps it)."""
    object_priority_gain: float = 5.0
    """See `object_priority_hull_m`."""
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
    an "fps" or timestamps, or whose consecutive frames show one scene: `io.continuity`), where
    neighbouring frames show the same grasp; never for independent frames. A take's run records
    what it used ("on" or "off")."""
    still_object: bool = True
    """In a tracked sequence, the frames before the grasp get the object the network meshed at the
    grasp, where their depth shows it still stands (``recon.still_object``): cropped around the
    reaching hand, the network sees no object there. On the real DexYCB take (the can meshed in
    frames 0-11) object IoU 0.553 -> 0.665, object points within 10 mm 77.5% -> 91.4% (without
    the object's reach 0.514 -> 0.621, 77.5% -> 91.2%)."""
    hand_hull_m: float = 0.015
    """With landmarks, the hand is kept within this distance (metres, at the palm's depth) of its 2D
    skeleton (``recon.constraints.hand_hull_mask``); 0 turns the hull off."""
    forearm_shell_m: float = 0.015
    """With landmarks, the object keeps this far off the forearm's observed surface (0: off)."""
    free_space_m: float = 0.005
    """Both fields are empty more than this far in front of the observed depth, where the camera saw
    through (``recon.constraints.FreeSpace``; every frame); 0 turns it off. 5 mm: above the
    sensor's depth noise; 3 and 10 mm scored about the same on the DexYCB take."""
    hand_reach_m: float = 0.0
    """The hand is kept within this distance of the depth points on its surface, what the camera
    saw of it (``recon.constraints.SeenSurfaceReach``; `c2f reconstruct --hand-reach`); 0 (the
    default) turns it off. The network's hand grows thick behind its seen side; 5 cm trims it on
    single frames (raw F_h@5 0.603 -> 0.619 on the 50 benchmark frames, 0.547 -> 0.560 real look,
    0.696 -> 0.706 on the sequence; real take hand points within 5 mm 80.9% -> 81.6%), but the
    animated takes' hand fit starts from the per-frame hands and the turned take's hand then
    entered the bowl by 2.0 mm (0.66 without; issue 16's bar is 2 mm)."""
    object_reach_m: float = 0.04
    """The object is kept within this distance of the depth points on its surface, or behind them
    (`object_lateral_m`; `c2f reconstruct --object-reach`, which leaves it off for a take to
    animate); 0 turns it off. It trims the object the network spreads into the space the hand
    hides and behind the forearm: on the real DexYCB take (with `still_object`) object IoU 0.621 ->
    0.665 (0.514 -> 0.553 without `still_object`, 3 cm the same). Measured before the depth lag: 4 cm (with
    the hand's 5 cm) gave raw F_o@10 0.648 -> 0.674 on the 50 benchmark frames, 0.453 -> 0.466 on
    the real-look ones, object IoU 0.469 -> 0.506 on the real DexYCB take. The animated takes fuse
    the per-frame objects, and there it cost (the 30-frame take's fused object 0.769 -> 0.786 cm²).
    Without the lateral allowance 3 / 4 / 5 / 7 cm gave F_o@10 0.697 / 0.690 / 0.684 / 0.668 and
    0.508 / 0.498 / 0.482 / 0.460 but cut the far side off the sequence's mug (0.766 -> 0.733)."""
    object_lateral_m: float = 0.02
    """Behind what was seen of the object, within this distance of its silhouette, the object may
    reach any depth (its own far side: a mug's back lies behind its front). The hand has none:
    its spurious thickness lies behind its own silhouette."""
    depth_snap_m: float = 0.02
    """Each part's seen side moves onto the measured depth where it lies within this distance, the
    rest of the part following smoothly (``recon.depth_snap``; `c2f reconstruct --depth-snap`); 0
    turns it off. With `hand` "fit" the open hand is fitted to the moved hand's surface, then
    moved onto the depth itself (its topology kept)."""
    seen_band_m: float = 0.01
    """Depth points within this distance of a part's zero level (and nearer it than the other's)
    are that part's seen surface for `object_reach_m` and `hand_reach_m`."""
    depth_lag: str = "auto"
    """How a take's depth files pair with its colour frames (`io.depth_lag`): "auto" tells a lag from
    where colour and depth change together, a number pairs colour frame t with depth file t + it. A
    take's run records the lag it used (a number), so a rerun that pairs otherwise is refused."""
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


def _seen_surface_reaches(
    state: EncodedFrames,
    network_field: Callable[[torch.Tensor], torch.Tensor],
    constraints: list[FieldConstraint],
    settings: ReconstructionSettings,
    K: np.ndarray,
    device: str,
) -> list[SeenSurfaceReach]:
    """Hand and object kept near their seen surfaces: the network's depth points (``pcl_nu``) that
    the fields, with the constraints so far, put on each part (`K`: the frame's intrinsics)."""
    with torch.no_grad():
        seen = state.to_cam(state.pcl_nu)[0]
        sdf = network_field(seen)
        for constraint in constraints:
            sdf = constraint.clip(sdf, seen)
    points, sdf_m = seen.cpu().numpy(), sdf.cpu().numpy()
    reaches = []
    for channel, reach in enumerate((settings.hand_reach_m, settings.object_reach_m)):
        if reach > 0:
            surface = seen_surface_points(points, sdf_m, settings.seen_band_m, channel)
            lateral = settings.object_lateral_m if channel == 1 else 0.0
            reaches.append(SeenSurfaceReach(surface, reach, channel, K, lateral, device))
    return reaches


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
    constraints: list[FieldConstraint] = []
    if settings.free_space_m > 0:
        # the frame as the crop saw it (mirrored for a left hand), so its depth and K match the points
        constraints.append(FreeSpace(frame.depth_m, frame.K, settings.free_space_m, device=device))
    if region is not None and settings.hand_hull_m > 0:
        shape = frame.depth_m.shape
        hand_mask = hand_hull_mask(
            region.detection.landmarks_px, region.palm_depth_m, frame.K, shape, settings.hand_hull_m
        )
        constraints.append(ImageHull(hand_mask, frame.K, 0, device))
    fingers = None  # where the object gets priority in the fields' overlap: beyond the hand's skeleton
    if region is not None and settings.separate and settings.object_priority_hull_m > 0:
        skeleton = hand_hull_mask(
            region.detection.landmarks_px,
            region.palm_depth_m,
            frame.K,
            frame.depth_m.shape,
            settings.object_priority_hull_m,
        )
        fingers = ImageHull(skeleton, frame.K, 0, device)
    if region is not None and settings.forearm_shell_m > 0 and region.forearm_mask.any():
        rows, cols = np.nonzero(region.forearm_mask)
        forearm_points = backproject_pixels(cols, rows, frame.depth_m[rows, cols].astype(np.float64), frame.K)
        constraints.append(ForearmExclusion(forearm_points, settings.forearm_shell_m, device))
    if region is not None:
        constraints.append(WristPlane(region.wrist_point_m, region.wrist_normal, device))
    if settings.hand_reach_m > 0 or settings.object_reach_m > 0:
        constraints += _seen_surface_reaches(state, network_field, constraints, settings, frame.K, device)

    # Under parametrize.cached() (below) the decoders' weight-normalised weights are computed once
    # per frame instead of once per field call.
    def field_fn(points_m: torch.Tensor) -> torch.Tensor:
        sdf = network_field(points_m)
        for constraint in constraints:
            sdf = constraint.clip(sdf, points_m)
        if not settings.separate:
            return sdf
        if fingers is None:
            return separate_fields(sdf)
        beyond = torch.clamp(fingers.outside_m(points_m), min=0.0).to(sdf.device)
        return separate_fields(sdf, settings.object_priority_gain * beyond)

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
    hand, obj = result.meshes["hand"], result.meshes["object"]
    if settings.depth_snap_m > 0:
        t = time.perf_counter()
        hand, obj = snap_parts_to_depth(hand, obj, frame.depth_m, frame.K, settings.depth_snap_m)
        timings["depth_snap"] = time.perf_counter() - t
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
        if settings.depth_snap_m > 0:
            # the fitted template's skin lies off the depth where this hand's shape differs from it
            t = time.perf_counter()
            hand = snap_to_depth(hand, obj, frame.depth_m, frame.K, settings.depth_snap_m).mesh
            timings["depth_snap"] += time.perf_counter() - t
    timings["total"] = time.perf_counter() - start
    return FrameResult(
        hand=hand,
        object=obj,
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
    from c2f_core.detect.windows import WindowedDetector

    if choice == "auto" and not mediapipe_available():
        return None, (
            "mediapipe is not installed: hands are found by the depth-and-skin detector, which takes a "
            f"bare forearm for the hand ({INSTALL_HINT})"
        )
    return WindowedDetector(MediaPipeHands()), None
