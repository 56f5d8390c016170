"""The bundled default encoder's KV260 build with its weights on chip and with every MVAU + Requant pair on the
token-batched unit (``BuildOptions(token_batch=B)``), side by side in one run (issue 15).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/token_batch_build.py [--batch 16] [--out bench/results/token_batch_build]

Quantizes the bundled checkpoint once (W8A8 PTQ, as ``samfpga build-hw`` does), runs the software steps through
``minimize_bit_width`` once (the fit search's folding), then finishes the graph twice: ``transpose_decomposition``
+ ``estimates`` as built today, and ``token_batch`` + ``transpose_decomposition`` + ``estimates``. Both graphs are
executed in python (``python_view``) on the bundled sample and compared (tolerance 0). Figures: the project's
resource models (own model / FINN estimate per layer, as the build report labels them), no synthesis.
Writes ``<out>.json`` / ``<out>.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import numpy as np

RES = ("LUT", "FF", "BRAM36", "URAM", "DSP")
FRONT = ("qonnx_to_finn", "tidy_up", "streamline", "pixel_input", "convert_to_hw", "minimize_bit_width_initial",
         "partition", "specialize", "fold", "minimize_bit_width")


def _input(model) -> np.ndarray:
    """The bundled sample resized to the graph input (uint8 values, NHWC with pixel_input, as float32)."""
    from PIL import Image

    from samfpga.assets import sample_images
    from samfpga.image_io import read_image

    shape = model.get_tensor_shape(model.graph.input[0].name)
    img, _ = read_image(sample_images()[0], convert=True)
    hw = (shape[2], shape[1]) if shape[-1] == 3 else (shape[3], shape[2])
    arr = np.asarray(Image.fromarray(img).resize(hw), dtype=np.float32)
    return (arr if shape[-1] == 3 else arr.transpose(2, 0, 1)).reshape(shape)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--board", default="kv260")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "token_batch_build")
    a = ap.parse_args(argv)

    from qonnx.core.modelwrapper import ModelWrapper

    import samfpga.hw.custom_ops  # noqa: F401
    from samfpga.hw.build.config import BuildConfig, BuildOptions
    from samfpga.hw.build.package import python_view
    from samfpga.hw.build.report import build_report
    from samfpga.hw.build.speedups import installed
    from samfpga.hw.build.steps import STEPS, BuildContext
    from samfpga.hw.build.verify import execute
    from samfpga.hw.build_cli import DEFAULT_CHECKPOINT, quantize_checkpoint
    from samfpga.hw.finn_env import boot

    out: dict = {"command": "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/token_batch_build.py"
                            + (f" --batch {a.batch}" if a.batch != 16 else ""), "batch": a.batch, "board": a.board,
                 "source": "The build's resource models (own model where registered, FINN estimate otherwise); "
                           "no synthesis"}
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="tb_build_") as td:
        td = Path(td)
        boot(td / "finn")
        q = quantize_checkpoint(DEFAULT_CHECKPOINT, 8, td / "enc.onnx")
        work = td / "work"
        work.mkdir()
        ctx = BuildContext(BuildConfig(board=a.board, output_dir=str(work),
                                       options=BuildOptions(token_batch=a.batch)), out=work)
        model = ModelWrapper(str(q))
        with installed():
            for name in FRONT:
                print(name, flush=True)
                model = STEPS[name](model, ctx)
            x = _input(model)
            runs = {}
            for label in ("on_chip", "token_batch"):
                m = copy.deepcopy(model)
                if label == "token_batch":
                    m = STEPS["token_batch"](m, ctx)
                m = STEPS["estimates"](STEPS["transpose_decomposition"](m, ctx), ctx)
                rep = build_report(m, ctx.results, ctx.cfg.board_spec, ctx.cfg.clock, ctx.cfg.fit_limit)
                t1 = time.time()
                y = execute(python_view(m), x)
                runs[label] = {"report": rep, "output": y, "exec_s": round(time.time() - t1, 1)}
                print(label, rep["total"]["resources"], rep["total"]["fps"], flush=True)
    out["wall_s"] = round(time.time() - t0, 1)
    out["bit_exact"] = bool(np.array_equal(runs["on_chip"]["output"], runs["token_batch"]["output"]))
    out["output_unique_values"] = int(np.unique(runs["on_chip"]["output"]).size)
    out["builds"] = {}
    for label, r in runs.items():
        t = r["report"]["total"]
        out["builds"][label] = {"resources": t["resources"], "utilization": t["utilization"], "fits": t["fits"],
                                "fps": t["fps"], "bottleneck": t["bottleneck_node"],
                                "bottleneck_cycles": t["bottleneck_cycles"],
                                "by_op_type": {op: {k: v[k] for k in (*RES, "layers")}
                                               for op, v in r["report"]["op_types"].items()},
                                "python_exec_s": r["exec_s"]}
    tb = runs["token_batch"]["report"]["token_batch"]
    out["token_batch"] = {k: tb[k] for k in ("layers", "kept", "image_bytes", "ddr_bytes_per_frame",
                                               "ddr_gbps_at_fps")}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1, default=float) + "\n")
    builds, tbs = out["builds"], out["token_batch"]
    lines = ["# Bundled default, KV260: weights on chip vs token-batched layers (issue 15)", "",
             f"`{out['command']}` ({out['wall_s']:.0f} s here). {out['source']}. Same quantized encoder, same "
             "folding (the fit search's, for on-chip weights); the second build puts every MVAU + Requant pair "
             f"with constant weights on the token-batched unit (B = {a.batch}).", "",
             "| build | LUT | FF | BRAM36 | URAM | DSP | fits | fps | slowest layer |", "|---|---|---|---|---|---|---|---|---|"]
    for label, r in builds.items():
        lines.append(f"| {label.replace('_', ' ')} | " + " | ".join(f"{r['resources'][k]:,.0f}" for k in RES)
                     + f" | {'yes' if r['fits'] else 'no'} | {r['fps']:.3g} | {r['bottleneck']} "
                     f"({r['bottleneck_cycles']:,} cycles) |")
    kept = "; ".join(f"{k}: {v}" for k, v in sorted(tbs["kept"].items()))
    lines += ["", f"Token-batched: {len(tbs['layers'])} layers, DDR image {tbs['image_bytes']:,} bytes, "
                  f"{tbs['ddr_bytes_per_frame']:,} bytes read per frame"
                  + (f" ({tbs['ddr_gbps_at_fps']:.3g} GB/s at its fps)" if tbs["ddr_gbps_at_fps"] else "") + ".",
              f"Kept on chip: {len(tbs['kept'])}" + (f" ({kept})" if kept else "") + ".", "",
              f"Python execution of both graphs on the bundled sample: "
              f"{'identical' if out['bit_exact'] else 'DIFFERENT'} ({out['output_unique_values']} distinct output "
              "values).", "", "Per layer type (layers x: LUT / BRAM36 / DSP):", "",
              "| layer type | on chip | token batch |", "|---|---|---|"]

    def cell(d: dict | None) -> str:
        return "-" if d is None else f"{d['layers']} x: {d['LUT']:,.0f} / {d['BRAM36']:,.1f} / {d['DSP']:,.0f}"

    ops = sorted(set(builds["on_chip"]["by_op_type"]) | set(builds["token_batch"]["by_op_type"]))
    for op in ops:
        lines.append(f"| {op} | {cell(builds['on_chip']['by_op_type'].get(op))} | "
                     f"{cell(builds['token_batch']['by_op_type'].get(op))} |")
    Path(f"{a.out}.md").write_text("\n".join(lines) + "\n")
    print(Path(f"{a.out}.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
