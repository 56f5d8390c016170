"""The official SAM / MobileSAM models as test oracles, built around samfpga parts, and seeded test weights.

The packages themselves are loaded by ``samfpga.models.official`` (shared with bench/everything.py).
"""

from __future__ import annotations

import numpy as np
import torch

from samfpga.models.official import mobile_sam, segment_anything, torch_batched_nms

__all__ = ["mobile_sam", "official_sam_with", "official_vit_t", "seeded_state_dict", "segment_anything",
           "synthetic_image", "torch_batched_nms"]


def official_vit_t(**encoder_kwargs: object) -> torch.nn.Module:
    """MobileSAM's Sam with a TinyViT encoder. Default: ``build_sam_vit_t`` (1024). With kwargs, a small
    TinyViT (fields as in MobileSAM's TinyViT constructor) and a matching prompt encoder."""
    ms = mobile_sam()
    if not encoder_kwargs:
        return ms.build_sam_vit_t()
    from mobile_sam.modeling import MaskDecoder, PromptEncoder, Sam, TinyViT, TwoWayTransformer

    img = int(encoder_kwargs.get("img_size", 1024))
    emb = img // 16
    kw = dict(in_chans=3, num_classes=1000, mlp_ratio=4.0, drop_rate=0.0, drop_path_rate=0.0,
              mbconv_expand_ratio=4.0, local_conv_size=3, layer_lr_decay=0.8)
    kw.update(encoder_kwargs)
    return Sam(
        image_encoder=TinyViT(**kw),
        prompt_encoder=PromptEncoder(embed_dim=256, image_embedding_size=(emb, emb), input_image_size=(img, img),
                                     mask_in_chans=16),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer=TwoWayTransformer(depth=2, embedding_dim=256,
                                 mlp_dim=2048, num_heads=8), transformer_dim=256, iou_head_depth=3,
                                 iou_head_hidden_dim=256),
    )


def seeded_state_dict(model: torch.nn.Module, seed: int = 0, std: float = 0.05) -> dict[str, torch.Tensor]:
    """Random weights in ``model``'s layout that exercise every parameter (norm scales around 1, BN variances
    positive), so two implementations are compared on non-trivial values of order one."""
    norm_scales = set()
    for name, mod in model.named_modules():
        if isinstance(mod, (torch.nn.LayerNorm, torch.nn.BatchNorm2d)) or type(mod).__name__ == "LayerNorm2d":
            norm_scales.add(f"{name}.weight")
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in model.state_dict().items():
        if not v.is_floating_point():
            out[k] = v.clone()
        elif k.endswith("running_var"):
            out[k] = 0.5 + torch.rand(v.shape, generator=g)
        elif k in norm_scales:
            out[k] = 1.0 + std * torch.randn(v.shape, generator=g)
        elif "attention_biases" in k:
            out[k] = torch.randn(v.shape, generator=g)
        else:
            out[k] = std * torch.randn(v.shape, generator=g)
    return out


def official_sam_with(image_encoder: torch.nn.Module) -> torch.nn.Module:
    """The official segment-anything ``Sam`` (default prompt encoder and mask decoder) around ``image_encoder``
    (anything with ``img_size`` and a (B,3,S,S) -> (B,256,S/16,S/16) forward), in eval mode."""
    m = segment_anything().modeling
    emb = image_encoder.img_size // 16
    return m.Sam(
        image_encoder=image_encoder,
        prompt_encoder=m.PromptEncoder(embed_dim=256, image_embedding_size=(emb, emb),
                                       input_image_size=(image_encoder.img_size,) * 2, mask_in_chans=16),
        mask_decoder=m.MaskDecoder(num_multimask_outputs=3, transformer=m.TwoWayTransformer(
            depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8), transformer_dim=256, iou_head_depth=3,
            iou_head_hidden_dim=256),
    ).eval()


def synthetic_image(h: int = 120, w: int = 168, seed: int = 7) -> np.ndarray:
    """(h, w, 3) uint8 RGB test image: colour ramps, a red rectangle at rows 40:110, cols 60:150, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy) * 3) % 256], axis=-1).astype(np.float64)
    img[40:110, 60:150] = [230, 30, 40]
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)
