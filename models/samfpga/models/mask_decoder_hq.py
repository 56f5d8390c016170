"""HQ-SAM's high-quality output token as an optional head of the SAM mask decoder (official HQ-SAM layout).

HQ-SAM (Ke et al., NeurIPS 2023; Light HQ-SAM pairs it with TinyViT) adds to a SAM decoder:

- ``hf_token`` (1, C): one more output token, put after SAM's IoU and mask tokens, and its hypernetwork
  ``hf_mlp`` (C -> C -> C/8);
- global-local feature fusion: ``embedding_encoder`` upsamples the image embedding 4x (C -> C/8),
  ``compress_vit_feat`` upsamples an early encoder feature 4x (vit_dim -> C/8); their sum is the HQ feature;
- ``embedding_maskfeature`` (two 3x3 convs) refines SAM's upscaled mask feature, and the HQ feature is added:
  the high-quality mask is ``hf_mlp(hq_token_out) @ (embedding_maskfeature(upscaled) + hq_feature)``.

HQ-SAM's extra parameters are < 0.5% of ViT-H SAM; with the 256-channel decoder of TinyViT ``vit_t`` they are
448,512 (4.2% of Light HQ-SAM's 10.59M; most of it in ``compress_vit_feat``'s 160 -> 256 upsampling). For
TinyViT the early feature is the output of ``layers[1]`` (Light HQ-SAM's ``interm_embeddings[0]``: (B, 64, 64,
160) at 1024 for ``vit_t``; ``TinyViT.forward_with_early``). State dict keys, shapes and outputs are those of
``segment_anything_hq.modeling.MaskDecoderHQ`` (tests/test_hq_parity.py checks parity to 1e-4).
"""

from __future__ import annotations

import torch
from torch import nn

from .common import MLP, LayerNorm2d
from .mask_decoder import DecoderOutput, MaskDecoder

HQ_PARAMETERS = ("hf_token", "hf_mlp", "compress_vit_feat", "embedding_encoder", "embedding_maskfeature")


def is_hq_key(key: str) -> bool:
    """Whether a model state-dict key belongs to the HQ head (``mask_decoder.<one of HQ_PARAMETERS>.*``)."""
    return key.startswith(tuple(f"mask_decoder.{p}." for p in HQ_PARAMETERS))


class MaskDecoderHQ(MaskDecoder):
    """SAM's mask decoder with HQ-SAM's high-quality output token; drop-in for
    ``segment_anything_hq.modeling.MaskDecoderHQ`` (``vit_dim``: channels of the early encoder feature)."""

    def __init__(
        self,
        *,
        transformer_dim: int,
        transformer: nn.Module,
        vit_dim: int,
        num_multimask_outputs: int = 3,
        activation: type[nn.Module] = nn.GELU,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__(transformer_dim=transformer_dim, transformer=transformer,
                         num_multimask_outputs=num_multimask_outputs, activation=activation,
                         iou_head_depth=iou_head_depth, iou_head_hidden_dim=iou_head_hidden_dim)
        c = transformer_dim
        self.vit_dim = vit_dim
        self.hf_token = nn.Embedding(1, c)
        self.hf_mlp = MLP(c, c, c // 8, 3)
        self.compress_vit_feat = nn.Sequential(
            nn.ConvTranspose2d(vit_dim, c, kernel_size=2, stride=2), LayerNorm2d(c), nn.GELU(),
            nn.ConvTranspose2d(c, c // 8, kernel_size=2, stride=2),
        )
        self.embedding_encoder = nn.Sequential(
            nn.ConvTranspose2d(c, c // 4, kernel_size=2, stride=2), LayerNorm2d(c // 4), nn.GELU(),
            nn.ConvTranspose2d(c // 4, c // 8, kernel_size=2, stride=2),
        )
        self.embedding_maskfeature = nn.Sequential(
            nn.Conv2d(c // 8, c // 4, 3, 1, 1), LayerNorm2d(c // 4), nn.GELU(), nn.Conv2d(c // 4, c // 8, 3, 1, 1),
        )

    def _output_tokens(self) -> torch.Tensor:
        # the HQ token joins the sequence, so SAM's own tokens attend to it too (as in HQ-SAM)
        return torch.cat([self.iou_token.weight, self.mask_tokens.weight, self.hf_token.weight], dim=0)

    def hq_features(self, image_embeddings: torch.Tensor, early_features: torch.Tensor) -> torch.Tensor:
        """Global-local fusion: (1 or B, C, h, w) embedding + (1 or B, vit_dim, h, w) early feature ->
        (1 or B, C/8, 4h, 4w)."""
        if early_features.shape[1] != self.vit_dim or early_features.shape[-2:] != image_embeddings.shape[-2:]:
            raise ValueError(f"MaskDecoderHQ: early features must be (B, {self.vit_dim}, "
                             f"{tuple(image_embeddings.shape[-2:])}), got {tuple(early_features.shape)}")
        return self.embedding_encoder(image_embeddings) + self.compress_vit_feat(early_features)

    def predict_all(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        early_features: torch.Tensor | None = None,
    ) -> DecoderOutput:
        """SAM's outputs (see ``MaskDecoder.predict_all``), and with ``early_features`` (1 or B, vit_dim, h, w)
        also ``hq_masks`` (B, 1, 4h, 4w)."""
        hs, upscaled = self._transform(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings)
        out = self._sam_heads(hs, upscaled)
        if early_features is not None:
            nb = hs.shape[0]
            hq = self.embedding_maskfeature(upscaled) + self.hq_features(image_embeddings, early_features)
            hyper = self.hf_mlp(hs[:, 1 + self.num_mask_tokens, :])
            uc, uh, uw = upscaled.shape[1], upscaled.shape[2], upscaled.shape[3]
            out.hq_masks = (hyper[:, None, :] @ hq.expand(nb, -1, -1, -1).reshape(nb, uc, uh * uw)).reshape(
                nb, 1, uh, uw)
        return out

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
        hq_token_only: bool = False,
        interm_embeddings: torch.Tensor | list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """HQ-SAM's decoder call. ``interm_embeddings[0]``: the early feature, (1, h, w, vit_dim) channels-last
        as Light HQ-SAM's TinyViT returns it. Without it, SAM's outputs (``MaskDecoder.forward``).

        With it: masks (B, 1, 4h, 4w) = the HQ mask alone (``hq_token_only``) or added to SAM's mask (the
        multimask output of highest predicted IoU, or the single-mask output); iou_pred (B, 1) of that SAM mask.
        """
        if interm_embeddings is None:
            return super().forward(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
                                   multimask_output)
        early = interm_embeddings[0].permute(0, 3, 1, 2)
        out = self.predict_all(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings, early)
        if multimask_output:
            iou, idx = out.iou_pred[:, 1:].max(dim=1)
            sam = out.masks[torch.arange(out.masks.shape[0], device=idx.device), idx + 1].unsqueeze(1)
            iou = iou.unsqueeze(1)
        else:
            sam, iou = out.masks[:, :1], out.iou_pred[:, :1]
        return (out.hq_masks if hq_token_only else sam + out.hq_masks), iou
