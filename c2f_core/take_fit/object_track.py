"""The object over a take: one mesh in its own frame and its 6-DoF pose in every frame.

0. Clean: depth labelled object that lies on the frame's support plane (the table the object
   stands on, into which the network's mesh swells) is given back to the background
   (`without_support`).
1. Track: frame by frame, the depth points labelled object are aligned (point-to-plane ICP) to the
   model built so far (the frames aligned before, in the object frame), starting from the previous
   pose, forwards and then backwards from an anchor frame; several anchors are tried (a real take's
   first frames with object points are often no object) and the track keeping most frames wins.
   An alignment is rejected when it leaves the model where the frame's depth sees through it
   (`seen_through`: the points were something else). The object frame is the anchor's camera axes
   at its object's centroid.
2. Smooth: the pose track is smoothed offline over the whole take, each frame held by what its
   alignment could fix (`take_fit.smooth.smooth_poses_informed`: a bowl's turn about its own axis
   is left to the smoother); frames whose alignment failed or that had too few points are
   bridged and marked untracked, and held at the first (last) tracked pose before (after) it.
3. Fuse: a truncated-SDF volume in the object frame takes every frame's depth (surface and free
   space) and, with a lower weight, every frame's network object mesh (`take_fit.tsdf`), thinned
   by twice its measured bias on the side its frame did not see (`hidden_side_bias`): the
   network makes unseen sides too thick, and the depth cannot correct a side no frame saw.
4. Refine: each frame is aligned again, now to the fused surface, the track smoothed and the volume
   fused again; the final mesh is its zero level. The object frame is then moved to the mesh's
   box centre, so the mesh's origin is its centre.
5. Once the hand is fitted, `carve_with_hand` marks the space inside it as outside the object.

No ground truth is used. Convention: metres; poses `T_obj_to_cam` (4, 4), OpenCV camera frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.spatial import cKDTree

from c2f_core.errors import C2FError
from c2f_core.geometry.camera import backproject_pixels, project
from c2f_core.geometry.grid import GridCube
from c2f_core.geometry.mesh_normals import vertex_normals
from c2f_core.geometry.mesh_sdf import MeshSDF
from c2f_core.recon.extract import Mesh
from c2f_core.take_fit.evidence import LABEL_OBJECT, LABEL_OTHER, FrameEvidence, TakeEvidence
from c2f_core.take_fit.rigid import (
    IcpConfig,
    estimate_normals,
    fit_plane,
    invert_pose,
    make_pose,
    point_to_plane_icp,
    transform_points,
    voxel_downsample,
)
from c2f_core.take_fit.smooth import smooth_poses_informed
from c2f_core.take_fit.tsdf import TsdfConfig, TsdfVolume


@dataclass
class ObjectTrackConfig:
    """Settings of the object's take-level fit (metres, frames)."""

    icp: IcpConfig = field(default_factory=IcpConfig)
    """Alignment of each frame's object points."""
    tsdf: TsdfConfig = field(default_factory=TsdfConfig)
    """The fused volume."""
    model_voxel_m: float = 0.002
    """The model built so far keeps one point per voxel of this size."""
    min_points: int = 50
    """A frame with fewer object depth points is not aligned (it is bridged)."""
    max_rms_m: float = 0.004
    """An alignment whose residual is larger is rejected (the frame is bridged)."""
    min_inlier_fraction: float = 0.3
    """An alignment that pairs fewer of the frame's points is rejected."""
    max_seen_through: float = 0.35
    """An alignment that leaves more than this share of the model where the frame's depth sees
    through it (`seen_through`) is rejected. Kept alignments see up to 0.02 through on the
    synthetic takes and up to 0.3 on the real DexYCB take (its model built so far still holds
    some hand and table); the frames there whose network object was something else, 0.37-0.8.
    1 turns the test off."""
    seen_through_margin_m: float = 0.015
    """A model point is seen through when the depth at its pixel lies this far behind it."""
    max_gap_frames: int = 2
    """Usable frames with at most this many frames between them belong to one run (choosing the anchor)."""
    settled_fraction: float = 0.9
    """A track that keeps this share of the frames with object points ends the search for an anchor."""
    smooth_stiffness: float = 3.0
    """Weight of the pose track's acceleration against the frames' alignments
    (`take_fit.smooth.smooth_poses_informed`): directions an alignment fixes firmly are smoothed
    about like a Gaussian of 2 frames, weak ones (a turn about a bowl's axis) much more. On three
    synthetic calibration takes (seeds 3000011, 3000012, 3000014, turned) 3, 10 and 30 all brought
    the object's jitter within 1.1x the ground truth's (a Gaussian of 1.5 frames left 1.1-3.9x);
    3 kept the Chamfer distance best."""
    refine_passes: int = 1
    """Times each frame is aligned again to the fused surface."""
    mesh_frames: int = 30
    """Per-frame network meshes fused (evenly spaced over the take; each costs a signed-distance pass)."""
    hidden_offset_gain: float = 2.0
    """The per-frame meshes are thinned by this times the measured hidden-side bias (see
    `hidden_side_bias`): the bias is measured near the silhouette, where it is smallest, and on
    synthetic calibration takes (seeds 2000002-2000005, not the benchmark take) the CD-best thinning
    was about twice the measured bias. 0 leaves the meshes as they are."""
    max_hidden_offset_m: float = 0.012
    """Upper bound of the thinning."""
    hidden_margin_m: float = 0.01
    """A point counts as hidden from a frame when that frame's depth lies this far in front of it."""
    hidden_min_samples: int = 200
    """Below this many hidden points the bias is taken as 0."""
    support_band_m: float = 0.006
    """Object depth within this distance of the frame's support plane (`without_support`) is taken
    for the support's: about twice a depth camera's noise at 1 m, so the table goes, and an object
    standing on it loses only the lowest few millimetres of its sides. 0 keeps everything."""
    support_min_share: float = 0.3
    """A plane holding less than this share of a frame's background depth is not a support."""
    support_inlier_m: float = 0.004
    """Background depth within this distance of a plane lies on it."""
    hand_carve_weight: float = 1.0
    """Weight, per frame, with which the inside of the fitted hand is marked outside the object
    (`carve_with_hand`)."""


