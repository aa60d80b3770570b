"""Typed configs of the C2F-SDF network, one dataclass per component."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from c2f_core.errors import C2FError


@dataclass
class EncoderConfig:
    """The RGB-D image encoder (method B.1)."""

    kind: Literal["resnet", "hourglass"] = "resnet"
    """"resnet": the reference code's dual ResNet-18 + gated fusion + U-Net decoder; "hourglass": the
    paper's dual hourglass with spatial-attention fusion at every scale."""
    width: float = 1.0
    """Channel multiplier: ResNet stages have 64/128/256/512 x width channels, the hourglass 256 x width."""
    feat_channels: int = 128
    """Channels of the pixel feature map F_visual (at 1/4 of the crop resolution)."""
    pretrained: str = ""
    """Optional local file with encoder weights (a state dict, ours or a torchvision ResNet-18); "" = none."""


@dataclass
class SDFDecoderConfig:
    """The DeepSDF-style MLPs used by the coarse and the fine SDF decoders (method B.3, B.7)."""

    hidden: int = 512
    """Width of the hidden layers."""
    dropout: float = 0.2
    """Dropout after every hidden layer while training (0 = off)."""
    weight_norm: bool = True
    """Weight normalisation on the hidden layers, as DeepSDF and the reference code."""


@dataclass
class PifuConfig:
    """3D point-aligned feature aggregation, eq. (4) (method B.6)."""

    k: int = 16
    """Depth points aggregated per query point (K)."""
    metric: Literal["3d", "xy"] = "3d"
    """Neighbour choice: "3d" Euclidean (the paper), "xy" the reference code's x/y cylinder."""
    alpha_init: float = 0.05
    """Initial value of the learnable weight alpha of the coarse SDF term (nu^2 per nu), per branch."""
    eps_init: float = 1e-3
    """Initial value of the learnable offset epsilon in the weight denominator, nu^2."""


@dataclass
class HeadsConfig:
    """Heads that surface-aware reconstruction uses: joints, object centre, hand points, heatmap."""

    hidden: int = 512
    """Width of the pose trunk (joints, hand surface points, object centre)."""
    n_hand_points: int = 200
    """Hand surface points regressed directly (an unordered set, Chamfer loss)."""
    heatmap_channels: int = 256
    """Channels of the upsampling neck of the volumetric heatmap head."""
    joints: Literal["regress", "pixel"] = "regress"
    """How the joints are predicted: "regress" from the pooled bottleneck (the reference), or
    "pixel": a heatmap and a depth per joint over the pixel feature map, lifted through the crop
    camera (``model.heads.PixelJointHead``)."""
    joint_channels: int = 64
    """Channels of the pixel joint head's convolutions (with ``joints: pixel``)."""


@dataclass
class ModelConfig:
    """The whole network; the switches select the paper's Table 1 ablation rows."""

    modality: Literal["rgb", "rgbd"] = "rgbd"
    """Encoder input: "rgb" (Table 1 row 0) or "rgbd" with spatial-attention fusion."""
    point_features: bool = True
    """3D point-aligned features from the depth points (3D PIFu, Table 1 rows 2-3)."""
    coarse_refinement: bool = True
    """Coarse SDF decoders and point semantics refining the point features (Table 1 row 3)."""
    latent: int = 128
    """Width of the global, pixel-aligned and point features (sdf_latent)."""
    pix_hidden: int = 512
    """Channels of the pixel feature map after the 1x1 conv that feeds the pixel-aligned feature."""
    xyz_encoding: Literal["none", "nerf"] = "none"
    """How the SDF decoders see xyz: raw (the reference code) or NeRF sin/cos features added (faster fitting)."""
    xyz_frequencies: int = 4
    """Octaves of the "nerf" encoding: sin/cos(2^i pi xyz_nu) for i < xyz_frequencies."""
    lift_neighbours: int = 4
    """Lifted feature pixels blended into each depth point's feature (method A.4)."""
    norm: Literal["batch", "group"] = "batch"
    """Normalisation layers: "batch" (SyncBatchNorm under multi-GPU CUDA) or "group" (batch-size free)."""
    sdf_clamp_m: float = 0.016
    """SDF clamp, metres: the loss compares clamped values, and the point semantics see clamped coarse SDFs."""
    query_chunk: int = 65536
    """Query points per frame evaluated at once by ``C2FNetwork.query`` (bounds memory)."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """Image encoder."""
    sdf_decoder: SDFDecoderConfig = field(default_factory=SDFDecoderConfig)
    """Coarse and fine SDF decoder MLPs."""
    pifu: PifuConfig = field(default_factory=PifuConfig)
    """3D point-aligned aggregation."""
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    """Auxiliary heads."""

    def validate(self) -> None:
        """Raise C2FError for combinations of switches that do not make a model."""
        if self.coarse_refinement and not self.point_features:
            raise C2FError(
                "model.coarse_refinement needs model.point_features: true (it refines the point features)"
            )
        for name in ("latent", "pix_hidden", "lift_neighbours", "query_chunk", "xyz_frequencies"):
            if getattr(self, name) < 1:
                raise C2FError(f"model.{name} must be >= 1, found {getattr(self, name)}")
        if self.heads.joints not in ("regress", "pixel"):
            raise C2FError(f"model.heads.joints must be 'regress' or 'pixel', found {self.heads.joints!r}")
        if self.heads.joint_channels < 1:
            raise C2FError(f"model.heads.joint_channels must be >= 1, found {self.heads.joint_channels}")
        if self.pifu.k < 1:
            raise C2FError(f"model.pifu.k must be >= 1, found {self.pifu.k}")
        if self.encoder.width <= 0 or self.encoder.feat_channels < 1:
            raise C2FError("model.encoder.width must be > 0 and model.encoder.feat_channels >= 1")
        if self.pifu.alpha_init <= 0 or self.pifu.eps_init <= 0:
            raise C2FError("model.pifu.alpha_init and model.pifu.eps_init must be > 0")
        if self.sdf_clamp_m <= 0:
            raise C2FError(f"model.sdf_clamp_m must be > 0 metres, found {self.sdf_clamp_m}")
