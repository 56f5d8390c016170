"""SAM2's memory encoder: the predicted mask, downsampled 16×, fused with the frame's features into a 64-channel
memory (official names ``mask_downsampler.encoder.*``, ``pix_feat_proj``, ``fuser.layers.{i}``, ``out_proj``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..common import LayerNorm2d
from .position import sine_pe_2d


@dataclass
class MemoryEncoderConfig:
    in_dim: int = 256
    out_dim: int = 64
    total_stride: int = 16
    fuser_layers: int = 2


class MaskDownSampler(nn.Module):
    """(B,1,H,W) -> (B,embed_dim,H/16,W/16): (conv3×3 s2, LayerNorm2d, GELU) ×4 with 1→4→16→64→256 channels, 1×1."""

    def __init__(self, embed_dim: int = 256, total_stride: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for _ in range(int(round(math.log2(total_stride)))):
            cout = cin * 4
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), LayerNorm2d(cout), nn.GELU()]
            cin = cout
        layers.append(nn.Conv2d(cin, embed_dim, kernel_size=1))
        self.encoder = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class CXBlock(nn.Module):
    """ConvNeXt block: 7×7 depthwise conv, LayerNorm2d, Linear 4×, GELU, Linear, layer scale ``gamma``, residual."""

    def __init__(self, dim: int = 256) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = LayerNorm2d(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(y)))
        return x + y.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    def __init__(self, dim: int, num_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CXBlock(dim) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """Turns (frame features, mask) into a memory feature and its position encoding."""

    def __init__(self, cfg: MemoryEncoderConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or MemoryEncoderConfig()
        self.mask_downsampler = MaskDownSampler(cfg.in_dim, cfg.total_stride)
        self.pix_feat_proj = nn.Conv2d(cfg.in_dim, cfg.in_dim, kernel_size=1)
        self.fuser = Fuser(cfg.in_dim, cfg.fuser_layers)
        self.out_proj = nn.Conv2d(cfg.in_dim, cfg.out_dim, kernel_size=1) if cfg.out_dim != cfg.in_dim else nn.Identity()

    def forward(self, pix_feat: torch.Tensor, mask_for_mem: torch.Tensor) -> torch.Tensor:
        """pix_feat (B, in_dim, h, w) raw backbone features; mask_for_mem (B, 1, 16h, 16w) already mapped to
        sigmoid(logits)·20 − 10 (or a binarised mask ·20 − 10). Returns (B, out_dim, h, w)."""
        x = self.pix_feat_proj(pix_feat) + self.mask_downsampler(mask_for_mem)
        return self.out_proj(self.fuser(x))

    def position(self, h: int, w: int) -> torch.Tensor:
        """(1, out_dim, h, w) sine position encoding of a memory feature (the same for every frame)."""
        return sine_pe_2d(self.cfg.out_dim, h, w).unsqueeze(0).to(next(self.parameters()).device)
