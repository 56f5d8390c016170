"""Hiera image encoder with SAM2's FPN neck (official names under ``image_encoder.trunk`` / ``image_encoder.neck``),
so official SAM2.1 checkpoints load strictly. Hiera-T: embed 96, stages (1, 2, 7, 2), global blocks 5, 7, 9."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .position import sine_pe_2d


@dataclass
class HieraConfig:
    embed_dim: int = 96
    num_heads: int = 1
    stages: tuple[int, ...] = (1, 2, 7, 2)
    global_att_blocks: tuple[int, ...] = (5, 7, 9)
    window_spec: tuple[int, ...] = (8, 4, 14, 7)
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (7, 7)
    q_pool: int = 3
    d_model: int = 256
    scalp: int = 1


def _window_partition(x: torch.Tensor, ws: int) -> tuple[torch.Tensor, tuple[int, int]]:
    b, h, w, c = x.shape
    ph, pw = (ws - h % ws) % ws, (ws - w % ws) % ws
    x = F.pad(x, (0, 0, 0, pw, 0, ph))
    hp, wp = h + ph, w + pw
    x = x.view(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws, ws, c)
    return x, (hp, wp)


def _window_unpartition(x: torch.Tensor, ws: int, pad_hw: tuple[int, int], hw: tuple[int, int]) -> torch.Tensor:
    hp, wp = pad_hw
    b = x.shape[0] // (hp * wp // ws // ws)
    x = x.reshape(b, hp // ws, wp // ws, ws, ws, -1).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    return x[:, : hw[0], : hw[1]]


class GeluMLP(nn.Module):
    """Two Linear layers with GELU between (SAM2's ``MLP(..., num_layers=2, activation=nn.GELU)``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(dim, hidden), nn.Linear(hidden, dim)])
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers[1](self.act(self.layers[0](x)))


class MultiScaleAttention(nn.Module):
    def __init__(self, dim: int, dim_out: int, num_heads: int, q_pool: nn.Module | None) -> None:
        super().__init__()
        self.num_heads, self.q_pool = num_heads, q_pool
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        q, k, v = torch.unbind(self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1), 2)
        if self.q_pool is not None:
            q = self.q_pool(q.reshape(b, h, w, -1).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
            h, w = q.shape[1:3]
            q = q.reshape(b, h * w, self.num_heads, -1)
        x = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(x.transpose(1, 2).reshape(b, h, w, -1))


class MultiScaleBlock(nn.Module):
    def __init__(self, dim: int, dim_out: int, num_heads: int, q_stride: int | None, window_size: int) -> None:
        super().__init__()
        self.dim, self.dim_out, self.window_size = dim, dim_out, window_size
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.q_stride = q_stride
        self.pool = nn.MaxPool2d(q_stride, q_stride) if q_stride else None
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, self.pool)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = GeluMLP(dim_out, 4 * dim_out)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = self.proj(x)
            if self.pool is not None:
                shortcut = self.pool(shortcut.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        ws = self.window_size
        h, w = x.shape[1:3]
        if ws > 0:
            x, pad_hw = _window_partition(x, ws)
        x = self.attn(x)
        if self.q_stride:
            ws = self.window_size // self.q_stride
            h, w = shortcut.shape[1:3]
            pad_hw = (h + (ws - h % ws) % ws, w + (ws - w % ws) % ws)
        if self.window_size > 0:
            x = _window_unpartition(x, ws, pad_hw, (h, w))
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class Hiera(nn.Module):
    def __init__(self, cfg: HieraConfig) -> None:
        super().__init__()
        dim, heads = cfg.embed_dim, cfg.num_heads
        self.stage_ends = [sum(cfg.stages[:i]) - 1 for i in range(1, len(cfg.stages) + 1)]
        q_pool_blocks = [x + 1 for x in self.stage_ends[:-1]][: cfg.q_pool]
        self.patch_embed = PatchEmbed(dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, dim, *cfg.window_pos_embed_bkg_spatial_size))
        self.pos_embed_window = nn.Parameter(torch.zeros(1, dim, cfg.window_spec[0], cfg.window_spec[0]))
        self.blocks = nn.ModuleList()
        stage = 1
        for i in range(sum(cfg.stages)):
            dim_out = dim
            ws = 0 if i in cfg.global_att_blocks else cfg.window_spec[stage - 1]
            if i - 1 in self.stage_ends:
                dim_out, heads = dim * 2, heads * 2
                stage += 1
            self.blocks.append(MultiScaleBlock(dim, dim_out, heads, 2 if i in q_pool_blocks else None, ws))
            dim = dim_out
        self.channel_list = [self.blocks[i].dim_out for i in self.stage_ends[::-1]]
        self.fixed_pos: torch.Tensor | None = None  # set by ONNX export: ONNX's bicubic Resize differs from torch's

    def pos_embed_at(self, h: int, w: int) -> torch.Tensor:
        """(1, h, w, C) position embedding: the background table resized bicubically plus the tiled window table."""
        pos = F.interpolate(self.pos_embed, size=(h, w), mode="bicubic")
        reps = [a // b for a, b in zip(pos.shape, self.pos_embed_window.shape)]
        return (pos + self.pos_embed_window.tile(reps)).permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        x = x + (self.fixed_pos if self.fixed_pos is not None else self.pos_embed_at(*x.shape[1:3]))
        outs = []
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i in self.stage_ends:
                outs.append(x.permute(0, 3, 1, 2))
        return outs


class FpnNeck(nn.Module):
    """1×1 lateral convs to d_model; top-down nearest-neighbour fusion on the two coarsest levels only."""

    def __init__(self, d_model: int, channel_list: list[int], top_down_levels: tuple[int, ...] = (2, 3)) -> None:
        super().__init__()
        self.d_model = d_model
        self.convs = nn.ModuleList()
        for dim in channel_list:
            seq = nn.Sequential()
            seq.add_module("conv", nn.Conv2d(dim, d_model, kernel_size=1))
            self.convs.append(seq)
        self.top_down_levels = top_down_levels

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        n = len(self.convs) - 1
        out: list[torch.Tensor] = [xs[0]] * len(xs)
        prev = None
        for i in range(n, -1, -1):
            lat = self.convs[n - i](xs[i])
            if i in self.top_down_levels and prev is not None:
                prev = lat + F.interpolate(prev, scale_factor=2.0, mode="nearest")
            else:
                prev = lat
            out[i] = prev
        return out


class HieraImageEncoder(nn.Module):
    """(B, 3, S, S) normalised image -> feature maps finest first: [(B,256,S/4,S/4), (B,256,S/8,S/8), (B,256,S/16,S/16)]
    (with scalp 1). The last one is the main map; the first two feed the decoder's high-resolution path."""

    def __init__(self, cfg: HieraConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or HieraConfig()
        self.trunk = Hiera(cfg)
        self.neck = FpnNeck(cfg.d_model, self.trunk.channel_list)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.neck(self.trunk(x))
        return feats[: len(feats) - self.cfg.scalp] if self.cfg.scalp else feats

    @staticmethod
    def position(c: int, h: int, w: int) -> torch.Tensor:
        return sine_pe_2d(c, h, w).unsqueeze(0)
