"""RGB-D image encoders with spatial-attention fusion (method B.1, G.1).

Both encoders map an RGB crop (B, 3, S, S) and a normalised depth crop (B, 1, S, S) to

- ``feat_map``: the pixel feature map F_visual, (B, feat_channels, S/4, S/4);
- ``bottleneck``: the deepest fused map, (B, bottleneck_channels, S/32, S/32), which the global
  feature and the heads read.

Two choices (``EncoderConfig.kind``):

- "resnet" (the reference code): two ResNet-18 paths, one per modality, a gated spatial-attention
  fusion after each of the 4 stages, and a U-Net decoder of pre-activation residuals from the 4
  fused maps to 1/4 resolution. Unlike the reference, the two paths do not share their residual
  downsample convs.
- "hourglass" (the paper): two hourglass down paths (residual modules, max-pooling, constant width)
  fused by the same gate at 1/4, 1/8, 1/16 and 1/32, then the hourglass up path with residual skip
  branches from the fused maps. One stack.

With ``modality="rgb"`` only the RGB path exists and no fusion is built (Table 1 row 0).
Training starts from scratch (no ImageNet download); ``load_pretrained`` loads a local file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from c2f_core.errors import C2FError, first_sentence
from c2f_core.model.config import EncoderConfig
from c2f_core.model.layers import BasicBlock, Residual, conv_norm_relu, upsample2

DOWNSAMPLE = 32
"""Total stride of the bottleneck map: the crop size must be a multiple of it."""
FEATURE_STRIDE = 4
"""Stride of the pixel feature map relative to the crop."""


class GatedFusion(nn.Module):
    """Spatial-attention fusion of an RGB and a depth map of the same shape (the reference's RGBDFusion).

    Per pixel, a 1x1 conv on concat(rgb, depth) gives two logits; their softmax (a_r, a_d) weighs
    merge = a_r rgb + a_d depth. The paths continue with ReLU((x + merge) / 2).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.gate = nn.Conv2d(2 * channels, 2, 1)

    def forward(
        self, rgb: torch.Tensor, depth: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (rgb', depth', merge), each (B, C, H, W)."""
        gates = torch.softmax(self.gate(torch.cat([rgb, depth], 1)), dim=1)
        merge = gates[:, :1] * rgb + gates[:, 1:] * depth
        return torch.relu((rgb + merge) / 2), torch.relu((depth + merge) / 2), merge


def _scaled(channels: int, width: float) -> int:
    return max(4, round(channels * width))


class UNetDecoder(nn.Module):
    """From fused maps at strides 4, 8, 16, 32 to one feature map at stride 4 (the reference's AWR U-Net)."""

    def __init__(self, widths: list[int], out_channels: int, norm: str):
        super().__init__()
        c1, c2, c3, c4 = widths
        self.top = nn.ModuleList(
            [Residual(c4, c3, norm), Residual(c3, c2, norm), Residual(c2, out_channels, norm)]
        )
        self.skips = nn.ModuleList(
            [Residual(c3, c3, norm), Residual(c2, c2, norm), Residual(c1, out_channels, norm)]
        )
        self.out = Residual(out_channels, out_channels, norm)

    def forward(self, fused: list[torch.Tensor]) -> torch.Tensor:
        """``fused`` = [c1, c2, c3, c4] -> (B, out_channels, H1, W1)."""
        x = fused[3]
        for top, skip, level in zip(self.top, self.skips, (fused[2], fused[1], fused[0])):
            x = upsample2(top(x), size=level.shape[-2:]) + skip(level)
        return self.out(x)


class DualResNetEncoder(nn.Module):
    """Dual-path ResNet-18 with gated fusion after every stage and a U-Net decoder."""

    def __init__(self, config: EncoderConfig, modality: str, norm: str):
        super().__init__()
        self.rgbd = modality == "rgbd"
        widths = [_scaled(c, config.width) for c in (64, 128, 256, 512)]
        self.rgb_stem = self._stem(3, widths[0], norm)
        self.rgb_stages = self._stages(widths, norm)
        if self.rgbd:
            self.depth_stem = self._stem(1, widths[0], norm)
            self.depth_stages = self._stages(widths, norm)
            self.fusions = nn.ModuleList([GatedFusion(c) for c in widths])
        self.decoder = UNetDecoder(widths, config.feat_channels, norm)
        self.feat_channels = config.feat_channels
        self.bottleneck_channels = widths[3]

    @staticmethod
    def _stem(in_ch: int, out_ch: int, norm: str) -> nn.Sequential:
        return nn.Sequential(*conv_norm_relu(in_ch, out_ch, 7, 2, norm), nn.MaxPool2d(3, stride=2, padding=1))

    @staticmethod
    def _stages(widths: list[int], norm: str) -> nn.ModuleList:
        stages = []
        in_ch = widths[0]
        for i, out_ch in enumerate(widths):
            stride = 1 if i == 0 else 2
            stages.append(
                nn.Sequential(BasicBlock(in_ch, out_ch, stride, norm), BasicBlock(out_ch, out_ch, 1, norm))
            )
            in_ch = out_ch
        return nn.ModuleList(stages)

    def forward(self, rgb: torch.Tensor, depth_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, S, S), (B, 1, S, S) -> feat_map (B, F, S/4, S/4), bottleneck (B, C4, S/32, S/32)."""
        x = self.rgb_stem(rgb)
        d = self.depth_stem(depth_norm) if self.rgbd else None
        fused = []
        for i, stage in enumerate(self.rgb_stages):
            x = stage(x)
            if self.rgbd:
                d = self.depth_stages[i](d)
                x, d, merge = self.fusions[i](x, d)
                fused.append(merge)
            else:
                fused.append(x)
        return self.decoder(fused), fused[3]


class DualHourglassEncoder(nn.Module):
    """Two hourglass down paths (RGB, depth) fused at every scale, and one hourglass up path."""

    LEVELS = 4
    """Scales 1/4, 1/8, 1/16, 1/32."""

    def __init__(self, config: EncoderConfig, modality: str, norm: str):
        super().__init__()
        self.rgbd = modality == "rgbd"
        width = _scaled(256, config.width)
        self.rgb_stem = self._stem(3, width, norm)
        self.rgb_down = self._down(width, norm)
        if self.rgbd:
            self.depth_stem = self._stem(1, width, norm)
            self.depth_down = self._down(width, norm)
            self.fusions = nn.ModuleList([GatedFusion(width) for _ in range(self.LEVELS)])
        self.skips = nn.ModuleList([Residual(width, width, norm) for _ in range(self.LEVELS - 1)])
        self.up = nn.ModuleList([Residual(width, width, norm) for _ in range(self.LEVELS - 1)])
        self.out = nn.Sequential(Residual(width, config.feat_channels, norm))
        self.feat_channels = config.feat_channels
        self.bottleneck_channels = width

    @staticmethod
    def _stem(in_ch: int, width: int, norm: str) -> nn.Sequential:
        mid = max(4, width // 2)
        return nn.Sequential(
            *conv_norm_relu(in_ch, mid, 7, 2, norm),
            Residual(mid, width, norm),
            nn.MaxPool2d(2),
            Residual(width, width, norm),
        )

    def _down(self, width: int, norm: str) -> nn.ModuleList:
        levels = [Residual(width, width, norm)]
        for _ in range(self.LEVELS - 1):
            levels.append(
                nn.Sequential(nn.MaxPool2d(2), Residual(width, width, norm), Residual(width, width, norm))
            )
        return nn.ModuleList(levels)

    def forward(self, rgb: torch.Tensor, depth_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, S, S), (B, 1, S, S) -> feat_map (B, F, S/4, S/4), bottleneck (B, W, S/32, S/32)."""
        x = self.rgb_stem(rgb)
        d = self.depth_stem(depth_norm) if self.rgbd else None
        fused = []
        for i in range(self.LEVELS):
            x = self.rgb_down[i](x)
            if self.rgbd:
                d = self.depth_down[i](d)
                x, d, merge = self.fusions[i](x, d)
                fused.append(merge)
            else:
                fused.append(x)
        y = fused[-1]
        for i in range(self.LEVELS - 2, -1, -1):
            y = upsample2(self.up[i](y), size=fused[i].shape[-2:]) + self.skips[i](fused[i])
        return self.out(y), fused[-1]


def build_encoder(config: EncoderConfig, modality: str, norm: str) -> nn.Module:
    """The encoder named by ``config.kind``, with pretrained weights loaded when configured."""
    encoder: nn.Module
    if config.kind == "resnet":
        encoder = DualResNetEncoder(config, modality, norm)
    else:
        encoder = DualHourglassEncoder(config, modality, norm)
    if config.pretrained:
        load_pretrained(encoder, config.pretrained)
    return encoder


def _torchvision_resnet_keys(state: dict[str, torch.Tensor], rgbd: bool) -> dict[str, torch.Tensor]:
    """Map torchvision ResNet-18 keys onto both paths of ``DualResNetEncoder``.

    The depth stem gets the RGB stem's kernels averaged over the colour channels.
    """
    mapped: dict[str, torch.Tensor] = {}
    prefixes = ["rgb"] + (["depth"] if rgbd else [])
    for key, value in state.items():
        for path in prefixes:
            if key.startswith("conv1."):
                tensor = value.mean(1, keepdim=True) if path == "depth" else value
                mapped[f"{path}_stem.0.{key[6:]}"] = tensor
            elif key.startswith("bn1."):
                mapped[f"{path}_stem.1.{key[4:]}"] = value
            elif key.startswith("layer"):
                stage = int(key[5]) - 1
                mapped[f"{path}_stages.{stage}.{key[7:]}"] = value
    return mapped


def load_pretrained(encoder: nn.Module, path: str | Path) -> int:
    """Load encoder weights from a local file; returns the number of tensors loaded.

    Accepts a state dict of this encoder, a dict holding one under "model"/"state_dict", or a
    torchvision ResNet-18 state dict (mapped onto both paths). Tensors whose name or shape does not
    match are skipped (e.g. BatchNorm statistics under GroupNorm).

    Raises:
        C2FError: the file is missing, unreadable, or no tensor matches.
    """
    path = Path(path)
    if not path.is_file():
        raise C2FError(f"pretrained encoder weights not found: {path}")
    try:
        with warnings.catch_warnings():  # PyTorch's notes on foreign pickles: the error below says enough
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the user's file
        reason = first_sentence(str(exc))
        if "weights_only" in reason or "Weights only" in reason:
            # PyTorch's refusal of unsafe contents advises loading unsafely: never pass that on.
            reason = "not a weights file the safe loader accepts"
        elif not isinstance(exc, RuntimeError | OSError):
            reason = f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__
        raise C2FError(f"cannot read pretrained encoder weights {path}: {reason}") from None
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise C2FError(f"{path} does not hold a state dict")
    if any(k.startswith("layer1.") for k in state) and isinstance(encoder, DualResNetEncoder):
        state = _torchvision_resnet_keys(state, encoder.rgbd)
    own = encoder.state_dict()
    usable = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not usable:
        raise C2FError(
            f"no tensor in {path} matches the {type(encoder).__name__} encoder (names or shapes differ)"
        )
    encoder.load_state_dict(usable, strict=False)
    return len(usable)
