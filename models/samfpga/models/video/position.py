"""Sine position encodings of SAM2 (2-D for feature maps, 1-D for object-pointer temporal offsets)."""

from __future__ import annotations

import math

import torch


def sine_pe_2d(num_pos_feats: int, h: int, w: int, temperature: float = 10000.0) -> torch.Tensor:
    """``PositionEmbeddingSine(num_pos_feats, normalize=True)`` of an (h, w) map: (num_pos_feats, h, w) float32,
    y half first, interleaved sin/cos."""
    half = num_pos_feats // 2
    eps, scale = 1e-6, 2 * math.pi
    y = torch.arange(1, h + 1, dtype=torch.float32).view(-1, 1).expand(h, w)
    x = torch.arange(1, w + 1, dtype=torch.float32).view(1, -1).expand(h, w)
    y = y / (h + eps) * scale
    x = x / (w + eps) * scale
    dim_t = torch.arange(half, dtype=torch.float32)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / half)
    px, py = x[..., None] / dim_t, y[..., None] / dim_t
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=-1).flatten(-2)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=-1).flatten(-2)
    return torch.cat((py, px), dim=-1).permute(2, 0, 1).contiguous()


def sine_pe_1d(pos: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """SAM2's ``get_1d_sine_pe``: (N,) positions -> (N, dim), [sin ‖ cos] concatenated."""
    half = dim // 2
    dim_t = torch.arange(half, dtype=torch.float32, device=pos.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / half)
    p = pos.float().unsqueeze(-1) / dim_t
    return torch.cat([p.sin(), p.cos()], dim=-1)
