"""Online hard-prompt sampling (TinySAM): the next prompt point is drawn from where student and teacher
disagree, labelled by the teacher, so training concentrates on the prompts the student gets wrong."""

from __future__ import annotations

import torch

from ..data.prompts import error_clicks


def hard_prompt_points(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Next click per prompt from the disagreement region of two models.

    Args:
        student_logits, teacher_logits: (M, H, W) mask logits of the mask each model would output.
    Returns:
        points (M, 2) float32 (x, y) in the grid of the logits and labels (M,) float32: 1 where the teacher
        says foreground. Where both agree everywhere the point falls inside the teacher's mask (positive).
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"hard prompts: student {tuple(student_logits.shape)} and teacher {tuple(teacher_logits.shape)} differ"
        )
    return error_clicks(student_logits.detach() > 0, teacher_logits.detach() > 0, generator)
