"""Quantization-aware training: distil the float encoder (teacher) into its quantized copy.

Thin on purpose: the loss is the training pipeline's embedding-distillation term
(``samfpga.models.training.losses.embedding_loss``, TinySAM's full-stage distillation on the image
embedding); the teacher's embeddings are computed once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..training.losses import embedding_loss
from .bias_grid import maybe_snap_biases


@dataclass
class QATConfig:
    steps: int = 100
    batch_size: int = 4
    lr: float = 1e-4
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f"QATConfig needs steps >= 1, batch_size >= 1, lr > 0; got {self}")


def qat_distill(
    qmodel: nn.Module, teacher: nn.Module, images: torch.Tensor, config: QATConfig | None = None
) -> list[float]:
    """Fine-tune calibrated ``qmodel`` so its embedding matches ``teacher``'s on ``images`` ((N,3,S,S) float
    normalised). Returns the loss per step; ``qmodel`` is left in eval mode (biases re-snapped with
    ``QuantConfig.bias_on_grid``).
    """
    cfg = config or QATConfig()
    if images.ndim != 4 or images.shape[0] < 1:
        raise ValueError(f"QAT images must be (N,3,S,S) with N >= 1, got {tuple(images.shape)}")
    teacher.eval()
    with torch.no_grad():
        targets = torch.cat([teacher(x) for x in images.split(cfg.batch_size)])
    params = [p for p in qmodel.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    g = torch.Generator().manual_seed(cfg.seed)
    losses = []
    qmodel.train()
    for _ in range(cfg.steps):
        idx = torch.randint(0, images.shape[0], (cfg.batch_size,), generator=g)
        loss = embedding_loss(qmodel(images[idx]), targets[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    qmodel.eval()
    maybe_snap_biases(qmodel)  # training moved the biases (and scales) off the accumulator grid
    return losses
