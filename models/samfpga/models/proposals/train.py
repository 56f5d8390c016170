"""Train the proposal head by distillation from the bundled default's dense everything output (issue 16).

    python -m samfpga.models.proposals.train --config models/samfpga/models/training/configs/proposals.yaml \
        --out out/train/proposals [key=value ...]

1. Targets (cached per image under ``cache_dir``, keyed by the bundle's encoder and decoder hashes and the dense
   parameters): for training image i of the generator's split (seed ``data_seed``; evaluation uses seed 1), the
   bundle's image embedding (the frozen encoder, as the host computes it) and the teacher's dense everything
   masks (``AutomaticMaskGenerator``, ``dense_*`` parameters), each reduced to a centre (the mask pixel nearest its
   centroid) and a box, in encoder-input pixels.
2. Training: ``ProposalHead`` on the cached embeddings; CenterNet's focal loss on the centre heatmap (Gaussian of
   ``sigma`` cells) + L1 on offsets and box distances at the centre cells (no augmentation: a flipped image's
   embedding is not the flipped embedding, and the targets are the teacher's on that very embedding).
   Resumable: ``resume.pt`` every ``checkpoint_every`` steps, picked up by the next start with the same config.
3. Output: ``head.pt`` (state dict + config), ``proposals.onnx`` (``(1, C, h, w)`` -> ``(1, 7, h, w)``),
   ``train_log.json``. ``samfpga.everything.ProposalMaskGenerator`` runs the ONNX file.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from .head import ProposalHead, render_targets

CENTRES = ("mask", "prompt")
TARGETS = ("heatmap", "cells")
CACHE_FORMAT = 2  # 2: targets carry both centre kinds ("centres", "prompt_centres")


@dataclass
class ProposalTrainConfig:
    name: str = "proposals"
    bundle: str = ""  # teacher and frozen encoder; default: the bundled default model
    generator: str = "synthetic"  # samfpga.models.data split generator
    data_seed: int = 0
    images: int = 160
    cache_dir: str = "out/proposals_cache"
    # the teacher's dense everything run (thresholds where the bundled default finds masks)
    dense_points_per_side: int = 16
    dense_pred_iou_thresh: float = 0.5
    dense_stability_score_thresh: float = 0.8
    # a proposal's centre target: "mask" (the mask pixel nearest its centroid) or "prompt" (the grid point whose
    # prompt produced the mask: this model's dense masks depend on where they were prompted, so reproducing a
    # mask means prompting where the teacher did)
    centre: str = "mask"
    # channel 0's target: "heatmap" (CenterNet: a Gaussian of ``sigma`` cells round each centre, focal loss) or
    # "cells" (1 where a centre lies in the cell, else 0, binary cross-entropy): the score then ranks cells by
    # "holds a centre", which is what a first pass that prompts every grid point of the top cells needs
    target: str = "heatmap"
    # head and optimisation
    hidden: int = 64
    depth: int = 2  # 3x3 convolutions of the head (ProposalHead): its view is 2 * depth + 1 cells wide
    sigma: float = 1.0
    steps: int = 1500
    batch: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    w_reg: float = 5.0
    seed: int = 0
    checkpoint_every: int = 250
    threads: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProposalTrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown proposal training config keys: {sorted(unknown)}")
        cfg = cls(**d)
        if cfg.centre not in CENTRES:
            raise ValueError(f"centre must be one of {CENTRES}, got {cfg.centre!r}")
        if cfg.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {cfg.target!r}")
        return cfg


def load_train_config(path: str | Path | None, overrides: list[str] | None = None) -> ProposalTrainConfig:
    """A YAML mapping of ``ProposalTrainConfig`` fields (or none: the defaults) plus ``key=value`` overrides."""
    d: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"proposal training config {path}: no such file")
        d = yaml.safe_load(path.read_text()) or {}
        if not isinstance(d, dict):
            raise ValueError(f"proposal training config {path}: expected a mapping at top level")
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value")
        key, value = item.split("=", 1)
        d[key] = yaml.safe_load(value)
    return ProposalTrainConfig.from_dict(d)


def _bundle_dir(cfg: ProposalTrainConfig) -> Path:
    if cfg.bundle:
        return Path(cfg.bundle)
    from samfpga.resources import package_path

    return Path(package_path("samfpga.assets", "default"))


def mask_centre(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool, non-empty -> (2,) float64 (x, y): the mask pixel nearest the centroid (inside if concave)."""
    ys, xs = np.nonzero(mask)
    i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return np.array([xs[i], ys[i]], dtype=np.float64)


