"""The video model: an image encoder plus SAM2's memory parts, in the official ``SAM2Base`` state-dict layout.

Two families share everything but the image encoder:
  * ``sam2.1_tiny``: Hiera-T + FPN with high-resolution decoder features (official checkpoints load strictly);
  * ``fpga``: the project's TinyViT (the encoder the FINN flow compiles), single-scale (no ``conv_s0/s1``), as
    EfficientTAM runs it, optionally with 2×2-pooled memory keys/values.

The per-frame steps are methods here (``heads``, ``mask_as_output``, ``encode_memory``, ``pointer_positions``);
the memory bank that strings them together lives in the host runtime (``samfpga.video``), which runs the same
steps from ONNX.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..common import MLP
from ..image_encoder import TinyViT, TinyViTConfig
from ..yaml_config import check_fields
from .hiera import HieraConfig, HieraImageEncoder
from .memory_attention import MemoryAttention, MemoryAttentionConfig
from .memory_encoder import MemoryEncoder, MemoryEncoderConfig
from .position import sine_pe_1d, sine_pe_2d
from .sam_heads import SAM2MaskDecoder, SAM2PromptEncoder

NO_OBJ_SCORE = -1024.0


@dataclass
class VideoConfig:
    """A video model. ``family`` is "sam2.1_tiny" (Hiera-T) or "fpga" (TinyViT)."""

    family: str = "fpga"
    image_size: int = 1024
    hidden_dim: int = 256
    mem_dim: int = 64
    num_maskmem: int = 7
    max_obj_ptrs_in_encoder: int = 16
    memory_layers: int = 4
    memory_ffn_dim: int = 2048
    decoder_mlp_dim: int = 2048
    pool_memory: bool = False
    sigmoid_scale_for_mem_enc: float = 20.0
    sigmoid_bias_for_mem_enc: float = -10.0
    tiny_vit: dict[str, Any] = field(default_factory=dict)

    @property
    def feat_size(self) -> int:
        return self.image_size // 16

    @property
    def high_res(self) -> bool:
        return self.family == "sam2.1_tiny"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoConfig:
        check_fields(cls, d, "VideoConfig fields")
        return cls(**d)


class VideoSam(nn.Module):
    """SAM2Base's parameters and per-frame computations (eval semantics of SAM2.1)."""

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__()
        if cfg.family not in ("sam2.1_tiny", "fpga"):
            raise ValueError(f"unknown video family {cfg.family!r}; known: 'sam2.1_tiny', 'fpga'")
        self.cfg = cfg
        c, m, s = cfg.hidden_dim, cfg.mem_dim, cfg.feat_size
        if cfg.family == "sam2.1_tiny":
            self.image_encoder: nn.Module = HieraImageEncoder(HieraConfig())
        else:
            self.image_encoder = TinyViT(TinyViTConfig(**{"img_size": cfg.image_size, "out_chans": c, **cfg.tiny_vit}))
        self.memory_attention = MemoryAttention(MemoryAttentionConfig(
            d_model=c, mem_dim=m, num_layers=cfg.memory_layers, dim_feedforward=cfg.memory_ffn_dim, feat_size=(s, s),
            pool_memory=cfg.pool_memory))
        self.memory_encoder = MemoryEncoder(MemoryEncoderConfig(in_dim=c, out_dim=m))
        self.sam_prompt_encoder = SAM2PromptEncoder(
            embed_dim=c, image_embedding_size=(s, s), input_image_size=(cfg.image_size,) * 2, mask_in_chans=16)
        self.sam_mask_decoder = SAM2MaskDecoder(c, use_high_res_features=cfg.high_res, mlp_dim=cfg.decoder_mlp_dim)
        self.obj_ptr_proj = MLP(c, c, c, 3)
        self.obj_ptr_tpos_proj = nn.Linear(c, m)
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(cfg.num_maskmem, 1, 1, m))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, c))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, c))  # in official checkpoints; unused in SAM2.1
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, c))
        self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, m))
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.register_buffer("pixel_mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255, False)
        self.register_buffer("pixel_std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255, False)

    # -- image ---------------------------------------------------------------------------------------------
    def backbone(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """images (B, 3, S, S) float 0..255 RGB, already resized to S = image_size.
        Returns the main map (B, 256, S/16, S/16) and, for the high-res family, the decoder skip features
        (B, 32, S/4, S/4), (B, 64, S/8, S/8) after conv_s0/conv_s1."""
        x = (images - self.pixel_mean) / self.pixel_std
        feats = self.image_encoder(x)
        if not self.cfg.high_res:
            return feats, None
        dec = self.sam_mask_decoder
        return feats[-1], (dec.conv_s0(feats[0]), dec.conv_s1(feats[1]))

    def vision_pos(self) -> torch.Tensor:
        """(1, 256, s, s) sine position encoding of the main map."""
        s = self.cfg.feat_size
        return sine_pe_2d(self.cfg.hidden_dim, s, s).unsqueeze(0).to(self.no_mem_embed.device)

    # -- SAM heads -------------------------------------------------------------------------------------------
    def heads(
        self,
        pix_feat: torch.Tensor,
        point_coords: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        multimask_output: bool = False,
        high_res: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """``SAM2Base._forward_sam_heads``. pix_feat (B, 256, s, s) memory-conditioned; point_coords (B, N, 2) in
        image_size pixels, labels (B, N) int; mask_inputs (B, 1, 4s, 4s) or larger (resized antialiased).
        Returns low_res_multimasks (B, M, 4s, 4s), ious (B, M), low_res_masks (B, 1, 4s, 4s), high_res_masks
        (B, 1, S, S), obj_ptr (B, 256), object_score_logits (B, 1); low_res_multimasks_raw are the candidates
        before an absent object's are replaced by NO_OBJ_SCORE (what training losses see)."""
        b = pix_feat.shape[0]
        if point_coords is None:
            point_coords = torch.zeros(b, 1, 2, device=pix_feat.device)
            point_labels = -torch.ones(b, 1, dtype=torch.int32, device=pix_feat.device)
        if mask_inputs is not None and mask_inputs.shape[-2:] != self.sam_prompt_encoder.mask_input_size:
            mask_inputs = F.interpolate(mask_inputs.float(), size=self.sam_prompt_encoder.mask_input_size,
                                        mode="bilinear", align_corners=False, antialias=True)
        sparse, dense = self.sam_prompt_encoder(points=(point_coords, point_labels), boxes=None, masks=mask_inputs)
        out = self.sam_mask_decoder.predict_all(pix_feat, self.sam_prompt_encoder.get_dense_pe(), sparse, dense,
                                                high_res)
        masks, ious, tokens = self.sam_mask_decoder.select(out, multimask_output)
        raw = masks
        appearing = out.object_score > 0
        masks = torch.where(appearing[:, None, None], masks, torch.full_like(masks, NO_OBJ_SCORE))
        high = F.interpolate(masks, size=(self.cfg.image_size,) * 2, mode="bilinear", align_corners=False)
        token = tokens[:, 0]
        if multimask_output:
            best = ious.argmax(dim=-1)
            bi = torch.arange(b, device=pix_feat.device)
            low_best, high_best, token = masks[bi, best].unsqueeze(1), high[bi, best].unsqueeze(1), tokens[bi, best]
        else:
            low_best, high_best = masks, high
        lam = appearing.float()
        obj_ptr = lam * self.obj_ptr_proj(token) + (1 - lam) * self.no_obj_ptr
        return {"low_res_multimasks": masks, "low_res_multimasks_raw": raw, "ious": ious, "low_res_masks": low_best, "high_res_masks": high_best,
                "obj_ptr": obj_ptr, "object_score_logits": out.object_score}

    def mask_as_output(self, pix_feat: torch.Tensor, mask: torch.Tensor,
                       high_res: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """``SAM2Base._use_mask_as_output``: a (B, 1, S, S) binary mask prompt becomes the output directly; the
        pointer comes from the heads run on the 4×-downsampled mask."""
        m = mask.float()
        high = m * 20.0 - 10.0
        low = F.interpolate(high, size=(high.shape[-2] // 4, high.shape[-1] // 4), mode="bilinear",
                            align_corners=False, antialias=True)
        ptr = self.heads(pix_feat, mask_inputs=self.mask_downsample(m), high_res=high_res)["obj_ptr"]
        lam = torch.any(m.flatten(1) > 0, dim=1)[:, None].float()
        return {"low_res_multimasks": low, "ious": torch.ones(m.shape[0], 1, device=m.device), "low_res_masks": low,
                "high_res_masks": high, "obj_ptr": lam * ptr + (1 - lam) * self.no_obj_ptr,
                "object_score_logits": 20.0 * lam - 10.0}

    # -- memory ----------------------------------------------------------------------------------------------
    def encode_memory(self, pix_feat: torch.Tensor, high_res_masks: torch.Tensor, object_score: torch.Tensor,
                      binarize: bool) -> torch.Tensor:
        """``SAM2Base._encode_new_memory`` for one object batch: pix_feat (B, 256, s, s) raw backbone features,
        high_res_masks (B, 1, S, S) logits, object_score (B, 1). Returns (B, 64, s, s)."""
        m = (high_res_masks > 0).float() if binarize else torch.sigmoid(high_res_masks)
        m = m * self.cfg.sigmoid_scale_for_mem_enc + self.cfg.sigmoid_bias_for_mem_enc
        feats = self.memory_encoder(pix_feat, m)
        absent = 1 - (object_score > 0).float()
        return feats + absent[..., None, None] * self.no_obj_embed_spatial[..., None, None]

    def pointer_positions(self, rel: torch.Tensor, max_ptrs: int) -> torch.Tensor:
        """Temporal positions (P, 64) of pointers at signed frame offsets ``rel`` (P,), normaliser max_ptrs − 1."""
        return self.obj_ptr_tpos_proj(sine_pe_1d(rel / (max_ptrs - 1), self.cfg.hidden_dim))


def build_video_sam(family: str = "fpga", image_size: int = 1024, **overrides: Any) -> VideoSam:
    """A randomly initialised video model of ``family`` ("sam2.1_tiny" or "fpga"), in eval mode."""
    return VideoSam(VideoConfig(family=family, image_size=image_size, **overrides)).eval()
