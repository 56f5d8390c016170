"""A differentiable forward tracker over a clip (SAM2's training-time unroll): the first frame is prompted, every
later frame attends to the prompted frame's memory, the most recent num_maskmem − 1 memories and the recent object
pointers, exactly as the host predictor does when tracking forward. Batch = independent objects."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .model import VideoSam


@dataclass
class ClipPrompt:
    """Frame-0 prompt per object: points (B, N, 2) in model pixels with labels (B, N) (a box is 2 points labelled
    2/3), or masks (B, 1, S, S) binary float."""

    points: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    masks: torch.Tensor | None = None


def unroll(model: VideoSam, feats: torch.Tensor, prompt: ClipPrompt, use_memory: bool = True) -> list[dict]:
    """feats (T, B, C, s, s) raw backbone features (single-scale family). Returns per frame the heads' outputs
    (``VideoSam.heads`` dict, with all multimask candidates). ``use_memory=False``: every later frame sees only
    its own features + no_mem_embed (the memory-less ablation)."""
    t_len, b = feats.shape[:2]
    cfg = model.cfg
    c, s = cfg.hidden_dim, cfg.feat_size
    pos = model.vision_pos().flatten(2).transpose(1, 2).expand(b, -1, -1)
    mem_pos = model.memory_encoder.position(s, s).flatten(2).transpose(1, 2)  # (1, s*s, M)
    tpos = model.maskmem_tpos_enc.reshape(cfg.num_maskmem, 1, -1)
    no_mem = model.no_mem_embed.reshape(1, c, 1, 1)
    outs: list[dict] = []
    mems: list[torch.Tensor] = []  # (B, s*s, M) per frame
    ptrs: list[torch.Tensor] = []  # (B, C) per frame
    for t in range(t_len):
        feat = feats[t]
        if t == 0:
            if prompt.masks is not None:
                out = model.mask_as_output(feat, prompt.masks)
            else:
                n = prompt.labels.shape[1]  # type: ignore[union-attr]
                out = model.heads(feat + no_mem, prompt.points, prompt.labels, None, multimask_output=n <= 1)
        elif not use_memory:
            out = model.heads(feat + no_mem, None, None, None, multimask_output=True)
        else:
            recent = list(range(max(1, t - cfg.num_maskmem + 1), t))
            mem = torch.cat([mems[0]] + [mems[i] for i in recent], dim=1)
            mpos = torch.cat([mem_pos + tpos[cfg.num_maskmem - 1]] +
                             [mem_pos + tpos[t - i - 1] for i in recent], dim=1).expand(b, -1, -1)
            max_ptrs = min(t_len, cfg.max_obj_ptrs_in_encoder)
            ptr_frames = [0] + [i for i in range(max(1, t - max_ptrs + 1), t)][::-1]
            rel = torch.tensor([t - i for i in ptr_frames], dtype=torch.float32)
            ppos = model.pointer_positions(rel, max_ptrs)  # (P, M)
            split = c // cfg.mem_dim
            ptr = torch.stack([ptrs[i] for i in ptr_frames], dim=1).reshape(b, -1, cfg.mem_dim)
            ppos = ppos.repeat_interleave(split, dim=0).unsqueeze(0).expand(b, -1, -1)
            cond = model.memory_attention(feat.flatten(2).transpose(1, 2), pos, mem, mpos, ptr, ppos)
            out = model.heads(cond.transpose(1, 2).reshape(b, c, s, s), None, None, None, multimask_output=True)
        outs.append(out)
        if use_memory:
            binarize = t == 0 and prompt.masks is None
            m = model.encode_memory(feat, out["high_res_masks"], out["object_score_logits"], binarize)
            mems.append(m.flatten(2).transpose(1, 2))
            ptrs.append(out["obj_ptr"])
    return outs
