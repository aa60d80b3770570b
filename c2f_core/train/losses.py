"""Training losses (method C), all in net units, computed in float32."""

from __future__ import annotations

import torch

from c2f_core.train.config import LossConfig

TERMS = (
    "sdf_hand",
    "sdf_object",
    "coarse_hand",
    "coarse_object",
    "joints",
    "object_center",
    "hand_points",
    "heatmap",
)
"""Loss terms in the order they are logged."""


def clamped_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, clamp: float) -> torch.Tensor:
    """Mean clamped L1 of signed distances over the entries where ``mask`` is true (0 when none).

    Equal to |clamp(pred) - clamp(target)| (method A.5) whenever the prediction lies inside
    [-clamp, clamp], and zero as there when both lie beyond the band on the same side. A prediction
    beyond the band is clamped only on the target's side, so a saturated prediction on the wrong
    side (or beyond the band while the target is inside it) still gets a gradient; the two-sided
    clamp of the reference gives it none, which can freeze a decoder that starts saturated.

    Args:
        pred, target: (B, Q) signed distances, nu. mask: (B, Q) bool. clamp: +- bound, nu.
    """
    pred, target = pred.float(), target.float()
    upper = torch.where(
        target >= clamp, torch.full_like(target, clamp), torch.full_like(target, float("inf"))
    )
    lower = torch.where(
        target <= -clamp, torch.full_like(target, -clamp), torch.full_like(target, -float("inf"))
    )
    diff = (torch.minimum(torch.maximum(pred, lower), upper) - target.clamp(-clamp, clamp)).abs()
    mask = mask.to(diff.dtype)
    return (diff * mask).sum() / mask.sum().clamp(min=1.0)


def chamfer_sq(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Symmetric Chamfer of point sets: mean over the batch of the two mean squared NN distances.

    Args:
        pred: (B, n, 3). target: (B, m, 3). Same units (nu), result in units^2.
    """
    dist = torch.cdist(pred.float(), target.float()) ** 2  # (B, n, m); n, m are a few hundred
    return (dist.min(2).values.mean(1) + dist.min(1).values.mean(1)).mean()


def compute_losses(
    out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], weights: LossConfig, clamp_nu: float
) -> dict[str, torch.Tensor]:
    """Every loss term (unweighted) and ``total`` = their weighted sum.

    Hand-file samples (``query_is_hand``) supervise the hand heads and object-file samples the
    object heads (method A.5). Coarse terms are 0 for models without coarse decoders.
    """
    is_hand = batch["query_is_hand"]
    target = batch["query_sdf_nu"]
    terms = {
        "sdf_hand": clamped_l1(out["sdf_hand"], target, is_hand, clamp_nu),
        "sdf_object": clamped_l1(out["sdf_object"], target, ~is_hand, clamp_nu),
    }
    if "coarse_hand" in out:
        terms["coarse_hand"] = clamped_l1(out["coarse_hand"], target, is_hand, clamp_nu)
        terms["coarse_object"] = clamped_l1(out["coarse_object"], target, ~is_hand, clamp_nu)
    else:
        terms["coarse_hand"] = terms["coarse_object"] = torch.zeros((), device=target.device)
    terms["joints"] = ((out["joints"].float() - batch["joints_nu"]) ** 2).mean()
    terms["object_center"] = ((out["object_center"].float() - batch["object_center_nu"]) ** 2).mean()
    terms["hand_points"] = chamfer_sq(out["hand_points"], batch["hand_points_nu"])
    terms["heatmap"] = ((out["heatmap"].float() - batch["heatmap"]) ** 2).mean()
    total = (
        weights.sdf_fine * (terms["sdf_hand"] + terms["sdf_object"])
        + weights.sdf_coarse * (terms["coarse_hand"] + terms["coarse_object"])
        + weights.joints * terms["joints"]
        + weights.object_center * terms["object_center"]
        + weights.hand_points * terms["hand_points"]
        + weights.heatmap * terms["heatmap"]
    )
    return {"total": total, **{k: terms[k] for k in TERMS}}
