"""The training dataset over takes (or any RGBDFrame source): inputs with their training targets.

One frame becomes (all 3D values in net units around the frame's reference point, see
``c2f_core.geometry.frames``):

- inputs, built without ground truth by ``data.inputs.prepare_inputs`` (the same function
  inference uses): ``rgb``, ``depth_norm``, ``K_crop``, ``ref_m``, ``pcl_nu``, ``box``;
- training targets (``make_targets``): ``query_nu`` (Q, 3), ``query_sdf_nu`` (Q,) and
  ``query_is_hand`` (Q,) (first half hand samples, second half object samples), ``joints_nu``
  (21, 3), ``object_center_nu`` (3,), ``hand_points_nu`` (n, 3) points on the GT hand surface,
  ``heatmap`` (2, R, R, R) axes [x, y, z].

In training the crop is the GT hand+object box, jittered; its reference point follows ``data.ref_rule``
(the crop's nearest surface, the depth under the GT palm joints as detected landmarks give it, or
either at random).
Every random choice of a sample comes from a generator
seeded by (seed, key), where key = epoch * len + index, so a run is repeatable and resumes exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from c2f_core.data.augment import jitter_box
from c2f_core.data.crop import gt_box
from c2f_core.data.inputs import InputConfig, prepare_inputs
from c2f_core.data.samples import (
    background_points,
    background_queries,
    hidden_points,
    observed_points,
    sample_sdf_queries,
    sample_surface,
    splat_heatmap,
    subsample,
)
from c2f_core.errors import C2FError
from c2f_core.geometry.frames import cam_to_nu, sdf_m_to_nu
from c2f_core.geometry.mesh_sdf import MeshSDF
from c2f_core.hands.base import PALM
from c2f_core.io.frames import RGBDFrame
from c2f_core.io.take import Take

HEATMAP_SURFACE_POINTS = 2048
"""Points sampled on each GT mesh surface to splat its heatmap channel."""
REQUIRED_GT = (
    "hand_verts",
    "hand_faces",
    "object_verts",
    "object_faces",
    "hand_joints",
    "object_center",
    "sdf_hand_points",
    "sdf_hand",
    "sdf_object_points",
    "sdf_object",
)
"""Ground-truth keys a training frame needs (``c2f_core.io.frames.GT_KEYS`` plus the SDF samples)."""


class FrameSource(Protocol):
    """Anything indexable that yields RGBDFrames: a take adapter, a DexYCB or ObMan reader, a list."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> RGBDFrame: ...


class TakeFrames:
    """A take as a ``FrameSource``: item i is its i-th frame (by frame number), with ground truth."""

    def __init__(self, take: Take):
        self.take = take

    def __len__(self) -> int:
        return len(self.take)

    def __getitem__(self, index: int) -> RGBDFrame:
        return self.take.read_frame(self.take.frame_ids[index], with_gt=True)


def find_takes(path: str | Path) -> list[Path]:
    """The take folders at ``path``: the folder itself if it is a take, else its sub-folders that are takes."""
    path = Path(path)
    if not path.is_dir():
        raise C2FError(f"training data not found: {path} (give a take folder or a folder of takes)")
    if (path / "intrinsics.json").is_file():
        return [path]
    takes = sorted(p for p in path.iterdir() if p.is_dir() and (p / "intrinsics.json").is_file())
    if not takes:
        raise C2FError(f"{path} is neither a take (no intrinsics.json) nor a folder of takes")
    return takes


def open_sources(paths: Sequence[str | Path]) -> list[TakeFrames]:
    """Open every take found at ``paths`` (takes or parent folders of takes) as frame sources."""
    return [TakeFrames(Take.open(p)) for path in paths for p in find_takes(path)]


def _require_gt(frame: RGBDFrame) -> dict[str, np.ndarray]:
    if frame.gt is None:
        raise C2FError(f"frame {frame.name or frame.index} has no ground truth (gt/NNNNNN.npz) to train on")
    missing = [k for k in REQUIRED_GT if k not in frame.gt]
    if missing:
        raise C2FError(
            f"frame {frame.name or frame.index}: ground truth lacks '{missing[0]}' (needs {', '.join(REQUIRED_GT)})"
        )
    return frame.gt


