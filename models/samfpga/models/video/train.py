"""Train the FPGA-family video model on synthetic videos (SAM2-style: clips, a prompt on the first frame, the rest
tracked through memory), starting from a trained samfpga image model whose encoder stays frozen.

    python -m samfpga.models.video.train --out DIR [--steps N] [--batch B] [--clip T]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.synthetic import SyntheticConfig
from ..data.video import VideoConfig as ClipConfig
from ..data.video import generate_video
from ..training.losses import dice_loss, focal_loss
from .checkpoint import save_video_checkpoint, video_from_image_model
from .model import VideoSam
from .tracker import ClipPrompt, unroll


@dataclass
class VideoTrainConfig:
    image_checkpoint: str = ""  # default: the bundled default image model
    steps: int = 300
    batch: int = 4
    clip: int = 8
    lr: float = 3e-4
    decoder_lr: float = 3e-5
    memory_layers: int = 2
    memory_ffn_dim: int = 512
    pool_memory: bool = False
    seed: int = 0
    min_area: int = 64
    w_focal: float = 20.0
    w_dice: float = 1.0
    w_iou: float = 1.0
    w_score: float = 1.0


def _default_image_checkpoint() -> Path:
    from samfpga.assets import default_checkpoint

    p = default_checkpoint()
    if p is None:
        raise FileNotFoundError("no bundled default image checkpoint (samfpga/assets/default/checkpoint.pt)")
    return p


def build_initial_model(cfg: VideoTrainConfig) -> VideoSam:
    from ..build import build_sam

    sam = build_sam(checkpoint=cfg.image_checkpoint or _default_image_checkpoint())
    return video_from_image_model(sam, memory_layers=cfg.memory_layers, memory_ffn_dim=cfg.memory_ffn_dim,
                                  pool_memory=cfg.pool_memory)


def _box(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def sample_clip(rng: np.random.Generator, index: int, cfg: VideoTrainConfig, size: int, seed: int = 0):
    """A clip with one chosen object: frames (T, S, S, 3) uint8, gt (T, S, S) bool, and its frame-0 prompt kind."""
    while True:
        v = generate_video(seed, index, ClipConfig(frames=cfg.clip, image=SyntheticConfig(image_size=size)))
        areas = v.masks[0].reshape(v.masks.shape[1], -1).sum(-1)
        ok = np.nonzero(areas >= cfg.min_area)[0]
        if len(ok):
            obj = int(rng.choice(ok))
            return v.frames, v.masks[:, obj]
        index += 100_003


def make_prompt(rng: np.random.Generator, gts: list[np.ndarray], kind: str) -> ClipPrompt:
    if kind == "mask":
        return ClipPrompt(masks=torch.from_numpy(np.stack([g[0] for g in gts])[:, None].astype(np.float32)))
    pts, labs = [], []
    for g in gts:
        if kind == "box":
            pts.append(_box(g[0]).reshape(2, 2))
            labs.append([2, 3])
        else:
            ys, xs = np.nonzero(g[0])
            i = rng.integers(len(xs))
            pts.append(np.array([[xs[i], ys[i]]], np.float32))
            labs.append([1])
    return ClipPrompt(points=torch.from_numpy(np.stack(pts)), labels=torch.tensor(labs, dtype=torch.int32))


def clip_loss(outs: list[dict], gt: torch.Tensor, cfg: VideoTrainConfig, skip_first: bool) -> dict[str, torch.Tensor]:
    """gt (T, B, S, S) bool. Mask loss on the best of the candidates (present frames only), IoU regression,
    object-score BCE."""
    terms = {"mask": [], "iou": [], "score": []}
    size = gt.shape[-1]
    for t, out in enumerate(outs):
        g = gt[t].float()
        present = (g.flatten(1).sum(-1) > 0).float()
        score = out["object_score_logits"][:, 0]
        terms["score"].append(F.binary_cross_entropy_with_logits(score, present))
        if t == 0 and skip_first:
            continue
        logits = F.interpolate(out["low_res_multimasks_raw"], size=(size, size), mode="bilinear", align_corners=False)
        gm = g[:, None].expand_as(logits)
        per = cfg.w_focal * focal_loss(logits, gm) + cfg.w_dice * dice_loss(logits, gm)  # (B, M)
        best = per.argmin(dim=1)
        bi = torch.arange(per.shape[0])
        terms["mask"].append((per[bi, best] * present).sum() / present.sum().clamp(min=1))
        with torch.no_grad():
            pred = logits > 0
            inter = (pred & gm.bool()).flatten(2).sum(-1).float()
            union = (pred | gm.bool()).flatten(2).sum(-1).float()
            iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
        terms["iou"].append(((out["ious"] - iou) ** 2).mean(-1).mul(present).sum() / present.sum().clamp(min=1))
    return {k: torch.stack(v).mean() for k, v in terms.items() if v}


def train(cfg: VideoTrainConfig, out_dir: Path, log_every: int = 10) -> VideoSam:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = build_initial_model(cfg).train()
    size = model.cfg.image_size
    for p in model.image_encoder.parameters():
        p.requires_grad_(False)
    dec = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith(("sam_", "image_encoder"))
           and "obj_score" not in n and "pred_obj_score_head" not in n]
    dec_ids = {id(p) for p in dec}
    rest = [p for p in model.named_parameters() if p[1].requires_grad and id(p[1]) not in dec_ids]
    opt = torch.optim.AdamW([{"params": dec, "lr": cfg.decoder_lr}, {"params": [p for _, p in rest], "lr": cfg.lr}],
                            weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[cfg.decoder_lr, cfg.lr], total_steps=cfg.steps,
                                                pct_start=0.1)
    log: list[dict[str, Any]] = []
    t0 = time.time()
    for step in range(cfg.steps):
        clips = [sample_clip(rng, step * cfg.batch + i, cfg, size) for i in range(cfg.batch)]
        frames = torch.from_numpy(np.stack([c[0] for c in clips], axis=1)).float()  # (T, B, S, S, 3)
        gt = torch.from_numpy(np.stack([c[1] for c in clips], axis=1))  # (T, B, S, S)
        with torch.no_grad():
            model.image_encoder.eval()
            feats = model.backbone(frames.flatten(0, 1).permute(0, 3, 1, 2))[0]
        feats = feats.reshape(cfg.clip, cfg.batch, *feats.shape[1:])
        kind = str(rng.choice(["mask", "box", "point"], p=[0.4, 0.3, 0.3]))
        prompt = make_prompt(rng, [c[1] for c in clips], kind)
        outs = unroll(model, feats, prompt)
        losses = clip_loss(outs, gt, cfg, skip_first=kind == "mask")
        total = losses["mask"] + cfg.w_iou * losses["iou"] + cfg.w_score * losses["score"]
        opt.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % log_every == 0 or step == cfg.steps - 1:
            rec = {"step": step, "time_s": round(time.time() - t0, 1), "total": float(total.detach()),
                   **{k: float(v.detach()) for k, v in losses.items()}}
            log.append(rec)
            print(json.dumps(rec), flush=True)
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    save_video_checkpoint(model, out_dir / "video_checkpoint.pt", {"train_config": asdict(cfg)})
    (out_dir / "train_log.json").write_text(json.dumps({"config": asdict(cfg), "log": log}, indent=1) + "\n")
    return model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="samfpga.models.video.train", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--log-every", type=int, default=10)
    for f, v in asdict(VideoTrainConfig()).items():
        p.add_argument(f"--{f.replace('_', '-')}", type=type(v) if not isinstance(v, bool) else int, default=v)
    a = p.parse_args(argv)
    cfg = VideoTrainConfig(**{f: (bool(getattr(a, f)) if isinstance(v, bool) else getattr(a, f))
                              for f, v in asdict(VideoTrainConfig()).items()})
    train(cfg, a.out, log_every=a.log_every)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
