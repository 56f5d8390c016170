"""Train the FPGA-family video model on synthetic videos (SAM2-style: clips of 8 frames, a prompt on the first
frame, the rest tracked through memory, correction clicks on a tracked frame), starting from a trained samfpga
image model whose image encoder stays frozen.

    python -m samfpga.models.video.train --config models/samfpga/models/training/configs/default_video.yaml \
        --out out/train/default_video [key=value ...]

The frozen encoder's features of a fixed pool of training videos are computed once (cached per video under
``cache_dir``, keyed by the image checkpoint's hash); clips are windows of those videos (random start, frame
stride, direction and object). A run is resumable: ``resume.pt`` in the output directory is written every
``checkpoint_every`` steps and picked up by the next start with the same config.

Distillation (``teacher_checkpoint``: an official SAM2.1 checkpoint, ``sam2.1_hiera_tiny.pt`` or any file in its
state-dict layout, loaded strictly by ``load_official_sam2`` at the student's input size): the teacher tracks every
clip with the same prompt and the same correction click, and the student's chosen low-res mask logits and object
score are pulled towards the teacher's probabilities (``w_distill`` × BCE), beside the ground-truth losses. The
teacher sees the clip's frames (regenerated from the pool's video index; its Hiera encoder runs on them each step,
so a step costs the teacher's encoder on batch × clip frames more). ``default_video_distill.yaml`` is the recipe.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.synthetic import SyntheticConfig
from ..data.video import VideoConfig as ClipConfig
from ..data.video import generate_video
from ..training.losses import dice_loss, focal_loss
from ..yaml_config import check_fields, read_mapping
from .checkpoint import load_official_sam2, save_video_checkpoint, video_from_image_model
from .model import VideoSam
from .tracker import ClipPrompt, unroll

PROMPT_KINDS = ("mask", "box", "point")


@dataclass
class VideoTrainConfig:
    name: str = "video"
    image_checkpoint: str = ""  # default: the bundled default image model
    steps: int = 300
    batch: int = 4
    clip: int = 8
    # data: a pool of training videos (split seed ``data_seed``; evaluation uses seed 1) whose encoder features
    # are computed once; a clip is a window of ``clip`` frames at one of ``frame_strides``, maybe reversed
    data_seed: int = 0
    pool_videos: int = 256
    pool_frames: int = 16
    frame_strides: list[int] = field(default_factory=lambda: [1, 2])
    reverse_prob: float = 0.5
    cache_dir: str = "out/video_cache"
    prompt_probs: dict[str, float] = field(default_factory=lambda: {"mask": 0.5, "box": 0.25, "point": 0.25})
    correction_prob: float = 0.5  # share of clips with one correction click on a random tracked frame
    # model: memory parts added to the image model
    mem_dim: int = 64
    memory_layers: int = 2
    memory_ffn_dim: int = 512
    pool_memory: bool = False
    # optimisation
    lr: float = 3e-4
    decoder_lr: float = 1e-4
    weight_decay: float = 0.01
    seed: int = 0
    min_area: int = 64
    w_focal: float = 20.0
    w_dice: float = 1.0
    w_iou: float = 1.0
    w_score: float = 1.0
    checkpoint_every: int = 50
    threads: int = 0  # torch threads; 0 = torch's default
    device: str = "cpu"  # "cpu", "cuda" or "auto": where the model, features and losses live (samfpga.models.training)
    amp: str = "none"  # "none" or "bf16": autocast of the forward passes
    time_budget_s: float = 0.0  # > 0: stop after the first step past this many seconds, the checkpoint still written
    pool_workers: int = 1  # processes generating the pool's videos (each a function of (data_seed, index))
    # distillation from an official-layout SAM2.1 checkpoint ({"model": state_dict}); "" = none
    teacher_checkpoint: str = ""
    w_distill: float = 1.0

    def __post_init__(self) -> None:
        bad = set(self.prompt_probs) - set(PROMPT_KINDS)
        if bad or not self.prompt_probs or min(self.prompt_probs.values()) < 0:
            raise ValueError(f"prompt_probs: keys from {PROMPT_KINDS}, non-negative; got {self.prompt_probs}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {self.device!r}")
        if self.amp not in ("none", "bf16"):
            raise ValueError(f"amp must be 'none' or 'bf16', got {self.amp!r}")
        if self.pool_workers < 1:
            raise ValueError(f"pool_workers must be >= 1, got {self.pool_workers}")
        if max(self.frame_strides) * (self.clip - 1) + 1 > self.pool_frames:
            raise ValueError(f"a clip of {self.clip} frames at stride {max(self.frame_strides)} does not fit in "
                             f"pool videos of {self.pool_frames} frames")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoTrainConfig:
        check_fields(cls, d, "video training config fields")
        return cls(**d)


def load_train_config(path: str | Path | None, overrides: list[str] | None = None) -> VideoTrainConfig:
    """A YAML mapping of ``VideoTrainConfig`` fields (or none: the defaults) plus ``key=value`` overrides."""
    return VideoTrainConfig.from_dict(read_mapping(path, overrides, "video training config"))


def _image_checkpoint(cfg: VideoTrainConfig) -> Path:
    if cfg.image_checkpoint:
        return Path(cfg.image_checkpoint)
    from samfpga.assets import default_checkpoint

    p = default_checkpoint()
    if p is None:
        raise FileNotFoundError("no bundled default image checkpoint (samfpga/assets/default/checkpoint.pt)")
    return p


def build_initial_model(cfg: VideoTrainConfig) -> VideoSam:
    from ..build import build_sam

    sam = build_sam(checkpoint=_image_checkpoint(cfg))
    return video_from_image_model(sam, mem_dim=cfg.mem_dim, memory_layers=cfg.memory_layers,
                                  memory_ffn_dim=cfg.memory_ffn_dim, pool_memory=cfg.pool_memory)


# -- data: the frozen encoder's features of a pool of videos ---------------------------------------------------
@dataclass
class PoolVideo:
    """feats (T, C, s, s) float16 frozen-encoder features; masks (T, N, S, S) bool visible masks."""

    feats: np.ndarray
    masks: np.ndarray


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _generate(job: tuple[int, int, int, int]):
    """(data_seed, index, frames, image size) -> the synthetic video (a worker process's unit of ``build_pool``)."""
    seed, i, frames, size = job
    return generate_video(seed, i, ClipConfig(frames=frames, image=SyntheticConfig(image_size=size)))


def _videos(jobs: list[tuple[int, int, int, int]], workers: int):
    """The videos of ``jobs`` in order, drawn by ``workers`` spawned processes (spawn: the parent holds torch's
    thread pools, which a forked child can deadlock on)."""
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_generate, jobs)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=mp.get_context("spawn")) as ex:
        yield from ex.map(_generate, jobs, chunksize=4)


