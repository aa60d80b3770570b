"""Coarse (global) hand and object SDF decoders conditioned on the global feature (method B.3)."""

from __future__ import annotations

import torch
from torch import nn

from c2f_core.model.config import SDFDecoderConfig
from c2f_core.model.decoder import SDFDecoder, XYZEncoding


class CoarseSDF(nn.Module):
    """F_global = Linear(mean-pooled bottleneck); two decoders on [F_global ‖ enc(xyz_nu)]."""

    def __init__(self, bottleneck_channels: int, latent: int, config: SDFDecoderConfig, xyz: XYZEncoding):
        super().__init__()
        self.global_feature = nn.Linear(bottleneck_channels, latent)
        self.xyz = xyz
        self.hand = SDFDecoder(latent + xyz.out_features, config)
        self.object = SDFDecoder(latent + xyz.out_features, config)

    def encode(self, bottleneck: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> global feature (B, latent)."""
        return self.global_feature(bottleneck.mean(dim=(2, 3)))

    def forward(
        self, global_feat: torch.Tensor, points_nu: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Coarse SDFs (B, Q) hand and object, net units, at points (B, Q, 3) nu."""
        latent = global_feat[:, None, :].expand(-1, points_nu.shape[1], -1)
        inputs = torch.cat([latent, self.xyz(points_nu.to(latent.dtype))], dim=-1)
        return self.hand(inputs), self.object(inputs)
