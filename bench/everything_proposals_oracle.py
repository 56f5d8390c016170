"""Upper bound for object-aware prompts (issue 16, ``--mode proposals``): how many of dense everything's masks a
perfect proposal head would recover, and with how many decoder prompts.

    .venv/bin/python -m bench.everything_proposals_oracle [--images 10] [--split heldout] \
        [--out bench/results/everything_proposals_oracle]

Per held-out image (``--split``, the bundled default's 256 x 256 input size): dense everything with the bundled
default (``--points-per-side`` grid, thresholds ``--pred-iou-thresh`` / ``--stability-score-thresh``, default
0.5 / 0.8, where it finds masks on these images). Then each dense mask is turned into the prompt a proposal head
is meant to predict, taken from the mask itself (the oracle): its box (one box prompt, single-mask output) or its
centre point (the mask pixel nearest its centroid; ``point``: of its three masks the best predicted IoU kept,
``point3``: all three kept, as dense everything keeps every mask past its filters). A dense mask is
recovered when the oracle prompts' masks include one at IoU >= ``--iou`` (0.8) with it. A trained head can only
do worse than this, so it bounds the recovery a head distilled from dense output can reach with these decoders.
Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("box", "point", "point3")


def centre_point(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool -> (2,) float (x, y): the mask pixel nearest the mask's centroid (inside even if concave)."""
    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean(), xs.mean()
    i = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
    return np.array([xs[i], ys[i]], dtype=np.float64)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, H, W), (M, H, W) bool -> (N, M) IoU."""
    fa = a.reshape(len(a), -1).astype(np.float32)
    fb = b.reshape(len(b), -1).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None] - inter
    return inter / np.maximum(union, 1)


def oracle_masks(pred, dense: np.ndarray, kind: str) -> np.ndarray:
    """One mask per dense mask, from its box or centre-point prompt: (K, H, W) bool."""
    out = []
    for m in dense:
        ys, xs = np.nonzero(m)
        if kind == "box":
            masks, _, _ = pred.predict(box=np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float64),
                                       multimask_output=False)
            out.append(masks[0])
        else:
            masks, iou, _ = pred.predict(point_coords=centre_point(m)[None], point_labels=np.array([1]))
            out.extend(masks if kind == "point3" else masks[int(np.argmax(iou))][None])
    return np.stack(out) if out else np.zeros((0, *dense.shape[1:]), bool)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=10)
    p.add_argument("--split", default="heldout")
    p.add_argument("--points-per-side", type=int, default=32)
    p.add_argument("--pred-iou-thresh", type=float, default=0.5)
    p.add_argument("--stability-score-thresh", type=float, default=0.8)
    p.add_argument("--iou", type=float, default=0.8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "everything_proposals_oracle")
    p.add_argument("--render", type=Path, help="re-summarise this stored JSON instead of running")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render is not None:  # summary and markdown again from a stored run's per-image rows
        write(json.loads(args.render.read_text()), args.render.with_suffix(""))
        return 0
    from samfpga.everything import AutomaticMaskGenerator
    from samfpga.models.data import get_split
    from samfpga.predictor import Predictor
    from samfpga.resources import package_path

    pred = Predictor.from_bundle(package_path("samfpga.assets", "default"), threads=args.threads)
    split = get_split(args.split)
    sample = split.sample_function(pred.image_size)
    params = dict(points_per_side=args.points_per_side, pred_iou_thresh=args.pred_iou_thresh,
                  stability_score_thresh=args.stability_score_thresh)
    rows = []
    for i in range(args.images):
        image = sample(split.seed, i).image
        gen = AutomaticMaskGenerator(pred, **params)
        t0 = time.perf_counter()
        dense = np.stack([r["segmentation"] for r in gen.generate(image)] or [np.zeros(image.shape[:2], bool)])
        dense_s = time.perf_counter() - t0
        dense = dense[dense.reshape(len(dense), -1).any(1)]
        row = {"image": i, "dense_masks": len(dense), "dense_prompts": gen.stats["decoder_prompts"],
               "dense_s": dense_s}
        pred.set_image(image)
        for kind in KINDS:
            t0 = time.perf_counter()
            got = oracle_masks(pred, dense, kind)
            row[f"{kind}_s"] = time.perf_counter() - t0
            best = mask_iou(dense, got).max(1) if len(dense) else np.zeros(0)
            row[f"{kind}_recovered"] = int((best >= args.iou).sum())
            row[f"{kind}_best_iou"] = [round(float(v), 4) for v in best]
        pred.reset_image()
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"command": "python -m bench.everything_proposals_oracle " + " ".join(argv if argv is not None
                                                                                else sys.argv[1:]),
              "machine": f"{platform.machine()} {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}",
              "split": split.describe(), "params": params, "iou": args.iou, "images": rows}
    write(result, args.out)
    return 0


def summarise(rows: list[dict], iou: float) -> dict:
    """Recovered fractions per oracle kind, and for box + centre point (3 masks) together (2 prompts a mask)."""
    n = sum(r["dense_masks"] for r in rows)
    summary = {"dense_masks": n, "dense_prompts_per_image": float(np.mean([r["dense_prompts"] for r in rows])),
               "oracle_prompts_per_image": n / max(len(rows), 1)}
    for kind in KINDS:
        summary[f"{kind}_recovered_fraction"] = sum(r[f"{kind}_recovered"] for r in rows) / max(n, 1)
    both = sum(int(max(a, b) >= iou) for r in rows for a, b in zip(r["box_best_iou"], r["point3_best_iou"]))
    summary["box_and_point3_recovered_fraction"] = both / max(n, 1)
    return summary


def write(result: dict, out: Path) -> None:
    result["summary"] = summarise(result["images"], result["iou"])
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.json").write_text(json.dumps(result, indent=2) + "\n")
    Path(f"{out}.md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    s = result["summary"]
    lines = ["# Proposals mode, oracle bound (issue 16)", "", f"`{result['command']}`  ",
             f"{result['machine']}; split {result['split']['name']} (seed {result['split']['seed']}), "
             f"{len(result['images'])} images; dense params {json.dumps(result['params'])}; recovered = IoU >= "
             f"{result['iou']}", "",
             "| prompts per image | dense masks | recovered: box prompt | centre point, best mask | "
             "centre point, 3 masks | box + centre point (3 masks) |", "|---|---|---|---|---|---|",
             f"| dense {s['dense_prompts_per_image']:.0f}, oracle {s['oracle_prompts_per_image']:.1f} | "
             f"{s['dense_masks']} | {100 * s['box_recovered_fraction']:.1f}% | "
             f"{100 * s['point_recovered_fraction']:.1f}% | {100 * s['point3_recovered_fraction']:.1f}% | "
             f"{100 * s['box_and_point3_recovered_fraction']:.1f}% |", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