def build_pool(model: VideoSam, cfg: VideoTrainConfig, log: bool = True) -> list[PoolVideo]:
    """Encoder features of the pool videos, from ``cache_dir`` where present (written atomically per video); the
    missing videos are generated by ``pool_workers`` processes and encoded on the model's device."""
    size = model.cfg.image_size
    key = _file_sha(_image_checkpoint(cfg))[:16]
    root = Path(cfg.cache_dir) / f"encoder-{key}"
    root.mkdir(parents=True, exist_ok=True)
    pool: dict[int, PoolVideo] = {}
    t0 = time.time()
    model.image_encoder.eval()
    dev = model.no_mem_embed.device
    missing = []
    for i in range(cfg.pool_videos):
        path = root / f"seed{cfg.data_seed}_v{i:05d}_f{cfg.pool_frames}_s{size}.npz"
        if path.is_file():
            with np.load(path) as z:
                shape = tuple(int(v) for v in z["mask_shape"])
                masks = np.unpackbits(z["masks"])[: int(np.prod(shape))].reshape(shape).astype(bool)
                pool[i] = PoolVideo(z["feats"], masks)
        else:
            missing.append(i)
    jobs = [(cfg.data_seed, i, cfg.pool_frames, size) for i in missing]
    for done, (i, v) in enumerate(zip(missing, _videos(jobs, cfg.pool_workers))):
        path = root / f"seed{cfg.data_seed}_v{i:05d}_f{cfg.pool_frames}_s{size}.npz"
        with torch.no_grad():
            feats = model.backbone(torch.from_numpy(v.frames).float().permute(0, 3, 1, 2).to(dev))[0]
        item = PoolVideo(feats.float().cpu().numpy().astype(np.float16), v.masks)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez(tmp, feats=item.feats, masks=np.packbits(item.masks), mask_shape=np.array(item.masks.shape))
        os.replace(tmp, path)
        pool[i] = item
        if log and (done + 1) % 32 == 0:
            print(json.dumps({"pool": len(pool), "of": cfg.pool_videos, "time_s": round(time.time() - t0, 1)}),
                  flush=True)
    return [pool[i] for i in range(cfg.pool_videos)]