@dataclass
class ObjectTrack:
    """The object of a take."""

    mesh: Mesh
    """The fused mesh, object frame (origin at its box centre), metres."""
    poses: np.ndarray
    """(T, 4, 4) smoothed `T_obj_to_cam` per timeline frame."""
    tracked: np.ndarray
    """(T,) bool: the frame's own alignment was kept (False: bridged by the smoother)."""
    residual_m: np.ndarray
    """(T,) RMS point-to-plane residual of the last alignment (inf where bridged)."""
    volume: TsdfVolume
    """The fused volume, object frame."""
    mesh_offset_m: float = 0.0
    """How much the per-frame network meshes were thinned before fusion."""
    seconds: float = 0.0
    """Time the fit took."""


def _mesh_surface(mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) and area-weighted unit vertex normals (V, 3) of a mesh."""
    vertices = mesh.vertices.astype(np.float64)
    return vertices, vertex_normals(vertices, mesh.faces)


def without_support(frame: FrameEvidence, config: ObjectTrackConfig) -> FrameEvidence:
    """The frame with the depth of the surface its object rests on taken from the object's.

    A network mesh of an object standing on a table swells into the table, so the table's depth
    around the object's base is labelled object (on a real take up to half of it while the object
    stands): it does not move when the object is lifted and, being flat, lets an alignment slide,
    and it fuses a skirt of table onto the object. The support is the plane that the frame's
    background depth mostly lies on; object depth within `support_band_m` of it is relabelled
    background (its free space stays true) and leaves the object's points.
    """
    if config.support_band_m <= 0:
        return frame
    rows, cols = np.nonzero((frame.labels == LABEL_OTHER) & (frame.depth_m > 0))
    if len(rows) < 3:
        return frame
    # A fixed subset: the plane needs a few thousand points, not the crop's tens of thousands.
    pick = np.random.default_rng(frame.frame).permutation(len(rows))[:4000]
    background = backproject_pixels(
        cols[pick].astype(np.float64),
        rows[pick].astype(np.float64),
        frame.depth_m[rows[pick], cols[pick]],
        frame.K_crop,
    )
    normal, offset, share = fit_plane(background, config.support_inlier_m)
    if share < config.support_min_share:
        return frame
    rows, cols = np.nonzero((frame.labels == LABEL_OBJECT) & (frame.depth_m > 0))
    on_object = backproject_pixels(
        cols.astype(np.float64), rows.astype(np.float64), frame.depth_m[rows, cols], frame.K_crop
    )
    on_support = np.abs(on_object @ normal + offset) < config.support_band_m
    labels = frame.labels.copy()
    labels[rows[on_support], cols[on_support]] = LABEL_OTHER
    points = frame.object_points
    kept = np.abs(points.astype(np.float64) @ normal + offset) >= config.support_band_m
    return replace(frame, labels=labels, object_points=points[kept])


def _observed_depth(frame: FrameEvidence, camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The depth z (N,) of camera points (N, 3) and the frame's observed depth at their pixels (N,):
    0 for points off the crop, behind the camera or on pixels without depth."""
    uv, z = project(camera, frame.K_crop)
    height, width = frame.depth_m.shape
    u, v = np.round(uv[:, 0]).astype(np.int64), np.round(uv[:, 1]).astype(np.int64)
    inside = (z > 1e-3) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    observed = np.zeros(len(z))
    observed[inside] = frame.depth_m[v[inside], u[inside]]
    return z, observed


