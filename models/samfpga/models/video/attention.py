"""Attention with rotary position encoding on the queries and on the spatial part of the keys (SAM2's
``RoPEAttention``, official parameter names), optionally with EfficientTAM's 2×2-pooled memory keys/values."""

from __future__ import annotations

import math

import torch
from torch import nn

from .rope import apply_rope, axial_rope_angles


class RoPEAttention(nn.Module):
    """``q_proj``/``k_proj``/``v_proj``/``out_proj`` as in ``sam2.modeling.sam.transformer.RoPEAttention``.

    Args:
        embedding_dim: query width (256).
        num_heads: heads (1 in SAM2.1).
        feat_size: (h, w) of the current frame's feature grid; spatial keys are whole frames of h*w tokens.
        kv_in_dim: key/value input width (64 for cross-attention to memories).
        pool_memory: average-pool each memory frame's keys (after RoPE) and values 2×2 and add ln 4 to their
            logits (EfficientTAM); pointer tokens are not pooled.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int = 1,
        feat_size: tuple[int, int] = (64, 64),
        kv_in_dim: int | None = None,
        rope_theta: float = 10000.0,
        pool_memory: bool = False,
    ) -> None:
        super().__init__()
        kv_in_dim = kv_in_dim or embedding_dim
        self.num_heads = num_heads
        self.feat_size = tuple(feat_size)
        self.pool_memory = pool_memory
        self.q_proj = nn.Linear(embedding_dim, embedding_dim)
        self.k_proj = nn.Linear(kv_in_dim, embedding_dim)
        self.v_proj = nn.Linear(kv_in_dim, embedding_dim)
        self.out_proj = nn.Linear(embedding_dim, embedding_dim)
        angles = axial_rope_angles(embedding_dim // num_heads, *self.feat_size, theta=rope_theta)
        self.register_buffer("rope_cos", angles.cos(), persistent=False)
        self.register_buffer("rope_sin", angles.sin(), persistent=False)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_k_exclude_rope: int = 0) -> torch.Tensor:
        """q (B, h*w, C); k, v (B, F*h*w + P, kv_in_dim) where the last ``num_k_exclude_rope`` = P keys
        (object-pointer tokens) get no rotation. Returns (B, h*w, C)."""
        hw = self.feat_size[0] * self.feat_size[1]
        q, k, v = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        q = apply_rope(q, self.rope_cos, self.rope_sin)
        n_sp = k.shape[2] - num_k_exclude_rope
        b, nh, _, d = k.shape
        k_sp = apply_rope(k[:, :, :n_sp].reshape(b, nh, -1, hw, d), self.rope_cos, self.rope_sin)
        v_sp = v[:, :, :n_sp].reshape(b, nh, -1, hw, d)
        if self.pool_memory:
            k_sp, v_sp = _pool2x2(k_sp, self.feat_size), _pool2x2(v_sp, self.feat_size)
        k_ptr = k[:, :, n_sp:]
        k = torch.cat([k_sp.flatten(2, 3), k_ptr], dim=2)
        v = torch.cat([v_sp.flatten(2, 3), v[:, :, n_sp:]], dim=2)
        logits = (q @ k.transpose(-1, -2)) / math.sqrt(d)
        if self.pool_memory:
            # a pooled key stands for 4 keys: +ln 4 keeps the softmax mass it had before pooling
            # (built from the tensors, not their sizes, so an ONNX export keeps the memory length dynamic)
            bias = torch.cat([k_sp.flatten(2, 3)[..., :1] * 0 + math.log(4.0), k_ptr[..., :1] * 0], dim=2)
            logits = logits + bias.transpose(-1, -2)
        out = torch.softmax(logits, dim=-1) @ v
        out = out.transpose(1, 2).reshape(b, -1, nh * d)
        return self.out_proj(out)


def _pool2x2(x: torch.Tensor, feat_size: tuple[int, int]) -> torch.Tensor:
    """(B, nh, F, h*w, d) -> (B, nh, F, h*w/4, d), 2×2 average over the grid."""
    b, nh, f, _, d = x.shape
    h, w = feat_size
    x = x.reshape(b, nh, f, h // 2, 2, w // 2, 2, d).mean(dim=(4, 6))
    return x.reshape(b, nh, f, (h // 2) * (w // 2), d)
