"""Analytic multiply-accumulate counts of memory attention per frame and object (matches torch's FlopCounter
figures in ../shared/VIDEO.md: 302.8 GMAC at 1024² with 7 memories + 16 pointers)."""

from __future__ import annotations

from .memory_attention import MemoryAttentionConfig


def memory_attention_macs(cfg: MemoryAttentionConfig, memories: int, pointers: int) -> int:
    """MACs of one memory-attention call: ``memories`` spatial memory frames, ``pointers`` object pointers (each
    d_model/mem_dim tokens); pooled keys/values (EfficientTAM) shrink the attended spatial keys 4×."""
    n = cfg.feat_size[0] * cfg.feat_size[1]
    d, m = cfg.d_model, cfg.mem_dim
    ptr_tokens = pointers * (d // m)
    k_in = memories * n + ptr_tokens
    k_att = memories * (n // 4 if cfg.pool_memory else n) + ptr_tokens
    self_attn = 4 * n * d * d + 2 * n * n * d
    cross = 2 * n * d * d + 2 * k_in * m * d + 2 * n * k_att * d
    ffn = 2 * n * d * cfg.dim_feedforward
    return cfg.num_layers * (self_attn + cross + ffn)