def palm_depth(depth_m: np.ndarray, K: np.ndarray, joints_m: np.ndarray, radius_px: int = 3) -> float | None:
    """Median observed depth (metres) under the GT palm joints, as detected landmarks place a crop; None if unseen."""
    joints = np.asarray(joints_m, np.float64).reshape(21, 3)[list(PALM)]
    height, width = depth_m.shape
    found = []
    for x, y, z in joints:
        if z <= 0:
            continue
        u, v = round(K[0, 0] * x / z + K[0, 2]), round(K[1, 1] * y / z + K[1, 2])
        if not (0 <= u < width and 0 <= v < height):
            continue
        patch = depth_m[max(v - radius_px, 0) : v + radius_px + 1, max(u - radius_px, 0) : u + radius_px + 1]
        patch = patch[patch > 0]
        if patch.size:
            found.append(float(np.median(patch)))
    return float(np.median(found)) if found else None


def make_targets(
    gt: dict[str, np.ndarray],
    ref_m: np.ndarray,
    config: InputConfig,
    rng: np.random.Generator,
    frame: RGBDFrame | None = None,
) -> dict[str, np.ndarray]:
    """Training targets of one frame in net units around ``ref_m`` (see the module docstring).

    With ``data.background_queries`` > 0 and the ``frame`` (its depth and GT mask), that share of
    each half are observed points of neither hand nor object (``samples.background_points``);
    with ``data.hidden_queries`` > 0, that share are points the camera cannot see
    (``samples.hidden_points``) with their exact signed distances to each GT mesh.
    """
    frames, data = config.frames, config.data
    shares = (data.background_queries, data.hidden_queries)
    if min(shares) < 0 or sum(shares) >= 1:
        raise C2FError(
            f"data.background_queries + data.hidden_queries must lie in [0, 1), got {shares[0]} + {shares[1]}"
        )
    half = frames.cube_half_m
    n_hand = data.n_queries // 2
    n_object = data.n_queries - n_hand
    n_back = round(data.background_queries * n_hand)
    n_hidden = round(data.hidden_queries * n_hand)
    observed = None
    if frame is not None and (n_hidden > 0 or (n_back > 0 and "mask" in gt)):
        observed = observed_points(frame.depth_m, frame.K, ref_m, half)
    background = np.zeros((0, 3))
    if n_back > 0 and observed is not None and "mask" in gt:
        background = background_points(*observed, gt["mask"])
    if len(background) == 0:
        n_back = 0
    hidden = np.zeros((0, 3))
    if n_hidden > 0 and observed is not None:
        hidden = hidden_points(*observed, ref_m, half, n_hidden, rng, data.hidden_behind_m, gt.get("mask"))
    n_hidden = len(hidden)
    hand_q, hand_sdf = sample_sdf_queries(
        gt["sdf_hand_points"], gt["sdf_hand"], n_hand - n_back - n_hidden, rng, ref_m, half
    )
    obj_q, obj_sdf = sample_sdf_queries(
        gt["sdf_object_points"], gt["sdf_object"], n_object - n_back - n_hidden, rng, ref_m, half
    )
    if n_back > 0:
        extra = [
            background_queries(background, gt[key], n_back, rng, ref_m, half)
            for key in ("hand_verts", "object_verts")
        ]
        hand_q, hand_sdf = np.concatenate([hand_q, extra[0][0]]), np.concatenate([hand_sdf, extra[0][1]])
        obj_q, obj_sdf = np.concatenate([obj_q, extra[1][0]]), np.concatenate([obj_sdf, extra[1][1]])
    if n_hidden > 0:
        hidden_nu = cam_to_nu(hidden, ref_m, half).astype(np.float32)
        targets = [
            sdf_m_to_nu(MeshSDF(gt[f"{part}_verts"], gt[f"{part}_faces"])(hidden), half).astype(np.float32)
            for part in ("hand", "object")
        ]
        hand_q, hand_sdf = np.concatenate([hand_q, hidden_nu]), np.concatenate([hand_sdf, targets[0]])
        obj_q, obj_sdf = np.concatenate([obj_q, hidden_nu]), np.concatenate([obj_sdf, targets[1]])
    hand_surface = sample_surface(gt["hand_verts"], gt["hand_faces"], HEATMAP_SURFACE_POINTS, rng)
    object_surface = sample_surface(gt["object_verts"], gt["object_faces"], HEATMAP_SURFACE_POINTS, rng)
    hand_surface_nu = cam_to_nu(hand_surface, ref_m, half)
    heatmap = np.stack(
        [
            splat_heatmap(hand_surface_nu, frames.heatmap_res, data.heatmap_sigma_vox, data.heatmap_clip),
            splat_heatmap(
                cam_to_nu(object_surface, ref_m, half),
                frames.heatmap_res,
                data.heatmap_sigma_vox,
                data.heatmap_clip,
            ),
        ]
    )
    is_hand = np.zeros(data.n_queries, bool)
    is_hand[:n_hand] = True
    return {
        "query_nu": np.concatenate([hand_q, obj_q]),
        "query_sdf_nu": np.concatenate([hand_sdf, obj_sdf]),
        "query_is_hand": is_hand,
        "joints_nu": cam_to_nu(np.asarray(gt["hand_joints"], np.float64).reshape(21, 3), ref_m, half).astype(
            np.float32
        ),
        "object_center_nu": cam_to_nu(
            np.asarray(gt["object_center"], np.float64).reshape(3), ref_m, half
        ).astype(np.float32),
        "hand_points_nu": subsample(hand_surface_nu, data.n_hand_points, rng).astype(np.float32),
        "heatmap": heatmap,
    }


