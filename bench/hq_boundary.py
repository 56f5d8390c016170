"""HQ-SAM's head against SAM's own mask: mask IoU and boundary IoU on thin and holed objects.

    .venv/bin/python bench/hq_boundary.py --checkpoint CKPT [--splits dr_heldout shift] [--images 40]
        [--out bench/results/hq_boundary]

``CKPT`` is a samfpga checkpoint with HQ-SAM's head (``hq_token: true``). Per instance of the thin
(``THIN_SHAPES``) and holed (``HOLED_SHAPES``) families of each split, in torch (the runtime bundle has no HQ
path yet): the tight box (single-mask output) and the centre point (the multimask output of highest predicted
IoU), each as SAM's mask, the HQ mask alone (``hq_token_only``) and their sum (HQ-SAM's default output); logits
upsampled bilinearly to the image and thresholded at 0. Boundary IoU: ``samfpga.models.evaluate.boundary_iou``
(band of 2 % of the diagonal).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from samfpga.models import build_sam
from samfpga.models.data.prompts import centre_point, mask_box
from samfpga.models.data.randomized import HOLED_SHAPES, THIN_SHAPES
from samfpga.models.data.splits import SPLITS, get_split
from samfpga.models.evaluate import boundary_iou, iou
from samfpga.models.mask_decoder_hq import MaskDecoderHQ
from samfpga.models.sam import Sam

OUTPUTS = ("sam", "hq", "sam+hq")


@torch.no_grad()
def predict(sam: Sam, emb: torch.Tensor, early: torch.Tensor, box: tuple[int, ...] | None,
            point: tuple[int, int] | None, size: int) -> dict[str, np.ndarray]:
    """The three masks (H, W) bool of one prompt (see module docstring)."""
    if box is not None:
        sparse, dense = sam.prompt_encoder(points=None, boxes=torch.tensor([box], dtype=torch.float32), masks=None)
    else:
        pts = (torch.tensor([[point]], dtype=torch.float32), torch.ones(1, 1))
        sparse, dense = sam.prompt_encoder(points=pts, boxes=None, masks=None)
    out = sam.mask_decoder.predict_all(emb, sam.prompt_encoder.get_dense_pe(), sparse, dense, early)
    k = 0 if box is not None else int(out.iou_pred[0, 1:].argmax()) + 1
    logits = {"sam": out.masks[:, k:k + 1], "hq": out.hq_masks}
    logits["sam+hq"] = logits["sam"] + logits["hq"]
    return {name: (F.interpolate(v, (size, size), mode="bilinear", align_corners=False)[0, 0] > 0).numpy()
            for name, v in logits.items()}


def measure(sam: Sam, split: str, images: int) -> dict:
    size = sam.img_size
    spl = get_split(split)
    draw = spl.sample_function(size)
    rows: dict[str, dict[str, list[float]]] = {}
    for i in range(images):
        s = draw(spl.seed, i)
        x = (torch.from_numpy(s.image).permute(2, 0, 1)[None].float() - sam.pixel_mean) / sam.pixel_std
        with torch.no_grad():
            emb, early = sam.image_encoder.forward_with_early(x)
        for gt, kind in zip(s.masks, s.kinds):
            group = "thin" if kind in THIN_SHAPES else "holed" if kind in HOLED_SHAPES else None
            if group is None:
                continue
            for prompt, masks in (("box", predict(sam, emb, early, mask_box(gt), None, size)),
                                  ("point", predict(sam, emb, early, None, centre_point(gt), size))):
                for out in OUTPUTS:
                    r = rows.setdefault(f"{group}/{prompt}/{out}", {"iou": [], "boundary_iou": []})
                    r["iou"].append(iou(masks[out], gt))
                    r["boundary_iou"].append(boundary_iou(gt, masks[out]))
    return {key: {"instances": len(v["iou"]), "miou": float(np.mean(v["iou"])),
                  "boundary_iou": float(np.mean(v["boundary_iou"]))} for key, v in sorted(rows.items())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--splits", nargs="+", default=["dr_heldout", "shift"], choices=sorted(SPLITS))
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench/results/hq_boundary"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sam = build_sam(checkpoint=args.checkpoint)
    if not isinstance(sam.mask_decoder, MaskDecoderHQ):
        print(f"hq_boundary: {args.checkpoint} has no HQ-SAM head (hq_token)", file=sys.stderr)
        return 2
    report = {"checkpoint": args.checkpoint, "images": args.images,
              "command": "python bench/hq_boundary.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "splits": {name: measure(sam, name, args.images) for name in args.splits}}
    lines = [f"# HQ head vs SAM mask on thin and holed objects ({args.checkpoint})", "",
             f"Measured with `{report['command']}`.", "",
             "| split | group / prompt | instances | " + " | ".join(f"mIoU {o} | bIoU {o}" for o in OUTPUTS) + " |",
             "|---|---|---|" + "---|---|" * len(OUTPUTS)]
    for name, rows in report["splits"].items():
        for gp in sorted({k.rsplit("/", 1)[0] for k in rows}):
            cells = " | ".join(f"{rows[f'{gp}/{o}']['miou']:.3f} | {rows[f'{gp}/{o}']['boundary_iou']:.3f}"
                               for o in OUTPUTS)
            lines.append(f"| {name} | {gp} | {rows[f'{gp}/sam']['instances']} | {cells} |")
    for path, text in ((args.out.with_suffix(".json"), json.dumps(report, indent=1) + "\n"),
                       (args.out.with_suffix(".md"), "\n".join(lines) + "\n")):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
