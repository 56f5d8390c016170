"""Import the official SAM / MobileSAM / HQ-SAM code (PyPI ``segment-anything``, ``mobilesam-mirror``,
``segment-anything-hq``; dev environment, env/nodeps.txt) as reference implementations for parity tests and
benchmarks (bench/everything.py).

Both import torchvision (and MobileSAM also timm), which have no working CPU build for torch 2.13 here.
When those are missing, stand-ins supply exactly what the official code uses: PIL bilinear resize, a greedy
batched NMS with torchvision's semantics (``torch_batched_nms``), and timm's DropPath / to_2tuple /
trunc_normal_ / register_model. They are installed into ``sys.modules`` only when ``segment_anything()``,
``mobile_sam()`` or ``segment_anything_hq()`` is called.
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


def torch_batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor,
                      iou_threshold: float) -> torch.Tensor:
    """``torchvision.ops.batched_nms``: greedy NMS per category ``idxs`` (boxes offset per category)."""
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
        tv_boxes.batched_nms = torch_batched_nms
        tv_boxes.box_area = _box_area
        tv_ops.boxes = tv_boxes
        tv_ops.batched_nms = torch_batched_nms
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




def segment_anything_hq() -> types.ModuleType:
    """HQ-SAM's official package (PyPI ``segment-anything-hq``; ``vit_tiny`` is Light HQ-SAM's TinyViT)."""
    _install_stand_ins()
    return importlib.import_module("segment_anything_hq")
