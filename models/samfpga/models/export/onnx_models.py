"""Export-friendly wrappers around the model's submodules (same weights, traceable control flow).

``DecoderOnnxModel`` follows segment-anything's ``SamOnnxModel``: points arrive already in the encoder-input
frame, box corners are points with labels 2 and 3, label -1 marks the padding point, and a 0/1 flag selects
the mask prompt. Unlike ``SamOnnxModel`` it keeps the low-res logits of *all* mask tokens (the host slices
single/multimask and upscales to any original size), so one graph serves every image size and both modes.
"""

from __future__ import annotations

import torch
from torch import nn

from samfpga.decoder_prompts import BOX_LABELS, PAD_LABEL

from ..sam import Sam


class DecoderOnnxModel(nn.Module):
    """Prompt encoder + mask decoder of ``sam`` as one traceable module.

    Inputs:
        image_embeddings: (1, C, h, w) float32.
        point_coords: (B, N, 2) float32, (x, y) in encoder-input pixels (after ResizeLongestSide).
        point_labels: (B, N) float32: 1 fg, 0 bg, 2/3 box top-left/bottom-right, -1 padding point
            (``samfpga.decoder_prompts``, the reader's definition of this contract).
        mask_input: (1 or B, 1, 4h, 4w) float32 low-res logits of a previous prediction.
        has_mask_input: (1,) float32, 1 to use ``mask_input``, 0 to use the no-mask embedding.

    Outputs:
        low_res_masks: (B, num_mask_tokens, 4h, 4w) float32 logits; token 0 is the single-mask output,
            tokens 1.. the multimask outputs.
        iou_predictions: (B, num_mask_tokens) float32.
    """

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        if sam.prompt_encoder.num_point_embeddings != max(BOX_LABELS) + 1:
            raise ValueError(f"the prompt encoder has {sam.prompt_encoder.num_point_embeddings} point embeddings; "
                             f"decoder.onnx's labels need {max(BOX_LABELS) + 1}")
        self.prompt_encoder = sam.prompt_encoder
        self.mask_decoder = sam.mask_decoder
        self.img_size = sam.img_size
        # A constant of the graph: the positional encoding of the embedding grid.
        self.register_buffer("image_pe", sam.prompt_encoder.get_dense_pe().detach().clone(), persistent=False)

    def _embed_points(self, point_coords: torch.Tensor, point_labels: torch.Tensor) -> torch.Tensor:
        pe_layer = self.prompt_encoder.pe_layer
        coords = (point_coords + 0.5) / self.img_size  # pixel centres, normalised (input frame is square)
        emb = pe_layer._pe_encoding(coords)
        labels = point_labels.unsqueeze(-1)
        emb = emb * (labels != PAD_LABEL).to(emb.dtype)
        emb = emb + self.prompt_encoder.not_a_point_embed.weight * (labels == PAD_LABEL).to(emb.dtype)
        # labels 0, 1 (background, foreground) and BOX_LABELS (2, 3) index the point embeddings
        for i in range(self.prompt_encoder.num_point_embeddings):
            emb = emb + self.prompt_encoder.point_embeddings[i].weight * (labels == i).to(emb.dtype)
        return emb

    def _embed_masks(self, mask_input: torch.Tensor, has_mask_input: torch.Tensor) -> torch.Tensor:
        mask_embedding = self.prompt_encoder.mask_downscaling(mask_input)
        no_mask = self.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        return has_mask_input * mask_embedding + (1 - has_mask_input) * no_mask

    def forward(
        self,
        image_embeddings: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sparse = self._embed_points(point_coords, point_labels)
        dense = self._embed_masks(mask_input, has_mask_input)
        return self.mask_decoder.predict_masks(image_embeddings, self.image_pe, sparse, dense)


class EncoderOnnxModel(nn.Module):
    """The float image encoder: (1, 3, S, S) normalised, zero-padded image -> (1, C, S/16, S/16)."""

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        self.image_encoder = sam.image_encoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(image)