def seen_through(
    frame: FrameEvidence, points_obj: np.ndarray, T_obj_to_cam: np.ndarray, margin_m: float
) -> float:
    """The share of an object model's points (N, 3), posed into a frame, that its depth sees through.

    A point projecting onto a pixel whose depth lies more than `margin_m` behind it cannot be
    there: the camera sees past it. Points off the crop or on pixels without depth are left out;
    0 when none is left.
    """
    z, observed = _observed_depth(frame, transform_points(T_obj_to_cam, points_obj))
    measured = observed > 0
    if not measured.any():
        return 0.0
    return float((observed[measured] > z[measured] + margin_m).mean())


def _align(
    frame: FrameEvidence,
    target: np.ndarray,
    normals: np.ndarray,
    tree: cKDTree,
    T_obj_to_cam: np.ndarray,
    config: ObjectTrackConfig,
) -> tuple[np.ndarray | None, float, np.ndarray]:
    """A frame's pose aligned from `T_obj_to_cam` (4, 4) (None when the alignment is rejected), its
    residual and its information (6, 6).

    Besides a residual and a pairing share, an alignment must leave the model (`target`) where the
    frame's depth does not see through it: a few hundred points of something else (a box the
    network took for the object, the hand) pair well with some patch of the model, but the rest
    of the model then floats in front of the table.
    """
    points = frame.object_points.astype(np.float64)
    result = point_to_plane_icp(points, target, normals, invert_pose(T_obj_to_cam), config.icp, tree)
    accepted = (
        result.converged
        and result.rms_m <= config.max_rms_m
        and result.inlier_fraction >= config.min_inlier_fraction
    )
    pose = invert_pose(result.pose)
    if accepted and config.max_seen_through < 1:
        accepted = seen_through(frame, target, pose, config.seen_through_margin_m) <= config.max_seen_through
    return (pose if accepted else None), result.rms_m, result.information


def _usable(frame: FrameEvidence | None, config: ObjectTrackConfig) -> bool:
    return frame is not None and len(frame.object_points) >= config.min_points


