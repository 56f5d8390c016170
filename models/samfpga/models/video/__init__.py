"""SAM2-style video parts: memory encoder, memory attention (real-valued RoPE), object pointers, SAM2 heads,
and the two model families (official SAM2.1 tiny with Hiera-T; the FPGA family with TinyViT)."""

from .memory_attention import MemoryAttention, MemoryAttentionConfig
from .memory_encoder import MemoryEncoder, MemoryEncoderConfig
from .model import NO_OBJ_SCORE, VideoConfig, VideoSam, build_video_sam

__all__ = ["NO_OBJ_SCORE", "MemoryAttention", "MemoryAttentionConfig", "MemoryEncoder", "MemoryEncoderConfig",
           "VideoConfig", "VideoSam", "build_video_sam"]
