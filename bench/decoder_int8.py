"""Int8 split decoder (onnxruntime quantization) vs float: where the time goes, speed and mask agreement
(issue 16, item 4).

    .venv/bin/python -m bench.decoder_int8 [--models default,vit_t] [--variants all] [--batch 64] \
        [--rounds 5] [--images 4] [--threads 2] [--out bench/results/decoder_int8]

Per model (``default``: the bundled trained checkpoint, 256²; ``vit_t``: the 1024² model with seeded weights, its
masks not meaningful, so its IoU figure says little) the split decoder is exported and, for the per-prompt graphs
(``decoder_prompt.onnx``, ``decoder_masks.onnx``; the image side runs once per image and stays float):

1. **Profile**: onnxruntime's profiler on the float graphs at ``--threads`` threads and batch ``--batch`` (the
   everything modes' ``points_per_batch``), kernel time by op type, and the share of all matrix products
   (``MatMul``/``Gemm``/``FusedMatMul``/``FusedGemm``, weight x activation and activation x activation alike).
2. **GEMM ceiling**: one int8 ``MatMulInteger`` (u8 x s8) vs float ``MatMul`` of the mask side's first product's
   shape on this CPU; with the profile's matrix-product share it bounds any int8 graph that speeds up only the
   products (Amdahl: ``1 / (1 - f + f / r)``).
3. **Variants** (``VARIANTS``), quantized from the graphs after ``quant_pre_process`` (shape inference + onnxruntime
   basic optimisation), static ones calibrated on ``--calib-images`` synthetic images of seed 2 (random
   single-point prompts, ``--calib-prompts`` per image in feeds of ``--calib-batch``), evaluated on seed 1 (held
   out). The calibrators keep every feed's tensors in memory (vit_t: 4 MB per prompt per tensor), hence few.
4. **Speed**: float and every variant run interleaved, in a shuffled order per round, ``--rounds`` rounds; the
   figure is each graph's fastest round (the machine is shared; the load average is recorded), in ms per prompt,
   and the process CPU time of that run. All sessions (float included) run with thread spinning off so CPU time
   counts work, not waiting. Each round makes each variant's sessions afresh (with onnxruntime's memory arena, as
   the runtime does; kept alive, one arena per session would hold GBs at vit_t's batch), runs each graph once to
   warm up and once timed. (The agreement sessions run without the arena: speed is not measured there.)
5. **Agreement**: on ``--images`` held-out images with the model's own encoder, a 4x4 grid of single-point prompts,
   the three multimask outputs upscaled to the image and thresholded: mask IoU variant vs float (a mask empty in
   both counts 1), mean and min; the IoU predictions' max abs difference.

Writes ``<out>.json`` and ``<out>.md``. Targets (issue 16): >= 2x faster than float, mean mask IoU >= 0.95.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GRAPHS = ("decoder_prompt", "decoder_masks")
MATMUL_OPS = ("MatMul", "Gemm", "FusedMatMul", "FusedGemm", "MatMulIntegerToFloat", "QLinearMatMul", "QGemm")


@dataclass(frozen=True)
class Variant:
    """One onnxruntime quantization recipe. ``ops``: "weights" quantizes only MatMul/Gemm with a 2-D constant
    weight; "all": every op type the quantizer supports, minus ``exclude_ops``."""

    doc: str
    dynamic: bool = False
    fmt: str = "QDQ"
    ops: str = "weights"
    per_channel: bool = True
    method: str = "MinMax"
    exclude_ops: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


VARIANTS = {
    "dynamic": Variant("quantize_dynamic: s8 weights per tensor, activations quantized per call", dynamic=True,
                       per_channel=False),
    "qdq_matmul": Variant("static QDQ, weight MatMul/Gemm only, s8 per-channel weights, u8 activations, MinMax"),
    "qdq_matmul_pct": Variant("as qdq_matmul, Percentile calibration (99.999)", method="Percentile"),
    "qop_matmul": Variant("static QOperator (QLinearMatMul), weight MatMul/Gemm only, per-tensor weights, MinMax",
                          fmt="QOperator", per_channel=False),
    "qdq_all": Variant("static QDQ, every supported op (Add, Mul, Transpose, ...) but Softmax, per-channel, MinMax",
                       ops="all", exclude_ops=("Softmax",)),
}


def weight_matmuls(model) -> list[str]:
    """Names of MatMul/Gemm nodes whose second input is a 2-D initializer (the layers' weights)."""
    init = {i.name: i for i in model.graph.initializer}
    return [n.name for n in model.graph.node
            if n.op_type in ("MatMul", "Gemm") and n.input[1] in init and len(init[n.input[1]].dims) == 2]


class _Feeds:
    """onnxruntime CalibrationDataReader over a list of feed dicts (duck-typed: ``get_next``)."""

    def __init__(self, feeds: list[dict]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict | None:
        return next(self._it, None)


def quantize_graph(src: Path, dst: Path, variant: Variant, feeds: list[dict]) -> None:
    """Quantize one pre-processed float graph ``src`` into ``dst`` with ``variant``."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    if variant.dynamic:
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=variant.per_channel)
        return
    model = onnx.load(src)
    init = {i.name: i for i in model.graph.initializer}
    # constants of rank 3 (folded attention terms) are not layer weights: per-channel axis 1 would be wrong for them
    exclude = [n.name for n in model.graph.node if n.op_type == "MatMul"
               and any(i in init and len(init[i].dims) != 2 for i in n.input)]
    exclude += [n.name for n in model.graph.node if n.op_type in variant.exclude_ops]
    quantize_static(src, dst, _Feeds(feeds), quant_format=getattr(QuantFormat, variant.fmt),
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=variant.per_channel,
                    calibrate_method=getattr(CalibrationMethod, variant.method),
                    nodes_to_quantize=weight_matmuls(model) if variant.ops == "weights" else None,
                    nodes_to_exclude=exclude, extra_options=dict(variant.extra))


def session(path: Path | bytes, threads: int, profile: str | None = None, arena: bool = True):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # vit_t at batch 64 has 268 MB tensors; an arena per session kept alive (float + 2 per variant) holds GBs each
    opts.enable_cpu_mem_arena = arena
    if profile:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile
    return ort.InferenceSession(path if isinstance(path, bytes) else str(path), sess_options=opts,
                                providers=["CPUExecutionProvider"])


def profile_ops(path: Path, feeds: dict, threads: int, runs: int, prefix: str) -> dict:
    """Kernel ms per run by op type (descending) and the matrix products' share of the kernel time."""
    sess = session(path, threads, profile=prefix)
    sess.run(None, feeds)
    for _ in range(runs):
        sess.run(None, feeds)
    events = json.loads(Path(sess.end_profiling()).read_text())
    us = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            us[e["args"]["op_name"]] += e["dur"]
    total = sum(us.values())
    mm = sum(v for k, v in us.items() if k in MATMUL_OPS)
    return {"ms_by_op": {k: v / 1e3 / (runs + 1) for k, v in us.most_common()},
            "matmul_share": mm / total if total else 0.0}


def gemm_ratio(m: int, k: int, n: int, threads: int, repeats: int = 7) -> dict:
    """Fastest-run ms of float MatMul and u8 x s8 MatMulInteger of an (m, k) x (k, n) product."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.standard_normal((k, n)).astype(np.float32)
    out = {}
    for kind in ("float", "int8"):
        if kind == "float":
            node = helper.make_node("MatMul", ["x", "w"], ["y"])
            inits, xt, yt = [numpy_helper.from_array(w, "w")], TensorProto.FLOAT, TensorProto.FLOAT
            x = rng.standard_normal((m, k)).astype(np.float32)
        else:
            node = helper.make_node("MatMulInteger", ["x", "w", "xz", "wz"], ["y"])
            inits = [numpy_helper.from_array(np.clip(np.round(w * 40), -127, 127).astype(np.int8), "w"),
                     numpy_helper.from_array(np.uint8(128), "xz"), numpy_helper.from_array(np.int8(0), "wz")]
            xt, yt = TensorProto.UINT8, TensorProto.INT32
            x = rng.integers(0, 256, (m, k)).astype(np.uint8)
        g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", xt, [m, k])],
                              [helper.make_tensor_value_info("y", yt, [m, n])], inits)
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        sess = session(model.SerializeToString(), threads)
        sess.run(None, {"x": x})
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            sess.run(None, {"x": x})
            ts.append(time.perf_counter() - t0)
        out[f"{kind}_ms"] = 1e3 * min(ts)
    out["shape"] = [m, k, n]
    out["int8_speedup"] = out["float_ms"] / out["int8_ms"]
    return out


def run_model(name: str, args: argparse.Namespace) -> dict:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from samfpga.bundle import load_bundle
    from samfpga.decoder_prompts import decoder_prompts
    from samfpga.models.data.synthetic import SyntheticConfig, generate_sample
    from samfpga.models.export import export_bundle
    from samfpga.predictor import Predictor
    from samfpga.transforms import postprocess_masks

    from .everything_breakdown import build_model

    logging.getLogger().setLevel(logging.ERROR)  # the quantizer's pre-processing advice
    sam = build_model(name)
    chosen = args.variants_vit_t if name == "vit_t" else args.variants
    variants = list(VARIANTS) if chosen == "all" else chosen.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = export_bundle(sam, tmp / "bundle", source=f"bench {name}")
        pred = Predictor.from_bundle(load_bundle(root), threads=args.threads)
        size = pred.image_size
        float_s = {g: session(root / f"{g}.onnx", args.threads, arena=False) for g in GRAPHS}

        def point_feeds(side: dict, coords: np.ndarray) -> tuple[dict, dict]:
            pc, pl = decoder_prompts(coords, np.ones((len(coords), 1)), None)
            fp = dict(side, point_coords=pc, point_labels=pl)
            _, hyper, tokens = float_s["decoder_prompt"].run(None, fp)
            return fp, {"image_tokens": tokens, "hyper_in": hyper[:, 1:]}

        # calibration: seed 2 images (the agreement images are seed 1)
        rng = np.random.default_rng(2)
        calib = {g: [] for g in GRAPHS}
        for i in range(args.calib_images):
            pred.set_image(generate_sample(2, i, SyntheticConfig(image_size=size)).image)
            for _ in range(0, args.calib_prompts, args.calib_batch):
                coords = rng.uniform(0, size, (args.calib_batch, 1, 2)).astype(np.float32)
                for g, f in zip(GRAPHS, point_feeds(pred._decoder_image.side, coords)):
                    calib[g].append(f)
        sessions = {"float": float_s}
        quant_s = {}
        for g in GRAPHS:
            quant_pre_process(root / f"{g}.onnx", tmp / f"{g}.pre.onnx")
        for v in variants:
            t0 = time.perf_counter()
            for g in GRAPHS:
                quantize_graph(tmp / f"{g}.pre.onnx", tmp / f"{g}.{v}.onnx", VARIANTS[v], calib[g])
            quant_s[v] = time.perf_counter() - t0
            sessions[v] = {g: session(tmp / f"{g}.{v}.onnx", args.threads, arena=False) for g in GRAPHS}

        # agreement on held-out images
        ious = {v: [] for v in variants}
        iou_diff = dict.fromkeys(variants, 0.0)
        grid = (np.arange(4) + 0.5) / 4 * size
        grid = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 1, 2).astype(np.float32)

        def decode(sess: dict, fp: dict) -> tuple[np.ndarray, np.ndarray]:
            iou, hyper, tokens = sess["decoder_prompt"].run(None, fp)
            low = sess["decoder_masks"].run(None, {"image_tokens": tokens, "hyper_in": hyper[:, 1:]})[0]
            return iou[:, 1:], postprocess_masks(low, size, pred.input_size, pred.original_size) > pred.mask_threshold

        for i in range(args.images):
            pred.set_image(generate_sample(1, i, SyntheticConfig(image_size=size)).image)
            fp, _ = point_feeds(pred._decoder_image.side, grid)
            fi, fm = decode(float_s, fp)
            for v in variants:
                qi, qm = decode(sessions[v], fp)
                inter, union = (fm & qm).sum((-1, -2)), (fm | qm).sum((-1, -2))
                ious[v].extend(np.where(union > 0, inter / np.maximum(union, 1), 1.0).reshape(-1).tolist())
                iou_diff[v] = max(iou_diff[v], float(np.abs(fi - qi).max()))

        # speed at the everything batch, on the last held-out image
        coords = np.random.default_rng(0).uniform(0, size, (args.batch, 1, 2)).astype(np.float32)
        feeds = dict(zip(GRAPHS, point_feeds(pred._decoder_image.side, coords)))
        profile = {g: profile_ops(root / f"{g}.onnx", feeds[g], args.threads, args.profile_runs,
                                  str(tmp / f"prof_{g}")) for g in GRAPHS}
        sessions.clear()  # the agreement sessions (float_s included) go before the timed ones are made
        float_s.clear()
        paths = {"float": {g: root / f"{g}.onnx" for g in GRAPHS}}
        paths.update({v: {g: tmp / f"{g}.{v}.onnx" for g in GRAPHS} for v in variants})
        best = {}
        order = list(paths)
        for r in range(args.rounds):
            np.random.default_rng(r).shuffle(order)
            for v in order:
                for g in GRAPHS:
                    sess = session(paths[v][g], args.threads)
                    sess.run(None, feeds[g])  # warm-up (and the arena's allocations)
                    c0, t0 = time.process_time(), time.perf_counter()
                    sess.run(None, feeds[g])
                    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                    del sess
                    if wall < best.get((v, g), (np.inf,))[0]:
                        best[v, g] = (wall, cpu)
        sizes = {f"{v}/{g}": os.path.getsize(tmp / f"{g}.{v}.onnx") for v in variants for g in GRAPHS}
        sizes.update({f"float/{g}": os.path.getsize(root / f"{g}.onnx") for g in GRAPHS})

    def per_prompt(v: str, g: str, i: int) -> float:
        return 1e3 * best[v, g][i] / args.batch

    res = {"image_size": size, "profile_float": profile, "file_bytes": sizes, "variants": {}}
    fw = {g: per_prompt("float", g, 0) for g in GRAPHS}
    fc = {g: per_prompt("float", g, 1) for g in GRAPHS}
    res["float"] = {"ms_per_prompt": fw, "cpu_ms_per_prompt": fc}
    for v in variants:
        w = {g: per_prompt(v, g, 0) for g in GRAPHS}
        c = {g: per_prompt(v, g, 1) for g in GRAPHS}
        res["variants"][v] = {
            "doc": VARIANTS[v].doc, "quantize_s": quant_s[v], "ms_per_prompt": w, "cpu_ms_per_prompt": c,
            "speedup_prompt_side": fw["decoder_prompt"] / w["decoder_prompt"],
            "speedup_mask_side": fw["decoder_masks"] / w["decoder_masks"],
            "speedup_both": sum(fw.values()) / sum(w.values()),
            "cpu_speedup_both": sum(fc.values()) / sum(c.values()),
            "masks_compared": len(ious[v]), "mean_mask_iou_vs_float": float(np.mean(ious[v])),
            "min_mask_iou": float(np.min(ious[v])), "max_abs_diff_iou_prediction": iou_diff[v],
        }
    return res


def markdown(res: dict) -> str:
    md = [f"# Int8 split decoder (onnxruntime quantization) vs float\n\n`{res['command']}`  \n{res['machine']}, "
          f"onnxruntime {res['onnxruntime']}, threads {res['threads']}, batch {res['batch']} prompts, "
          f"fastest of {res['rounds']} interleaved rounds (load average at end {res['load_end']:.1f})\n",
          "Targets (issue 16): >= 2x faster than float, mean mask IoU >= 0.95.\n",
          "## Where the float per-prompt graphs spend their time (onnxruntime profiler, kernel ms per batch)\n"]
    for name, r in res["models"].items():
        for g, p in r["profile_float"].items():
            top = ", ".join(f"{k} {v:.1f}" for k, v in list(p["ms_by_op"].items())[:8])
            md.append(f"- {name} ({r['image_size']}²) `{g}`: {top}; matrix products {100 * p['matmul_share']:.0f}%")
    g = res["gemm"]
    md.append(f"\nint8 GEMM ceiling on this CPU: MatMulInteger u8 x s8 vs float MatMul, {g['shape']} (m, k, n): "
              f"{g['float_ms']:.1f} ms vs {g['int8_ms']:.1f} ms = {g['int8_speedup']:.2f}x. An int8 graph that speeds "
              "up only the matrix products is bounded by Amdahl, 1 / (1 - f + f / r):\n")
    for name, r in res["models"].items():
        fl = r["float"]["ms_per_prompt"]
        tot = sum(fl.values())
        f = sum(fl[k] * r["profile_float"][k]["matmul_share"] for k in fl) / tot
        md.append(f"- {name}: products {100 * f:.0f}% of both graphs -> bound {1 / (1 - f + f / g['int8_speedup']):.2f}x")
    md += ["\n## Side by side (ms per prompt, wall = fastest round; CPU = process time of that run)\n",
           "| model | variant | prompt ms | masks ms | speedup prompt | speedup masks | speedup both (wall) | "
           "speedup both (CPU) | mean mask IoU | min IoU |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in res["models"].items():
        fl = r["float"]["ms_per_prompt"]
        md.append(f"| {name} ({r['image_size']}²) | float | {fl['decoder_prompt']:.3f} | {fl['decoder_masks']:.3f} "
                  "| 1 | 1 | 1 | 1 | 1 | 1 |")
        for v, x in r["variants"].items():
            m = x["ms_per_prompt"]
            md.append(f"| | {v} | {m['decoder_prompt']:.3f} | {m['decoder_masks']:.3f} | "
                      f"{x['speedup_prompt_side']:.2f}x | {x['speedup_mask_side']:.2f}x | {x['speedup_both']:.2f}x | "
                      f"{x['cpu_speedup_both']:.2f}x | {x['mean_mask_iou_vs_float']:.4f} | {x['min_mask_iou']:.3f} |")
    md.append("\nVariants (qdq_all is not run on vit_t by default: a try passed 8 GB resident and was stopped on this "
              "shared 24 GB machine; on default it is the least accurate):\n")
    md += [f"- `{k}`: {v.doc}" for k, v in VARIANTS.items() if any(k in r["variants"] for r in res["models"].values())]
    return "\n".join(md) + "\n"


def main(argv: list[str] | None = None) -> int:
    import onnxruntime as ort

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="default,vit_t")
    p.add_argument("--variants", default="all", help=f"comma list of {list(VARIANTS)} or 'all'")
    p.add_argument("--variants-vit-t", default="dynamic,qdq_matmul,qdq_matmul_pct,qop_matmul",
                   help="the variants for vit_t (a qdq_all try passed 8 GB resident on a 24 GB machine)")
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--calib-images", type=int, default=4)
    p.add_argument("--calib-prompts", type=int, default=4, help="calibration prompts per image")
    p.add_argument("--calib-batch", type=int, default=4, help="prompts per calibration feed")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--profile-runs", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "decoder_int8")
    args = p.parse_args(argv)
    res = {"command": "python -m bench.decoder_int8 " + " ".join(argv if argv is not None else os.sys.argv[1:]),
           "machine": f"{platform.machine()} {os.cpu_count()} cpus, load average at start {os.getloadavg()[0]:.1f}",
           "onnxruntime": ort.__version__, "threads": args.threads, "batch": args.batch, "rounds": args.rounds,
           "gemm": gemm_ratio(64 * 1024, 256, 256, args.threads), "models": {}}
    for name in args.models.split(","):
        res["models"][name] = run_model(name, args)
        print(name, json.dumps(res["models"][name]["variants"]), flush=True)
    res["load_end"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(res, indent=2) + "\n")
    Path(f"{args.out}.md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
