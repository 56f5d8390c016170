"""Axial rotary position encoding in real arithmetic (ONNX-exportable; no complex tensors).

SAM2 rotates channel pairs (2i, 2i+1) of queries and spatial keys by an angle that depends on the token's (x, y)
on the feature grid: the first d/4 pairs use x·f_k, the next d/4 use y·f_k, f_k = θ^(−4k/d). The official code
does this with ``torch.polar``/``view_as_complex``, which ONNX cannot export (sam2 issues #186, #702); this is the
same rotation written as (a·cos − b·sin, a·sin + b·cos).
"""

from __future__ import annotations

import torch


def axial_rope_angles(dim: int, h: int, w: int, theta: float = 10000.0) -> torch.Tensor:
    """Rotation angles (h*w, dim//2) float32 for a row-major (h, w) grid; token t sits at x = t % w, y = t // w."""
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 4)[: dim // 4].float() / dim))
    t = torch.arange(h * w, dtype=torch.float32)
    tx, ty = t % w, torch.div(t, w, rounding_mode="floor")
    return torch.cat([torch.outer(tx, freqs), torch.outer(ty, freqs)], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs of ``x`` (..., N, d) by angles given as cos/sin (N, d/2); returns (..., N, d)."""
    xr = x.reshape(*x.shape[:-1], -1, 2)
    a, b = xr[..., 0], xr[..., 1]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)
