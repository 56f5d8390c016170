"""Measure the host runtime against torch on this machine: ``python -m samfpga.models.export.latency``.

Exports a model (``--checkpoint`` or seeded random ``--variant``, default vit_t at 1024) to a temporary bundle
and times, on the same weights and inputs: the image encoder (onnxruntime vs torch), the prompt encoder +
mask decoder per call for 1 prompt and for a batch of 64 single-point prompts (onnxruntime vs torch), and the
host's mask postprocessing; also records the max abs difference of their outputs. Writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from samfpga.predictor import Predictor

from ..build import build_sam
from .bundle import export_bundle


def _time(fn, repeat: int) -> float:
    fn()  # warm-up
    best = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t)
    return float(np.median(best))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--variant", default="vit_t")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads")
    p.add_argument("--out", type=Path, default=Path("out/runtime_latency.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sam = build_sam(args.variant, checkpoint=args.checkpoint, image_size=args.image_size).eval()
    s = sam.img_size
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = export_bundle(sam, Path(tmp) / "b")
        pred = Predictor.from_bundle(bundle, threads=args.threads)
        res: dict = {"model": args.checkpoint.name if args.checkpoint else f"random {args.variant}", "image_size": s,
                     "threads": args.threads, "machine": platform.processor() or platform.machine(),
                     "onnxruntime": ort.__version__, "torch": torch.__version__}
        x = rng.normal(size=(1, 3, s, s)).astype(np.float32)
        xt = torch.from_numpy(x)
        with torch.no_grad():
            emb_t = sam.image_encoder(xt)
        emb = pred.encoder.encode(x)
        res["encoder_max_abs_diff"] = float(np.abs(emb - emb_t.numpy()).max())
        res["encoder_onnx_s"] = _time(lambda: pred.encoder.encode(x), args.repeat)
        with torch.no_grad():
            res["encoder_torch_s"] = _time(lambda: sam.image_encoder(xt), args.repeat)
        pe = sam.prompt_encoder.get_dense_pe()
        for batch in (1, 64):
            coords = rng.uniform(0, s, size=(batch, 1, 2)).astype(np.float32)
            labels = np.ones((batch, 1), np.float32)
            pc = np.concatenate([coords, np.zeros((batch, 1, 2), np.float32)], 1)
            pl = np.concatenate([labels, -np.ones((batch, 1), np.float32)], 1)
            ct, lt = torch.from_numpy(coords), torch.from_numpy(labels).int()

            def run_torch(ct=ct, lt=lt):
                with torch.no_grad():
                    sp, de = sam.prompt_encoder(points=(ct, lt), boxes=None, masks=None)
                    return sam.mask_decoder(emb_t, pe, sp, de, multimask_output=True)

            low_t, _ = run_torch()
            low, _ = pred.decoder(emb, pc, pl)
            res[f"decoder_b{batch}_max_abs_diff"] = float(np.abs(low[:, 1:] - low_t.numpy()).max())
            res[f"decoder_b{batch}_onnx_s"] = _time(lambda pc=pc, pl=pl: pred.decoder(emb, pc, pl), args.repeat)
            res[f"decoder_b{batch}_torch_s"] = _time(run_torch, args.repeat)
            res[f"decoder_b{batch}_torch_over_onnx"] = res[f"decoder_b{batch}_torch_s"] / res[f"decoder_b{batch}_onnx_s"]
        image = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
        pred.set_image(image)
        res["set_image_480x640_s"] = _time(lambda: pred.set_image(image), args.repeat)
        pt = np.array([[320.0, 240.0]])
        res["predict_1point_480x640_s"] = _time(lambda: pred.predict(pt, np.array([1])), args.repeat)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    for k, v in res.items():
        print(f"{k:32s} {v:.4g}" if isinstance(v, float) else f"{k:32s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
