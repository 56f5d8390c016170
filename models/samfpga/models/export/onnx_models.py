"""Export-friendly wrappers around the model's submodules (same weights, traceable control flow).

``DecoderOnnxModel`` follows segment-anything's ``SamOnnxModel``: points arrive already in the encoder-input
frame, box corners are points with labels 2 and 3, label -1 marks the padding point, and a 0/1 flag selects
the mask prompt. Unlike ``SamOnnxModel`` it keeps the low-res logits of *all* mask tokens (the host slices
single/multimask and upscales to any original size), so one graph serves every image size and both modes.
"""

from __future__ import annotations

import torch
from torch import nn

from ..sam import Sam


class DecoderOnnxModel(nn.Module):
    """Prompt encoder + mask decoder of ``sam`` as one traceable module.

    Inputs:
        image_embeddings: (1, C, h, w) float32.
        point_coords: (B, N, 2) float32, (x, y) in encoder-input pixels (after ResizeLongestSide).
        point_labels: (B, N) float32: 1 fg, 0 bg, 2/3 box top-left/bottom-right, -1 padding point.
        mask_input: (1 or B, 1, 4h, 4w) float32 low-res logits of a previous prediction.
        has_mask_input: (1,) float32, 1 to use ``mask_input``, 0 to use the no-mask embedding.

    Outputs:
        low_res_masks: (B, num_mask_tokens, 4h, 4w) float32 logits; token 0 is the single-mask output,
            tokens 1.. the multimask outputs.
        iou_predictions: (B, num_mask_tokens) float32.
    """

    def __init__(self, sam: Sam) -> None:
        super().__init__()
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
        emb = emb * (labels != -1).to(emb.dtype)
        emb = emb + self.prompt_encoder.not_a_point_embed.weight * (labels == -1).to(emb.dtype)
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
        dec = self.mask_decoder
        sparse = self._embed_points(point_coords, point_labels)
        dense = self._embed_masks(mask_input, has_mask_input)
        b = sparse.shape[0]
        output_tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(b, -1, -1), sparse], dim=1)
        # Same values as the official repeat_interleave: the image (batch 1) broadcast over the prompt batch.
        src = (image_embeddings + dense).expand(b, -1, -1, -1)
        pos_src = self.image_pe.expand(b, -1, -1, -1)
        c, h, w = src.shape[1], src.shape[2], src.shape[3]
        hs, src = dec.transformer(src, pos_src, tokens)
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1 : (1 + dec.num_mask_tokens), :]
        src = src.transpose(1, 2).reshape(b, c, h, w)
        upscaled = dec.output_upscaling(src)
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(dec.output_hypernetworks_mlps)], dim=1
        )
        uc, uh, uw = upscaled.shape[1], upscaled.shape[2], upscaled.shape[3]
        masks = (hyper_in @ upscaled.reshape(b, uc, uh * uw)).reshape(b, -1, uh, uw)
        iou_pred = dec.iou_prediction_head(iou_token_out)
        return masks, iou_pred


class EncoderOnnxModel(nn.Module):
    """The float image encoder: (1, 3, S, S) normalised, zero-padded image -> (1, C, S/16, S/16)."""

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        self.image_encoder = sam.image_encoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(image)
