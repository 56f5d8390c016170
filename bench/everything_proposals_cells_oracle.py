"""How good must a cell ranking be? Oracles for the "cells" first pass of proposals mode (issue 16).

    python -m bench.everything_proposals_cells_oracle [--head HEAD.onnx] [--start 0] [--images 40] [--cells 25] \
        [--train-cache out/proposals_cache/KEY --seen 0-199 --unseen 400-599] \
        [--out bench/results/everything_proposals_cells_oracle]

On the held-out images' per-grid-point cache of ``bench.everything_proposals_sim`` (built there first if missing),
every strategy prompts all dense grid points of a set of 16 x 16 cells (2 x 2 each), exactly as
``RefineConfig(first_pass="cells")`` does without the second pass; recovered as in the simulator:

* ``producers``: the cells holding a producer (a grid point whose prompt gave a dense mask), all of them;
* ``head top K``: the head's K best cells, and the fraction of producer cells among them;
* ``producers at recall r``: each producer cell kept with probability r (4 draws, seed 0), topped up to K cells
  with the head's best other cells: the recovery a head with that producer recall would give;
* ``matching cells``: cells whose grid points give a mask matching a dense mask (IoU >= 0.8) before NMS, all of
  them and K of them at random (5 draws);
* ``decoder IoU top K``: the K cells whose grid points have the decoder's highest predicted IoU (an oracle: it
  needs every prompt decoded).

With ``--train-cache`` (a ``samfpga.models.proposals.train`` target cache folder, whose ``prompt_centres`` are
the producers), also the head's producer-cell recall in its top K on training images it was trained on
(``--seen``) and on ones it was not (``--unseen``): memorised or learnt. Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from bench.everything_proposals_sim import POINTS_PER_SIDE, CachedImage, build_cache, cache_key

ROOT = Path(__file__).resolve().parents[1]
CELLS_PER_SIDE = 16
RECALLS = (0.5, 0.7, 0.9)


def cell_of(point: int) -> int:
    """Grid index (32 x 32, row-major) -> the 16 x 16 cell holding it."""
    step = POINTS_PER_SIDE // CELLS_PER_SIDE
    return (point // POINTS_PER_SIDE) // step * CELLS_PER_SIDE + (point % POINTS_PER_SIDE) // step


def cell_points(cells) -> list[int]:
    """Every grid point of each cell, in cell order then row-major: as ``cell_grid_points`` orders them."""
    step = POINTS_PER_SIDE // CELLS_PER_SIDE
    out = []
    for c in cells:
        cy, cx = divmod(int(c), CELLS_PER_SIDE)
        out += [(step * cy + dy) * POINTS_PER_SIDE + step * cx + dx for dy in range(step) for dx in range(step)]
    return out


def image_oracles(im: CachedImage, score: np.ndarray, k: int, rng: np.random.Generator) -> dict[str, float]:
    """Recovered counts (and prompts) of each oracle on one image; ``score`` (256,) the head's cell logits."""
    producers = sorted({cell_of(int(p)) for p in im.prompt[im.dense]})
    order = [int(c) for c in np.argsort(-score, kind="stable")]
    top = order[:k]
    r: dict[str, float] = {"dense": len(im.dense), "producer_cells": len(producers),
                           "producers_prompts": len(cell_points(producers)),
                           "producers": im.recovered(cell_points(producers), 0.8),
                           "head_top": im.recovered(cell_points(top), 0.8),
                           "head_top_producer_cells": len(set(top) & set(producers))}
    others = [c for c in order if c not in producers]
    for rec in RECALLS:
        got = []
        for _ in range(4):
            keep = [c for c in producers if rng.random() < rec][:k]
            got.append(im.recovered(cell_points(keep + others[:k - len(keep)]), 0.8))
        r[f"recall_{rec}"] = float(np.mean(got))
    match = im.iou_to_dense >= 0.8
    matching = sorted({cell_of(int(im.prompt[i])) for i in np.flatnonzero(match.any(1))})
    r["matching_cells"] = len(matching)
    r["matching_all"] = im.recovered(cell_points(matching), 0.8)
    r["matching_random"] = float(np.mean([im.recovered(cell_points(rng.permutation(matching)[:k]), 0.8)
                                          for _ in range(5)])) if matching else 0.0
    step = POINTS_PER_SIDE // CELLS_PER_SIDE
    best = im.ious.max(1).reshape(CELLS_PER_SIDE, step, CELLS_PER_SIDE, step).max(axis=(1, 3)).ravel()
    r["decoder_iou_top"] = im.recovered(cell_points(np.argsort(-best, kind="stable")[:k]), 0.8)
    return r


