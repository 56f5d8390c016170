"""Calibration of the bundled default before and after its post-hoc calibration, and its effect on everything mode.

    .venv/bin/python bench/calibration.py --calibrated BUNDLE [--images 30] [--everything-images 10]
        [--out bench/results/calibration] [--figures docs]

``BUNDLE``: a bundle whose ``calibration`` field is measured (``python -m samfpga.models.calibrate``); the
"before" model is the same bundle with the identity calibration.

1. Reliability on the evaluation splits ``heldout`` and ``dr_heldout`` (seed 1, images 0..N-1; the calibration
   was fitted on seed 2): every output mask of centre-point, box and 16x16 grid prompts (``calibrate.collect``),
   predicted vs actual IoU in 10 bins, ECE; before = raw head, after = the IoU map applied to the same
   predictions (the map is elementwise, so this is what the calibrated runtime returns); logit and stability
   distributions before/after the logit map. Figures: ``<figures>/calibration_reliability.png``,
   ``<figures>/calibration_distributions.png``.
2. Everything mode on ``heldout`` images 0..E-1, raw vs calibrated runtime (and the IoU map alone when the
   calibration also maps logits), each image through dense
   (``AutomaticMaskGenerator``) then hierarchical (``HierarchicalMaskGenerator``), same process, back to back:
   at TinySAM's thresholds (IoU 0.88, stability 0.95, high score 8.5) and at ``EVAL.json``'s (0.5 / 0.8):
   masks per image, AR and mean best IoU per instance (``models.evaluate.average_recall``), precision (output
   masks with IoU >= 0.5 to some instance) and the mean IoU of the output masks, wall seconds,
   decoder prompts, hierarchical speed-up (dense / hierarchical wall time) and the fraction of dense masks a
   hierarchical mask recovers (IoU >= 0.8).

Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from samfpga.bundle import load_bundle
from samfpga.calibration import IDENTITY, Calibration
from samfpga.everything import AutomaticMaskGenerator, HierarchicalMaskGenerator
from samfpga.models.calibrate import HIGH_SCORE, SOURCES, collect, reliability
from samfpga.models.data.splits import get_split
from samfpga.models.evaluate import average_recall
from samfpga.predictor import Predictor

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = {"tinysam": {"pred_iou_thresh": 0.88, "stability_score_thresh": 0.95},
              "eval_json": {"pred_iou_thresh": 0.5, "stability_score_thresh": 0.8}}


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, H, W), (M, H, W) bool -> (N, M) IoU."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    fa = a.reshape(len(a), -1).astype(np.float32)
    fb = b.reshape(len(b), -1).astype(np.float32)
    inter = fa @ fb.T
    return inter / np.maximum(fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter, 1)


def distribution(stab: np.ndarray, high: np.ndarray, maxl: np.ndarray, piou: np.ndarray,
                 actual: np.ndarray) -> dict:
    """Grid-prompt masks (M,) against TinySAM's thresholds: stability, fraction of the mask above 8.5, largest
    logit, predicted and actual IoU (empty masks have NaN stability and fail the stability filter, as in SAM)."""
    q = [0.1, 0.5, 0.9, 0.99]
    stab0 = np.nan_to_num(stab, nan=0.0)
    return {"grid_masks": len(stab),
            "max_logit_quantiles": dict(zip(map(str, q), np.quantile(maxl, q).round(3).tolist())),
            "any_pixel_above_8.5": float((maxl > HIGH_SCORE).mean()),
            "mean_fraction_of_mask_above_8.5": float(np.nanmean(high)),
            "stability_quantiles": dict(zip(map(str, q), np.nanquantile(stab, q).round(4).tolist())),
            "stability_ge_0.95": float((stab0 >= 0.95).mean()),
            "pred_iou_gt_0.88": float((piou > 0.88).mean()),
            "passing_both": float(((stab0 >= 0.95) & (piou > 0.88)).mean()),
            "actual_iou_ge_0.88": float((actual >= 0.88).mean())}


def reliability_part(bundle, cal: Calibration, splits: list[str], images: int, threads: int) -> dict:
    pred = Predictor.from_bundle(replace(bundle, calibration=IDENTITY), threads=threads)
    out = {}
    for name in splits:
        t0 = time.time()
        rec = collect(pred, [name], None, images, after=cal)
        after_iou = cal.iou(rec.pred_iou)
        per: dict = {"before": {}, "after": {}}
        for src in ("all", *SOURCES):
            keep = np.ones(len(rec.source), bool) if src == "all" else rec.source == SOURCES.index(src)
            per["before"][src] = reliability(rec.pred_iou[keep], rec.actual_iou[keep])
            per["after"][src] = reliability(after_iou[keep], rec.actual_iou[keep])
        grid = rec.source == SOURCES.index("grid")
        ml = rec.max_logit[grid]
        mla = cal.logits(ml)
        per["distributions"] = {
            "before": distribution(rec.stability[grid], rec.high_frac[grid], ml, rec.pred_iou[grid],
                                   rec.actual_iou[grid]),
            "after": distribution(rec.stability_after[grid], rec.high_frac_after[grid], mla, after_iou[grid],
                                  rec.actual_iou[grid])}
        per["seconds"] = round(time.time() - t0, 1)
        per["_arrays"] = {"pred": rec.pred_iou, "after": after_iou, "actual": rec.actual_iou, "source": rec.source,
                          "stab": rec.stability[grid], "stab_after": rec.stability_after[grid],
                          "maxl": ml, "maxl_after": mla}
        out[name] = per
    return out


def everything_part(bundle, cal: Calibration, images: int, pps: int, threads: int) -> dict:
    spl = get_split("heldout")
    draw = spl.sample_function(bundle.image_size)
    samples = [draw(spl.seed, i) for i in range(images)]
    out: dict = {}
    variants = [("raw", IDENTITY), ("calibrated", cal)]
    if cal.logit_scale != 1.0 or cal.logit_offset != 0.0:  # the IoU map alone, logits raw
        variants.insert(1, ("iou_map_only", replace(cal, logit_scale=1.0, logit_offset=0.0)))
    for variant, c in variants:
        pred = Predictor.from_bundle(replace(bundle, calibration=c), threads=threads)
        for tname, th in THRESHOLDS.items():
            rows = []
            for s in samples:
                row = {}
                masks = {}
                for mode, gen in (("dense", AutomaticMaskGenerator(pred, points_per_side=pps, **th)),
                                  ("hierarchical", HierarchicalMaskGenerator(pred, points_per_side=pps,
                                                                             high_score_thresh=HIGH_SCORE, **th))):
                    t0 = time.perf_counter()
                    recs = gen.generate(s.image)
                    wall = time.perf_counter() - t0
                    m = np.array([r["segmentation"] for r in recs], dtype=bool).reshape(-1, *s.image.shape[:2])
                    best, _ = average_recall(s.masks, list(m))
                    per_mask = mask_iou(m, s.masks).max(axis=1) if len(m) else np.zeros(0)  # best instance
                    masks[mode] = m
                    row[mode] = {"masks": len(m), "wall_s": wall, "best_iou": best, "mask_iou": per_mask.tolist(),
                                 "decoder_prompts": int(gen.stats.get("decoder_prompts", 0)) if hasattr(gen, "stats")
                                 else None}
                    if mode == "hierarchical":
                        row[mode]["covered_fraction"] = gen.stats["covered_fraction"]
                d, h = masks["dense"], masks["hierarchical"]
                row["recovered"] = int((mask_iou(d, h).max(axis=1) >= 0.8).sum()) if len(d) and len(h) else 0
                rows.append(row)
            out.setdefault(variant, {})[tname] = _summary(rows, th)
    return out


def _summary(rows: list[dict], th: dict) -> dict:
    res = {**th, "images": len(rows)}
    for mode in ("dense", "hierarchical"):
        best = [b for r in rows for b in r[mode]["best_iou"]]
        thr = np.round(np.arange(0.5, 0.951, 0.05), 2)
        kept = np.array([v for r in rows for v in r[mode]["mask_iou"]])
        res[mode] = {"masks_per_image": float(np.mean([r[mode]["masks"] for r in rows])),
                     "precision_at_0.5": float((kept >= 0.5).mean()) if len(kept) else None,
                     "mean_iou_of_output_masks": float(kept.mean()) if len(kept) else None,
                     "average_recall": float(np.mean([np.mean(np.array(best) >= t) for t in thr])),
                     "miou_best_per_instance": float(np.mean(best)),
                     "wall_s_per_image": float(np.mean([r[mode]["wall_s"] for r in rows])),
                     "decoder_prompts_per_image": float(np.mean([r[mode]["decoder_prompts"] or 0 for r in rows]))}
    res["hierarchical"]["covered_fraction"] = float(np.mean([r["hierarchical"]["covered_fraction"] for r in rows]))
    res["speedup_hierarchical_vs_dense"] = res["dense"]["wall_s_per_image"] / res["hierarchical"]["wall_s_per_image"]
    dense_total = sum(r["dense"]["masks"] for r in rows)
    res["dense_masks_recovered"] = (sum(r["recovered"] for r in rows) / dense_total) if dense_total else None
    return res


def figures(rel: dict, fig_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rel)
    fig, axes = plt.subplots(2, len(names), figsize=(5.2 * len(names), 8.2),
                             gridspec_kw={"height_ratios": [3, 1]}, squeeze=False)
    for j, name in enumerate(names):
        ax, axc = axes[0, j], axes[1, j]
        ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1, label="perfect calibration")
        for key, colour in (("before", "tab:red"), ("after", "tab:blue")):
            r = rel[name][key]["all"]
            centres = (np.array(r["bin_edges"][:-1]) + 0.05)
            mp = np.array([np.nan if v is None else v for v in r["mean_pred"]])
            ma = np.array([np.nan if v is None else v for v in r["mean_actual"]])
            ax.plot(mp, ma, "o-", color=colour, label=f"{key}: ECE {r['ece']:.3f}")
            off = -0.02 if key == "before" else 0.02
            axc.bar(centres + off, r["count"], width=0.04, color=colour, label=key)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted IoU (bin mean)", ylabel="actual IoU (bin mean)",
               title=f"{name} (seed 1): all output masks")
        ax.legend(loc="upper left", fontsize=8)
        axc.set(xlim=(0, 1), xlabel="predicted IoU bin", ylabel="masks")
        axc.set_yscale("log")
        axc.legend(fontsize=8)
    fig.suptitle("Bundled default: IoU-head reliability before/after calibration (point, box and grid prompts)")
    fig.tight_layout()
    p1 = fig_dir / "calibration_reliability.png"
    fig.savefig(p1, dpi=90)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    a = rel[names[0]]["_arrays"]
    bins = np.linspace(-10, 30, 81)
    axes[0].hist(a["maxl"], bins, alpha=0.6, color="tab:red", label="before")
    axes[0].hist(a["maxl_after"], bins, alpha=0.6, color="tab:blue", label="after")
    axes[0].axvline(HIGH_SCORE, color="k", ls="--", lw=1, label="TinySAM covered 8.5")
    axes[0].set(xlabel="largest logit of a grid-prompt mask", ylabel="masks", title=f"{names[0]}: mask logits")
    axes[0].legend(fontsize=8)
    sb = np.linspace(0, 1, 51)
    axes[1].hist(np.nan_to_num(a["stab"]), sb, alpha=0.6, color="tab:red", label="before")
    axes[1].hist(np.nan_to_num(a["stab_after"]), sb, alpha=0.6, color="tab:blue", label="after")
    axes[1].axvline(0.95, color="k", ls="--", lw=1, label="stability 0.95")
    axes[1].set(xlabel="stability score (offset 1)", ylabel="masks", title=f"{names[0]}: stability of grid masks")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    p2 = fig_dir / "calibration_distributions.png"
    fig.savefig(p2, dpi=90)
    plt.close(fig)
    return [str(p1.relative_to(ROOT)) if p1.is_relative_to(ROOT) else str(p1),
            str(p2.relative_to(ROOT)) if p2.is_relative_to(ROOT) else str(p2)]


def markdown(report: dict) -> str:
    lines = [f"# Calibration of the bundled default\n\nCommand: `{report['command']}`\n",
             f"Calibration (fitted on seed 2, disjoint from the seed-1 evaluation images): logit scale "
             f"{report['calibration']['logit_scale']:.4f}, offset {report['calibration']['logit_offset']:.4f}, "
             f"IoU map with {len(report['calibration']['iou_x'])} knots.\n",
             "## IoU-head reliability (10 bins, all output masks)\n",
             "| split | source | masks | ECE before | ECE after | mean gap before | mean gap after | Spearman |",
             "|---|---|---|---|---|---|---|---|"]
    for name, per in report["reliability"].items():
        for src in ("all", *SOURCES):
            b, a = per["before"][src], per["after"][src]
            lines.append(f"| {name} | {src} | {b['masks']} | {b['ece']:.3f} | {a['ece']:.3f} | {b['mean_gap']:+.3f} "
                         f"| {a['mean_gap']:+.3f} | {b['spearman']:.3f} |")
    lines += ["", "## Grid-prompt masks vs TinySAM's thresholds\n",
              "| split | | any pixel > 8.5 | stability >= 0.95 | pred IoU > 0.88 | both | actual IoU >= 0.88 |",
              "|---|---|---|---|---|---|---|"]
    for name, per in report["reliability"].items():
        for k in ("before", "after"):
            d = per["distributions"][k]
            lines.append(f"| {name} | {k} | {d['any_pixel_above_8.5']:.3f} | {d['stability_ge_0.95']:.3f} | "
                         f"{d['pred_iou_gt_0.88']:.3f} | {d['passing_both']:.3f} | {d['actual_iou_ge_0.88']:.3f} |")
    lines += ["", f"## Everything mode, heldout images 0..{report['everything_images'] - 1}, points_per_side "
              f"{report['points_per_side']}\n",
              "| runtime | thresholds (IoU/stab) | mode | masks/image | AR | mIoU (best/instance) | precision@0.5 |"
              " mean IoU of output masks | s/image | prompts/image | speed-up | dense recovered |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for variant, per in report["everything"].items():
        for r in per.values():
            for mode in ("dense", "hierarchical"):
                m = r[mode]
                rec = r["dense_masks_recovered"]
                extra = (f"{r['speedup_hierarchical_vs_dense']:.2f}x | {'-' if rec is None else f'{rec:.2f}'}"
                         if mode == "hierarchical" else " | ")
                prec, mio = m["precision_at_0.5"], m["mean_iou_of_output_masks"]
                lines.append(f"| {variant} | {r['pred_iou_thresh']}/{r['stability_score_thresh']} | {mode} | "
                             f"{m['masks_per_image']:.1f} | {m['average_recall']:.3f} | {m['miou_best_per_instance']:.3f} | "
                             f"{'-' if prec is None else f'{prec:.2f}'} | {'-' if mio is None else f'{mio:.3f}'} | "
                             f"{m['wall_s_per_image']:.2f} | {m['decoder_prompts_per_image']:.0f} | {extra} |")
    lines += ["", f"Figures: {', '.join(report['figures'])}. Machine: {report['machine']}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calibrated", required=True, help="bundle with the calibration to measure")
    ap.add_argument("--images", type=int, default=30, help="images per evaluation split (reliability)")
    ap.add_argument("--splits", default="heldout,dr_heldout")
    ap.add_argument("--everything-images", type=int, default=10)
    ap.add_argument("--points-per-side", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "bench/results/calibration"))
    ap.add_argument("--figures", default=str(ROOT / "docs"))
    args = ap.parse_args(argv)
    bundle = load_bundle(args.calibrated)
    cal = bundle.calibration
    if cal.is_identity:
        print(f"{args.calibrated}: the bundle has no calibration to measure", file=sys.stderr)
        return 2
    t0 = time.time()
    rel = reliability_part(bundle, cal, [s for s in args.splits.split(",") if s], args.images, args.threads)
    fig_dir = Path(args.figures)
    fig_dir.mkdir(parents=True, exist_ok=True)
    figs = figures(rel, fig_dir)
    for per in rel.values():
        per.pop("_arrays")
    every = everything_part(bundle, cal, args.everything_images, args.points_per_side, args.threads)
    report = {"command": "python bench/calibration.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "calibration": cal.to_json(), "reliability_images_per_split": args.images,
              "reliability": rel, "everything_images": args.everything_images,
              "points_per_side": args.points_per_side, "everything": every, "figures": figs,
              "machine": f"{platform.machine()}, {args.threads} onnxruntime thread(s), shared 2-core host",
              "seconds": round(time.time() - t0, 1)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
