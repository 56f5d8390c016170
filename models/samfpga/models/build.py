"""Model configuration and ``build_sam``: one dataclass describes a model, a registry names the variants."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from .image_encoder import TinyViT, TinyViTConfig
from .mask_decoder import MaskDecoder
from .mask_decoder_hq import MaskDecoderHQ
from .prompt_encoder import PromptEncoder
from .sam import Sam
from .two_way_transformer import TwoWayTransformer
from .yaml_config import check_fields


@dataclass
class SamConfig:
    """Everything needed to build a model. ``encoder`` names an entry of ``ENCODERS``."""

    encoder: str = "tiny_vit"
    encoder_config: Any = field(default_factory=TinyViTConfig)
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 2048
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    hq_token: bool = False  # HQ-SAM's high-quality output token and feature fusion (``MaskDecoderHQ``)

    @property
    def image_size(self) -> int:
        return int(self.encoder_config.img_size)

    @property
    def embedding_size(self) -> int:
        return int(self.encoder_config.embedding_size)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not d["hq_token"]:  # left out when off: configs written before the HQ head (bundles, checkpoints) match
            del d["hq_token"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SamConfig:
        d = dict(d)
        enc_name = d.get("encoder", "tiny_vit")
        if enc_name not in ENCODERS:
            raise ValueError(f"unknown encoder {enc_name!r}; known: {sorted(ENCODERS)}")
        enc_cfg_cls = ENCODERS[enc_name][1]
        d["encoder_config"] = enc_cfg_cls(**d.get("encoder_config", {}))
        check_fields(cls, d, "SamConfig fields")
        return cls(**d)


# encoder name -> (module class taking its config, config dataclass)
ENCODERS: dict[str, tuple[Callable[[Any], nn.Module], type]] = {"tiny_vit": (TinyViT, TinyViTConfig)}

# variant name -> factory of its SamConfig
VARIANTS: dict[str, Callable[[], SamConfig]] = {
    # TinySAM and MobileSAM: TinyViT-5M at 1024x1024
    "vit_t": lambda: SamConfig(),
    # Light HQ-SAM: vit_t with HQ-SAM's high-quality output token (official sam_hq_vit_tiny.pth layout)
    "vit_t_hq": lambda: SamConfig(hq_token=True),
}


def register_variant(name: str, factory: Callable[[], SamConfig]) -> None:
    """Make ``build_sam(name)`` available (used by teachers, hardware variants and trained defaults)."""
    VARIANTS[name] = factory


def register_encoder(name: str, module_cls: Callable[[Any], nn.Module], config_cls: type) -> None:
    ENCODERS[name] = (module_cls, config_cls)


def variant_config(variant: str, image_size: int | None = None, **overrides: Any) -> SamConfig:
    """The ``SamConfig`` of a named variant with overrides applied.

    ``overrides`` may name SamConfig fields or fields of the encoder config (e.g. ``embed_dims``).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown model variant {variant!r}; known: {sorted(VARIANTS)}")
    cfg = VARIANTS[variant]()
    enc_fields = {f.name for f in dataclasses.fields(cfg.encoder_config)}
    top_fields = {f.name for f in dataclasses.fields(cfg)}
    enc_over: dict[str, Any] = {}
    if image_size is not None:
        enc_over["img_size"] = int(image_size)
    for key, value in overrides.items():
        if key in top_fields:
            setattr(cfg, key, value)
        elif key in enc_fields:
            enc_over[key] = value
        else:
            raise ValueError(f"unknown override {key!r} for variant {variant!r}")
    if enc_over:
        cfg.encoder_config = dataclasses.replace(cfg.encoder_config, **enc_over)
    return cfg


def build_from_config(cfg: SamConfig) -> Sam:
    """Instantiate a ``Sam`` from a config (random initialisation)."""
    enc_cls = ENCODERS[cfg.encoder][0]
    image_encoder = enc_cls(cfg.encoder_config)
    emb = cfg.embedding_size
    prompt_encoder = PromptEncoder(
        embed_dim=cfg.prompt_embed_dim,
        image_embedding_size=(emb, emb),
        input_image_size=(cfg.image_size, cfg.image_size),
        mask_in_chans=cfg.mask_in_chans,
    )
    decoder_kw: dict[str, Any] = dict(
        num_multimask_outputs=cfg.num_multimask_outputs,
        transformer=TwoWayTransformer(
            depth=cfg.decoder_depth,
            embedding_dim=cfg.prompt_embed_dim,
            mlp_dim=cfg.decoder_mlp_dim,
            num_heads=cfg.decoder_heads,
        ),
        transformer_dim=cfg.prompt_embed_dim,
        iou_head_depth=cfg.iou_head_depth,
        iou_head_hidden_dim=cfg.iou_head_hidden_dim,
    )
    if cfg.hq_token:
        if not hasattr(image_encoder, "early_channels"):
            raise ValueError(f"hq_token needs an encoder with early features (TinyViT), not {cfg.encoder!r}")
        mask_decoder: MaskDecoder = MaskDecoderHQ(vit_dim=image_encoder.early_channels, **decoder_kw)
    else:
        mask_decoder = MaskDecoder(**decoder_kw)
    sam = Sam(image_encoder, prompt_encoder, mask_decoder)
    sam.config = cfg  # type: ignore[assignment]
    return sam


def build_sam(
    variant: str = "vit_t",
    checkpoint: str | Path | None = None,
    image_size: int | None = None,
    allow_pickle: bool = False,
    strict: bool = True,
    **overrides: Any,
) -> Sam:
    """Build a model, optionally loading a checkpoint.

    Args:
        variant: a name in ``VARIANTS`` ("vit_t" is TinySAM / MobileSAM).
        checkpoint: an official state dict (``tinysam.pth``, ``mobile_sam.pt``, ...) or a samfpga checkpoint,
            which carries its own config (then ``variant`` only supplies defaults it does not override).
        image_size: encoder input side (default: the variant's, 1024 for vit_t).
        allow_pickle: accept pickled whole-module files (runs code from the file; see ``checkpoint.load_state``).
        strict: refuse missing, unexpected or mis-shaped keys.
        overrides: SamConfig or encoder-config fields.

    Returns:
        ``Sam`` in eval mode.
    """
    from .checkpoint import load_checkpoint_into, read_checkpoint

    if checkpoint is not None:
        state, saved_cfg = read_checkpoint(checkpoint, allow_pickle=allow_pickle)
        if saved_cfg is not None:
            cfg = SamConfig.from_dict(saved_cfg)
            if image_size is not None or overrides:
                raise ValueError(f"{checkpoint} carries its own model config; image_size/overrides are not allowed")
        else:
            cfg = variant_config(variant, image_size, **overrides)
        model = build_from_config(cfg)
        load_checkpoint_into(model, state, source=str(checkpoint), strict=strict)
    else:
        model = build_from_config(variant_config(variant, image_size, **overrides))
    return model.eval()


# SAM's ViT-B/L/H (teachers) register themselves; imported here, after the registry exists, to avoid a cycle.
from .image_encoder.vit import register as _register_vit  # noqa: E402

_register_vit()
