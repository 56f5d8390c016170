"""The project's one rounding rule for activation quantizers: round half up, ``floor(x + 0.5)``.

Why this rule (docs/quantization.md, "Rounding"): it is what an integer datapath computes when it adds half an LSB and
shifts right, what FINN's stock Quant -> MultiThreshold conversion places (thresholds at the half steps, ``>=``) and
what FINN+'s arithmetic ``Requant`` layer computes; so every stage, Brevitas -> QONNX -> FINN -> RTL, rounds the same
way and uniform requantizers need no threshold table.

QONNX's ``Quant`` has no rounding mode for it (``HALF_UP`` rounds ties away from zero), so the export writes each such
quantizer as ``Add(x, scale/2) -> Quant(rounding_mode=FLOOR)``: ``floor((x + s/2)/s) == floor(x/s + 0.5)`` exactly in
float32 for power-of-two ``s`` (scaling by a power of two is exact). ``hw/samfpga/hw/build/quant_rounding.py`` folds
the pair back into one requantizer.
"""

from __future__ import annotations

import torch
from torch import nn

HALF_UP = "half_up"


class RoundHalfUpSte(nn.Module):
    """``floor(x + 0.5)`` with a straight-through gradient (Brevitas ``float_to_int_impl``). Any shape, float."""

    def __init__(self) -> None:  # explicit: Brevitas' injector rejects the inherited *args/**kwargs signature
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (torch.floor(x + 0.5) - x).detach()


def round_half_up(x: torch.Tensor) -> torch.Tensor:
    """Reference: ``floor(x + 0.5)`` (ties towards +inf)."""
    return torch.floor(x + 0.5)
