"""The assembled C2F-SDF network: encode a batch once, then query SDFs anywhere (method B).

Data flow (shapes for a batch of B crops of S x S pixels, N depth points, Q queries):

    rgb (B,3,S,S), depth_norm (B,1,S,S)
      -> encoder -> feat_map (B,F,S/4,S/4), bottleneck (B,C4,S/32,S/32)
      -> global feature (B,L) -> coarse SDFs of the depth points (B,N,2)        [coarse refinement]
      -> feature pixels lifted to 3D, 4-NN blended onto the depth points (B,N,F)  [point features]
      -> point features, eq. (3) (B,N,L)                                           [point features]
      -> heads: joints (B,21,3), hand points (B,n,3), object centre (B,3), heatmap (B,2,R,R,R)
    query points (B,Q,3) nu
      -> pixel-aligned features (B,Q,L) + hand/object point-aligned features, eq. (4) (B,Q,L) each
      -> fine hand and object SDFs (B,Q) nu

All 3D quantities are net units around the per-frame reference point (``geometry.frames``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from c2f_core.data.config import FramesConfig
from c2f_core.errors import C2FError
from c2f_core.geometry.frames import cam_to_nu, nu_to_cam, sdf_m_to_nu, sdf_nu_to_m
from c2f_core.model.coarse import CoarseSDF
from c2f_core.model.config import ModelConfig
from c2f_core.model.decoder import XYZEncoding
from c2f_core.model.encoder import DOWNSAMPLE, FEATURE_STRIDE, build_encoder
from c2f_core.model.fine import FineSDF
from c2f_core.model.heads import HeatmapHead, PixelJointHead, PoseHeads, open_hand_from_joints
from c2f_core.model.lifting import lift_features, lifted_pixel_points
from c2f_core.model.pifu3d import PointAlignedFeatures
from c2f_core.model.pixel import PixelAlignedFeatures
from c2f_core.model.semantics import PointEmbedding

INPUT_KEYS = ("rgb", "depth_norm", "K_crop", "ref_m", "pcl_nu")
"""Batch entries the network reads (``data.inputs.make_input`` builds them)."""


@dataclass
class EncodedFrames:
    """Everything the network computes once per frame, for reconstruction to query without GT.

    Convention: 3D values in net units (nu) around ``ref_m``; ``to_cam`` converts to camera metres.
    """

    feat_map: torch.Tensor
    """(B, F, S/4, S/4) pixel feature map F_visual."""
    pix_map: torch.Tensor
    """(B, P, S/4, S/4) the feature map prepared for pixel-aligned sampling."""
    K_crop: torch.Tensor
    """(B, 3, 3) crop intrinsics."""
    ref_m: torch.Tensor
    """(B, 3) reference point, metres, camera frame."""
    pcl_nu: torch.Tensor
    """(B, N, 3) depth points, nu."""
    global_feat: torch.Tensor | None
    """(B, L) global feature (None without coarse refinement)."""
    pcl_feat: torch.Tensor | None
    """(B, N, L) point features, eq. (3) (None without point features)."""
    pcl_sdf: torch.Tensor | None
    """(B, N, 2) clamped coarse hand and object SDFs of the depth points, nu (None without coarse)."""
    joints_nu: torch.Tensor
    """(B, 21, 3) predicted hand joints, nu."""
    hand_points_nu: torch.Tensor
    """(B, n, 3) predicted hand surface points, nu."""
    object_center_nu: torch.Tensor
    """(B, 3) predicted object centre, nu."""
    heatmap: torch.Tensor
    """(B, 2, R, R, R) hand/object heatmap, axes [x, y, z] over [-1, 1]^3 nu."""
    cube_half_m: float
    """Metres per nu."""

    def to_cam(self, points_nu: torch.Tensor) -> torch.Tensor:
        """Net-unit points (B, ..., 3) of these frames to camera metres."""
        ref = self.ref_m.view(self.ref_m.shape[0], *([1] * (points_nu.ndim - 2)), 3)
        return nu_to_cam(points_nu, ref, self.cube_half_m)

    def select(self, index: int | slice) -> EncodedFrames:
        """The state of a subset of the batch (tensors indexed along the batch axis)."""
        if isinstance(index, int):
            batch = self.ref_m.shape[0]
            if not -batch <= index < batch:
                raise IndexError(f"frame {index} out of range for a batch of {batch}")
            index = slice(index % batch, index % batch + 1)
        values: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                value = value[index]
            values[f.name] = value
        return EncodedFrames(**values)


class C2FNetwork(nn.Module):
    """The C2F-SDF network with the switches of ``ModelConfig`` (Table 1 ablations).

    Args:
        config: the model config.
        frames: units of the frames (metres per nu, depth normalisation, heatmap resolution).
        crop_size: side S of the input crops, a multiple of 32.
    """

    def __init__(self, config: ModelConfig, frames: FramesConfig, crop_size: int):
        super().__init__()
        config.validate()
        if crop_size % DOWNSAMPLE:
            raise C2FError(f"data.crop_size must be a multiple of {DOWNSAMPLE}, found {crop_size}")
        self.config = config
        self.frames = frames
        self.crop_size = crop_size
        self.sdf_clamp_nu = float(sdf_m_to_nu(config.sdf_clamp_m, frames.cube_half_m))
        self.encoder = build_encoder(config.encoder, config.modality, config.norm)
        feat, bottleneck = self.encoder.feat_channels, self.encoder.bottleneck_channels
        self.pixel = PixelAlignedFeatures(feat, config.pix_hidden, config.latent, config.norm)
        xyz = XYZEncoding(config.xyz_frequencies if config.xyz_encoding == "nerf" else 0)
        self.coarse = (
            CoarseSDF(bottleneck, config.latent, config.sdf_decoder, xyz)
            if config.coarse_refinement
            else None
        )
        self.points: PointEmbedding | None = None
        self.pifu: PointAlignedFeatures | None = None
        if config.point_features:
            self.points = PointEmbedding(feat, config.latent, config.coarse_refinement, config.norm)
            self.pifu = PointAlignedFeatures(config.pifu, config.coarse_refinement)
        self.fine = FineSDF(config.latent, config.point_features, config.sdf_decoder, xyz)
        self.pose = PoseHeads(bottleneck, config.heads, config.norm)
        self.pixel_joints = (
            PixelJointHead(feat, config.heads.joint_channels, FEATURE_STRIDE, config.norm)
            if config.heads.joints == "pixel"
            else None
        )
        self.heatmap = HeatmapHead(
            bottleneck,
            crop_size // DOWNSAMPLE,
            frames.heatmap_res,
            config.heads.heatmap_channels,
            config.norm,
        )

    def _check_batch(self, batch: dict[str, torch.Tensor]) -> None:
        missing = [k for k in INPUT_KEYS if k not in batch]
        if missing:
            raise ValueError(f"network input lacks {missing} (build it with data.inputs.make_input)")
        rgb = batch["rgb"]
        expected = (3, self.crop_size, self.crop_size)
        if rgb.ndim != 4 or tuple(rgb.shape[1:]) != expected:
            raise ValueError(
                f"rgb must be (B, {expected[0]}, {expected[1]}, {expected[2]}), got {tuple(rgb.shape)}"
            )

    def encode(self, batch: dict[str, torch.Tensor]) -> EncodedFrames:
        """Run the per-frame part of the network once (no ground truth needed).

        Args:
            batch: ``rgb`` (B, 3, S, S), ``depth_norm`` (B, 1, S, S), ``K_crop`` (B, 3, 3),
                ``ref_m`` (B, 3) metres, ``pcl_nu`` (B, N, 3).
        """
        self._check_batch(batch)
        frames = self.frames
        rgb, depth_norm, K_crop, ref_m, pcl_nu = (batch[k] for k in INPUT_KEYS)
        feat_map, bottleneck = self.encoder(rgb, depth_norm)
        pix_map = self.pixel.prepare_map(feat_map)
        global_feat = pcl_sdf = pcl_feat = None
        if self.coarse is not None:
            global_feat = self.coarse.encode(bottleneck)
            hand, obj = self.coarse(global_feat, pcl_nu)
            pcl_sdf = torch.stack([hand, obj], dim=-1).clamp(-self.sdf_clamp_nu, self.sdf_clamp_nu)
        if self.points is not None:
            pixel_points = lifted_pixel_points(
                depth_norm, K_crop, ref_m, FEATURE_STRIDE, frames.cube_half_m, frames.depth_half_m
            )
            lifted = lift_features(feat_map, pixel_points, pcl_nu, self.config.lift_neighbours)
            pcl_feat = self.points(lifted, pcl_nu, pcl_sdf)
        joints, hand_points, center = self.pose(bottleneck)
        if self.pixel_joints is not None:
            joints = self.pixel_joints(
                feat_map, depth_norm, K_crop, ref_m, frames.cube_half_m, frames.depth_half_m
            )
        return EncodedFrames(
            feat_map=feat_map,
            pix_map=pix_map,
            K_crop=K_crop,
            ref_m=ref_m,
            pcl_nu=pcl_nu,
            global_feat=global_feat,
            pcl_feat=pcl_feat,
            pcl_sdf=pcl_sdf,
            joints_nu=joints,
            hand_points_nu=hand_points,
            object_center_nu=center,
            heatmap=self.heatmap(bottleneck),
            cube_half_m=frames.cube_half_m,
        )

    def fine_sdf(self, state: EncodedFrames, points_nu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fine hand and object SDFs (B, Q) nu at points (B, Q, 3) nu, in one pass (no chunking)."""
        pix = self.pixel(
            state.pix_map, points_nu, state.K_crop, state.ref_m, state.cube_half_m, self.crop_size
        )
        point_hand = point_object = None
        if self.pifu is not None:
            point_hand, point_object = self.pifu(points_nu, state.pcl_nu, state.pcl_feat, state.pcl_sdf)
        return self.fine(pix, point_hand, point_object, points_nu)

    def coarse_sdf(self, state: EncodedFrames, points_nu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Coarse hand and object SDFs (B, Q) nu at points (B, Q, 3) nu."""
        if self.coarse is None or state.global_feat is None:
            raise C2FError("this model has no coarse SDF decoders (model.coarse_refinement is false)")
        return self.coarse(state.global_feat, points_nu)

    def query(
        self, state: EncodedFrames, points_nu: torch.Tensor, chunk: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fine hand and object SDFs at arbitrary points, evaluated in chunks (the extractors' ``sdf_fn``).

        Args:
            state: from ``encode``.
            points_nu: (B, Q, 3) net units, one point set per frame of ``state``.
            chunk: points per frame per pass (default ``model.query_chunk``).

        Returns:
            sdf_hand, sdf_object: (B, Q) net units (tanh outputs, not clamped); negative inside.
            Gradients flow when enabled; call under ``torch.no_grad()`` for reconstruction.
        """
        if points_nu.ndim != 3 or points_nu.shape[-1] != 3 or points_nu.shape[0] != state.ref_m.shape[0]:
            raise ValueError(
                f"points_nu must be (B={state.ref_m.shape[0]}, Q, 3), got {tuple(points_nu.shape)}"
            )
        chunk = chunk or self.config.query_chunk
        hands, objects = [], []
        for start in range(0, points_nu.shape[1], chunk):
            hand, obj = self.fine_sdf(state, points_nu[:, start : start + chunk])
            hands.append(hand)
            objects.append(obj)
        if not hands:
            empty = points_nu.new_zeros(points_nu.shape[:2])
            return empty, empty.clone()
        return torch.cat(hands, 1), torch.cat(objects, 1)

    def posed_hand_nu(self, state: EncodedFrames) -> torch.Tensor:
        """(B, V, 3) nu: the open hand posed by the predicted joints, for marking surface-aware reconstruction.

        Our stand-in for the reference's MANO vertices (method B.8): mean hand shape, swing-only
        inverse kinematics from ``state.joints_nu`` (``hands.open_hand``). Needs the open-hand asset.
        """
        vertices_m, _ = open_hand_from_joints(state.to_cam(state.joints_nu))
        return cam_to_nu(vertices_m, state.ref_m[:, None, :], state.cube_half_m)

    def field_fn(self, state: EncodedFrames, frame: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
        """A field function for the extractors (``recon.extract``): camera metres in, SDFs in metres out.

        Args:
            state: from ``encode``.
            frame: which frame of the batch.

        Returns:
            fn(points_m (M, 3) metres, camera frame) -> (M, 2) fine (hand, object) signed distances, metres.
        """
        single = state.select(frame)
        ref = single.ref_m[0]
        half = single.cube_half_m

        def fn(points_m: torch.Tensor) -> torch.Tensor:
            points_nu = cam_to_nu(points_m.to(ref.device, torch.float32), ref, half)
            hand, obj = self.query(single, points_nu[None])
            return sdf_nu_to_m(torch.stack([hand[0], obj[0]], dim=-1).float(), half)

        return fn

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Training forward: encode, then all SDFs at ``batch["query_nu"]`` (B, Q, 3).

        Returns:
            ``sdf_hand``, ``sdf_object`` (B, Q) fine; ``coarse_hand``, ``coarse_object`` (B, Q) when
            the model has coarse decoders; ``joints`` (B, 21, 3), ``hand_points`` (B, n, 3),
            ``object_center`` (B, 3), ``heatmap`` (B, 2, R, R, R); all nu.
        """
        state = self.encode(batch)
        queries = batch["query_nu"]
        out: dict[str, torch.Tensor] = {}
        out["sdf_hand"], out["sdf_object"] = self.fine_sdf(state, queries)
        if self.coarse is not None:
            out["coarse_hand"], out["coarse_object"] = self.coarse_sdf(state, queries)
        out.update(
            joints=state.joints_nu,
            hand_points=state.hand_points_nu,
            object_center=state.object_center_nu,
            heatmap=state.heatmap,
        )
        return out
