"""The bundled default encoder's KV260 build three ways, side by side in one run (issue 15): weights on chip; with the
token-batched unit available (``BuildOptions(token_batch=B)``: the fit search chooses per MVAU + Requant pair
whether its weights stay on chip or stream from DDR); and rolled stages with the unit available
(``BuildOptions(token_batch=B, roll=True)``).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/token_batch_build.py [--batch 16] [--out bench/results/token_batch_build]

Quantizes the bundled checkpoint once (W8A8 PTQ, as ``samfpga build-hw`` does), runs the software steps through
``specialize`` once, then per build its own fit search (``fold``: each prices what that build makes of the layers)
and the rest of the software steps to ``estimates`` (and ``roll``). Every graph is executed in python on the bundled
sample (the rolled one as rolled: ``samfpga.hw.rolled.execute_rolled``) and compared with the on-chip one
(tolerance 0). Figures: the project's resource models (own model / FINN estimate / Yosys per layer, as the build
report labels them), no synthesis. Writes ``<out>.json`` / ``<out>.md``.
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
         "partition", "specialize")
BACK = ("fold", "minimize_bit_width", "token_batch", "transpose_decomposition", "estimates", "roll")


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
    ap.add_argument("--mvau-wwidth-max", type=int, default=36, metavar="BITS",
                    help="BuildOptions.mvau_wwidth_max of all three builds (default 36, FINN's)")
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
                            + (f" --batch {a.batch}" if a.batch != 16 else "")
                            + (f" --mvau-wwidth-max {a.mvau_wwidth_max}" if a.mvau_wwidth_max != 36 else ""),
                 "batch": a.batch, "board": a.board, "mvau_wwidth_max": a.mvau_wwidth_max,
                 "source": "The build's resource models (own model where registered, FINN estimate otherwise); "
                           "no synthesis"}
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="tb_build_") as td:
        td = Path(td)
        boot(td / "finn")
        q = quantize_checkpoint(DEFAULT_CHECKPOINT, 8, td / "enc.onnx")
        work = td / "work"
        work.mkdir()
        ctx = BuildContext(BuildConfig(board=a.board, output_dir=str(work)), out=work)
        model = ModelWrapper(str(q))
        with installed():
            for name in FRONT:
                print(name, flush=True)
                model = STEPS[name](model, ctx)
            x = _input(model)
            runs = {}
            ww = a.mvau_wwidth_max
            for label, opts in (("on_chip", BuildOptions(mvau_wwidth_max=ww)),
                                ("token_batch", BuildOptions(token_batch=a.batch, mvau_wwidth_max=ww)),
                                ("rolled", BuildOptions(token_batch=a.batch, roll=True, mvau_wwidth_max=ww))):
                bdir = work / label
                bdir.mkdir()
                bctx = BuildContext(BuildConfig(board=a.board, output_dir=str(bdir), options=opts), out=bdir,
                                    results=copy.deepcopy(ctx.results))
                m = copy.deepcopy(model)
                t1 = time.time()
                for name in BACK:
                    m = STEPS[name](m, bctx)
                build_s = time.time() - t1
                rep = build_report(m, bctx.results, bctx.cfg.board_spec, bctx.cfg.clock, bctx.cfg.fit_limit)
                t1 = time.time()
                if opts.roll:
                    from samfpga.hw.rolled import execute_rolled, roll

                    y = execute_rolled(roll(m), x)
                else:
                    y = execute(python_view(m), x)
                runs[label] = {"report": rep, "output": y, "exec_s": round(time.time() - t1, 1),
                               "build_s": round(build_s, 1)}
                print(label, rep["total"]["resources"], rep["total"]["fps"], flush=True)
    out["wall_s"] = round(time.time() - t0, 1)
    out["bit_exact"] = {k: bool(np.array_equal(runs["on_chip"]["output"], runs[k]["output"]))
                        for k in ("token_batch", "rolled")}
    out["output_unique_values"] = int(np.unique(runs["on_chip"]["output"]).size)
    out["builds"] = {}
    for label, r in runs.items():
        t = r["report"]["total"]
        out["builds"][label] = {"resources": t["resources"], "utilization": t["utilization"], "fits": t["fits"],
                                "fps": t["fps"], "bottleneck": t["bottleneck_node"],
                                "bottleneck_cycles": t["bottleneck_cycles"],
                                "by_op_type": {op: {k: v[k] for k in (*RES, "layers")}
                                               for op, v in r["report"]["op_types"].items()},
                                "compute_fps": t["compute_fps"], "ddr": t["ddr"],
                                "fit_predicted": (r["report"]["fit_search"] or {}).get("predicted"),
                                "python_exec_s": r["exec_s"], "steps_s": r["build_s"]}
    rolled = runs["rolled"]["report"]["rolled"]
    out["rolled"] = {k: rolled[k] for k in ("stages", "refused", "verify", "loop_ddr_bytes")}
    tb = runs["token_batch"]["report"]["token_batch"]
    out["token_batch"] = {k: tb[k] for k in ("layers", "kept", "image_bytes", "ddr_bytes_per_frame",
                                               "ddr_gbps_at_fps", "chosen_by")}
    out["rolled_token_batch"] = sorted(runs["rolled"]["report"]["token_batch"].get("layers", {}))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1, default=float) + "\n")
    builds, tbs = out["builds"], out["token_batch"]
    lines = ["# Bundled default, KV260: weights on chip vs token-batched layers vs rolled stages (issue 15)", "",
             f"`{out['command']}` ({out['wall_s']:.0f} s here). {out['source']}. Same quantized encoder; each build "
             "runs its own fit search. token batch: the fit search chooses per MVAU + Requant pair with constant "
             f"weights between on-chip weights and the token-batched unit (B = {a.batch}); rolled: each repeated "
             "stage one body run once per block (its layers on the unit read iteration i's weights at BASE + i x "
             "STRIDE), loop and frame buffers in DDR, the same choice per pair.", "",
             "| build | LUT | FF | BRAM36 | URAM | DSP | fits | fps | slowest layer | DDR MB/frame |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for label, r in builds.items():
        ddr = r["ddr"]["bytes_per_frame"] / 1e6 if r["ddr"] else 0.0
        lines.append(f"| {label.replace('_', ' ')} | " + " | ".join(f"{r['resources'][k]:,.0f}" for k in RES)
                     + f" | {'yes' if r['fits'] else 'no'} | {r['fps']:.3g} | {r['bottleneck']} "
                     f"({r['bottleneck_cycles']:,} cycles) | {ddr:,.2f} |")
    lines += ["", "The fit search's prediction for its choice against the report (LUT / BRAM36 / DSP): "
              + "; ".join(f"{k.replace('_', ' ')} {b['fit_predicted']['LUT']:,.0f} / {b['fit_predicted']['BRAM36']:,.1f} / "
                          f"{b['fit_predicted']['DSP']:,.0f} vs {b['resources']['LUT']:,.0f} / "
                          f"{b['resources']['BRAM36']:,.1f} / {b['resources']['DSP']:,.0f}"
                          for k, b in builds.items() if b["fit_predicted"]) + "."]
    ro = out["rolled"]
    lines += ["", "Rolled stages: " + "; ".join(f"{s['name']}: {s['iterations']} blocks, {s['body_nodes']} body "
                                                 f"nodes, {len(s['token_batched'])} token-batched, stage interval "
                                                 f"{s['interval']:,} cycles" for s in ro["stages"])
              + f". Not rolled: {len(ro['refused'])}. The roll step's own check (random input): "
                f"{ro['verify']['differing']} of {ro['verify']['values']:,} values differ."]
    kept = "; ".join(f"{k}: {v}" for k, v in sorted(tbs["kept"].items()))
    lines += ["", f"Token-batched (token batch build; chosen by the {tbs['chosen_by']}): {len(tbs['layers'])} layers, "
                  f"DDR image {tbs['image_bytes']:,} bytes, "
                  f"{tbs['ddr_bytes_per_frame']:,} bytes read per frame"
                  + (f" ({tbs['ddr_gbps_at_fps']:.3g} GB/s at its fps)" if tbs["ddr_gbps_at_fps"] else "") + ".",
              f"Kept on chip: {len(tbs['kept'])}" + (f" ({kept})" if kept else "") + ".", "",
              "Python execution on the bundled sample against the on-chip graph: "
              + ", ".join(f"{k.replace('_', ' ')} {'identical' if v else 'DIFFERENT'}" for k, v in out["bit_exact"].items())
              + f" ({out['output_unique_values']} distinct output values).", "",
              "Per layer type (layers x: LUT / BRAM36 / DSP):", "",
              "| layer type | on chip | token batch | rolled |", "|---|---|---|---|"]

    def cell(d: dict | None) -> str:
        return "-" if d is None else f"{d['layers']} x: {d['LUT']:,.0f} / {d['BRAM36']:,.1f} / {d['DSP']:,.0f}"

    ops = sorted(set().union(*(b["by_op_type"] for b in builds.values())))
    for op in ops:
        lines.append(f"| {op} | " + " | ".join(cell(builds[k]["by_op_type"].get(op)) for k in builds) + " |")
    Path(f"{a.out}.md").write_text("\n".join(lines) + "\n")
    print(Path(f"{a.out}.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
