"""The training loop: supervised SAM training and TinySAM full-stage distillation, single process or DDP.

One step, for a batch of B images:

    images (B,3,S,S) -> student encoder -> emb_s (B,C,h,w)       [teacher emb_t: cached on disk or computed]
    pick <= instances_per_image ground-truth instances per image -> M prompts
    round 0: one positive point (multimask, best-of-3 loss) or a jittered box (single mask)
    rounds 1..R: add one click: supervised -> from the student's error against ground truth;
                 distill -> online hard prompt from the student/teacher disagreement, labelled by the teacher
    each round: decoder of student (and teacher) on all M prompts -> losses (see ``losses``)

Under ``torchrun`` (WORLD_SIZE > 1) the same code initialises a process group and wraps the step module in
DistributedDataParallel; each rank takes its share of every global batch, so results do not depend on how a
global batch is split except through floating-point summation order.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..build import SamConfig, build_from_config, build_sam, variant_config
from ..checkpoint import load_checkpoint_into, read_checkpoint, save_checkpoint
from ..data.prompts import boxes_from_masks, error_clicks, sample_points
from ..data.splits import sample_function
from ..mask_decoder_hq import MaskDecoderHQ, is_hq_key
from ..sam import Sam
from .config import DataConfig, TrainConfig, save_config
from .hard_prompts import hard_prompt_points
from .losses import embedding_loss, mask_loss, output_loss, supervised_loss, token_loss


# ---------------------------------------------------------------------------------------------------- data
@dataclass
class Pool:
    """A fixed set of synthetic images. images: (N,3,S,S) uint8. labels: (N,S,S) uint8 instance ids
    (0 background; visible synthetic masks never overlap, so one label map holds all instances)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.images[idx], [self.masks(int(i)) for i in idx]

    def masks(self, i: int) -> torch.Tensor:
        """(K, S, S) bool instance masks of image i."""
        lab = self.labels[i]
        ids = [k for k in range(1, int(lab.max()) + 1) if bool((lab == k).any())]
        return torch.stack([lab == k for k in ids])


