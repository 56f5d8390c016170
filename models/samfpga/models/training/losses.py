"""Loss terms: SAM's supervised mask losses and TinySAM's full-stage distillation losses.

All mask losses take logits and targets of equal shape (M, H, W) and return one value per mask (M,), so
callers can take the minimum over multimask outputs (SAM's ambiguity-aware training) before averaging.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss averaged over pixels: (..., H, W) float logits and {0,1} targets -> (...)."""
    target = target.to(logits.dtype)
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.flatten(-2).mean(-1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft dice loss: (..., H, W) -> (...)."""
    prob = logits.sigmoid().flatten(-2)
    target = target.to(logits.dtype).flatten(-2)
    inter = (prob * target).sum(-1)
    return 1 - (2 * inter + eps) / (prob.sum(-1) + target.sum(-1) + eps)


def mask_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of thresholded logits (> 0) with boolean targets: (..., H, W) -> (...); empty vs empty is 1."""
    pred = logits > 0
    target = target.bool()
    inter = (pred & target).flatten(-2).sum(-1).float()
    union = (pred | target).flatten(-2).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def mask_loss(logits: torch.Tensor, target: torch.Tensor, w_focal: float, w_dice: float) -> torch.Tensor:
    """Weighted focal + dice per mask: (..., H, W) -> (...)."""
    return w_focal * focal_loss(logits, target) + w_dice * dice_loss(logits, target)


def supervised_loss(
    logits: torch.Tensor,
    iou_pred: torch.Tensor,
    target: torch.Tensor,
    w_focal: float,
    w_dice: float,
    w_iou: float,
) -> torch.Tensor:
    """SAM's loss for one round of prompts.

    Args:
        logits: (M, K, H, W) mask logits at target resolution (K = 1 single-mask or 3 multimask outputs).
        iou_pred: (M, K) predicted IoUs.
        target: (M, H, W) bool ground truth.
    Returns:
        scalar: mask loss of the best of the K outputs (per prompt) + MSE of the IoU head for all K outputs.
    """
    tgt = target[:, None].expand_as(logits)
    per_mask = mask_loss(logits, tgt, w_focal, w_dice)  # (M, K)
    best = per_mask.min(dim=1).values
    iou_true = mask_iou(logits.detach(), tgt)
    return best.mean() + w_iou * F.mse_loss(iou_pred, iou_true)


def embedding_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE between image embeddings (B, C, h, w)."""
    if student.shape != teacher.shape:
        raise ValueError(f"embedding shapes differ: student {tuple(student.shape)} vs teacher {tuple(teacher.shape)}")
    return F.mse_loss(student, teacher.to(student.dtype))


def token_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE between the decoder's output tokens (M, 1 + num_mask_tokens, C)."""
    if student.shape != teacher.shape:
        raise ValueError(f"token shapes differ: student {tuple(student.shape)} vs teacher {tuple(teacher.shape)}")
    return F.mse_loss(student, teacher)


def output_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, w_focal: float, w_dice: float) -> torch.Tensor:
    """Focal + dice of the student's mask logits against the teacher's binarised masks, all outputs:
    (M, K, H, W) each -> scalar."""
    return mask_loss(student_logits, teacher_logits > 0, w_focal, w_dice).mean()
