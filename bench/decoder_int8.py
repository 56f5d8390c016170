"""Int8 split decoder (onnxruntime dynamic quantization) vs float: speed and mask agreement (issue 16, item 4).

    .venv/bin/python -m bench.decoder_int8 [--models default,vit_t] [--images 4] [--threads 2] \
        [--out bench/results/decoder_int8]

``onnxruntime.quantization.quantize_dynamic`` (int8 weights, per-tensor, activations quantized at run time)
of the split decoder's prompt side and mask side (the image side runs once per image and is left float). Speed:
ms per single-point prompt at ``--threads`` threads, batches of ``--batch``, float and int8 alternating in
``--rounds`` rounds (best round's median; the machine is shared). Agreement: on ``--images`` held-out
synthetic images (seed 1) with the model's own encoder, a 4x4 grid of single-point prompts per image, the three
multimask outputs upscaled to the image and thresholded; mean mask IoU int8 vs float over all masks (a mask
empty in both counts as IoU 1), and the IoU predictions' max abs difference. ``default`` is the bundled
trained checkpoint; ``vit_t`` the 1024 model with seeded random weights (its masks are not meaningful, so its
IoU figure says little). Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def quantize(bundle_dir: Path, out_dir: Path) -> dict[str, Path]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = {}
    for name in ("decoder_prompt", "decoder_masks"):
        out[name] = out_dir / f"{name}.int8.onnx"
        quantize_dynamic(bundle_dir / f"{name}.onnx", out[name], weight_type=QuantType.QInt8)
    return out


def run_model(name: str, args: argparse.Namespace) -> dict:
    import logging

    from samfpga.backends.ort_session import make_session
    from samfpga.bundle import load_bundle
    from samfpga.decoder_prompts import decoder_prompts
    from samfpga.models.data.synthetic import SyntheticConfig, generate_sample
    from samfpga.models.export import export_bundle
    from samfpga.predictor import Predictor
    from samfpga.transforms import postprocess_masks

    from .everything_breakdown import build_model

    logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic's pre-processing advice
    sam = build_model(name)
    with tempfile.TemporaryDirectory() as tmp:
        root = export_bundle(sam, Path(tmp) / "bundle", source=f"bench {name}")
        q = quantize(root, Path(tmp))
        pred = Predictor.from_bundle(load_bundle(root), threads=args.threads)
        float_s = {k: pred.decoder.split[k] for k in ("decoder_prompt", "decoder_masks")}
        int8_s = {k: make_session(p, args.threads) for k, p in q.items()}
        size = pred.image_size

        def run(sess, side, pc, pl):
            iou, hyper, tokens = sess["decoder_prompt"].run(None, dict(side, point_coords=pc, point_labels=pl))
            low = sess["decoder_masks"].run(None, {"image_tokens": tokens, "hyper_in": hyper[:, 1:]})[0]
            return iou[:, 1:], low

        ious, iou_diff = [], 0.0
        for i in range(args.images):
            image = generate_sample(1, i, SyntheticConfig(image_size=size)).image
            pred.set_image(image)
            side = pred._decoder_image.side
            g = (np.arange(4) + 0.5) / 4 * size
            coords = np.stack(np.meshgrid(g, g), -1).reshape(-1, 1, 2).astype(np.float32)
            pc, pl = decoder_prompts(coords, np.ones((len(coords), 1)), None)
            (fi, fl), (qi, ql) = run(float_s, side, pc, pl), run(int8_s, side, pc, pl)
            fm = postprocess_masks(fl, size, pred.input_size, pred.original_size) > pred.mask_threshold
            qm = postprocess_masks(ql, size, pred.input_size, pred.original_size) > pred.mask_threshold
            inter = (fm & qm).sum((-1, -2))
            union = (fm | qm).sum((-1, -2))
            ious.extend(np.where(union > 0, inter / np.maximum(union, 1), 1.0).reshape(-1).tolist())
            iou_diff = max(iou_diff, float(np.abs(fi - qi).max()))

        rng = np.random.default_rng(0)
        coords = rng.uniform(0, size, (args.batch, 1, 2)).astype(np.float32)
        pc, pl = decoder_prompts(coords, np.ones((args.batch, 1)), None)
        side = pred._decoder_image.side
        _, hyper, tokens = float_s["decoder_prompt"].run(None, dict(side, point_coords=pc, point_labels=pl))
        feeds_p = dict(side, point_coords=pc, point_labels=pl)
        feeds_m = {"image_tokens": tokens, "hyper_in": hyper[:, 1:]}
        variants = {f"{prec}_{part}": (lambda s=s, part=part, f=f: s[part].run(None, f))
                    for prec, s in (("float", float_s), ("int8", int8_s))
                    for part, f in (("decoder_prompt", feeds_p), ("decoder_masks", feeds_m))}
        best = {k: float("inf") for k in variants}
        for _ in range(args.rounds):
            for k, fn in variants.items():
                fn()
                ts = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    fn()
                    ts.append(time.perf_counter() - t0)
                best[k] = min(best[k], statistics.median(ts))
        ms = {k: 1e3 * v / args.batch for k, v in best.items()}
        sizes = {k: os.path.getsize(p) for k, p in q.items()}
        sizes.update({f"{k}_float": os.path.getsize(root / f"{k}.onnx") for k in q})
    return {
        "image_size": size, "masks_compared": len(ious), "mean_mask_iou_int8_vs_float": float(np.mean(ious)),
        "min_mask_iou": float(np.min(ious)), "max_abs_diff_iou_prediction": iou_diff, "ms_per_prompt": ms,
        "speedup_prompt_side": ms["float_decoder_prompt"] / ms["int8_decoder_prompt"],
        "speedup_mask_side": ms["float_decoder_masks"] / ms["int8_decoder_masks"],
        "speedup_both": (ms["float_decoder_prompt"] + ms["float_decoder_masks"])
        / (ms["int8_decoder_prompt"] + ms["int8_decoder_masks"]),
        "file_bytes": sizes,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="default,vit_t")
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "decoder_int8")
    args = p.parse_args(argv)
    res = {"command": "python -m bench.decoder_int8 " + " ".join(argv if argv is not None else os.sys.argv[1:]),
           "machine": f"{platform.machine()} {os.cpu_count()} cpus, load average at start {os.getloadavg()[0]:.1f}",
           "threads": args.threads, "models": {}}
    for name in args.models.split(","):
        res["models"][name] = run_model(name, args)
        print(name, json.dumps(res["models"][name]), flush=True)
    md = [f"# Int8 split decoder (onnxruntime dynamic quantization) vs float\n\n`{res['command']}`  \n{res['machine']}, "
          f"threads {args.threads}\n", "| model | float prompt ms | int8 prompt ms | float masks ms | int8 masks ms | "
          "speedup (both) | mean mask IoU | min IoU |", "|---|---|---|---|---|---|---|---|"]
    for name, r in res["models"].items():
        m = r["ms_per_prompt"]
        md.append(f"| {name} ({r['image_size']}²) | {m['float_decoder_prompt']:.2f} | {m['int8_decoder_prompt']:.2f} | "
                  f"{m['float_decoder_masks']:.2f} | {m['int8_decoder_masks']:.2f} | {r['speedup_both']:.2f}x | "
                  f"{r['mean_mask_iou_int8_vs_float']:.4f} | {r['min_mask_iou']:.3f} |")
    md.append("\nTargets (issue 16): >= 2x faster than float, mean mask IoU >= 0.95.\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(res, indent=2) + "\n")
    Path(f"{args.out}.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
