"""SAM mask decoder: two-way transformer + upscaling + hypernetwork heads (official layout)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .common import MLP, LayerNorm2d


@dataclass
class DecoderOutput:
    """Everything the decoder computes, for distillation (token and output losses).

    masks: (B, num_mask_tokens, 4h, 4w) low-res logits of *all* mask tokens.
    iou_pred: (B, num_mask_tokens).
    tokens: (B, 1 + num_mask_tokens, C) transformer outputs of the IoU and mask tokens.
    """

    masks: torch.Tensor
    iou_pred: torch.Tensor
    tokens: torch.Tensor
    hq_masks: torch.Tensor | None = None  # (B, 1, 4h, 4w) HQ-SAM's high-quality mask (``MaskDecoderHQ`` only)


class MaskDecoder(nn.Module):
    """Predicts masks from image and prompt embeddings; drop-in for ``segment_anything.modeling.MaskDecoder``."""

    def __init__(
        self,
        *,
        transformer_dim: int,
        transformer: nn.Module,
        num_multimask_outputs: int = 3,
        activation: type[nn.Module] = nn.GELU,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            activation(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            activation(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            [MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3) for _ in range(self.num_mask_tokens)]
        )
        self.iou_prediction_head = MLP(transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth)

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict masks.

        Args:
            image_embeddings: (1 or B, C, h, w); repeated over the prompt batch as in SAM.
            image_pe: (1, C, h, w).
            sparse_prompt_embeddings: (B, N, C).
            dense_prompt_embeddings: (B, C, h, w).
            multimask_output: the three multimask outputs if True, else the single-mask output.

        Returns:
            masks (B, 3 or 1, 4h, 4w) logits and iou_pred (B, 3 or 1).
        """
        out = self.predict_all(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings)
        mask_slice = slice(1, None) if multimask_output else slice(0, 1)
        return out.masks[:, mask_slice], out.iou_pred[:, mask_slice]

    def predict_masks(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All mask tokens' logits (B, num_mask_tokens, 4h, 4w) and IoU predictions (B, num_mask_tokens)."""
        out = self.predict_all(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings)
        return out.masks, out.iou_pred

    def predict_all(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
    ) -> DecoderOutput:
        """Masks and IoU of all mask tokens plus the output tokens themselves (see ``DecoderOutput``)."""
        hs, upscaled = self._transform(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings)
        return self._sam_heads(hs, upscaled)

    def _output_tokens(self) -> torch.Tensor:
        """The learnt output tokens put before the prompt tokens: (1 + num_mask_tokens, C)."""
        return torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)

    def _transform(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two-way transformer and upscaling: token outputs hs (B, T, C), upscaled image (B, C/8, 4h, 4w)."""
        nb = sparse_prompt_embeddings.shape[0]
        output_tokens = self._output_tokens()
        tokens = torch.cat((output_tokens.unsqueeze(0).expand(nb, -1, -1), sparse_prompt_embeddings), dim=1)
        # Broadcasting instead of SAM's repeat_interleave of the (1, C, h, w) image over the prompt batch: the
        # same values, and it traces to ONNX with a dynamic prompt batch (export.onnx_models calls this method).
        src = (image_embeddings + dense_prompt_embeddings).expand(nb, -1, -1, -1)
        pos_src = image_pe.expand(nb, -1, -1, -1)
        c, h, w = src.shape[1], src.shape[2], src.shape[3]
        hs, src = self.transformer(src, pos_src, tokens)
        src = src.transpose(1, 2).reshape(nb, c, h, w)
        return hs, self.output_upscaling(src)

    def _sam_heads(self, hs: torch.Tensor, upscaled: torch.Tensor) -> DecoderOutput:
        """SAM's hypernetwork masks and IoU head from the transformer's token outputs."""
        nb = hs.shape[0]
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1 : (1 + self.num_mask_tokens), :]
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )
        uc, uh, uw = upscaled.shape[1], upscaled.shape[2], upscaled.shape[3]
        masks = (hyper_in @ upscaled.reshape(nb, uc, uh * uw)).reshape(nb, -1, uh, uw)
        iou_pred = self.iou_prediction_head(iou_token_out)
        return DecoderOutput(masks=masks, iou_pred=iou_pred, tokens=hs[:, : 1 + self.num_mask_tokens, :])
