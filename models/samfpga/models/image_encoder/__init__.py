"""Image encoders: TinyViT (TinySAM / MobileSAM student)."""

from .tiny_vit import TinyViT, TinyViTConfig

__all__ = ["TinyViT", "TinyViTConfig"]