def anchor_candidates(evidence: TakeEvidence, usable: list[int], max_gap: int) -> list[int]:
    """Frames to grow the track from, best guess first: the best-seen frame of the longest run of
    usable frames, then the usable frames at the middle, first and third quarter of the take.

    A real take's first frames with object points are often no object at all (a crop that fell on
    a box before the hand was found, the network's guess during the reach), and a real take may
    show object points in every frame; the held object is what the middle of a take shows frame
    after frame.
    """
    runs: list[list[int]] = [[usable[0]]]
    for t in usable[1:]:
        if t - runs[-1][-1] > max_gap + 1:
            runs.append([])
        runs[-1].append(t)

    def points(t: int) -> int:
        return len(evidence.per_frame[t].object_points)  # type: ignore[union-attr]

    longest = max(runs, key=lambda run: (len(run), sum(points(t) for t in run)))
    candidates = [max(longest, key=points)]
    for quantile in (0.5, 0.25, 0.75):
        frame = usable[int(quantile * (len(usable) - 1))]
        if frame not in candidates:
            candidates.append(frame)
    return candidates


@dataclass
class _Alignments:
    """One pass of per-frame alignments over the timeline (T frames)."""

    poses: np.ndarray
    """(T, 4, 4) `T_obj_to_cam` as aligned (identity where not kept)."""
    tracked: np.ndarray
    """(T,) bool: the alignment was kept."""
    residual: np.ndarray
    """(T,) RMS residual, metres (inf where never aligned)."""
    information: np.ndarray
    """(T, 6, 6) `rigid.IcpResult.information` of the kept alignments, zero elsewhere."""
    points_obj: np.ndarray
    """(N, 3) the surface aligned to, object frame."""


def _track_from(
    evidence: TakeEvidence, usable: list[int], first: int, config: ObjectTrackConfig
) -> _Alignments:
    """The alignments grown from frame `first`: forwards to the end, then backwards to the start,
    each frame starting from the last accepted pose on its side."""
    count = len(evidence.frames)
    poses = np.tile(np.eye(4), (count, 1, 1))
    tracked = np.zeros(count, bool)
    residual = np.full(count, np.inf)
    information = np.zeros((count, 6, 6))
    first_points = evidence.per_frame[first].object_points.astype(np.float64)  # type: ignore[union-attr]
    poses[first] = make_pose(np.eye(3), first_points.mean(0))
    tracked[first], residual[first] = True, 0.0
    model = voxel_downsample(transform_points(invert_pose(poses[first]), first_points), config.model_voxel_m)
    later = [t for t in usable if t > first]
    earlier = [t for t in reversed(usable) if t < first]
    for side in (later, earlier):
        current = poses[first]
        for t in side:
            frame = evidence.per_frame[t]
            points = frame.object_points.astype(np.float64)  # type: ignore[union-attr]
            normals = estimate_normals(model)
            pose, residual[t], information[t] = _align(
                frame,  # type: ignore[arg-type]
                model,
                normals,
                cKDTree(model),
                current,
                config,
            )
            if pose is None:
                information[t] = 0.0
                continue
            poses[t], tracked[t], current = pose, True, pose
            model = voxel_downsample(
                np.concatenate([model, transform_points(invert_pose(pose), points)]), config.model_voxel_m
            )
    # The anchor defines the model, so it has no alignment of its own: it counts as a typical frame.
    others = tracked.copy()
    others[first] = False
    information[first] = information[others].mean(0) if others.any() else np.eye(6)
    return _Alignments(poses, tracked, residual, information, model)


def _track_sequentially(evidence: TakeEvidence, config: ObjectTrackConfig) -> _Alignments:
    """Pass 1: the alignments of every frame to the model built so far.

    Grown from each of `anchor_candidates` in turn until one track keeps `settled_fraction` of
    the usable frames; the track that keeps the most frames wins (the object frame is its anchor's
    camera axes at the anchor's object centroid).
    """
    usable = [t for t in range(len(evidence.frames)) if _usable(evidence.per_frame[t], config)]
    if not usable:
        raise C2FError(
            f"take {evidence.name}: no frame has {config.min_points} depth points on the object; "
            "nothing to track"
        )
    best = None
    for first in anchor_candidates(evidence, usable, config.max_gap_frames):
        aligned = _track_from(evidence, usable, first, config)
        if best is None or aligned.tracked.sum() > best.tracked.sum():
            best = aligned
        if aligned.tracked.sum() >= config.settled_fraction * len(usable):
            break
    return best  # type: ignore[return-value]