def teacher_targets(pred, image: np.ndarray, cfg: ProposalTrainConfig) -> dict[str, np.ndarray]:
    """Embedding (C, h, w) float32 and the teacher's dense masks as centres (K, 2) / boxes (K, 4), input pixels.

    ``centres``: the mask pixel nearest each mask's centroid; ``prompt_centres`` (K, 2): the grid point whose
    prompt produced the mask.
    """
    from samfpga.everything import AutomaticMaskGenerator

    gen = AutomaticMaskGenerator(pred, points_per_side=cfg.dense_points_per_side,
                                 pred_iou_thresh=cfg.dense_pred_iou_thresh,
                                 stability_score_thresh=cfg.dense_stability_score_thresh)
    records = gen.generate(image)
    pred.set_image(image)
    emb = pred.get_image_embedding()[0].astype(np.float32)
    scale = np.array([pred.input_size[1] / image.shape[1], pred.input_size[0] / image.shape[0]])
    centres, prompts, boxes = [], [], []
    for r in records:
        m = r["segmentation"]
        if not m.any():
            continue
        x, y, w, h = r["bbox"]
        centres.append(mask_centre(m) * scale)
        prompts.append(np.asarray(r["point_coords"][0], np.float64) * scale)
        boxes.append(np.array([x, y, x + w, y + h], dtype=np.float64) * np.tile(scale, 2))
    pred.reset_image()
    return {"embedding": emb, "centres": np.asarray(centres, np.float32).reshape(-1, 2),
            "prompt_centres": np.asarray(prompts, np.float32).reshape(-1, 2),
            "boxes": np.asarray(boxes, np.float32).reshape(-1, 4)}


def _cache_key(cfg: ProposalTrainConfig, bundle: Path) -> str:
    manifest = json.loads((bundle / "bundle.json").read_text())
    # the teacher's graphs only: installing a proposal head into the bundle must not invalidate the cache
    teacher = {k: v for k, v in (manifest.get("sha256") or {}).items() if k != "proposals"}
    blob = json.dumps({"format": CACHE_FORMAT, "sha256": teacher, "generator": cfg.generator, "seed": cfg.data_seed,
                       "dense": [cfg.dense_points_per_side, cfg.dense_pred_iou_thresh,
                                 cfg.dense_stability_score_thresh]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_targets(cfg: ProposalTrainConfig, log: bool = True) -> tuple[list[dict[str, np.ndarray]], int]:
    """The cached (or computed) targets of the ``cfg.images`` training images, and the encoder input size."""
    from samfpga.models.data import sample_function
    from samfpga.predictor import Predictor

    bundle = _bundle_dir(cfg)
    pred = Predictor.from_bundle(bundle, threads=cfg.threads)
    sample = sample_function(cfg.generator, pred.image_size)
    cache = Path(cfg.cache_dir) / _cache_key(cfg, bundle)
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    t0 = time.perf_counter()
    for i in range(cfg.images):
        f = cache / f"{i:05d}.npz"
        if not f.is_file():
            t = teacher_targets(pred, sample(cfg.data_seed, i).image, cfg)
            tmp = f.with_name(f".{f.stem}.tmp.npz")
            np.savez(tmp, **t)
            os.replace(tmp, f)
            if log and (i + 1) % 10 == 0:
                print(json.dumps({"targets": i + 1, "s": round(time.perf_counter() - t0, 1)}), flush=True)
        with np.load(f) as z:
            out.append({k: z[k] for k in z.files})
    return out, pred.image_size


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
        if ck["config"] != asdict(cfg):
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
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("overrides", nargs="*", help="key=value (YAML values) on top of the config")
    a = p.parse_args(argv)
    try:
        cfg = load_train_config(a.config, a.overrides)
    except (OSError, ValueError, TypeError) as e:
        print(f"samfpga.models.proposals.train: error: {e}")
        return 2
    train(cfg, a.out, log_every=a.log_every)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