class DatasetSource:
    """Real data (``data.coco`` / ``data.sa1b``): items read on demand; images without instances are skipped."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset
        self.keep = [i for i in range(len(dataset)) if len(dataset[i]["masks"]) > 0]
        if not self.keep:
            raise ValueError("training data: no image has an instance mask")

    def __len__(self) -> int:
        return len(self.keep)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        items = [self.dataset[self.keep[int(i)]] for i in idx]
        return torch.stack([it["image"] for it in items]), [it["masks"] for it in items]


def build_source(data: DataConfig, progress: bool = False) -> Pool | DatasetSource:
    """The training images named by ``data.source``."""
    if data.source == "synthetic":
        return build_pool(data.train_seed, data.train_images, data, progress)
    from ..data.coco import COCOSegmentation, SA1BSegmentation

    if data.source == "coco":
        return DatasetSource(COCOSegmentation(data.annotations, data.image_dir, data.image_size))
    return DatasetSource(SA1BSegmentation(data.image_dir, data.image_size))


def pool_key(data: DataConfig, seed: int, n: int) -> str:
    """Cache name of a generated pool (the names of ``synthetic`` pools predate the other generators)."""
    gen = "synth" if data.generator == "synthetic" else f"dr-{data.families}"
    return f"{gen}_s{seed}_n{n}_{data.image_size}_{data.min_objects}-{data.max_objects}"


def build_pool(seed: int, n: int, data: DataConfig, progress: bool = False) -> Pool:
    """Generate (or read from ``data.cache_dir``) ``n`` images of split ``seed`` of ``data.generator``."""
    draw = sample_function(data.generator, data.image_size, data.families, data.min_objects, data.max_objects)
    key = pool_key(data, seed, n)
    path = Path(data.cache_dir) / f"{key}.pt" if data.cache_dir else None
    if path is not None and path.is_file():
        d = torch.load(path, weights_only=True)
        return Pool(d["images"], d["labels"])
    s = data.image_size
    images = torch.empty((n, 3, s, s), dtype=torch.uint8)
    labels = torch.zeros((n, s, s), dtype=torch.uint8)
    spec = (data.generator, s, data.families, data.min_objects, data.max_objects, seed)
    if data.workers > 1 and n > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        chunks = [list(range(i, min(i + 64, n))) for i in range(0, n, 64)]
        # spawn, not fork: the parent may hold torch's thread pools, which a forked child can deadlock on
        with ProcessPoolExecutor(min(data.workers, len(chunks)), mp_context=mp.get_context("spawn")) as ex:
            done = ex.map(_draw_chunk, [(spec, c) for c in chunks])
            for c, (im, lab) in tqdm(zip(chunks, done), total=len(chunks), desc=f"generating {key}",
                                     disable=not progress):
                images[c[0]: c[-1] + 1] = torch.from_numpy(im)
                labels[c[0]: c[-1] + 1] = torch.from_numpy(lab)
    else:
        for i in tqdm(range(n), desc=f"generating {key}", disable=not progress):
            im, lab = _draw_chunk((spec, [i]), draw)
            images[i], labels[i] = torch.from_numpy(im[0]), torch.from_numpy(lab[0])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save({"images": images, "labels": labels}, tmp)
        tmp.replace(path)
    return Pool(images, labels)


def _draw_chunk(job: tuple[tuple, list[int]], draw=None) -> tuple[np.ndarray, np.ndarray]:
    """Images ``indices`` of one split: ((generator, size, families, min, max, seed), indices) ->
    images (k, 3, S, S) uint8 and label maps (k, S, S) uint8 (a worker process's unit of ``build_pool``)."""
    (generator, size, families, lo, hi, seed), indices = job
    draw = draw or sample_function(generator, size, families, lo, hi)
    images = np.empty((len(indices), 3, size, size), dtype=np.uint8)
    labels = np.zeros((len(indices), size, size), dtype=np.uint8)
    for j, i in enumerate(indices):
        sample = draw(seed, i)
        images[j] = sample.image.transpose(2, 0, 1)
        for k, m in enumerate(sample.masks):
            labels[j][m] = k + 1
    return images, labels


def resolve_device(name: str) -> torch.device:
    """``TrainConfig.device`` -> a torch device ("auto": cuda when torch sees a GPU, else cpu)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("TrainConfig.device is 'cuda' but torch sees no GPU (torch.cuda.is_available() is False)")
    return torch.device(name)


# --------------------------------------------------------------------------------------------------- model
def model_config(spec: dict[str, Any]) -> SamConfig:
    """SamConfig from a config's ``model`` entry: a full SamConfig dict, or ``{"variant": ..., **overrides}``."""
    spec = dict(spec)
    if "variant" in spec:
        variant = spec.pop("variant")
        image_size = spec.pop("image_size", None)
        return variant_config(variant, image_size, **spec)
    return SamConfig.from_dict(spec)


def normalise(model: Sam, images: torch.Tensor) -> torch.Tensor:
    """(B,3,S,S) uint8 -> SAM-normalised float32."""
    return (images.float() - model.pixel_mean) / model.pixel_std


def decode(
    model: Sam,
    emb: torch.Tensor,
    points: torch.Tensor | None,
    labels: torch.Tensor | None,
    boxes: torch.Tensor | None,
    early: torch.Tensor | None = None,
):
    """Decoder on M prompts with per-prompt embeddings ``emb`` (M,C,h,w) (and, for an HQ decoder, early encoder
    features (M,vit_dim,h,w)); returns ``DecoderOutput``."""
    pts = (points, labels) if points is not None and points.shape[1] > 0 else None
    sparse, dense = model.prompt_encoder(points=pts, boxes=boxes, masks=None)
    extra = {"early_features": early} if early is not None else {}
    return model.mask_decoder.predict_all(emb, model.prompt_encoder.get_dense_pe(), sparse, dense, **extra)


def _chosen(masks: torch.Tensor, iou: torch.Tensor, multimask: bool) -> torch.Tensor:
    """The mask the model would output: best predicted IoU of the 3 multimask outputs, or output 0."""
    if not multimask:
        return masks[:, 0]
    idx = iou[:, 1:].argmax(1) + 1
    return masks[torch.arange(masks.shape[0], device=masks.device), idx]


class TrainStep(nn.Module):
    """Computes one step's losses; the module DDP wraps (the student is its only trainable child)."""

    def __init__(self, student: Sam, cfg: TrainConfig, teacher: Sam | None = None) -> None:
        super().__init__()
        self.student = student
        self.cfg = cfg
        self._teacher = [teacher]  # a list keeps the frozen teacher out of the module tree (and out of DDP)

    @property
    def teacher(self) -> Sam | None:
        return self._teacher[0]

    def forward(
        self,
        images: torch.Tensor,
        masks: list[torch.Tensor],
        gen: torch.Generator,
        teacher_emb: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """images (B,3,S,S) uint8, masks: B tensors (K_b,S,S) bool. Returns named scalar losses and 'total'."""
        cfg, lw, student = self.cfg, self.cfg.loss, self.student
        distill = cfg.mode == "distill"
        # Prompts are drawn on the CPU with ``gen`` (a CPU generator: the same draws on every device); the models,
        # the targets of the losses and the losses themselves live on the student's device.
        dev = student.pixel_mean.device
        images = images.to(dev)
        x = normalise(student, images)
        if isinstance(student.mask_decoder, MaskDecoderHQ):
            emb_s, early_s = student.image_encoder.forward_with_early(x)
        else:
            emb_s, early_s = student.image_encoder(x), None
        emb_t = None
        if distill:
            if teacher_emb is None:
                with torch.no_grad():
                    teacher_emb = self.teacher.image_encoder(normalise(self.teacher, images))
            emb_t = teacher_emb.to(dev).float()

        img_idx, tgts = [], []
        for b, m in enumerate(masks):
            order = torch.randperm(m.shape[0], generator=gen)[: cfg.instances_per_image]
            tgts.append(m[order])
            img_idx += [b] * len(order)
        tgt = torch.cat(tgts)  # (M, S, S) bool on the CPU: prompt sampling
        tgt_d = tgt.to(dev)  # the same on the device: losses
        idx = torch.tensor(img_idx, device=dev)
        src_s = emb_s[idx]
        early_src = early_s[idx] if early_s is not None else None
        src_t = emb_t[idx] if emb_t is not None else None
        size = tgt.shape[-1]

        use_box = bool(torch.rand((), generator=gen) < cfg.box_prob)
        m_count = tgt.shape[0]
        boxes = boxes_from_masks(tgt, generator=gen).to(dev) if use_box else None
        points = torch.zeros((m_count, 0, 2), device=dev)
        labels = torch.zeros((m_count, 0), device=dev)
        if not use_box:
            points = sample_points(tgt, gen)[:, None].to(dev)
            labels = torch.ones((m_count, 1), device=dev)

        terms: dict[str, torch.Tensor] = {}

        def add(name: str, value: torch.Tensor) -> None:
            terms[name] = terms.get(name, 0.0) + value / (cfg.click_rounds + 1)

        for r in range(cfg.click_rounds + 1):
            multimask = r == 0 and not use_box
            sel = slice(1, 4) if multimask else slice(0, 1)
            so = decode(student, src_s, points, labels, boxes, early_src)
            up_s = F.interpolate(so.masks, size=(size, size), mode="bilinear", align_corners=False)
            if so.hq_masks is not None and lw.hq > 0:
                up_hq = F.interpolate(so.hq_masks, size=(size, size), mode="bilinear", align_corners=False)
                add("hq", lw.hq * mask_loss(up_hq[:, 0].float(), tgt_d, lw.focal, lw.dice).mean())
            if not distill or lw.gt_in_distill > 0:
                w = 1.0 if not distill else lw.gt_in_distill
                add("gt", w * supervised_loss(up_s[:, sel].float(), so.iou_pred[:, sel].float(), tgt_d, lw.focal,
                                              lw.dice, lw.iou))
            cur_s = _chosen(up_s, so.iou_pred, multimask)
            if distill:
                with torch.no_grad():
                    to = decode(self.teacher, src_t, points, labels, boxes)
                add("token", lw.token * token_loss(so.tokens.float(), to.tokens.float()))
                add("output", lw.output * output_loss(so.masks.float(), to.masks.float(), lw.focal, lw.dice))
                add("iou", lw.iou * F.mse_loss(so.iou_pred.float(), to.iou_pred.float()))
                if r < cfg.click_rounds:
                    up_t = F.interpolate(to.masks, size=(size, size), mode="bilinear", align_corners=False)
                    pt, lab = hard_prompt_points(cur_s.detach().cpu(), _chosen(up_t, to.iou_pred, multimask).cpu(),
                                                 gen)
            elif r < cfg.click_rounds:
                pt, lab = error_clicks(cur_s.detach().cpu() > 0, tgt, gen)
            if r < cfg.click_rounds:
                points = torch.cat([points, pt[:, None].to(dev)], 1)
                labels = torch.cat([labels, lab[:, None].to(dev)], 1)
        if distill and lw.embedding > 0:
            terms["embedding"] = lw.embedding * embedding_loss(emb_s.float(), emb_t)
        terms["total"] = sum(terms.values())
        return terms


# ------------------------------------------------------------------------------------------------- helpers
def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _shared_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank (a no-op without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(t, 0)
    return bool(t.item())


def _check_replicas_agree(model: nn.Module) -> None:
    """DDP keeps replicas identical (same initial broadcast, averaged gradients); verify, since a replica
    that drifted would silently train a different model than the one rank 0 saves."""
    flat = torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])
    sig = torch.stack([flat.sum(), (flat * torch.arange(len(flat), dtype=torch.float64).remainder(97)).sum()])
    gathered = [torch.zeros_like(sig) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, sig)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise RuntimeError(f"DDP replicas diverged: parameter signatures {[g.tolist() for g in gathered]}")


def _lr_lambda(cfg: TrainConfig):
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return f


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def load_teacher(cfg: TrainConfig) -> Sam:
    teacher = build_sam(cfg.teacher_variant, checkpoint=cfg.teacher_checkpoint)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def teacher_embeddings(teacher: Sam, pool: Pool | DatasetSource, cfg: TrainConfig, batch: int = 16) -> torch.Tensor:
    """Teacher image embeddings of the whole pool (N,C,h,w) float16, precomputed once and stored on disk
    (keyed by the teacher file's content hash and the pool), as TinySAM does for SA-1B."""
    digest = hashlib.sha256(Path(cfg.teacher_checkpoint).read_bytes()).hexdigest()[:16]
    d = cfg.data
    if d.source == "synthetic":
        # synthetic pools keep their names from before the other generators (existing caches stay valid)
        key = f"temb_{digest}_{pool_key(d, d.train_seed, d.train_images).removeprefix('synth_')}.pt"
    else:
        where = hashlib.sha256(f"{d.source}|{d.annotations}|{d.image_dir}".encode()).hexdigest()[:12]
        key = f"temb_{digest}_{d.source}_{where}_{d.image_size}.pt"
    path = Path(d.cache_dir or cfg.out_dir) / key
    rank, _ = _dist_info()
    if rank == 0 and not path.is_file():
        out = []
        with torch.no_grad():
            for i in tqdm(range(0, len(pool), batch), desc="teacher embeddings"):
                images, _ = pool.batch(torch.arange(i, min(i + batch, len(pool))))
                x = normalise(teacher, images.to(teacher.pixel_mean.device))
                out.append(teacher.image_encoder(x).half().cpu())
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_save(torch.cat(out), path)
    _barrier()
    return torch.load(path, weights_only=True)


# ---------------------------------------------------------------------------------------------------- train
def train(cfg: TrainConfig, stop_at: int | None = None) -> Path | None:
    """Run (or resume) a training run; returns the path of the final checkpoint ``<out_dir>/model.pt``.

    ``stop_at`` ends the process after that many steps as an interruption would (``last.pt`` written,
    no final checkpoint, returns None); running again resumes.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo" if not torch.cuda.is_available() else "nccl")
    rank, world = _dist_info()
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out_dir)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "train_config.yaml")
    pool = _build_pool(cfg, rank)
    mcfg = model_config(cfg.model)
    device = resolve_device(cfg.device)
    student, teacher, temb = _build_models(cfg, mcfg, pool, device)
    step_module: nn.Module = TrainStep(student, cfg, teacher)
    if world > 1:
        step_module = nn.parallel.DistributedDataParallel(step_module, find_unused_parameters=True)
    if cfg.trainable == "hq":
        if not isinstance(student.mask_decoder, MaskDecoderHQ):
            raise ValueError("TrainConfig.trainable 'hq' needs a model with HQ-SAM's head (model.hq_token: true)")
        for name, p in student.named_parameters():
            p.requires_grad_(is_hq_key(name))
        student.image_encoder.eval()  # frozen: TinyViT's BatchNorm running statistics must not move either
    params = [p for p in student.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, _lr_lambda(cfg))
    last = out / "last.pt"
    start = _resume(last, student, optim, sched) if cfg.resume and last.is_file() else 0

    planned = cfg.steps if cfg.stop_after is None else min(cfg.steps, cfg.stop_after)
    end = planned if stop_at is None else min(planned, stop_at)
    loop = _Loop(cfg, step_module, params, optim, sched, pool, temb, rank, world)
    done = loop.run(start, end, student, out / "log.jsonl", last)
    if world > 1:
        _check_replicas_agree(student)
    if end < planned and done == end:
        _barrier()
        return None
    final = out / "model.pt"
    if rank == 0:
        student.eval()
        save_checkpoint(student.cpu(), final, half=False, config=mcfg.to_dict())
    _barrier()
    return final


def _build_pool(cfg: TrainConfig, rank: int) -> Pool | DatasetSource:
    """The training images: rank 0 builds (and caches) them first, the other ranks then read the cache."""
    if rank == 0:
        pool = build_source(cfg.data, progress=True)
    _barrier()
    if rank != 0:
        pool = build_source(cfg.data)
    return pool


def _build_models(cfg: TrainConfig, mcfg: SamConfig, pool: Pool | DatasetSource, device: torch.device
                  ) -> tuple[Sam, Sam | None, torch.Tensor | None]:
    """(student in train mode, frozen teacher or None, cached teacher embeddings (on the CPU) or None), the models on
    ``device``."""
    student = build_from_config(mcfg)
    if cfg.init_checkpoint:
        state, _ = read_checkpoint(cfg.init_checkpoint)
        if mcfg.hq_token and not any(is_hq_key(k) for k in state):
            # a model without the HQ head: everything else loads strictly, the head starts from its initialisation
            state = {**{k: v for k, v in student.state_dict().items() if is_hq_key(k)}, **state}
        load_checkpoint_into(student, state, source=cfg.init_checkpoint)
    teacher, temb = None, None
    student.to(device)
    if cfg.mode == "distill":
        teacher = load_teacher(cfg).to(device)
        if cfg.init_decoder_from_teacher:
            student.prompt_encoder.load_state_dict(teacher.prompt_encoder.state_dict())
            student.mask_decoder.load_state_dict(teacher.mask_decoder.state_dict())
        if cfg.teacher_cache:
            temb = teacher_embeddings(teacher, pool, cfg)
    student.train()
    return student, teacher, temb


def _resume(last: Path, student: Sam, optim: torch.optim.Optimizer, sched: Any) -> int:
    """Load model, optimiser and schedule state from ``last``; returns the step to continue from."""
    state = torch.load(last, weights_only=False, map_location=student.pixel_mean.device)
    student.load_state_dict(state["model"])
    optim.load_state_dict(state["optim"])
    sched.load_state_dict(state["sched"])
    return int(state["step"])


class _Loop:
    """The optimisation steps of ``train``, with logging (``log.jsonl``) and ``last.pt`` snapshots on rank 0."""

    def __init__(self, cfg: TrainConfig, step_module: nn.Module, params: list[nn.Parameter],
                 optim: torch.optim.Optimizer, sched: Any, pool: Pool | DatasetSource,
                 temb: torch.Tensor | None, rank: int, world: int) -> None:
        self.cfg, self.step_module, self.params, self.optim, self.sched = cfg, step_module, params, optim, sched
        self.pool, self.temb, self.rank, self.world = pool, temb, rank, world

    def step(self, step: int) -> dict[str, torch.Tensor]:
        """One optimisation step; returns the loss terms."""
        cfg, world = self.cfg, self.world
        # Batch and prompt randomness are functions of (seed, step, rank): resuming replays the same run.
        g_data = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        global_idx = torch.randperm(len(self.pool), generator=g_data)[: cfg.batch_size * world]
        idx = global_idx[self.rank::world]
        gen = torch.Generator().manual_seed((cfg.seed * 1_000_003 + step) * 101 + self.rank + 1)
        images, masks = self.pool.batch(idx)
        te = self.temb[idx] if self.temb is not None else None
        dev = self.params[0].device
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16"):
            terms = self.step_module(images, masks, gen, te)
        self.optim.zero_grad(set_to_none=True)
        terms["total"].backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        self.optim.step()
        self.sched.step()
        return terms

    def run(self, start: int, end: int, student: Sam, log_path: Path, last: Path) -> int:
        """Steps ``start`` .. ``end`` (fewer when ``time_budget_s`` runs out); returns the steps done in all."""
        cfg = self.cfg
        bar = tqdm(range(start, end), initial=start, total=cfg.steps, desc=cfg.name, disable=self.rank != 0)
        t0 = time.time()
        done = start
        for step in bar:
            terms = self.step(step)
            done = step + 1
            # every rank must stop at the same step: the budget is rank 0's clock, shared
            over = _shared_flag(cfg.time_budget_s > 0 and time.time() - t0 > cfg.time_budget_s, self.params[0].device)
            if self.rank == 0 and (done % cfg.log_every == 0 or done == cfg.steps or over):
                rec = {k: round(float(v.detach()), 5) for k, v in terms.items()}
                rec.update(step=done, lr=self.sched.get_last_lr()[0], elapsed_s=round(time.time() - t0, 1))
                if over:
                    rec["stopped"] = f"time budget {cfg.time_budget_s:g} s"
                bar.set_postfix(total=rec["total"])
                with open(log_path, "a") as f:
                    f.write(json.dumps(rec) + "\n")
            if self.rank == 0 and (done % cfg.save_every == 0 or done == end or over):
                _atomic_save(
                    {"step": done, "model": student.state_dict(), "optim": self.optim.state_dict(),
                     "sched": self.sched.state_dict(), "config": cfg.to_dict()},
                    last,
                )
            if over:
                break
        return done