def _smooth(aligned: _Alignments, config: ObjectTrackConfig) -> np.ndarray:
    """The pose track (T, 4, 4) of a pass, smoothed by how firmly each alignment fixed its pose."""
    return smooth_poses_informed(
        aligned.poses, aligned.information, aligned.points_obj, config.smooth_stiffness
    )


def _fuse(
    evidence: TakeEvidence, poses: np.ndarray, tracked: np.ndarray, config: ObjectTrackConfig, offset_m: float
) -> TsdfVolume:
    """The TSDF volume of every frame's depth (tracked frames) and a spread of network meshes."""
    in_object = [
        transform_points(invert_pose(poses[t]), frame.object_points)
        for t, frame in enumerate(evidence.per_frame)
        if frame is not None and tracked[t] and len(frame.object_points)
    ]
    volume = TsdfVolume.around(np.concatenate(in_object), config.tsdf)
    with_mesh = [
        t for t, frame in enumerate(evidence.per_frame) if frame is not None and len(frame.object_faces)
    ]
    if len(with_mesh) > config.mesh_frames:
        with_mesh = [
            with_mesh[i] for i in np.linspace(0, len(with_mesh) - 1, config.mesh_frames).round().astype(int)
        ]
    for t in with_mesh:
        frame = evidence.per_frame[t]
        vertices = transform_points(invert_pose(poses[t]), frame.object_vertices)  # type: ignore[union-attr]
        volume.integrate_mesh(vertices, frame.object_faces, config.tsdf.mesh_weight, offset_m)  # type: ignore[union-attr]
        if frame.hand_faces is not None and len(frame.hand_faces):  # type: ignore[union-attr]
            hand = transform_points(invert_pose(poses[t]), frame.hand_surface)  # type: ignore[union-attr]
            volume.integrate_free(hand, frame.hand_faces, config.tsdf.hand_weight)  # type: ignore[union-attr]
    for t, frame in enumerate(evidence.per_frame):
        if frame is not None and tracked[t]:
            volume.integrate_depth(
                frame.depth_m, frame.labels, frame.K_crop, poses[t], config.tsdf.depth_weight
            )
    return volume


