"""Import the official SAM / MobileSAM code (PyPI ``segment-anything``, ``mobilesam-mirror``) as test oracles.

Both import torchvision (and MobileSAM also timm), which have no working CPU build for torch 2.13 here.
Test-only stand-ins supply exactly what they use: PIL bilinear resize, a greedy batched NMS with
torchvision's semantics, and timm's DropPath / to_2tuple / trunc_normal_ / register_model.
"""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np
import torch
from PIL import Image


def _resize(img: Image.Image, size: list[int] | tuple[int, int]) -> Image.Image:
    h, w = size
    return img.resize((w, h), Image.BILINEAR)


def _to_pil_image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.asarray(arr))


def _box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    order = torch.argsort(scores, descending=True, stable=True)
    keep: list[int] = []
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    iou = _box_iou(boxes.float(), boxes.float())
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return torch.tensor(keep, dtype=torch.long)


def _batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.long)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return _nms(boxes + offsets[:, None], scores, iou_threshold)


class _DropPath(torch.nn.Module):
    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _install_stand_ins() -> None:
    try:
        import torchvision.ops  # noqa: F401
        import torchvision.transforms.functional  # noqa: F401
    except Exception:
        tv = types.ModuleType("torchvision")
        tv_t = types.ModuleType("torchvision.transforms")
        tv_tf = types.ModuleType("torchvision.transforms.functional")
        tv_tf.resize = _resize
        tv_tf.to_pil_image = _to_pil_image
        tv_ops = types.ModuleType("torchvision.ops")
        tv_boxes = types.ModuleType("torchvision.ops.boxes")
        tv_boxes.batched_nms = _batched_nms
        tv_boxes.box_area = _box_area
        tv_ops.boxes = tv_boxes
        tv_ops.batched_nms = _batched_nms
        tv.transforms, tv_t.functional, tv.ops = tv_t, tv_tf, tv_ops
        sys.modules.update(
            {
                "torchvision": tv,
                "torchvision.transforms": tv_t,
                "torchvision.transforms.functional": tv_tf,
                "torchvision.ops": tv_ops,
                "torchvision.ops.boxes": tv_boxes,
            }
        )
    try:
        import timm.models.layers  # noqa: F401
    except Exception:
        timm = types.ModuleType("timm")
        models = types.ModuleType("timm.models")
        layers = types.ModuleType("timm.models.layers")
        registry = types.ModuleType("timm.models.registry")
        layers.DropPath = _DropPath
        layers.to_2tuple = lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x)
        layers.trunc_normal_ = torch.nn.init.trunc_normal_
        registry.register_model = lambda fn: fn
        timm.models, models.layers, models.registry = models, layers, registry
        sys.modules.update(
            {"timm": timm, "timm.models": models, "timm.models.layers": layers, "timm.models.registry": registry}
        )


def segment_anything() -> types.ModuleType:
    """Meta's official ``segment_anything`` package."""
    _install_stand_ins()
    return importlib.import_module("segment_anything")


def mobile_sam() -> types.ModuleType:
    """MobileSAM's official package (TinyViT ``vit_t``)."""
    _install_stand_ins()
    return importlib.import_module("mobile_sam")


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
