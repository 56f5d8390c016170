"""SAM2's prompt encoder and mask decoder (official layout under ``sam_prompt_encoder`` / ``sam_mask_decoder``).

Differences from SAM: box corners arrive as points labelled 2 and 3; the decoder has an object-score token (token
order [obj, iou, mask×4]) with an MLP head, a sigmoid on the IoU head, optional high-resolution skip features
(``conv_s0``/``conv_s1``), and the two-way transformer's MLP is named ``mlp.layers.{0,1}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..common import MLP, LayerNorm2d
from ..prompt_encoder import PromptEncoder
from ..two_way_transformer import TwoWayTransformer


class SAM2PromptEncoder(PromptEncoder):
    """SAM's prompt encoder that also embeds points labelled 2/3 (box corners), as SAM2 feeds boxes."""

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        points = points + 0.5
        if pad:
            points = torch.cat([points, torch.zeros((points.shape[0], 1, 2), device=points.device)], dim=1)
            labels = torch.cat([labels, -torch.ones((labels.shape[0], 1), device=labels.device)], dim=1)
        emb = self.pe_layer.forward_with_coords(points, self.input_image_size)
        lab = labels.unsqueeze(-1)
        emb = torch.where(lab == -1, torch.zeros_like(emb) + self.not_a_point_embed.weight, emb)
        for i in range(4):
            emb = torch.where(lab == i, emb + self.point_embeddings[i].weight, emb)
        return emb


@dataclass
class HeadsOutput:
    """masks (B, 4, 4h, 4w) logits of all mask tokens; iou (B, 4); mask_tokens (B, 4, C); object_score (B, 1)."""

    masks: torch.Tensor
    iou: torch.Tensor
    mask_tokens: torch.Tensor
    object_score: torch.Tensor


class SAM2MaskDecoder(nn.Module):
    """``sam2.modeling.sam.mask_decoder.MaskDecoder`` with pred_obj_scores, pred_obj_scores_mlp and
    iou_prediction_use_sigmoid on (the SAM2.1 settings)."""

    def __init__(self, transformer_dim: int = 256, use_high_res_features: bool = False, mlp_dim: int = 2048,
                 stability_delta: float = 0.05, stability_thresh: float = 0.98) -> None:
        super().__init__()
        c = transformer_dim
        self.transformer_dim = c
        self.transformer = TwoWayTransformer(depth=2, embedding_dim=c, num_heads=8, mlp_dim=mlp_dim)
        for layer in self.transformer.layers:
            layer.mlp = MLP(c, mlp_dim, c, 2)  # SAM2 names it mlp.layers.{0,1}; same ReLU MLP as SAM's MLPBlock
        self.num_mask_tokens = 4
        self.iou_token = nn.Embedding(1, c)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, c)
        self.obj_score_token = nn.Embedding(1, c)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(c, c // 4, kernel_size=2, stride=2), LayerNorm2d(c // 4), nn.GELU(),
            nn.ConvTranspose2d(c // 4, c // 8, kernel_size=2, stride=2), nn.GELU(),
        )
        self.use_high_res_features = use_high_res_features
        if use_high_res_features:
            self.conv_s0 = nn.Conv2d(c, c // 8, kernel_size=1)
            self.conv_s1 = nn.Conv2d(c, c // 4, kernel_size=1)
        self.output_hypernetworks_mlps = nn.ModuleList(MLP(c, c, c // 8, 3) for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = MLP(c, c, self.num_mask_tokens, 3, sigmoid_output=True)
        self.pred_obj_score_head = MLP(c, c, 1, 3)
        self.stability_delta = stability_delta
        self.stability_thresh = stability_thresh

    def predict_all(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
        high_res_features: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> HeadsOutput:
        """image_embeddings (B, C, h, w) (one per object, already memory-conditioned); image_pe (1, C, h, w);
        sparse (B, N, C); dense (B, C, h, w); high_res_features: (B, C/8, 4h, 4w), (B, C/4, 2h, 2w) after
        conv_s0/conv_s1."""
        out_tokens = torch.cat([self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens.unsqueeze(0).expand(sparse.shape[0], -1, -1), sparse], dim=1)
        src = image_embeddings + dense
        pos = image_pe.expand(tokens.shape[0], -1, -1, -1)
        b, c, h, w = src.shape
        hs, src = self.transformer(src, pos, tokens)
        src = src.transpose(1, 2).reshape(b, c, h, w)
        if high_res_features is None:
            up = self.output_upscaling(src)
        else:
            dc1, ln1, act1, dc2, act2 = self.output_upscaling
            feat_s0, feat_s1 = high_res_features
            up = act2(dc2(act1(ln1(dc1(src) + feat_s1))) + feat_s0)
        mask_tokens = hs[:, 2 : 2 + self.num_mask_tokens]
        hyper = torch.stack([m(mask_tokens[:, i]) for i, m in enumerate(self.output_hypernetworks_mlps)], dim=1)
        b, c2, uh, uw = up.shape
        masks = (hyper @ up.reshape(b, c2, uh * uw)).reshape(b, -1, uh, uw)
        return HeadsOutput(masks=masks, iou=self.iou_prediction_head(hs[:, 1]), mask_tokens=mask_tokens,
                           object_score=self.pred_obj_score_head(hs[:, 0]))

    def select(self, out: HeadsOutput, multimask_output: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The official output selection: (masks (B, M, 4h, 4w), iou (B, M), sam tokens (B, M, C)), M = 3 for
        multimask, else 1 (the single-mask token, replaced by the best multimask when its stability is low)."""
        if multimask_output:
            return out.masks[:, 1:], out.iou[:, 1:], out.mask_tokens[:, 1:]
        masks, iou = out.masks[:, :1], out.iou[:, :1]
        if not self.training:
            best = out.iou[:, 1:].argmax(dim=-1)
            bi = torch.arange(masks.shape[0], device=masks.device)
            best_masks = out.masks[:, 1:][bi, best].unsqueeze(1)
            best_iou = out.iou[:, 1:][bi, best].unsqueeze(1)
            flat = masks.flatten(-2)
            area_i = (flat > self.stability_delta).sum(-1).float()
            area_u = (flat > -self.stability_delta).sum(-1).float()
            stable = torch.where(area_u > 0, area_i / area_u, torch.ones_like(area_u)) >= self.stability_thresh
            masks = torch.where(stable[..., None, None], masks, best_masks)
            iou = torch.where(stable, iou, best_iou)
        return masks, iou, out.mask_tokens[:, :1]