@dataclass
class Clip:
    """feats (T, C, s, s) float16, gt (T, S, S) bool; where it came from: pool video ``video`` (split
    ``data_seed``), its frames ``frames`` (T,) in clip order."""

    feats: np.ndarray
    gt: np.ndarray
    video: int
    frames: np.ndarray


def sample_clip(rng: np.random.Generator, pool: list[PoolVideo], cfg: VideoTrainConfig) -> Clip:
    """A clip with one object visible (≥ min_area pixels) on its first frame."""
    while True:
        vi = int(rng.integers(len(pool)))
        v = pool[vi]
        stride = int(rng.choice(cfg.frame_strides))
        span = (cfg.clip - 1) * stride + 1
        start = int(rng.integers(cfg.pool_frames - span + 1))
        idx = np.arange(start, start + span, stride)
        if rng.uniform() < cfg.reverse_prob:
            idx = idx[::-1]
        areas = v.masks[idx[0]].reshape(v.masks.shape[1], -1).sum(-1)
        ok = np.nonzero(areas >= cfg.min_area)[0]
        if len(ok):
            obj = int(rng.choice(ok))
            return Clip(v.feats[idx], v.masks[idx, obj], vi, idx)


def _box(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def make_prompt(rng: np.random.Generator, gts: list[np.ndarray], kind: str) -> ClipPrompt:
    """The frame-0 prompt of each clip's object: gts[i] (T, S, S) bool."""
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


def correction_click(rng: np.random.Generator, pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One click per object on an error pixel of the tracked mask: positive on a missed pixel, negative on a
    false one. pred, gt (B, S, S) bool -> points (B, 1, 2) xy float32 and labels (B, 1) int32 (−1 where the
    prediction is already exact)."""
    b = pred.shape[0]
    pts = np.zeros((b, 1, 2), np.float32)
    labs = -np.ones((b, 1), np.int32)
    for i in range(b):
        ys, xs = np.nonzero(pred[i] != gt[i])
        if len(xs):
            j = int(rng.integers(len(xs)))
            pts[i, 0] = (xs[j], ys[j])
            labs[i, 0] = int(gt[i, ys[j], xs[j]])
    return pts, labs


def prompt_to(prompt: ClipPrompt, device: torch.device) -> ClipPrompt:
    """``prompt`` with its tensors on ``device`` (prompts are drawn on the CPU from numpy's per-step generator)."""
    return ClipPrompt(**{k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in vars(prompt).items()})


def clip_loss(outs: list[dict], gt: torch.Tensor, cfg: VideoTrainConfig, skip_first: bool) -> dict[str, torch.Tensor]:
    """gt (T, B, S, S) bool. Mask loss on the best of the candidates (present frames only), IoU regression,
    object-score BCE; a corrected frame counts its prediction before and after the click."""
    terms: dict[str, list[torch.Tensor]] = {"mask": [], "iou": [], "score": []}
    size = gt.shape[-1]
    for t, frame_out in enumerate(outs):
        g = gt[t].float()
        present = (g.flatten(1).sum(-1) > 0).float()
        for out in ([frame_out["before"]] if "before" in frame_out else []) + [frame_out]:
            score = out["object_score_logits"][:, 0].float()
            terms["score"].append(F.binary_cross_entropy_with_logits(score, present))
            if t == 0 and skip_first:
                continue
            logits = F.interpolate(out["low_res_multimasks_raw"].float(), size=(size, size), mode="bilinear",
                                   align_corners=False)
            gm = g[:, None].expand_as(logits)
            per = cfg.w_focal * focal_loss(logits, gm) + cfg.w_dice * dice_loss(logits, gm)  # (B, M)
            best = per.argmin(dim=1)
            bi = torch.arange(per.shape[0], device=per.device)
            terms["mask"].append((per[bi, best] * present).sum() / present.sum().clamp(min=1))
            with torch.no_grad():
                pred = logits > 0
                inter = (pred & gm.bool()).flatten(2).sum(-1).float()
                union = (pred | gm.bool()).flatten(2).sum(-1).float()
                iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
            terms["iou"].append(((out["ious"].float() - iou) ** 2).mean(-1).mul(present).sum() / present.sum().clamp(min=1))
    return {k: torch.stack(v).mean() for k, v in terms.items() if v}


# -- distillation from an official-layout SAM2.1 teacher ----------------------------------------------------------
def load_teacher(cfg: VideoTrainConfig, image_size: int) -> VideoSam | None:
    """The frozen teacher at the student's input size, or None without ``teacher_checkpoint``."""
    if not cfg.teacher_checkpoint:
        return None
    path = Path(cfg.teacher_checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"teacher_checkpoint {path}: no such file (an official SAM2.1 checkpoint such as "
                                f"sam2.1_hiera_tiny.pt, or any file in its state-dict layout)")
    teacher = load_official_sam2(path, image_size=image_size)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def clip_frames(cfg: VideoTrainConfig, clips: list[Clip], size: int) -> torch.Tensor:
    """The clips' RGB frames (T, B, 3, S, S) float 0..255, regenerated from their pool videos."""
    out = []
    for c in clips:
        v = generate_video(cfg.data_seed, c.video, ClipConfig(frames=cfg.pool_frames,
                                                              image=SyntheticConfig(image_size=size)))
        out.append(torch.from_numpy(v.frames[c.frames]).float().permute(0, 3, 1, 2))
    return torch.stack(out, dim=1)


@torch.no_grad()
def teacher_unroll(teacher: VideoSam, frames: torch.Tensor, prompt: ClipPrompt,
                   clicks: dict[int, tuple[torch.Tensor, torch.Tensor]], max_ptrs: int) -> list[dict]:
    """The teacher tracking the clip: frames (T, B, 3, S, S) float 0..255; ``clicks`` the student's correction
    clicks by frame, replayed so both see the same interaction."""
    t_len, b = frames.shape[:2]
    feats, high_res = teacher.backbone(frames.flatten(0, 1))
    feats = feats.unflatten(0, (t_len, b))
    if high_res is not None:
        high_res = (high_res[0].unflatten(0, (t_len, b)), high_res[1].unflatten(0, (t_len, b)))
    return unroll(teacher, feats, prompt, max_ptrs=max_ptrs, correct=lambda t, out: clicks.get(t),
                  high_res=high_res)


def distill_loss(student: list[dict], teacher: list[dict]) -> torch.Tensor:
    """BCE of the student's chosen low-res mask logits (B, 1, h, w) and object-score logits (B, 1) against the
    teacher's probabilities (resized to the student's grid if the two differ), averaged over frames."""
    terms = []
    for s_out, t_out in zip(student, teacher, strict=True):
        logits, target = s_out["low_res_masks"].float(), torch.sigmoid(t_out["low_res_masks"].float())
        if target.shape[-2:] != logits.shape[-2:]:
            target = F.interpolate(target, size=logits.shape[-2:], mode="bilinear", align_corners=False)
        terms.append(F.binary_cross_entropy_with_logits(logits, target))
        terms.append(F.binary_cross_entropy_with_logits(s_out["object_score_logits"].float(),
                                                        torch.sigmoid(t_out["object_score_logits"].float())))
    return torch.stack(terms).mean()


def _param_groups(model: VideoSam, cfg: VideoTrainConfig) -> list[dict[str, Any]]:
    """The image model's prompt encoder and decoder at decoder_lr (they start trained); the object-score head,
    memory parts and pointers at lr."""
    dec, rest = [], []
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        new = "obj_score" in n or "pred_obj_score_head" in n or not n.startswith("sam_")
        (rest if new else dec).append(p)
    return [{"params": dec, "lr": cfg.decoder_lr}, {"params": rest, "lr": cfg.lr}]


def train(cfg: VideoTrainConfig, out_dir: Path, log_every: int = 10) -> VideoSam:
    """Train (or resume) into ``out_dir``: resume.pt while running, video_checkpoint.pt and train_log.json at the
    end."""
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    from ..training.trainer import resolve_device

    dev = resolve_device(cfg.device)
    model = build_initial_model(cfg).to(dev)
    for p in model.image_encoder.parameters():
        p.requires_grad_(False)
    teacher = load_teacher(cfg, model.cfg.image_size)
    if teacher is not None:
        teacher.to(dev)
    t_pool = time.time()
    pool = build_pool(model, cfg)
    pool_s = round(time.time() - t_pool, 1)
    model.train()
    model.image_encoder.eval()
    opt = torch.optim.AdamW(_param_groups(model, cfg), weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[cfg.decoder_lr, cfg.lr], total_steps=cfg.steps,
                                                pct_start=0.1)
    out_dir.mkdir(parents=True, exist_ok=True)
    resume = out_dir / "resume.pt"
    log: list[dict[str, Any]] = []
    start, elapsed = 0, 0.0
    if resume.is_file():
        ck = torch.load(resume, map_location="cpu", weights_only=False)
        if ck["config"] != asdict(cfg):
            raise ValueError(f"{resume}: written by another config; remove it or use another --out")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        start, log, elapsed = ck["step"], ck["log"], ck["elapsed_s"]
        print(json.dumps({"resumed_at_step": start}), flush=True)
    kinds = [k for k in PROMPT_KINDS if cfg.prompt_probs.get(k, 0) > 0]
    probs = np.array([cfg.prompt_probs[k] for k in kinds], np.float64)
    t0 = time.time() - elapsed
    for step in range(start, cfg.steps):
        rng = np.random.default_rng([cfg.seed, step])  # per step: a resumed run draws the same clips
        clips = [sample_clip(rng, pool, cfg) for _ in range(cfg.batch)]
        feats = torch.from_numpy(np.stack([c.feats for c in clips], axis=1)).float().to(dev)  # (T, B, C, s, s)
        gt_np = np.stack([c.gt for c in clips], axis=1)  # (T, B, S, S)
        gt = torch.from_numpy(gt_np).to(dev)
        kind = str(rng.choice(kinds, p=probs / probs.sum()))
        prompt = prompt_to(make_prompt(rng, [c.gt for c in clips], kind), dev)
        corr_t = int(rng.integers(1, cfg.clip)) if rng.uniform() < cfg.correction_prob else -1
        clicks: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

        def correct(t: int, out: dict, corr_t: int = corr_t, rng: np.random.Generator = rng,
                    gt_np: np.ndarray = gt_np, clicks: dict = clicks) -> tuple[torch.Tensor, torch.Tensor] | None:
            if t != corr_t:
                return None
            pred = (out["high_res_masks"][:, 0] > 0).detach().cpu().numpy()
            pts, labs = correction_click(rng, pred, gt_np[t])
            clicks[t] = torch.from_numpy(pts).to(dev), torch.from_numpy(labs).to(dev)
            return clicks[t]

        max_ptrs = model.cfg.max_obj_ptrs_in_encoder
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16"):
            outs = unroll(model, feats, prompt, max_ptrs=max_ptrs, correct=correct)
            losses = clip_loss(outs, gt, cfg, skip_first=kind == "mask")
            if teacher is not None:
                frames = clip_frames(cfg, clips, model.cfg.image_size).to(dev)
                losses["distill"] = distill_loss(outs, teacher_unroll(teacher, frames, prompt, clicks, max_ptrs))
        total = losses["mask"] + cfg.w_iou * losses["iou"] + cfg.w_score * losses["score"]
        if "distill" in losses:
            total = total + cfg.w_distill * losses["distill"]
        opt.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
        opt.step()
        sched.step()
        if step % log_every == 0 or step == cfg.steps - 1:
            rec = {"step": step, "time_s": round(time.time() - t0, 1), "kind": kind, "total": float(total.detach()),
                   **{k: float(v.detach()) for k, v in losses.items()}}
            log.append(rec)
            print(json.dumps(rec), flush=True)
        over = cfg.time_budget_s > 0 and time.time() - t0 > cfg.time_budget_s
        if over:
            log.append({"step": step, "time_s": round(time.time() - t0, 1), "total": float(total.detach()),
                        "stopped": f"time budget {cfg.time_budget_s:g} s after {step + 1} of {cfg.steps} steps"})
            print(json.dumps(log[-1]), flush=True)
            break
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            tmp = resume.with_name(".resume.pt.tmp")
            torch.save({"config": asdict(cfg), "model": model.state_dict(), "opt": opt.state_dict(),
                        "sched": sched.state_dict(), "step": step + 1, "log": log,
                        "elapsed_s": time.time() - t0}, tmp)
            os.replace(tmp, resume)
    model.eval()
    train_s = round(time.time() - t0, 1)
    save_video_checkpoint(model.cpu(), out_dir / "video_checkpoint.pt", {"train_config": asdict(cfg)})
    (out_dir / "train_log.json").write_text(json.dumps(
        {"config": asdict(cfg), "pool_s": pool_s, "train_s": train_s, "log": log}, indent=1) + "\n")
    resume.unlink(missing_ok=True)
    return model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="samfpga.models.video.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, help="YAML of VideoTrainConfig fields (default: the defaults)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("overrides", nargs="*", help="key=value (YAML values) on top of the config")
    a = p.parse_args(argv)
    try:
        cfg = load_train_config(a.config, a.overrides)
    except (OSError, ValueError, TypeError) as e:
        print(f"samfpga.models.video.train: error: {e}")
        return 2
    train(cfg, a.out, log_every=a.log_every)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
