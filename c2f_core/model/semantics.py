"""Point-level semantics: depth-point features refined by their coarse SDFs, eq. (3) (method B.4, B.5)."""

from __future__ import annotations

import torch
from torch import nn

from c2f_core.model.layers import norm1d


class PointEmbedding(nn.Module):
    """F_point = ReLU( N(W0 F3d) + N(W1 P) [+ N(W2 [D_h, D_o])] ).

    P is the depth point's position in nu (isotropic metric, ``geometry.frames``); [D_h, D_o] are
    its clamped coarse hand and object SDFs, the soft hand/object/background evidence. The SDF term
    exists only with coarse refinement (Table 1 row 3). One 1x1 projection and one norm per term, as
    the reference code.
    """

    def __init__(self, feat_channels: int, latent: int, use_sdf: bool, norm: str):
        super().__init__()
        self.feature = nn.Sequential(nn.Conv1d(feat_channels, latent, 1), norm1d(norm, latent))
        self.position = nn.Sequential(nn.Conv1d(3, latent, 1), norm1d(norm, latent))
        self.semantics = nn.Sequential(nn.Conv1d(2, latent, 1), norm1d(norm, latent)) if use_sdf else None

    def forward(self, lifted: torch.Tensor, pcl_nu: torch.Tensor, sdf: torch.Tensor | None) -> torch.Tensor:
        """Point features (B, N, latent) from lifted features (B, N, C), positions (B, N, 3), SDFs (B, N, 2)."""
        total = self.feature(lifted.transpose(1, 2)) + self.position(pcl_nu.to(lifted.dtype).transpose(1, 2))
        if self.semantics is not None:
            if sdf is None:
                raise ValueError("PointEmbedding built with coarse SDFs needs sdf (B, N, 2)")
            total = total + self.semantics(sdf.to(lifted.dtype).transpose(1, 2))
        return torch.relu(total).transpose(1, 2)
