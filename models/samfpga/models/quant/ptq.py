"""Post-training quantization: activation-range calibration (and optional bias correction) on a few images."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from brevitas.graph.calibrate import bias_correction_mode, calibration_mode
from torch import nn

from . import compat  # noqa: F401
from .bias_grid import maybe_snap_biases


def _batches(images: torch.Tensor | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ValueError(f"calibration images must be (N,3,S,S), got {tuple(images.shape)}")
        return list(images.split(1))
    out = [x if x.ndim == 4 else x[None] for x in images]
    if not out:
        raise ValueError("calibration needs at least one image")
    return out


@torch.no_grad()
def calibrate(
    qmodel: nn.Module, images: torch.Tensor | Iterable[torch.Tensor], bias_correction: bool = False
) -> nn.Module:
    """Set activation scales from statistics over ``images`` ((N,3,S,S) float normalised, or an iterable of
    (1,3,S,S)); optionally correct weight-layer biases for the quantization error's mean. Returns ``qmodel``
    in eval mode. With ``QuantConfig.bias_on_grid`` the biases are then rounded to their accumulator grids
    (``bias_grid.snap_biases``).
    """
    batches = _batches(images)
    qmodel.eval()
    with calibration_mode(qmodel):
        for x in batches:
            qmodel(x)
    if bias_correction:
        with bias_correction_mode(qmodel):
            for x in batches:
                qmodel(x)
    qmodel.eval()
    maybe_snap_biases(qmodel)
    return qmodel
