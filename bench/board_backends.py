"""Encoder backends of a deployment package on the bundled samples: ``quant`` vs the float ``onnx`` encoder
(mask IoU), ``pynq-sim`` vs ``quant`` (identical masks and embeddings), and time per stage.

    .venv-board/bin/python bench/board_backends.py --deploy PKG [--out bench/results/board_backends.json]

Each sample is segmented with its bundled prompt (points + box, single mask) by the package's bundle with the
three encoder backends; masks are compared at the bundle's threshold. Writes JSON + a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from samfpga.assets import sample_images, sample_prompt
from samfpga.image_io import read_image
from samfpga.predictor import Predictor


def iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return 1.0 if u == 0 else float(np.logical_and(a, b).sum() / u)


def segment(p: Predictor, image: np.ndarray, prompt: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    p.set_image(image)
    t = dict(p.timings)
    masks, _, _ = p.predict(point_coords=np.array(prompt["points"], np.float32),
                            point_labels=np.array(prompt["labels"], np.int64),
                            box=np.array(prompt["box"], np.float32) if prompt.get("box") else None,
                            multimask_output=False)
    t.update({k: v for k, v in p.timings.items() if k in ("decode_s", "postprocess_s")})
    return masks[0], p.get_image_embedding(), t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deploy", required=True, type=Path)
    ap.add_argument("--out", type=Path, default=Path("bench/results/board_backends.json"))
    args = ap.parse_args(argv)
    preds = {b: Predictor.from_deploy(args.deploy, backend=b) for b in ("onnx", "quant", "pynq-sim")}
    rows = []
    for path in sample_images():
        image, _ = read_image(path)
        prompt = sample_prompt(path)
        res = {}
        for name, p in preds.items():
            t0 = time.perf_counter()
            m, e, t = segment(p, image, prompt)
            t["total_s"] = time.perf_counter() - t0
            if name == "pynq-sim":
                t.update(p.encoder.timings)
                t.update(p.encoder.accel.device.timings)
            res[name] = (m, e, t)
        rows.append({
            "image": path.name, "mask_px": {k: int(v[0].sum()) for k, v in res.items()},
            "iou_quant_vs_onnx": iou(res["quant"][0], res["onnx"][0]),
            "pynq_sim_mask_equal_quant": bool(np.array_equal(res["pynq-sim"][0], res["quant"][0])),
            "pynq_sim_embedding_equal_quant": bool(np.array_equal(res["pynq-sim"][1], res["quant"][1])),
            "embedding_max_abs_quant_vs_onnx": float(np.abs(res["quant"][1] - res["onnx"][1]).max()),
            "timings_s": {k: {kk: round(vv, 5) for kk, vv in v[2].items()} for k, v in res.items()},
        })
        print(f"{path.name}: IoU quant/onnx {rows[-1]['iou_quant_vs_onnx']:.4f}, pynq-sim == quant: "
              f"{rows[-1]['pynq_sim_mask_equal_quant']}", flush=True)
    preds["pynq-sim"].encoder.close()
    man = json.loads((args.deploy / "manifest.json").read_text())
    summary = {"package": str(args.deploy), "board": man["board"], "source": man["source"],
               "mean_iou_quant_vs_onnx": float(np.mean([r["iou_quant_vs_onnx"] for r in rows])),
               "pynq_sim_equal_quant_all": all(r["pynq_sim_mask_equal_quant"] and r["pynq_sim_embedding_equal_quant"]
                                               for r in rows),
               "samples": rows, "machine": platform.platform(), "numpy": np.__version__,
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    md = ["| sample | IoU quant vs onnx | pynq-sim == quant | encode onnx s | encode quant s | encode pynq-sim s |",
          "|---|---|---|---|---|---|"]
    for r in rows:
        t = r["timings_s"]
        md.append(f"| {r['image']} | {r['iou_quant_vs_onnx']:.4f} | {r['pynq_sim_mask_equal_quant']} | "
                  f"{t['onnx']['encode_s']:.3f} | {t['quant']['encode_s']:.3f} | {t['pynq-sim']['encode_s']:.3f} |")
    md.append(f"\nmean IoU quant vs onnx: {summary['mean_iou_quant_vs_onnx']:.4f}; package {args.deploy}")
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print(f"mean IoU quant vs onnx {summary['mean_iou_quant_vs_onnx']:.4f}; pynq-sim == quant on all samples: "
          f"{summary['pynq_sim_equal_quant_all']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
