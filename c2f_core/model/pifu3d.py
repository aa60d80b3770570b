"""3D PIFu: point-aligned features of query points from their K nearest depth points, eq. (4) (method B.6)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from c2f_core.geometry.knn import knn
from c2f_core.model.config import PifuConfig
from c2f_core.model.layers import gather_neighbours

MIN_EPS_NU2 = 1e-8
"""Lower bound of the learnable offset epsilon, nu^2."""


class PointAlignedFeatures(nn.Module):
    """Separate hand and object aggregations of the point features around each query.

    For the K nearest depth points k of a query (3D kNN in nu, or the reference's x/y cylinder):
    w_k = 1 / (d_k^2 + alpha D+_k + eps), normalised to sum 1, where d_k^2 is the squared 3D
    distance (nu^2), D+_k = max(D_k, 0) the point's clamped coarse SDF of the branch (hand or
    object; points inside count as on the surface) and alpha, eps are learnable and positive
    (stored as logarithms). Without coarse refinement the alpha term is absent and one weighting
    serves both branches. The reference squashes alpha and eps with a sigmoid (eps starts at 0.5,
    far above typical d^2 in our metric units); ours start at ``PifuConfig`` values in nu^2.
    """

    def __init__(self, config: PifuConfig, use_sdf: bool):
        super().__init__()
        self.k = config.k
        self.metric = config.metric
        self.use_sdf = use_sdf
        self.log_eps = nn.Parameter(torch.tensor(math.log(config.eps_init)))
        if use_sdf:
            self.log_alpha = nn.Parameter(torch.full((2,), math.log(config.alpha_init)))

    def weights(self, dist_sq: torch.Tensor, sdf_plus: torch.Tensor | None) -> torch.Tensor:
        """Normalised weights (B, Q, K) or (B, Q, K, 2) (hand, object) from d^2 (B, Q, K) and D+ (B, Q, K, 2)."""
        eps = self.log_eps.exp().clamp(min=MIN_EPS_NU2)
        if sdf_plus is None:
            w = 1.0 / (dist_sq + eps)
            return w / w.sum(2, keepdim=True)
        w = 1.0 / (dist_sq[..., None] + self.log_alpha.exp() * sdf_plus + eps)
        return w / w.sum(2, keepdim=True)

    def forward(
        self,
        points_nu: torch.Tensor,
        pcl_nu: torch.Tensor,
        pcl_feat: torch.Tensor,
        pcl_sdf: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hand and object point-aligned features, each (B, Q, C).

        Args:
            points_nu: (B, Q, 3) query points, nu.
            pcl_nu: (B, N, 3) depth points, nu.
            pcl_feat: (B, N, C) point features (eq. 3).
            pcl_sdf: (B, N, 2) clamped coarse hand/object SDFs of the depth points, or None.
        """
        with torch.autocast(device_type=points_nu.device.type, enabled=False):
            dist_sq, idx = knn(points_nu.float(), pcl_nu.float(), self.k, metric=self.metric)
            sdf_plus = None
            if self.use_sdf:
                if pcl_sdf is None:
                    raise ValueError("PointAlignedFeatures built with coarse SDFs needs pcl_sdf (B, N, 2)")
                sdf_plus = gather_neighbours(pcl_sdf.float(), idx).clamp(min=0.0)  # (B, Q, K, 2)
            weights = self.weights(dist_sq, sdf_plus)
        weights = weights.to(pcl_feat.dtype)
        if sdf_plus is None:
            shared = blend_neighbours(pcl_feat, idx, weights)
            return shared, shared
        return blend_neighbours(pcl_feat, idx, weights[..., 0]), blend_neighbours(
            pcl_feat, idx, weights[..., 1]
        )


def blend_neighbours(features: torch.Tensor, idx: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted sums of neighbour features: features (B, P, C), idx (B, Q, K), weights (B, Q, K) -> (B, Q, C).

    The same as ``(gather_neighbours(features, idx) * weights[..., None]).sum(2)``, without the
    (B, Q, K, C) gathered tensor: half the time of a query on a CPU. Differentiable w.r.t. both
    features and weights.
    """
    batch, num, channels = features.shape
    k = idx.shape[-1]
    offsets = (torch.arange(batch, device=idx.device) * num).view(batch, 1, 1)
    blended = F.embedding_bag(
        (idx + offsets).reshape(-1, k),
        features.reshape(batch * num, channels),
        per_sample_weights=weights.reshape(-1, k),
        mode="sum",
    )
    return blended.view(*idx.shape[:-1], channels)