def hidden_side_bias(
    evidence: TakeEvidence, poses: np.ndarray, tracked: np.ndarray, config: ObjectTrackConfig
) -> tuple[float, int]:
    """How far the per-frame network meshes lie outside the object on the side their frame did not see.

    Object points that other frames observed and that this frame sees only behind a nearer surface
    (its depth lies `hidden_margin_m` in front of them) are points of this frame's hidden side whose
    true position is known; the median of the signed distance of all such points to their frames'
    network meshes is the bias (positive: the meshes are too thick there).

    Returns:
        The bias in metres (0 when too few points were found) and the number of points used.
    """
    seen = [
        transform_points(invert_pose(poses[t]), frame.object_points)
        if frame is not None and tracked[t]
        else np.zeros((0, 3))
        for t, frame in enumerate(evidence.per_frame)
    ]
    distances = []
    for t, frame in enumerate(evidence.per_frame):
        if frame is None or not tracked[t] or len(frame.object_faces) == 0:
            continue
        others = np.concatenate([seen[s] for s in range(len(seen)) if s != t])
        camera = transform_points(poses[t], others)
        z, observed = _observed_depth(frame, camera)
        hidden = (observed > 0) & (observed < z - config.hidden_margin_m)
        if hidden.any():
            points = camera[hidden][:: max(1, int(hidden.sum()) // 2000)]
            distances.append(MeshSDF(frame.object_vertices, frame.object_faces)(points))
    if not distances or sum(len(d) for d in distances) < config.hidden_min_samples:
        return 0.0, int(sum(len(d) for d in distances))
    every = np.concatenate(distances)
    return float(-np.median(every)), len(every)


def _recentre(volume: TsdfVolume, mesh: Mesh, poses: np.ndarray) -> tuple[TsdfVolume, Mesh, np.ndarray]:
    """Move the object frame's origin to the mesh's box centre (mesh, volume and poses alike)."""
    if mesh.is_empty:
        return volume, mesh, poses
    centre = (mesh.vertices.min(0).astype(np.float64) + mesh.vertices.max(0)) / 2
    shift = make_pose(np.eye(3), centre)
    moved = Mesh((mesh.vertices - centre).astype(np.float32), mesh.faces)
    cube = GridCube(volume.cube.origin - centre, volume.cube.voxel_size, volume.cube.resolution)
    recentred = TsdfVolume(cube, volume.truncation_m)
    recentred.sdf, recentred.weight = volume.sdf, volume.weight
    return recentred, moved, poses @ shift


def carve_with_hand(
    track: ObjectTrack,
    hand_vertices: np.ndarray,
    hand_faces: np.ndarray,
    config: ObjectTrackConfig | None = None,
) -> ObjectTrack:
    """The object re-fused with the space inside the take's fitted hand (T, V, 3) marked as outside it.

    The network's object surfaces swell into the fingers that hold it and every frame sees the
    same grasp, so the swelling survives fusion; the fitted hand, posed into the object frame
    frame by frame, carves it away. The mesh is extracted again and the frame re-centred.
    """
    config = config or ObjectTrackConfig()
    volume = TsdfVolume(track.volume.cube, track.volume.truncation_m)
    volume.sdf, volume.weight = track.volume.sdf.copy(), track.volume.weight.copy()
    for t, vertices in enumerate(hand_vertices):
        volume.integrate_free(
            transform_points(invert_pose(track.poses[t]), vertices), hand_faces, config.hand_carve_weight
        )
    volume, mesh, poses = _recentre(volume, volume.mesh(), track.poses)
    return ObjectTrack(
        mesh, poses, track.tracked, track.residual_m, volume, track.mesh_offset_m, track.seconds
    )


def track_object(evidence: TakeEvidence, config: ObjectTrackConfig | None = None) -> ObjectTrack:
    """Fit one rigid object over the take: its fused mesh and smoothed per-frame poses."""
    start = time.perf_counter()
    config = config or ObjectTrackConfig()
    evidence = replace(
        evidence, per_frame=[None if f is None else without_support(f, config) for f in evidence.per_frame]
    )
    aligned = _track_sequentially(evidence, config)
    poses = _smooth(aligned, config)
    bias, _ = hidden_side_bias(evidence, poses, aligned.tracked, config)
    offset = float(np.clip(config.hidden_offset_gain * bias, 0.0, config.max_hidden_offset_m))
    volume = _fuse(evidence, poses, aligned.tracked, config, offset)
    mesh = volume.mesh()
    for _ in range(config.refine_passes):
        if mesh.is_empty:
            break
        target, normals = _mesh_surface(mesh)
        tree = cKDTree(target)
        refined = _Alignments(
            aligned.poses.copy(),
            np.zeros_like(aligned.tracked),
            aligned.residual.copy(),
            np.zeros_like(aligned.information),
            target,
        )
        for t, frame in enumerate(evidence.per_frame):
            if not aligned.tracked[t]:
                continue
            pose, refined.residual[t], information = _align(frame, target, normals, tree, poses[t], config)  # type: ignore[arg-type]
            if pose is not None:
                refined.poses[t], refined.tracked[t], refined.information[t] = pose, True, information
        if not refined.tracked.any():
            break
        aligned = refined
        poses = _smooth(aligned, config)
        volume = _fuse(evidence, poses, aligned.tracked, config, offset)
        mesh = volume.mesh()
    residual = np.where(aligned.tracked, aligned.residual, np.inf)
    volume, mesh, poses = _recentre(volume, mesh, poses)
    return ObjectTrack(mesh, poses, aligned.tracked, residual, volume, offset, time.perf_counter() - start)
