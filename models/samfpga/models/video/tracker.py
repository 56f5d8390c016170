"""A differentiable forward tracker over a clip (SAM2's training-time unroll): the first frame is prompted, every
later frame attends to the conditioning frames' memories, the most recent num_maskmem − 1 other memories and the
recent object pointers, exactly as the host predictor does when tracking forward. Batch = independent objects.

A correction click (SAM2's interactive training) reruns a tracked frame's heads on the same memory-conditioned
features with the click and the frame's own low-res logits as mask input; the corrected frame stays an ordinary
(non-conditioning) memory, binarised for the memory encoder, as the host predictor and SAM2.1's predictor treat a
click on a tracked frame."""

from __future__ import annotations

from collections.abc import Callable
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


# (frame index, that frame's tracked output) -> correction points (B, N, 2) and labels (B, N) (−1 = no click for
# that object), or None for no correction on this frame
CorrectFn = Callable[[int, dict], "tuple[torch.Tensor, torch.Tensor] | None"]


def unroll(model: VideoSam, feats: torch.Tensor, prompt: ClipPrompt, use_memory: bool = True,
           max_ptrs: int | None = None, correct: CorrectFn | None = None,
           high_res: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[dict]:
    """feats (T, B, C, s, s) raw backbone features; ``high_res`` the high-resolution family's decoder skip
    features (T, B, C/8, 4s, 4s), (T, B, C/4, 2s, 2s) (``VideoSam.backbone``; None for the single-scale family).
    Returns per frame the heads' outputs
    (``VideoSam.heads`` dict, with all multimask candidates); a corrected frame's dict holds the pre-correction
    output under ``"before"``. ``max_ptrs``: the pointer-position normaliser (default min(T, max_obj_ptrs), as the
    official predictor on a T-frame video; a streaming tracker fixes it at max_obj_ptrs). ``use_memory=False``:
    every later frame sees only its own features + no_mem_embed (the memory-less ablation)."""
    t_len, b = feats.shape[:2]
    cfg = model.cfg
    if cfg.high_res != (high_res is not None):
        raise ValueError(f"the {cfg.family} family {'needs' if cfg.high_res else 'takes no'} high-resolution features")
    c, s, k = cfg.hidden_dim, cfg.feat_size, cfg.num_maskmem
    max_ptrs = max_ptrs or min(t_len, cfg.max_obj_ptrs_in_encoder)
    pos = model.vision_pos().flatten(2).transpose(1, 2).expand(b, -1, -1)
    mem_pos = model.memory_encoder.position(s, s).flatten(2).transpose(1, 2)  # (1, s*s, M)
    tpos = model.maskmem_tpos_enc.reshape(k, 1, -1)
    no_mem = model.no_mem_embed.reshape(1, c, 1, 1)
    outs: list[dict] = []
    mems: dict[int, torch.Tensor] = {}  # frame -> (B, s*s, M)
    ptrs: dict[int, torch.Tensor] = {}  # frame -> (B, C)
    cond = [0]  # conditioning frames: the prompted first frame
    for t in range(t_len):
        feat = feats[t]
        hr = None if high_res is None else (high_res[0][t], high_res[1][t])
        binarize = False
        if t == 0:
            if prompt.masks is not None:
                out = model.mask_as_output(feat, prompt.masks, high_res=hr)
            else:
                n = prompt.labels.shape[1]  # type: ignore[union-attr]
                out = model.heads(feat + no_mem, prompt.points, prompt.labels, None, multimask_output=n <= 1,
                                  high_res=hr)
                binarize = True
        elif not use_memory:
            out = model.heads(feat + no_mem, None, None, None, multimask_output=True, high_res=hr)
        else:
            # the official rule: a recent frame that is a conditioning frame contributes no second memory
            recent = [i for i in range(max(0, t - k + 1), t) if i not in cond]
            mem = torch.cat([mems[i] for i in cond] + [mems[i] for i in recent], dim=1)
            mpos = torch.cat([mem_pos + tpos[k - 1]] * len(cond) +
                             [mem_pos + tpos[t - i - 1] for i in recent], dim=1).expand(b, -1, -1)
            ptr_frames = cond + [i for i in range(max(0, t - max_ptrs + 1), t) if i not in cond][::-1]
            rel = torch.tensor([t - i for i in ptr_frames], dtype=torch.float32, device=feat.device)
            ppos = model.pointer_positions(rel, max_ptrs)  # (P, M)
            split = c // cfg.mem_dim
            ptr = torch.stack([ptrs[i] for i in ptr_frames], dim=1).reshape(b, -1, cfg.mem_dim)
            ppos = ppos.repeat_interleave(split, dim=0).unsqueeze(0).expand(b, -1, -1)
            cond_feat = model.memory_attention(feat.flatten(2).transpose(1, 2), pos, mem, mpos, ptr, ppos)
            pix = cond_feat.transpose(1, 2).reshape(b, c, s, s)
            out = model.heads(pix, None, None, None, multimask_output=True, high_res=hr)
            click = correct(t, out) if correct is not None else None
            if click is not None:
                pts, labs = click
                fixed = model.heads(pix, pts, labs, out["low_res_masks"], multimask_output=pts.shape[1] <= 1,
                                    high_res=hr)
                out = {**fixed, "before": out}
                binarize = True
        outs.append(out)
        if use_memory:
            m = model.encode_memory(feat, out["high_res_masks"], out["object_score_logits"], binarize)
            mems[t] = m.flatten(2).transpose(1, 2)
            ptrs[t] = out["obj_ptr"]
    return outs