class FrameDataset(torch.utils.data.Dataset):
    """Training or validation samples over frame sources.

    Args:
        sources: frame sources (``open_sources`` for takes; any ``FrameSource``).
        config: the run config (frames, data, augment).
        train: jitter the GT crop box and augment; False = the plain GT box, no augmentation.
        seed: base seed of every per-sample random generator.
        indices: which frames (positions over the concatenated sources) this dataset covers.

    Item ``key`` is frame ``indices[key % len]`` drawn with generator seed (seed, key).
    """

    def __init__(
        self,
        sources: Sequence[FrameSource],
        config: Any,
        train: bool,
        seed: int = 0,
        indices: Sequence[int] | None = None,
    ):
        self.sources = list(sources)
        self.config = config
        self.train = train
        self.seed = seed
        self._offsets = np.cumsum([0] + [len(s) for s in self.sources])
        total = int(self._offsets[-1])
        self.indices = list(range(total)) if indices is None else [int(i) for i in indices]
        if not self.indices:
            raise C2FError("the dataset holds no frames")
        self._cache: dict[int, RGBDFrame] | None = {} if config.data.cache_frames else None

    def __len__(self) -> int:
        return len(self.indices)

    def frame(self, position: int) -> RGBDFrame:
        """The RGBDFrame at ``position`` in this dataset's frame list."""
        flat = self.indices[position]
        if self._cache is not None and flat in self._cache:
            return self._cache[flat]
        source = int(np.searchsorted(self._offsets, flat, side="right") - 1)
        frame = self.sources[source][flat - int(self._offsets[source])]
        if self._cache is not None:
            self._cache[flat] = frame
        return frame

    def __getitem__(self, key: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, int(key)])
        frame = self.frame(int(key) % len(self.indices))
        gt = _require_gt(frame)
        config = self.config
        box = gt_box(gt, frame.K, config.data.box_margin_px, config.data.box_scale)
        augment = config.augment if self.train else None
        if augment is not None:
            box = jitter_box(box, rng, augment.box_shift, augment.box_scale)
        rule = config.data.ref_rule
        if rule == "mixed":
            # Drawn from its own generator so the rest of the sample is as with either rule.
            share = config.data.ref_palm_share
            rule = "palm" if np.random.default_rng([self.seed, int(key), 1]).random() < share else "crop"
        ref_z = palm_depth(frame.depth_m, frame.K, gt["hand_joints"]) if rule == "palm" else None
        sample: dict[str, Any] = prepare_inputs(frame, box, config, rng, augment, ref_z_m=ref_z)
        sample.update(make_targets(gt, sample["ref_m"].astype(np.float64), config, rng, frame))
        sample["key"] = np.int64(key)
        return sample


def split_indices(count: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split frame positions 0..count-1 into (train, val), val being a seeded random ``val_fraction``."""
    n_val = round(count * val_fraction)
    if n_val == 0:
        return list(range(count)), []
    if n_val >= count:
        raise C2FError(f"data.val_fraction {val_fraction} leaves no training frame out of {count}")
    order = np.random.default_rng(seed).permutation(count)
    val = sorted(int(i) for i in order[:n_val])
    val_set = set(val)
    return [i for i in range(count) if i not in val_set], val
