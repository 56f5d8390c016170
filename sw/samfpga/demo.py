"""``python -m samfpga.demo --out out/demo`` (what ``make demo`` runs): segment the bundled sample.

Loads the bundled default model (or ``--model DIR``), segments the bundled sample image with its bundled
prompt, and writes ``overlay.png``, ``mask_<i>.png`` and ``summary.json`` into ``--out``; prints the scores
and timings. Without a bundled default it exports a seeded random model on the fly (needs torch) and says so:
its masks are meaningless, only the pipeline is exercised.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .assets import default_bundle_dir, sample_images, sample_prompt
from .backends import BackendError
from .bundle import BundleError, load_bundle
from .cli import _write_json, staged_output
from .image_io import ImageError, read_image, write_png
from .predictor import Predictor
from .viz import overlay

RANDOM_SEED = 0


def _banner(msg: str) -> None:
    line = "!" * 78
    print(f"{line}\n!! {msg}\n{line}", file=sys.stderr)


def _random_bundle(tmp: Path) -> Path:
    try:
        import torch

        from samfpga.models.build import build_sam
        from samfpga.models.export import export_bundle
    except ImportError as err:
        raise SystemExit(f"samfpga demo: error: no bundled default model and no torch to build a random one ({err})") from None
    torch.manual_seed(RANDOM_SEED)
    sam = build_sam("vit_t", image_size=256)
    return export_bundle(sam, tmp / "random_bundle", source=f"RANDOM weights (vit_t at 256, seed {RANDOM_SEED})")


def _synthetic_sample() -> tuple[np.ndarray, dict]:
    h, w = 240, 320
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[...] = (40 + (xx // 8 % 2) * 20)[..., None]
    disk = (xx - 200) ** 2 + (yy - 110) ** 2 < 55**2
    img[disk] = (220, 60, 50)
    img[40:90, 30:120] = (60, 90, 220)
    return img, {"points": [[200.0, 110.0]], "labels": [1], "box": None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="samfpga.demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("out/demo"))
    p.add_argument("--model", type=Path, help="bundle directory (default: the bundled default model)")
    p.add_argument("--image", type=Path, help="image (default: the first bundled sample)")
    p.add_argument("--multimask", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="samfpga-demo-") as tmpdir:
        try:
            return _run(args, Path(tmpdir))
        except (ImageError, BundleError, BackendError) as err:
            print(f"samfpga demo: error: {err}", file=sys.stderr)
            return 2


def _run(args: argparse.Namespace, tmpdir: Path) -> int:
    bundle_dir = args.model or default_bundle_dir()
    if bundle_dir is None:
        _banner("NO BUNDLED DEFAULT MODEL: using a SEEDED RANDOM model exported on the fly. "
                "Masks are meaningless.")
        bundle_dir = _random_bundle(tmpdir)
    t0 = time.perf_counter()
    predictor = Predictor.from_bundle(load_bundle(bundle_dir))
    t_load = time.perf_counter() - t0
    image_path = args.image
    samples = sample_images()
    prompt = None
    if image_path is None and samples:
        image_path = samples[0]
    if image_path is not None:
        image, note = read_image(image_path, convert=True)
        prompt = sample_prompt(image_path) if image_path in samples else None
    else:
        _banner("NO BUNDLED SAMPLE IMAGE: using a synthetic image drawn by the demo.")
        image, prompt = _synthetic_sample()
        note = None
        image_path = Path("<synthetic>")
    if note:
        print(f"note: {note}")
    if prompt is None:
        h, w = image.shape[:2]
        prompt = {"points": [[w / 2.0, h / 2.0]], "labels": [1], "box": None}
        print("note: no bundled prompt for this image; using one foreground point at its centre")
    points = np.array(prompt["points"], dtype=np.float64).reshape(-1, 2) if prompt["points"] else None
    labels = np.array(prompt["labels"], dtype=np.int64) if prompt["points"] else None
    box = np.array(prompt["box"], dtype=np.float64) if prompt.get("box") is not None else None
    with staged_output(args.out) as tmp:
        t1 = time.perf_counter()
        predictor.set_image(image)
        t2 = time.perf_counter()
        masks, scores, _ = predictor.predict(points, labels, box, multimask_output=args.multimask)
        t3 = time.perf_counter()
        best = int(np.argmax(scores))
        for i, m in enumerate(masks):
            write_png(tmp / f"mask_{i}.png", m)
        write_png(tmp / "overlay.png", overlay(image, masks[best:best + 1], points, labels, box))
        summary = {
            "model": predictor.bundle.source, "bundle": str(predictor.bundle.root), "image": str(image_path),
            "image_size": list(image.shape[:2]), "prompt": prompt, "iou_predictions": scores.tolist(),
            "best": best, "mask_area": [int(m.sum()) for m in masks],
            "timings_s": {"load": t_load, "set_image": t2 - t1, "encode": predictor.timings.get("encode_s"),
                          "predict": t3 - t2},
        }
        _write_json(tmp / "summary.json", summary)
    print(f"model     : {summary['model']}  ({summary['bundle']})")
    print(f"image     : {image_path}  {image.shape[1]}x{image.shape[0]}")
    print(f"prompt    : points {prompt['points']} labels {prompt['labels']} box {prompt.get('box')}")
    print(f"masks     : iou_predictions {np.round(scores, 3).tolist()}, best #{best}, "
          f"area {summary['mask_area'][best]} px")
    print(f"timings   : load {t_load:.3f} s, set_image {t2 - t1:.3f} s (encoder "
          f"{predictor.timings.get('encode_s', 0):.3f} s), predict {t3 - t2:.3f} s")
    print(f"wrote     : {args.out}/overlay.png, mask_*.png, summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
