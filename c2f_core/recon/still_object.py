"""The object before the hand takes it: in a sequence, where it stands until the grasp.

The network is cropped around the hand. While the hand reaches for an object, the object is still
out of the crop (or at its edge), and what the network calls object is a blob on the hand or on
whatever the hand passes; the object itself, standing on the table, is not meshed. Once every frame
of a sequence is reconstructed, the frames before the grasp get the object the network found at the
grasp, where the depth shows it still stands:

1. the grasp: the first frame whose object the network finds again at the same place in each of
   the next `StillObjectSettings.run` frames (silhouette overlap at least `same_iou`), and which
   the depth supports (at least `support` of its visible pixels away from the hand lie within
   `agree_m` of the observed depth);
2. the source: of the grasp frame and those next frames, the one whose object the depth supports best;
3. backwards from the grasp (which, like the frames after it, keeps its own object), each frame
   whose depth still shows the source's object where it was (at least `still` of its pixels away
   from either frame's hand within `agree_m`) gets the source's object; the first frame that does
   not ends the walk (the object was elsewhere, or not there yet).

The copy is the grasp frame's mesh, whose side the fingers hid is the network's guess; seen
whole before the grasp, that side shows, and what the copied frames' depth sees through is
carved off it once (`carve_seen_through`).

Meshes in metres, OpenCV camera frame.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from c2f_core.geometry.camera import project
from c2f_core.geometry.grid import GridCube, index_to_point, linear_to_index
from c2f_core.geometry.mesh_sdf import signed_distance
from c2f_core.geometry.raster import rasterize_depth
from c2f_core.recon.extract import keep_largest_component, marching_cubes_masked

Arrays = tuple[np.ndarray, np.ndarray]
MAX_CARVE_RESOLUTION = 160
"""Samples per axis of the carving grid at most (4 M samples, about 0.3 GB and a few seconds while
carving): an object larger than 38 cm is carved on a coarser grid."""


@dataclass(frozen=True)
class StillObjectSettings:
    """When a frame's depth shows an object where another frame's mesh put it."""

    agree_m: float = 0.01
    """Observed depth within this distance of a mesh's rendered depth agrees with it (sensor noise
    at a metre is a few millimetres)."""
    hand_margin_px: int = 5
    """Pixels around the hand's silhouette left out: there the hand, not the object, decides."""
    run: int = 3
    """Frames after the grasp frame in which the network must find the object again at the same place."""
    same_iou: float = 0.5
    """Silhouette overlap of two frames' objects that counts as the same place."""
    support: float = 0.5
    """Share of an object's visible pixels (away from the hand) the depth must agree with."""
    still: float = 0.7
    """Share of the source object's pixels (away from both frames' hands) a frame's depth must agree
    with for the object to stand there still. On the real DexYCB take the tuna can scores 0.82-0.92
    in the 12 frames before the grasp."""
    min_pixels: int = 200
    """Fewer pixels than this to judge by: no judgement (the object is too small or too hidden)."""
    carve_margin_m: float = 0.005
    """What lies more than this in front of the copied frames' depth is carved off the copy (the
    free-space margin of reconstruction, `ReconstructionSettings.free_space_m`)."""
    carve_voxel_m: float = 0.0025
    """Grid spacing of the carved copy (the network's meshes: 2.3 mm at 128^3)."""
    carve_frames: int = 15
    """At most this many of the copied frames' depth maps (spread over them) carve the copy."""


@dataclass(frozen=True)
class ObjectView:
    """One frame's object as its camera sees it, beside what the camera measured."""

    depth: np.ndarray
    """(H, W) metres, the object mesh's nearest surface; inf where it has none."""
    visible: np.ndarray
    """(H, W) bool: the object is nearer than the hand there."""
    hand: np.ndarray
    """(H, W) bool: the hand's silhouette, widened by `hand_margin_px`."""
    observed: np.ndarray
    """(H, W) the frame's depth, metres, 0 where missing."""


def object_view(
    hand: Arrays, obj: Arrays, observed_m: np.ndarray, K: np.ndarray, settings: StillObjectSettings
) -> ObjectView:
    """Render one frame's hand and object meshes into its (H, W) depth image's camera."""
    height, width = observed_m.shape
    hand_depth = rasterize_depth(*hand, K, width, height)
    object_depth = rasterize_depth(*obj, K, width, height)
    size = 2 * settings.hand_margin_px + 1
    widened = cv2.dilate(np.isfinite(hand_depth).astype(np.uint8), np.ones((size, size), np.uint8))
    visible = np.isfinite(object_depth) & (object_depth < hand_depth)
    return ObjectView(object_depth, visible, widened.astype(bool), np.asarray(observed_m, np.float64))


def _agree(observed: np.ndarray, rendered: np.ndarray, agree_m: float) -> np.ndarray:
    return (observed > 0) & (np.abs(observed - rendered) < agree_m)


def support(view: ObjectView, settings: StillObjectSettings) -> float:
    """Share of the object's visible pixels away from the hand where the depth agrees with it;
    0 with fewer than `min_pixels` of them."""
    judged = view.visible & ~view.hand & (view.observed > 0)
    count = int(judged.sum())
    if count < settings.min_pixels:
        return 0.0
    return float(_agree(view.observed[judged], view.depth[judged], settings.agree_m).mean())


