"""Proposals mode, simulated exactly from a per-grid-point cache (issue 16): strategies and heads compared fast.

    python -m bench.everything_proposals_sim [--split heldout] [--seed S] [--start 0] [--images 40] \
        [--ranges 0-19,20-39,0-39] [--head HEAD.onnx] [--threads 1] \
        [--config NAME:score_thresh=0.2,margin=0.02,rounds=1,max_prompts=120 ...] \
        [--out bench/results/everything_proposals_sim]

With grid snapping every prompt of ``ProposalMaskGenerator`` is a point of the dense 32 x 32 grid, so each
image's decoder work can be done once: per grid point its three predicted IoUs and its masks that pass the
filters (IoU 0.5 / stability 0.8 by default), bit-packed, with their boxes (cached under ``--cache-dir``, keyed
by the teacher bundle's hashes, split, seed and filters; about 2 s per 256² image at one thread). A strategy is
then a choice of grid points: its masks are those points' cached masks, box-NMSed as the generator does, and
dense everything is all 1024 points. ``config`` ``default`` reproduces ``ProposalMaskGenerator`` with
``RefineConfig()`` (checked against bench/results/everything_proposals_20.md: the same prompts and recovered
counts; tests/test_proposals_sim.py checks prompts and counts against the generator). Other settings:
``score_thresh``, ``margin``, ``neighbours``, ``max_prompts``, ``rounds`` (``RefineConfig.rounds``), ``refine``
(0: the first pass only, no second pass), ``first_pass`` ("points": the snapped head points; "cells": every grid
point of the head's best cells, ``RefineConfig.first_pass``) and ``max_cells``.

Also per image range, the head's own diagnostics: of the grid points that produced dense masks, the fraction
whose head cell is over the score threshold (cell recall) and the fraction that a snapped head point hits
exactly (the head's offset picks one of the cell's 2 x 2 grid points: 25% is chance); with ``first_pass=cells``
both are the fraction the first pass prompts (the producer's cell is chosen). Writes ``<out>.json`` and
``<out>.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
POINTS_PER_SIDE = 32


@dataclass(frozen=True)
class SimConfig:
    """One simulated proposals-mode setting (``RefineConfig``'s fields plus the head's threshold)."""

    score_thresh: float = 0.2
    max_proposals: int = 100
    refine: bool = True
    margin: float = 0.02
    neighbours: int = 4
    max_prompts: int = 120
    rounds: int = 1
    first_pass: str = "points"
    max_cells: int = 25


def parse_config(text: str) -> tuple[str, SimConfig]:
    """``NAME[:key=value,...]`` -> (NAME, SimConfig)."""
    name, _, rest = text.partition(":")
    types = {f.name: f.type for f in fields(SimConfig)}
    kw = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key not in types:
            raise SystemExit(f"--config {text!r}: unknown key {key!r}; known: {sorted(types)}")
        kw[key] = {"float": float, "int": int, "str": str,
                   "bool": lambda v: v not in ("0", "false", "False")}[types[key]](value)
    return name, SimConfig(**kw)


class CachedImage:
    """One image's cached grid-point outputs; the masks any set of grid points gives after box NMS."""

    def __init__(self, path: Path, size: tuple[int, int]) -> None:
        from samfpga.everything.amg import batched_nms

        z = np.load(path)
        self.size = size
        self.embedding = z["embedding"]
        self.ious = z["ious"]  # (P, 3) every grid point's three predicted IoUs
        h, w = size
        self.masks = (np.unpackbits(z["packed"], axis=1, count=h * w).astype(bool) if len(z["packed"])
                      else np.zeros((0, h * w), bool))
        self.boxes = z["boxes"].astype(np.float32).reshape(-1, 4)
        self.scores = z["iou_preds"].astype(np.float32)
        self.prompt = z["prompt"].astype(np.int64)
        self.by_prompt = [np.flatnonzero(self.prompt == p) for p in range(POINTS_PER_SIDE ** 2)]
        self.dense = (batched_nms(self.boxes, self.scores, np.zeros(len(self.boxes)), 0.7) if len(self.boxes)
                      else np.zeros((0,), np.int64))
        m = self.masks.astype(np.float32)
        inter = m @ m[self.dense].T
        area = m.sum(1)
        self.iou_to_dense = inter / np.maximum(area[:, None] + area[self.dense][None] - inter, 1)

    def rows(self, prompts: list[int]) -> np.ndarray:
        return np.concatenate([self.by_prompt[p] for p in prompts]) if prompts else np.zeros((0,), np.int64)

    def recovered(self, prompts: list[int], iou: float) -> int:
        """Dense masks matched (IoU >= ``iou``) by the masks these grid points give after box NMS."""
        from samfpga.everything.amg import batched_nms

        rows = self.rows(prompts)
        if not len(rows) or not len(self.dense):
            return 0
        kept = rows[batched_nms(self.boxes[rows], self.scores[rows], np.zeros(len(rows)), 0.7)]
        return int((self.iou_to_dense[kept].max(0) >= iou).sum())

    def recovered_one_to_one(self, prompts: list[int], iou: float) -> int:
        """Dense masks matched one to one (each output mask matches at most one dense mask, IoU >= ``iou``): the
        size of a maximum matching; ``recovered`` lets one mask count for several near-duplicate dense masks."""
        from samfpga.everything.amg import batched_nms

        rows = self.rows(prompts)
        if not len(rows) or not len(self.dense):
            return 0
        kept = rows[batched_nms(self.boxes[rows], self.scores[rows], np.zeros(len(rows)), 0.7)]
        return one_to_one(self.iou_to_dense[kept] >= iou)


