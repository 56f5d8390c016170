"""ONNX graphs of a model with HQ-SAM's head (``SamConfig.hq_token``), next to the bundle's graphs.

- ``encoder_hq.onnx``: (1, 3, S, S) normalised image -> ``image_embeddings`` (1, C, h, w) and ``early_features``
  (1, vit_dim, h, w) (``TinyViT.forward_with_early``);
- ``decoder_hq.onnx``: ``decoder.onnx``'s inputs plus ``early_features`` -> ``low_res_masks``,
  ``iou_predictions`` (as ``decoder.onnx``) and ``hq_masks`` (B, 1, 4h, 4w) logits of the HQ token.

The runtime bundle (``samfpga.bundle``) does not read these yet: they are the export a runtime with an HQ path
would load, checked against torch by tests/test_hq_export.py.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from samfpga.bundle import ENCODER_INPUTS
from samfpga.decoder_prompts import DECODER_INPUTS, DECODER_OUTPUTS

from ..mask_decoder_hq import MaskDecoderHQ
from ..sam import Sam
from .bundle import ONNX_OPSET, _export, decoder_example_inputs
from .onnx_models import DecoderOnnxModel

HQ_ENCODER_OUTPUTS = ("image_embeddings", "early_features")
HQ_DECODER_INPUTS = (*DECODER_INPUTS, "early_features")
HQ_DECODER_OUTPUTS = (*DECODER_OUTPUTS, "hq_masks")


def _check_hq(sam: Sam) -> MaskDecoderHQ:
    if not isinstance(sam.mask_decoder, MaskDecoderHQ):
        raise ValueError("HQ export needs a model with HQ-SAM's head (SamConfig.hq_token)")
    return sam.mask_decoder


class HQEncoderOnnxModel(nn.Module):
    """(1, 3, S, S) -> (embedding (1, C, h, w), early feature (1, vit_dim, h, w))."""

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        _check_hq(sam)
        self.image_encoder = sam.image_encoder

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.image_encoder.forward_with_early(image)


class HQDecoderOnnxModel(DecoderOnnxModel):
    """``DecoderOnnxModel`` plus the early feature input (1, vit_dim, h, w) and the ``hq_masks`` output."""

    def __init__(self, sam: Sam) -> None:
        _check_hq(sam)
        super().__init__(sam)

    def forward(
        self,
        image_embeddings: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
        early_features: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sparse = self._embed_points(point_coords, point_labels)
        dense = self._embed_masks(mask_input, has_mask_input)
        out = self.mask_decoder.predict_all(image_embeddings, self.image_pe, sparse, dense, early_features)
        return out.masks, out.iou_pred, out.hq_masks


def export_hq(sam: Sam, out_dir: str | Path, opset: int = ONNX_OPSET) -> tuple[Path, Path]:
    """Write ``encoder_hq.onnx`` and ``decoder_hq.onnx`` (prompt batch and point count dynamic) to ``out_dir``."""
    dec = _check_hq(sam)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    h, w = sam.prompt_encoder.image_embedding_size
    with torch.no_grad():
        _export(HQEncoderOnnxModel(sam).eval(), (torch.zeros(1, 3, sam.img_size, sam.img_size),),
                out / "encoder_hq.onnx", list(ENCODER_INPUTS), list(HQ_ENCODER_OUTPUTS), None, opset)
        early = torch.randn(1, dec.vit_dim, h, w, generator=torch.Generator().manual_seed(1))
        _export(HQDecoderOnnxModel(sam).eval(), (*decoder_example_inputs(sam), early), out / "decoder_hq.onnx",
                list(HQ_DECODER_INPUTS), list(HQ_DECODER_OUTPUTS),
                {"point_coords": {0: "batch", 1: "num_points"}, "point_labels": {0: "batch", 1: "num_points"},
                 "mask_input": {0: "mask_batch"}, "low_res_masks": {0: "batch"}, "iou_predictions": {0: "batch"},
                 "hq_masks": {0: "batch"}}, opset)
    return out / "encoder_hq.onnx", out / "decoder_hq.onnx"