def target_recall(head, cache: Path, lo: int, hi: int, k: int, cell: float) -> dict[str, float]:
    """Producer-cell recall of the head's top ``k`` cells on training-target images lo..hi (inclusive)."""
    hit = total = n = 0
    for i in range(lo, hi + 1):
        f = cache / f"{i:05d}.npz"
        if not f.is_file():
            continue
        with np.load(f) as z:
            emb, centres = z["embedding"], z["prompt_centres"]
        out = head(emb[None])
        producers = set((np.floor(centres[:, 1] / cell) * out.shape[2] + np.floor(centres[:, 0] / cell))
                        .astype(int).tolist())
        top = set(np.argsort(-out[0].ravel(), kind="stable")[:k].tolist())
        hit, total, n = hit + len(producers & top), total + len(producers), n + 1
    return {"images": n, "producer_cells": total, "in_top": hit, "recall": hit / max(total, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--head", type=Path, help="proposal head ONNX (default: the bundled default's)")
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--images", type=int, default=40)
    p.add_argument("--cells", type=int, default=25, help="K: cells per image (4 prompts each)")
    p.add_argument("--seed", type=int, default=0, help="the random draws' seed")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache-dir", type=Path, default=ROOT / "out" / "proposals_sim")
    p.add_argument("--train-cache", type=Path, help="a proposals training target cache folder (…/KEY)")
    p.add_argument("--seen", default="", help="training images the head was trained on, e.g. 0-199")
    p.add_argument("--unseen", default="", help="training-distribution images it was not trained on, e.g. 400-599")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "everything_proposals_cells_oracle")
    args = p.parse_args(argv)
    from samfpga.everything.proposals import ProposalHead
    from samfpga.models.data import get_split
    from samfpga.predictor import Predictor
    from samfpga.resources import package_path

    bundle = Path(package_path("samfpga.assets", "default"))
    head_path = args.head or bundle / "proposals.onnx"
    head = ProposalHead(head_path, threads=args.threads)
    split = get_split("heldout")
    filters = {"pred_iou_thresh": 0.5, "stability_score_thresh": 0.8}
    cache = args.cache_dir / cache_key(bundle, split.describe(), filters)
    cache.mkdir(parents=True, exist_ok=True)
    pred = None
    rng = np.random.default_rng(args.seed)
    rows = []
    for i in range(args.start, args.start + args.images):
        f = cache / f"{i:05d}.npz"
        if not f.is_file():
            pred = pred or Predictor.from_bundle(bundle, threads=args.threads)
            build_cache(pred, split.sample_function(pred.image_size), split.seed, i, f, filters)
        im = CachedImage(f, (256, 256))
        rows.append({"image": i, **image_oracles(im, head(im.embedding[None])[0].ravel(), args.cells, rng)})
    total = {key: float(sum(r[key] for r in rows)) for key in rows[0] if key != "image"}
    result = {"command": "python -m bench.everything_proposals_cells_oracle " + shlex.join(
                  argv if argv is not None else sys.argv[1:]),
              "head": str(head_path), "images": f"{args.start}-{args.start + args.images - 1}", "cells": args.cells,
              "total": total, "per_image": rows}
    if args.train_cache:
        for name in ("seen", "unseen"):
            if getattr(args, name):
                lo, hi = (int(v) for v in getattr(args, name).split("-"))
                result[f"train_{name}"] = {"range": f"{lo}-{hi}",
                                           **target_recall(head, args.train_cache, lo, hi, args.cells, 16.0)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    Path(f"{args.out}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(result: dict) -> str:
    t, n, k = result["total"], len(result["per_image"]), result["cells"]

    def rec(key: str) -> str:
        return f"{100 * t[key] / max(t['dense'], 1):.1f}%"

    lines = ["# Cells first pass: oracles (issue 16)", "", f"`{result['command']}`  ",
             f"held-out images {result['images']}, head {result['head']}; every strategy prompts all 4 grid points "
             f"of its cells, no second pass; recovered = a mask at IoU >= 0.8 with the dense mask after box NMS "
             f"({int(t['dense'])} dense masks)", "",
             "| cells | prompts / image | recovered |", "|---|---|---|",
             f"| all producer cells ({t['producer_cells'] / n:.1f} per image) | {t['producers_prompts'] / n:.1f} | "
             f"{rec('producers')} |",
             f"| head's top {k} ({100 * t['head_top_producer_cells'] / max(t['producer_cells'], 1):.1f}% of the "
             f"producer cells among them) | {4 * k} | {rec('head_top')} |"]
    for r in RECALLS:
        lines.append(f"| producer cells at recall {r}, topped up to {k} with the head's best others | {4 * k} | "
                     f"{rec(f'recall_{r}')} |")
    lines += [f"| all matching cells ({t['matching_cells'] / n:.1f} per image) | {4 * t['matching_cells'] / n:.1f} | "
              f"{rec('matching_all')} |",
              f"| {k} matching cells at random | {4 * k} | {rec('matching_random')} |",
              f"| the decoder's highest predicted IoU, top {k} | {4 * k} | {rec('decoder_iou_top')} |"]
    for name in ("seen", "unseen"):
        if f"train_{name}" in result:
            s = result[f"train_{name}"]
            lines.append(f"\nTraining images {s['range']} ({name} in training, {s['images']} images): "
                         f"{100 * s['recall']:.1f}% of {s['producer_cells']} producer cells in the head's top {k}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