def one_to_one(edges: np.ndarray) -> int:
    """Size of a maximum matching of a bipartite graph given as a (rows, cols) bool matrix."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching

    if not edges.any():
        return 0
    return int((maximum_bipartite_matching(csr_matrix(edges.astype(np.int8)), perm_type="column") >= 0).sum())


def cache_key(bundle: Path, split: dict, filters: dict) -> str:
    """The cache folder's name: the teacher's graphs (not the proposal head), the split and the filters."""
    teacher = {k: v for k, v in (json.loads((bundle / "bundle.json").read_text()).get("sha256") or {}).items()
               if k != "proposals"}
    return hashlib.sha256(json.dumps({"teacher": teacher, "split": split, "filters": filters,
                                      "grid": POINTS_PER_SIDE}, sort_keys=True).encode()).hexdigest()[:16]


def build_cache(pred, sample, seed: int, index: int, path: Path, filters: dict) -> None:
    """Every grid point's predicted IoUs and filtered masks of one image (as the dense generator computes them)."""
    from samfpga.decoder_prompts import FOREGROUND_LABEL
    from samfpga.everything.amg import build_point_grid
    from samfpga.everything.dense import filter_batch
    from samfpga.transforms import postprocess_masks

    image = sample(seed, index).image
    h, w = image.shape[:2]
    pred.set_image(image)
    grid = build_point_grid(POINTS_PER_SIDE) * np.array([w, h], np.float64)[None]
    ious = np.zeros((len(grid), 3), np.float32)
    parts: dict[str, list] = {"packed": [], "boxes": [], "iou_preds": [], "prompt": []}
    for s in range(0, len(grid), 64):
        coords = pred.transform.apply_coords(grid[s:s + 64], (h, w)).astype(np.float32)
        labels = np.full((len(coords), 1), FOREGROUND_LABEL, np.float32)
        kept, low, iou = pred.predict_low_res_above(coords[:, None, :], labels, None)
        ious[s:s + len(coords)] = iou.reshape(-1, 3)
        sel = np.flatnonzero(iou > filters["pred_iou_thresh"])
        logits = postprocess_masks(low[sel], pred.image_size, pred.input_size, pred.original_size)
        # the "points" column carries the grid index through the filters
        ids = np.stack([s + kept[sel] // 3, kept[sel] % 3], 1).astype(np.float64)
        d, _ = filter_batch(logits, iou[sel], ids, [0, 0, w, h], (h, w), pred.mask_threshold,
                            filters["pred_iou_thresh"], filters["stability_score_thresh"], 1.0)
        parts["packed"] += list(d["packed"])
        parts["boxes"].append(d["boxes"].reshape(-1, 4))
        parts["iou_preds"].append(d["iou_preds"])
        parts["prompt"].append(d["points"][:, 0].astype(np.int64) if len(d["points"]) else np.zeros(0, np.int64))
    embedding = pred.get_image_embedding()[0].astype(np.float32)
    pred.reset_image()
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez_compressed(tmp, embedding=embedding, ious=ious,
                        packed=np.stack(parts["packed"]) if parts["packed"] else np.zeros((0, h * w // 8), np.uint8),
                        boxes=np.concatenate(parts["boxes"]), iou_preds=np.concatenate(parts["iou_preds"]),
                        prompt=np.concatenate(parts["prompt"]))
    os.replace(tmp, path)


def grid_index(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Image-pixel points (N, 2) -> their grid cell index (row-major), as ``refine.snap_to_grid`` snaps them."""
    h, w = size
    n = POINTS_PER_SIDE
    gx = np.clip(np.floor(points[:, 0] * n / w), 0, n - 1).astype(np.int64)
    gy = np.clip(np.floor(points[:, 1] * n / h), 0, n - 1).astype(np.int64)
    return gy * n + gx


def simulate(im: CachedImage, head_out: np.ndarray, image_size: int, cfg: SimConfig,
             pred_iou_thresh: float) -> list[int]:
    """The grid points ``ProposalMaskGenerator`` prompts with this setting, in order (first pass, then rounds)."""
    from samfpga.everything.amg import build_point_grid
    from samfpga.everything.proposals import decode_head
    from samfpga.everything.refine import cell_grid_points, neighbour_points, snap_to_grid, suppressor_prompts

    h, w = im.size
    grid = build_point_grid(POINTS_PER_SIDE) * np.array([w, h], np.float64)[None]
    if cfg.first_pass == "cells":
        prob = 1.0 / (1.0 + np.exp(-head_out[0].astype(np.float64)))
        # the cached images are the encoder input itself (image_size square): input pixels are image pixels
        idx, _ = cell_grid_points(prob, grid * np.array([image_size / w, image_size / h]), image_size,
                                  cfg.score_thresh, cfg.max_cells)
        prompts = [int(p) for p in idx]
    else:
        points, _, _ = decode_head(head_out, image_size, cfg.score_thresh, cfg.max_proposals, 1)
        points = points.astype(np.float64) * np.array([w / image_size, h / image_size])
        snapped = snap_to_grid(points, im.size, POINTS_PER_SIDE)
        prompts = [int(p) for p in grid_index(snapped, im.size)]
    if not cfg.refine:
        # "cells" without a second pass is RefineConfig(first_pass="cells", parents=()): still within max_prompts
        return prompts[:cfg.max_prompts] if cfg.first_pass == "cells" else prompts
    prompts = prompts[:cfg.max_prompts]
    near = pred_iou_thresh - cfg.margin

    def best(ps: list[int]) -> np.ndarray:
        v = im.ious[ps]
        return np.where(v > near, v, -np.inf).max(1)

    first = list(prompts)
    b = best(first)
    rows = im.rows(first)
    ids = np.array([first.index(p) for p in im.prompt[rows]], np.int64)
    miss = np.setdiff1d(np.flatnonzero(b > -np.inf), ids)
    won = suppressor_prompts(im.boxes[rows], im.scores[rows], ids, 0.7) if len(ids) else np.zeros(0, np.int64)
    order = np.concatenate([miss[np.argsort(-b[miss], kind="stable")], won[np.argsort(-b[won], kind="stable")]])
    expanded = {first[i] for i in won}
    extra = neighbour_points(grid[first][order.astype(np.int64)], im.size, POINTS_PER_SIDE, cfg.neighbours,
                             grid[first])[:cfg.max_prompts - len(first)]
    prompts += [int(p) for p in grid_index(extra, im.size)]
    for _ in range(cfg.rounds - 1):
        budget = cfg.max_prompts - len(prompts)
        if budget <= 0:
            break
        rows = im.rows(prompts)
        ids = np.array([prompts.index(p) for p in im.prompt[rows]], np.int64)
        won = [i for i in suppressor_prompts(im.boxes[rows], im.scores[rows], ids, 0.7) if prompts[i] not in expanded]
        if not won:
            break
        bw = best([prompts[i] for i in won])
        won = [won[i] for i in np.argsort(-bw, kind="stable")]
        expanded.update(prompts[i] for i in won)
        extra = neighbour_points(grid[[prompts[i] for i in won]], im.size, POINTS_PER_SIDE, cfg.neighbours,
                                 grid[prompts])[:budget]
        if not len(extra):
            break
        prompts += [int(p) for p in grid_index(extra, im.size)]
    return prompts


def head_diagnostics(im: CachedImage, head_out: np.ndarray, image_size: int, cfg: SimConfig) -> tuple[int, int, int]:
    """(dense masks' producing grid points, of them with head cell over the threshold, of them hit exactly).

    With ``first_pass="cells"`` the middle and last counts are both the producers the first pass prompts (its cell
    is among the chosen cells, and then every grid point of it is prompted).
    """
    from samfpga.everything.proposals import decode_head
    from samfpga.everything.refine import snap_to_grid

    h, w = im.size
    producers = set(int(p) for p in im.prompt[im.dense])
    if cfg.first_pass == "cells":
        first = set(simulate(im, head_out, image_size, replace(cfg, refine=False), 0.5))
        return len(producers), len(producers & first), len(producers & first)
    prob = 1.0 / (1.0 + np.exp(-head_out[0].astype(np.float64)))
    ch, cw = prob.shape
    points, _, _ = decode_head(head_out, image_size, cfg.score_thresh, cfg.max_proposals, 1)
    points = points.astype(np.float64) * np.array([w / image_size, h / image_size])
    hit = set(int(p) for p in grid_index(snap_to_grid(points, im.size, POINTS_PER_SIDE), im.size))
    n = POINTS_PER_SIDE
    over = sum(prob[(p // n) * ch // n, (p % n) * cw // n] > cfg.score_thresh for p in producers)
    return len(producers), int(over), len(producers & hit)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", default="heldout")
    p.add_argument("--seed", type=int, help="another seed of the split (0: the proposal head's training images)")
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--images", type=int, default=40)
    p.add_argument("--ranges", default="", help="image ranges to report, e.g. 0-19,20-39 (default: all)")
    p.add_argument("--head", type=Path, help="proposal head ONNX (default: the bundled default's)")
    p.add_argument("--config", action="append", default=[],
                   help="NAME[:key=value,...] of SimConfig (repeatable; default: default)")
    p.add_argument("--pred-iou-thresh", type=float, default=0.5)
    p.add_argument("--stability-score-thresh", type=float, default=0.8)
    p.add_argument("--iou", type=float, default=0.8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache-dir", type=Path, default=ROOT / "out" / "proposals_sim")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "everything_proposals_sim")
    args = p.parse_args(argv)
    from samfpga.bundle import sha256_file
    from samfpga.everything.proposals import ProposalHead
    from samfpga.models.data import get_split
    from samfpga.predictor import Predictor
    from samfpga.resources import package_path

    bundle = Path(package_path("samfpga.assets", "default"))
    head_path = args.head or bundle / "proposals.onnx"
    pred = Predictor.from_bundle(bundle, threads=args.threads)
    head = ProposalHead(head_path, threads=args.threads)
    split = get_split(args.split, args.seed)
    filters = {"pred_iou_thresh": args.pred_iou_thresh, "stability_score_thresh": args.stability_score_thresh}
    cache = args.cache_dir / cache_key(bundle, split.describe(), filters)
    cache.mkdir(parents=True, exist_ok=True)
    sample = split.sample_function(pred.image_size)
    configs = [parse_config(c) for c in (args.config or ["default"])]
    idx = list(range(args.start, args.start + args.images))
    per_image = []
    for i in idx:
        f = cache / f"{i:05d}.npz"
        if not f.is_file():
            build_cache(pred, sample, split.seed, i, f, filters)
        im = CachedImage(f, (pred.image_size, pred.image_size))
        out = head(im.embedding[None])
        row = {"image": i, "dense": len(im.dense), "configs": {}}
        for name, cfg in configs:
            prompts = simulate(im, out, pred.image_size, cfg, args.pred_iou_thresh)
            row["configs"][name] = {"prompts": len(prompts), "recovered": im.recovered(prompts, args.iou),
                                    "recovered_one_to_one": im.recovered_one_to_one(prompts, args.iou),
                                    "head": head_diagnostics(im, out, pred.image_size, cfg)}
        per_image.append(row)
    ranges = []
    for r in (args.ranges.split(",") if args.ranges else [f"{idx[0]}-{idx[-1]}"]):
        lo, hi = (int(v) for v in r.split("-"))
        ranges.append((lo, hi))
    summary = []
    for lo, hi in ranges:
        rows = [r for r in per_image if lo <= r["image"] <= hi]
        dense = sum(r["dense"] for r in rows)
        for name, cfg in configs:
            runs = [r["configs"][name] for r in rows]
            prompts = float(np.mean([v["prompts"] for v in runs]))
            heads = np.array([v["head"] for v in runs]).sum(0)
            summary.append({"images": f"{lo}-{hi}", "config": name, "settings": asdict(cfg),
                            "prompts_per_image": prompts, "most_on_one_image": max(v["prompts"] for v in runs),
                            "fewer_than_dense": POINTS_PER_SIDE ** 2 / max(prompts, 1e-9),
                            "recovered": sum(v["recovered"] for v in runs), "dense_masks": dense,
                            "recovered_one_to_one": sum(v["recovered_one_to_one"] for v in runs),
                            "producer_cell_recall": float(heads[1] / max(heads[0], 1)),
                            "producer_exact": float(heads[2] / max(heads[0], 1))})
    # shell-quoted, so an empty value (e.g. --refine-parents '') survives a copy and paste
    result = {"command": "python -m bench.everything_proposals_sim " + shlex.join(argv if argv is not None else sys.argv[1:]),
              "machine": f"{platform.machine()} {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}",
              "split": split.describe(), "filters": filters, "head": str(head_path),
              "head_sha256": sha256_file(head_path), "summary": summary, "images": per_image}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    Path(f"{args.out}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(result: dict) -> str:
    s = result["split"]
    lines = ["# Proposals mode, simulated from the per-grid-point cache (issue 16)", "", f"`{result['command']}`  ",
             f"{result['machine']}; split {s['name']} (seed {s['seed']}); filters {json.dumps(result['filters'])}; "
             f"head {result['head']} (sha256 {result['head_sha256'][:12]}); recovered = a mask at IoU >= 0.8 with "
             "the dense mask after box NMS (one to one: each output mask counts for at most one dense mask, a "
             "maximum matching); producers = the grid points whose prompts gave the dense masks",
             "", "| images | config | settings | prompts / image | most on one image | fewer than dense | "
             "dense masks recovered | one to one | producers' cell over threshold | producers hit exactly |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["summary"]:
        defaults = asdict(SimConfig())
        settings = ", ".join(f"{k}={v}" for k, v in r["settings"].items() if defaults[k] != v)
        lines.append(f"| {r['images']} | {r['config']} | {settings or 'defaults'} | {r['prompts_per_image']:.1f} | "
                     f"{r['most_on_one_image']} | {r['fewer_than_dense']:.1f}x | "
                     f"{100 * r['recovered'] / max(r['dense_masks'], 1):.1f}% ({r['recovered']} of "
                     f"{r['dense_masks']}) | {100 * r['recovered_one_to_one'] / max(r['dense_masks'], 1):.1f}% | "
                     f"{100 * r['producer_cell_recall']:.1f}% | "
                     f"{100 * r['producer_exact']:.1f}% |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
