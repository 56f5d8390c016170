"""SAM2's memory attention: pre-norm layers of RoPE self-attention, cross-attention to the memory bank and an FFN
(official parameter names ``layers.{i}.{self_attn,cross_attn_image,linear1,linear2,norm1-3}``, ``norm``).

Batch-first throughout (the official module takes sequence-first); spatial memories and object-pointer tokens come
as separate tensors so an ONNX export needs no integer input for how many keys skip RoPE.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .attention import RoPEAttention


@dataclass
class MemoryAttentionConfig:
    d_model: int = 256
    mem_dim: int = 64
    num_layers: int = 4
    num_heads: int = 1
    dim_feedforward: int = 2048
    feat_size: tuple[int, int] = (64, 64)
    rope_theta: float = 10000.0
    pool_memory: bool = False


class MemoryAttentionLayer(nn.Module):
    def __init__(self, cfg: MemoryAttentionConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.self_attn = RoPEAttention(d, cfg.num_heads, cfg.feat_size, rope_theta=cfg.rope_theta)
        self.cross_attn_image = RoPEAttention(
            d, cfg.num_heads, cfg.feat_size, kv_in_dim=cfg.mem_dim, rope_theta=cfg.rope_theta,
            pool_memory=cfg.pool_memory,
        )
        self.linear1 = nn.Linear(d, cfg.dim_feedforward)
        self.linear2 = nn.Linear(cfg.dim_feedforward, d)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor, num_ptr: int) -> torch.Tensor:
        t = self.norm1(tgt)
        tgt = tgt + self.self_attn(t, t, t)
        t = self.norm2(tgt)
        tgt = tgt + self.cross_attn_image(t, memory + pos, memory, num_k_exclude_rope=num_ptr)
        return tgt + self.linear2(torch.relu(self.linear1(self.norm3(tgt))))


class MemoryAttention(nn.Module):
    """Conditions the current frame's features on the memory bank."""

    def __init__(self, cfg: MemoryAttentionConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or MemoryAttentionConfig()
        self.layers = nn.ModuleList(MemoryAttentionLayer(self.cfg) for _ in range(self.cfg.num_layers))
        self.norm = nn.LayerNorm(self.cfg.d_model)

    def forward(
        self,
        curr: torch.Tensor,
        curr_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        ptr: torch.Tensor,
        ptr_pos: torch.Tensor,
    ) -> torch.Tensor:
        """Args (float32, batch = objects):
            curr, curr_pos: (B, h*w, d_model) current features and their sine position encoding.
            memory, memory_pos: (B, F*h*w, mem_dim) F spatial memories (frame-major) and their positions
                (sine + temporal encoding).
            ptr, ptr_pos: (B, P, mem_dim) object-pointer tokens and their temporal positions (P may be 0).
        Returns (B, h*w, d_model), the memory-conditioned features.
        """
        out = curr + 0.1 * curr_pos
        mem = torch.cat([memory, ptr], dim=1)
        pos = torch.cat([memory_pos, ptr_pos], dim=1)
        for layer in self.layers:
            out = layer(out, mem, pos, ptr.shape[1])
        return self.norm(out)
