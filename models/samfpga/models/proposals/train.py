"""Train the proposal head by distillation from the bundled default's dense everything output (issue 16).

    python -m samfpga.models.proposals.train --config models/samfpga/models/training/configs/proposals.yaml \
        --out out/train/proposals [key=value ...]

1. Targets (``samfpga.models.proposals.targets``, cached per image under ``cache_dir``): the frozen encoder's
   embedding of training image i of the generator's split (seed ``data_seed``; evaluation uses seed 1) and the
   teacher's dense everything masks as centres and boxes. ``workers=N`` computes them in N processes;
   ``--targets-only [--budget-s S] [--pack FILE]`` computes them (for S seconds) and packs the masks without the
   embeddings into one small file, which ``--unpack FILE`` turns into a cache on another machine (a machine with
   many cores makes the targets, this one the embeddings and the training).
2. Training: ``ProposalHead`` on the cached embeddings; CenterNet's focal loss on the centre heatmap (Gaussian of
   ``sigma`` cells) + L1 on offsets and box distances at the centre cells (no augmentation: a flipped image's
   embedding is not the flipped embedding, and the targets are the teacher's on that very embedding).
   Resumable: ``resume.pt`` every ``checkpoint_every`` steps, picked up by the next start with the same config.
3. Output: ``head.pt`` (state dict + config), ``proposals.onnx`` (``(1, C, h, w)`` -> ``(1, 7, h, w)``),
   ``train_log.json``. ``samfpga.everything.ProposalMaskGenerator`` runs the ONNX file.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .config import ProposalTrainConfig, load_train_config
from .head import ProposalHead, render_targets
from .targets import build_targets, compute_targets, pack, unpack

__all__ = ["export_onnx", "load_train_config", "loss_fn", "train"]


def _tensors(items: list[dict[str, np.ndarray]], image_size: int, sigma: float, centre: str = "mask"):
    embs, heats, regs, poss = [], [], [], []
    key = "prompt_centres" if centre == "prompt" else "centres"
    for it in items:
        emb = it["embedding"]
        heat, reg, pos = render_targets(it[key], it["boxes"], emb.shape[1:], image_size, sigma)
        embs.append(emb)
        heats.append(heat)
        regs.append(reg)
        poss.append(pos)
    return (torch.from_numpy(np.stack(embs)), torch.from_numpy(np.stack(heats)), torch.from_numpy(np.stack(regs)),
            torch.from_numpy(np.stack(poss)))


def loss_fn(out: torch.Tensor, heat: torch.Tensor, reg: torch.Tensor, pos: torch.Tensor,
            w_reg: float, target: str = "heatmap") -> dict[str, torch.Tensor]:
    """Score loss + L1 on the 6 regressions at the centres.

    ``target`` "heatmap": CenterNet focal loss on the centre heatmap (alpha 2, beta 4), normalised by the centre
    count. "cells": binary cross-entropy of channel 0 against ``pos`` (the cell holds a centre), the mean over
    cells; ``heat`` is not used (a Gaussian would score a centre's neighbours high, and those are the cells a
    cell-ranking first pass must not spend prompts on).
    """
    posf = pos.float()
    n = posf.sum().clamp(min=1.0)
    l1 = ((out[:, 1:] - reg).abs() * posf[:, None]).sum() / n
    if target == "cells":
        bce = torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0], posf, reduction="sum") / n
        return {"loss": bce + w_reg * l1, "bce": bce, "l1": l1}
    p = torch.sigmoid(out[:, 0]).clamp(1e-4, 1 - 1e-4)
    focal = -(posf * (1 - p) ** 2 * torch.log(p) + (1 - posf) * (1 - heat) ** 4 * p**2 * torch.log(1 - p)).sum() / n
    return {"loss": focal + w_reg * l1, "focal": focal, "l1": l1}


def export_onnx(head: ProposalHead, in_shape: tuple[int, int, int], path: Path) -> None:
    head.eval()
    x = torch.zeros(1, *in_shape)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.onnx.export(head, (x,), str(tmp), input_names=["image_embeddings"], output_names=["proposals"],
                      opset_version=17, dynamo=False)
    os.replace(tmp, path)


def train(cfg: ProposalTrainConfig, out_dir: Path, log_every: int = 50) -> ProposalHead:
    """Targets, then train (or resume) into ``out_dir``; writes head.pt, proposals.onnx, train_log.json."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    items, image_size = build_targets(cfg)
    emb, heat, reg, pos = _tensors(items, image_size, cfg.sigma, cfg.centre)
    torch.manual_seed(cfg.seed)
    head = ProposalHead(emb.shape[1], cfg.hidden, cfg.depth)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps)
    start, log = 0, []
    resume = out_dir / "resume.pt"
    if resume.is_file():
        ck = torch.load(resume, map_location="cpu", weights_only=False)
        # ``workers`` only computes the targets (which do not depend on it): a resume may use another count
        if {**ck["config"], "workers": cfg.workers} != asdict(cfg):
            raise ValueError(f"{resume}: written by another config; remove it or use another --out")
        head.load_state_dict(ck["head"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        start, log = ck["step"], ck["log"]
        print(json.dumps({"resumed_at_step": start}), flush=True)
    t0 = time.perf_counter()
    head.train()
    for step in range(start, cfg.steps):
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)  # a resumed run draws the same batches
        idx = torch.randint(0, len(emb), (cfg.batch,), generator=g)
        losses = loss_fn(head(emb[idx]), heat[idx], reg[idx], pos[idx], cfg.w_reg, cfg.target)
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
        sched.step()
        if (step + 1) % log_every == 0 or step + 1 == cfg.steps:
            entry = {"step": step + 1, **{k: round(float(v.detach()), 5) for k, v in losses.items()},
                     "s": round(time.perf_counter() - t0, 1)}
            log.append(entry)
            print(json.dumps(entry), flush=True)
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            tmp = resume.with_name(".resume.pt.tmp")
            torch.save({"config": asdict(cfg), "head": head.state_dict(), "opt": opt.state_dict(),
                        "sched": sched.state_dict(), "step": step + 1, "log": log}, tmp)
            os.replace(tmp, resume)
    torch.save({"config": asdict(cfg), "head": head.state_dict(), "in_shape": list(emb.shape[1:])},
               out_dir / "head.pt")
    export_onnx(head, tuple(emb.shape[1:]), out_dir / "proposals.onnx")
    (out_dir / "train_log.json").write_text(json.dumps({"config": asdict(cfg), "images": len(items),
                                                        "teacher_masks": int(sum(len(i["boxes"]) for i in items)),
                                                        "log": log}, indent=2) + "\n")
    resume.unlink(missing_ok=True)
    return head


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="samfpga.models.proposals.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, help="YAML of ProposalTrainConfig fields (default: the defaults)")
    p.add_argument("--out", type=Path, help="training output folder (not needed with --targets-only)")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--targets-only", action="store_true", help="compute the teacher targets, do not train")
    p.add_argument("--budget-s", type=float, help="with --targets-only: start no new image after S seconds")
    p.add_argument("--pack", type=Path, help="with --targets-only: write the cached masks (no embeddings) here")
    p.add_argument("--unpack", type=Path, help="fill the target cache from a pack first (embeddings computed here)")
    p.add_argument("overrides", nargs="*", help="key=value (YAML values) on top of the config")
    a = p.parse_args(argv)
    try:
        cfg = load_train_config(a.config, a.overrides)
        if not a.targets_only and a.out is None:
            raise ValueError("--out is required unless --targets-only")
        if (a.budget_s is not None or a.pack is not None) and not a.targets_only:
            raise ValueError("--budget-s and --pack go with --targets-only")
        if a.unpack is not None:
            n = unpack(cfg, a.unpack)
            print(json.dumps({"unpacked": n}), flush=True)
        if a.targets_only:
            n = compute_targets(cfg, budget_s=a.budget_s)
            print(json.dumps({"cached_from_0": n}), flush=True)
            if a.pack is not None:
                print(json.dumps({"packed": pack(cfg, a.pack, n), "file": str(a.pack)}), flush=True)
            return 0
    except (OSError, ValueError, TypeError) as e:
        print(f"samfpga.models.proposals.train: error: {e}")
        return 2
    train(cfg, a.out, log_every=a.log_every)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
