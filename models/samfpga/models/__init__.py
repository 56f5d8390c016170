"""PyTorch side of samfpga (needs torch): the TinySAM-style model, checkpoints, statistics.

The board runtime (``samfpga`` without ``.models``) never imports this package.
"""

from .build import SamConfig, build_from_config, build_sam, register_variant, variant_config
from .checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from .image_encoder import TinyViT, TinyViTConfig
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .sam import Sam
from .two_way_transformer import TwoWayTransformer

__all__ = [
    "CheckpointError",
    "MaskDecoder",
    "PromptEncoder",
    "Sam",
    "SamConfig",
    "TinyViT",
    "TinyViTConfig",
    "TwoWayTransformer",
    "build_from_config",
    "build_sam",
    "read_checkpoint",
    "register_variant",
    "save_checkpoint",
    "variant_config",
]
