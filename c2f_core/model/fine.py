"""Fine hand and object SDF decoders on pixel-aligned + point-aligned features + xyz (method B.7)."""

from __future__ import annotations

import torch
from torch import nn

from c2f_core.model.config import SDFDecoderConfig
from c2f_core.model.decoder import SDFDecoder, XYZEncoding


class FineSDF(nn.Module):
    """Two decoders on [F_pix ‖ F_PA(branch) ‖ enc(xyz_nu)] (without point features: [F_pix ‖ enc(xyz_nu)])."""

    def __init__(self, latent: int, point_features: bool, config: SDFDecoderConfig, xyz: XYZEncoding):
        super().__init__()
        self.xyz = xyz
        width = latent * (2 if point_features else 1) + xyz.out_features
        self.hand = SDFDecoder(width, config)
        self.object = SDFDecoder(width, config)

    def forward(
        self,
        pix: torch.Tensor,
        point_hand: torch.Tensor | None,
        point_object: torch.Tensor | None,
        points_nu: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fine SDFs (B, Q) hand and object, net units, from features (B, Q, C) and points (B, Q, 3) nu."""
        xyz = self.xyz(points_nu.to(pix.dtype))
        if point_hand is None or point_object is None:
            inputs = torch.cat([pix, xyz], dim=-1)
            return self.hand(inputs), self.object(inputs)
        hand = self.hand(torch.cat([pix, point_hand.to(pix.dtype), xyz], dim=-1))
        obj = self.object(torch.cat([pix, point_object.to(pix.dtype), xyz], dim=-1))
        return hand, obj
