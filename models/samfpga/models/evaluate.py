"""Promptable-segmentation evaluation on a held-out split (``data.splits``: ``heldout`` synthetic scenes, ``dr_heldout``
domain-randomised scenes, ``shift`` scenes of shape and texture families no training split uses).

``python -m samfpga.models.evaluate (--checkpoint CKPT | --bundle DIR) [--split NAME] [--images N] [--json OUT]``

Per ground-truth instance (prompts in ``data.prompts``):

- ``center_point``: one positive click at the interior point farthest from the boundary; multimask output,
  the mask with the highest predicted IoU is taken (what ``SamPredictor`` users do with one click);
- ``random_point``: one positive click at a uniformly random interior pixel (seeded per image), same rule;
- ``box``: the tight box, single-mask output;
- ``clicks_1..3``: SAM's iterative protocol: click 1 = centre point, each further click at the point
  farthest from the boundary of the largest error region (positive on missed foreground), all clicks so
  far as prompt, single-mask output from click 2 on.

Everything mode: the shipped ``samfpga.everything.AutomaticMaskGenerator`` (SAM's grid of single-point
prompts, predicted-IoU and stability filters, box NMS), as users run it; average recall (AR) = recall of
ground-truth instances averaged over IoU thresholds 0.5:0.95.

The model runs on the host runtime's ``samfpga.predictor.Predictor``: an exported ONNX bundle as it is, a torch
checkpoint after exporting it to a temporary bundle (the export is checked against torch to 1e-4 by
tests/test_export.py), so the figures are those of the runtime users run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from samfpga.backends import EncoderBackend
from samfpga.bundle import Bundle
from samfpga.decoder import OnnxDecoder
from samfpga.everything import AutomaticMaskGenerator
from samfpga.predictor import Predictor

from .build import build_sam
from .data.prompts import centre_point, mask_box, next_click, random_point
from .data.splits import SPLITS, get_split
from .data.synthetic import sample_rng
from .export import export_bundle

IOU_THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def boundary_iou(gt: np.ndarray, pred: np.ndarray, dilation_ratio: float = 0.02) -> float:
    """Boundary IoU (Cheng et al., CVPR 2021): IoU of the two masks' boundary bands, each the pixels of the mask
    within ``d = max(1, round(dilation_ratio * image diagonal))`` of its contour (the image edge counts as
    contour, as in the reference implementation). Sensitive to boundary quality where mask IoU of large objects
    is not. gt, pred: (H, W) bool."""
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    if gt.shape != pred.shape or gt.ndim != 2:
        raise ValueError(f"boundary_iou needs two (H, W) masks of one shape, got {gt.shape} and {pred.shape}")
    d = max(1, int(round(dilation_ratio * float(np.hypot(*gt.shape)))))

    def band(m: np.ndarray) -> np.ndarray:
        # 3x3 square erosion, d times: the band of chessboard distance <= d, as cv2.erode in the reference
        return m & ~ndimage.binary_erosion(np.pad(m, 1), np.ones((3, 3), bool), iterations=d)[1:-1, 1:-1]

    return iou(band(gt), band(pred))


def _best(masks: np.ndarray, scores: np.ndarray) -> np.ndarray:
    return masks[int(np.argmax(scores))]


def evaluate_prompts(pred: Predictor, image: np.ndarray, gts: np.ndarray, rng: np.random.Generator,
                     clicks: int = 3) -> dict[str, list[float]]:
    """Per-instance IoUs of one image for every prompt protocol (see module docstring)."""
    res: dict[str, list[float]] = {"center_point": [], "random_point": [], "box": []}
    res.update({f"clicks_{k}": [] for k in range(1, clicks + 1)})
    pred.set_image(image)
    for gt in gts:
        cx, cy = centre_point(gt)
        masks, scores, _ = pred.predict(np.array([[cx, cy]]), np.array([1]), multimask_output=True)
        first = _best(masks, scores)
        res["center_point"].append(iou(first, gt))
        rx, ry = random_point(gt, rng)
        masks, scores, _ = pred.predict(np.array([[rx, ry]]), np.array([1]), multimask_output=True)
        res["random_point"].append(iou(_best(masks, scores), gt))
        masks, _, _ = pred.predict(box=np.array(mask_box(gt), dtype=np.float64), multimask_output=False)
        res["box"].append(iou(masks[0], gt))
        pts, labels, cur = [[cx, cy]], [1], first
        res["clicks_1"].append(iou(cur, gt))
        for k in range(2, clicks + 1):
            nxt = next_click(cur, gt)
            if nxt is not None:
                pts.append(list(nxt[0]))
                labels.append(nxt[1])
                masks, _, _ = pred.predict(np.array(pts), np.array(labels), multimask_output=False)
                cur = masks[0]
            res[f"clicks_{k}"].append(iou(cur, gt))
    return res


def everything_masks(pred: Predictor, image: np.ndarray, points_per_side: int = 16, pred_iou_thresh: float = 0.8,
                     stability_thresh: float = 0.9) -> list[np.ndarray]:
    """The shipped ``AutomaticMaskGenerator`` (one crop layer, box NMS 0.7) on ``image``: (H, W) bool masks."""
    gen = AutomaticMaskGenerator(pred, points_per_side=points_per_side, pred_iou_thresh=pred_iou_thresh,
                                 stability_score_thresh=stability_thresh)
    return [r["segmentation"] for r in gen.generate(image)]


def average_recall(gts: np.ndarray, preds: list[np.ndarray]) -> tuple[list[float], float]:
    """Best IoU per ground-truth instance and the recall averaged over thresholds 0.5:0.95 (as a fraction)."""
    best = [max((iou(p, g) for p in preds), default=0.0) for g in gts]
    return best, float(np.mean([np.mean(np.array(best) >= t) for t in IOU_THRESHOLDS]))


def evaluate(pred: Predictor, seed: int | None = None, images: int = 100, image_size: int = 256,
             everything_images: int = 10, points_per_side: int = 16, progress: bool = True,
             pred_iou_thresh: float = 0.8, stability_thresh: float = 0.9, split: str = "heldout") -> dict[str, Any]:
    """Evaluate on ``images`` images of the evaluation split ``split`` (``data.splits.SPLITS``; ``seed``
    replaces its seed); returns the report dict."""
    from tqdm import tqdm

    spl = get_split(split, seed)
    draw = spl.sample_function(image_size)
    per: dict[str, list[float]] = {}
    kinds: list[str] = []
    t0 = time.time()
    for i in tqdm(range(images), desc=f"prompts ({spl.name})", disable=not progress):
        s = draw(spl.seed, i)
        r = evaluate_prompts(pred, s.image, s.masks, sample_rng(spl.seed, i, stream=1))
        for k, v in r.items():
            per.setdefault(k, []).extend(v)
        kinds.extend(s.kinds)
    t_prompts = time.time() - t0
    best_all: list[float] = []
    t0 = time.time()
    n_masks = 0
    for i in tqdm(range(min(everything_images, images)), desc="everything", disable=not progress):
        s = draw(spl.seed, i)
        masks = everything_masks(pred, s.image, points_per_side, pred_iou_thresh, stability_thresh)
        n_masks += len(masks)
        best, _ = average_recall(s.masks, masks)
        best_all.extend(best)
    ar = float(np.mean([np.mean(np.array(best_all) >= t) for t in IOU_THRESHOLDS])) if best_all else None
    desc = spl.describe()
    # the held-out split keeps the description of the reports written before there were other splits
    head = {"generator": desc["generator"], "seed": spl.seed} if spl.name == "heldout" else desc
    by_kind = {}
    for kind in sorted(set(kinds)):
        sel = [j for j, k in enumerate(kinds) if k == kind]
        by_kind[kind] = {"instances": len(sel), **{p: float(np.mean([v[j] for j in sel])) for p, v in per.items()}}
    return {
        "split": {**head, "images": images, "image_size": image_size, "instances": len(per["box"])},
        "miou": {k: float(np.mean(v)) for k, v in per.items()},
        "miou_by_kind": by_kind,
        "everything": {"generator": "samfpga.everything.AutomaticMaskGenerator",
                       "images": min(everything_images, images), "points_per_side": points_per_side,
                       "average_recall": ar, "masks_per_image": n_masks / max(1, min(everything_images, images)),
                       "pred_iou_thresh": pred_iou_thresh, "stability_thresh": stability_thresh,
                       "iou_thresholds": IOU_THRESHOLDS.tolist()},
        "seconds": {"prompts": round(t_prompts, 1), "everything": round(time.time() - t0, 1)},
    }


def load_predictor(checkpoint: str | None, bundle: str | None, variant: str = "vit_t",
                   workdir: str | Path | None = None, threads: int = 1) -> Predictor:
    """The runtime ``Predictor`` of ``bundle``, or of ``checkpoint`` exported to a bundle under ``workdir``."""
    if checkpoint is not None:
        if workdir is None:
            raise ValueError("load_predictor: a checkpoint needs a workdir for its exported bundle")
        sam = build_sam(variant, checkpoint=checkpoint)
        out = Path(tempfile.mkdtemp(dir=workdir, prefix="bundle."))
        bundle = str(export_bundle(sam, out / "bundle", source=f"checkpoint {checkpoint}"))
    return Predictor.from_bundle(bundle, threads=threads)


class TorchEncoderBackend(EncoderBackend):
    """A torch image encoder (float, or Brevitas-quantized by bench/quant_accuracy.py) behind the runtime's
    encoder interface, so that encoders without an ONNX graph are measured on the same ``Predictor``."""

    def __init__(self, encoder: torch.nn.Module, image_size: int, embedding_shape: tuple[int, int, int]) -> None:
        self.encoder = encoder.eval()
        self.image_size = int(image_size)
        self.embedding_shape = tuple(int(v) for v in embedding_shape)

    @torch.no_grad()
    def _encode(self, x: np.ndarray) -> np.ndarray:
        return self.encoder(torch.from_numpy(x)).numpy()


def encoder_predictor(bundle: Bundle, encoder: torch.nn.Module, threads: int = 1) -> Predictor:
    """The runtime ``Predictor`` of ``bundle`` (its decoder.onnx, sizes, normalisation) with ``encoder`` (torch,
    (1,3,S,S) -> (1,C,h,w)) in place of encoder.onnx."""
    backend = TorchEncoderBackend(encoder, bundle.image_size, bundle.embedding_shape)
    return Predictor(backend, OnnxDecoder(bundle, threads), bundle)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--video" in argv:  # video tracking J&F: its own evaluator and options
        from .video.evaluate import main as video_main

        return video_main([a for a in argv if a != "--video"])
    ap = argparse.ArgumentParser(prog="samfpga eval", description="mIoU per prompt type and everything-mode AR "
                                 "on a held-out split; writes a JSON report. Video tracking J&F: "
                                 "samfpga eval --video --help.")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="torch checkpoint (samfpga or official layout)")
    src.add_argument("--bundle", help="exported ONNX bundle directory (runs on the host runtime)")
    ap.add_argument("--variant", default="vit_t", help="architecture of an official-layout checkpoint")
    ap.add_argument("--split", default="heldout", choices=sorted(SPLITS),
                    help="evaluation split: heldout (synthetic scenes), dr_heldout (domain-randomised scenes of the "
                    "training families), shift (shape and texture families no training split uses)")
    ap.add_argument("--seed", type=int, default=None, help="replace the split's seed (1: held out from training)")
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--everything-images", type=int, default=10)
    ap.add_argument("--points-per-side", type=int, default=16)
    ap.add_argument("--pred-iou-thresh", type=float, default=0.8, help="everything mode: keep masks above")
    ap.add_argument("--stability-thresh", type=float, default=0.9, help="everything mode: keep masks above")
    ap.add_argument("--reference", help="also evaluate this checkpoint (e.g. the teacher), or read its earlier JSON "
                    "report, and report the ratios")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the report here (atomically)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="samfpga-eval.") as workdir:
        return _run(args, workdir)


def _run(args: argparse.Namespace, workdir: str) -> int:
    try:
        pred = load_predictor(args.checkpoint, args.bundle, args.variant, workdir, args.threads)
    except (OSError, ValueError) as err:
        print(f"samfpga eval: {err}", file=sys.stderr)
        return 2
    opts = dict(pred_iou_thresh=args.pred_iou_thresh, stability_thresh=args.stability_thresh)
    report = evaluate(pred, args.seed, args.images, args.image_size, args.everything_images, args.points_per_side,
                      split=args.split, **opts)
    report["model"] = {"checkpoint": args.checkpoint, "bundle": args.bundle}
    if args.reference:
        try:
            if args.reference.endswith(".json"):  # a report written earlier by this command
                ref = json.loads(Path(args.reference).read_text())
                if ref.get("split") != report["split"]:
                    raise ValueError(f"{args.reference} was measured on {ref.get('split')}, not {report['split']}")
            else:
                ref_pred = load_predictor(args.reference, None, args.variant, workdir, args.threads)
                ref = evaluate(ref_pred, args.seed, args.images, args.image_size, args.everything_images,
                               args.points_per_side, split=args.split, **opts)
                ref["model"] = {"checkpoint": args.reference}
        except (OSError, ValueError) as err:
            print(f"samfpga eval: {err}", file=sys.stderr)
            return 2
        ref.pop("reference", None)
        ref.pop("ratio_to_reference", None)
        report["reference"] = ref
        report["ratio_to_reference"] = {k: v / ref["miou"][k] if ref["miou"][k] else None
                                        for k, v in report["miou"].items()}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text + "\n")
        tmp.replace(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