def same_place(a: ObjectView, b: ObjectView) -> float:
    """Intersection over union of two frames' object silhouettes (hidden parts included)."""
    sil_a, sil_b = np.isfinite(a.depth), np.isfinite(b.depth)
    union = int((sil_a | sil_b).sum())
    return float((sil_a & sil_b).sum()) / union if union else 0.0


def stands_still(source: ObjectView, frame: ObjectView, settings: StillObjectSettings) -> bool:
    """Whether `frame`'s depth shows `source`'s object where it was: enough of its pixels away from
    both frames' hands, and `still` of them agreeing."""
    judged = np.isfinite(source.depth) & ~source.hand & ~frame.hand & (frame.observed > 0)
    if int(judged.sum()) < settings.min_pixels:
        return False
    return (
        float(_agree(frame.observed[judged], source.depth[judged], settings.agree_m).mean()) >= settings.still
    )


@dataclass(frozen=True)
class StillObject:
    """Which frames get which frame's object."""

    grasp: int
    """The first frame whose object the network keeps finding (the grasp)."""
    source: int
    """The frame whose object the earlier frames get."""
    frames: tuple[int, ...]
    """The frames before `grasp` that get the source's object, latest first."""

    def describe(self) -> str:
        """One line for the run's summary."""
        if not self.frames:
            return f"the object is found from frame {self.grasp} on"
        return (
            f"the object stands still until frame {self.grasp}: frames {min(self.frames)}-{max(self.frames)} "
            f"show it where frame {self.source} meshed it"
        )


def find_still_object(
    frame_ids: Sequence[int],
    view_of: Callable[[int], ObjectView | None],
    settings: StillObjectSettings | None = None,
) -> StillObject | None:
    """The grasp, the source and the frames before it that get its object (`frame_ids` in time
    order, consecutive frames of one take); None when the network never keeps finding the object.

    `view_of` gives a frame's `ObjectView`, None for a frame without a result. Frames before the
    grasp are asked for twice (searching, then walking back): views are not all held at once.
    """
    settings = settings or StillObjectSettings()
    ids = list(frame_ids)
    cache: dict[int, ObjectView | None] = {}

    def view(position: int) -> ObjectView | None:
        if position not in cache:
            for old in [key for key in cache if key < position - settings.run - 1]:
                del cache[old]  # the forward search only looks `run` frames ahead
            cache[position] = view_of(ids[position])
        return cache[position]

    for position in range(len(ids) - settings.run):
        first = view(position)
        first_support = 0.0 if first is None else support(first, settings)
        if first is None or first_support < settings.support:
            continue
        following = [view(position + step) for step in range(1, settings.run + 1)]
        if any(v is None or same_place(first, v) < settings.same_iou for v in following):
            continue
        candidates = [first, *(v for v in following if v is not None)]  # all are (checked above)
        scores = [first_support, *(support(v, settings) for v in candidates[1:])]
        best = int(np.argmax(scores))
        source_position, source = position + best, candidates[best]
        frames = []
        for earlier in range(position - 1, -1, -1):  # from the grasp on, each frame keeps its own
            frame = cache[earlier] if earlier in cache else view_of(ids[earlier])
            if frame is None or not stands_still(source, frame, settings):
                break
            frames.append(ids[earlier])
        return StillObject(ids[position], ids[source_position], tuple(frames))
    return None


def carve_seen_through(
    obj: Arrays, depths_m: Sequence[np.ndarray], K: np.ndarray, settings: StillObjectSettings
) -> Arrays:
    """The object with what the depth maps (H, W, metres, 0 missing; one camera) saw through
    carved off: its signed distance on a grid, raised where a point lies more than `carve_margin_m`
    in front of the per-pixel median depth (the free-space bound of reconstruction), meshed again;
    the largest piece. The object as it was when nothing is left of it."""
    vertices = np.asarray(obj[0], np.float64)
    if len(vertices) == 0 or not len(depths_m):
        return obj
    stack = np.stack([np.where(d > 0, d, np.nan) for d in depths_m]).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels without depth in any frame: NaN
        median = np.nanmedian(stack, axis=0)  # a hand passing in some frames is outvoted
    extent = float((vertices.max(0) - vertices.min(0)).max())
    voxel = max(settings.carve_voxel_m, extent / (MAX_CARVE_RESOLUTION - 7))  # a huge mesh: coarser
    low = vertices.min(0) - 3 * voxel
    resolution = int(np.ceil((vertices.max(0) + 3 * voxel - low).max() / voxel)) + 1
    cube = GridCube(origin=low, voxel_size=voxel, resolution=resolution)
    points = index_to_point(linear_to_index(np.arange(cube.num_samples), resolution), cube)
    sdf = signed_distance(points, vertices, np.asarray(obj[1], np.int64))
    uv, z = project(points, K)
    u, v = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
    inside = (z > 0) & (u >= 0) & (u < median.shape[1]) & (v >= 0) & (v < median.shape[0])
    free = np.full(len(points), -np.inf)
    free[inside] = median[v[inside], u[inside]] - z[inside] - settings.carve_margin_m
    free[~np.isfinite(free)] = -np.inf  # pixels without depth say nothing
    sdf = np.where(sdf <= 0, np.maximum(sdf, free), sdf)  # a sample on the surface too
    mesh = keep_largest_component(
        marching_cubes_masked(sdf.reshape((resolution,) * 3).astype(np.float32), cube)
    )
    if mesh.is_empty:
        return obj
    return mesh.vertices, mesh.faces
