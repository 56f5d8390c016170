"""Pictures of what a bundle does: point, box and everything results on the bundled samples and on real photographs.

    .venv/bin/python bench/gallery.py [--bundle sw/samfpga/assets/default] [--out docs]

Writes ``<out>/gallery_samples.png`` (the four bundled samples with the point and box of
``sw/samfpga/assets/samples/prompts.json``) and ``<out>/gallery_photos.png`` (scikit-learn's sample photographs
``china.jpg`` and ``flower.jpg``, CC BY 2.0 -- see sklearn/datasets/images/README.txt -- with the prompts in
``PHOTOS``), plus ``--report`` (default bench/results/gallery.json) with every figure shown (predicted IoU, mask areas, everything-mode
mask counts at both threshold sets). Each row: one positive click (best of the three multimask outputs by
predicted IoU), the box (single-mask output), and segment-everything (dense 16x16 grid) at the thresholds of
``EVAL.json`` (predicted IoU 0.5, stability 0.8) -- at SAM/TinySAM's 0.88/0.95 the count is given in the title.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from samfpga.everything import AutomaticMaskGenerator
from samfpga.image_io import read_image
from samfpga.predictor import Predictor
from samfpga.resources import package_path
from samfpga.viz import overlay

ROOT = Path(__file__).resolve().parents[1]
# (file under sklearn/datasets/images, positive click (x, y), box XYXY, credit) in the photo's pixels
PHOTOS = (
    ("china.jpg", (210, 240), (60, 20, 370, 420), "china.jpg: danielbuechele, CC BY 2.0 (scikit-learn sample)"),
    ("flower.jpg", (310, 200), (165, 80, 450, 355), "flower.jpg: vultilion, CC BY 2.0 (scikit-learn sample)"),
)
EVERYTHING = {"eval_json": (0.5, 0.8), "tinysam": (0.88, 0.95)}


def _everything(pred: Predictor, image: np.ndarray) -> dict:
    out = {}
    for name, (iou_t, stab_t) in EVERYTHING.items():
        gen = AutomaticMaskGenerator(pred, points_per_side=16, pred_iou_thresh=iou_t, stability_score_thresh=stab_t)
        out[name] = [r["segmentation"] for r in gen.generate(image)]
    return out


def run_row(pred: Predictor, image: np.ndarray, point: tuple[int, int], box: tuple[int, ...]) -> dict:
    """Overlays (3 panels, (H, W, 3) uint8) and their figures for one image."""
    pred.set_image(image)
    pts, labels = np.array([point], dtype=np.float64), np.array([1])
    masks, scores, _ = pred.predict(pts, labels, multimask_output=True)
    k = int(np.argmax(scores))
    bmask, bscore, _ = pred.predict(box=np.array(box, dtype=np.float64), multimask_output=False)
    every = _everything(pred, image)
    shown = sorted(every["eval_json"], key=lambda m: -int(m.sum()))  # large first, small ones on top
    return {
        "panels": [overlay(image, [masks[k]], points=pts, labels=labels), overlay(image, [bmask[0]], box=box),
                   overlay(image, shown)],
        "figures": {"point": {"xy": list(point), "pred_iou": float(scores[k]), "area": int(masks[k].sum())},
                    "box": {"xyxy": list(box), "pred_iou": float(bscore[0]), "area": int(bmask[0].sum())},
                    "everything_masks": {n: len(v) for n, v in every.items()}},
    }


def draw(rows: list[tuple[str, dict]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 3, figsize=(12, 3.4 * len(rows)), squeeze=False)
    for i, (name, row) in enumerate(rows):
        f = row["figures"]
        titles = [f"{name}\npoint: predicted IoU {f['point']['pred_iou']:.2f}",
                  f"box: predicted IoU {f['box']['pred_iou']:.2f}",
                  f"everything: {f['everything_masks']['eval_json']} masks at 0.5/0.8\n"
                  f"({f['everything_masks']['tinysam']} at SAM's 0.88/0.95)"]
        for j, (panel, t) in enumerate(zip(row["panels"], titles)):
            axes[i, j].imshow(panel)
            axes[i, j].set_title(t, fontsize=9)
            axes[i, j].axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", default=str(package_path("samfpga.assets", "default")))
    ap.add_argument("--out", default=str(ROOT / "docs"))
    ap.add_argument("--report", default=str(ROOT / "bench/results/gallery.json"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    pred = Predictor.from_bundle(args.bundle, threads=args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"bundle": args.bundle, "command": "python bench/gallery.py " + " ".join(argv or sys.argv[1:])}

    samples_dir = Path(package_path("samfpga.assets", "samples"))
    rows = []
    for p in json.loads((samples_dir / "prompts.json").read_text()):
        image, _ = read_image(samples_dir / p["image"])
        rows.append((f"{p['image']} ({p['kind']})", run_row(pred, image, tuple(p["points"][0]), tuple(p["box"]))))
    draw(rows, out / "gallery_samples.png", "Bundled default on the bundled samples (synthetic held-out scenes)")
    report["samples"] = {n: r["figures"] for n, r in rows}

    import sklearn.datasets

    images_dir = Path(sklearn.datasets.__file__).parent / "images"
    rows = []
    for name, point, box, credit in PHOTOS:
        image, _ = read_image(images_dir / name)
        rows.append((credit, run_row(pred, image, point, box)))
    draw(rows, out / "gallery_photos.png", "Bundled default on real photographs (never trained on photographs)")
    report["photos"] = {n: r["figures"] for n, r in rows}
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
