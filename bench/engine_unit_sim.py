"""The KV260 engine's GEMM unit at its planned size, in RTL simulation, running vit_t's layer shapes back to back.

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/engine_unit_sim.py [--size 1024] [--tokens 256]
        [--out bench/results/engine_unit_sim]

Builds token_batch_mvu.sv as ``samfpga.hw.plan.engine.search`` plans the KV260 engine at ``--size`` (its PE, SIMD
and batch; two products per DSP, requantiser inside, 128-bit AXI, RT_SHAPE = 1, buffers for ``mw_cap``-wide
vectors and the widest layer's outputs, RAW_OUT for QK^T's sums; ``engine.gemm_unit``) and runs, back to back on the
one unit, one layer of each GEMM shape of vit_t at ``--size`` (each padded as the engine pads it: MW to SIMD, MH to
PE; zero weights in the padding) on ``--tokens`` tokens of random integers, then the attention products as the
engine runs them (per window and head an iteration of the window's tokens with its own K or V as weights,
``--windows`` of them; QK^T raw, its sums out unrequantised as the softmax takes them, AV requantised, after the
frame that transposes V on the unit: one-hot inputs, V's rows as weights, the identity requantisation), with
cocotbext-axi's AXI RAM as DDR. Per layer: the outputs against the numpy reference (tolerance 0), the cycles its
frame took free-running against the engine model's unit cycles for those tokens
(``token_batch_mvu.schedule_cycles``, what ``engine.step_of`` uses), and the DDR bytes read against the model's.
Writes ``<out>.json`` and ``<out>.md``. Verilator build plus simulation take minutes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--tokens", type=int, default=256, help="tokens per layer (the layer's own count is larger)")
    ap.add_argument("--windows", type=int, default=16,
                    help="window-head iterations per attention product (each with its own K or V)")
    ap.add_argument("--out", default="bench/results/engine_unit_sim")
    a = ap.parse_args(argv)

    from samfpga.hw.plan.engine import EngineConfig, encoder_units, gemm_unit, layer_config, search
    from samfpga.hw.sim import token_batch_mvu as tb
    from samfpga.hw.sim.attention_operands import transpose_frame, transpose_shape
    from samfpga.hw.sim.token_batch_runner import Frame, Pass, build, simulate

    plan = search(EngineConfig(board="kv260", image_size=a.size))
    eng = EngineConfig(board="kv260", image_size=a.size, **{k: plan.config[k] for k in ("pe", "simd", "batch")})
    units = encoder_units(eng)
    unit = gemm_unit(eng, units)  # as priced: run-time shapes, raw output, the default 32-beat read FIFO
    # (name, kind, mw, mh, layer configuration, iterations, tokens): one GEMM layer of each shape on --tokens tokens,
    # then the attention products as the engine runs them (engine.layer_config): per window and head one iteration
    # of the window's tokens with its own K (QK^T, raw) or V^T (AV, after the V transpose) as the weights (--windows)
    shapes, seen = [], set()
    for kinds in (("conv", "linear"), ("matmul",)):  # the GEMM layers first, then the attention products
        for u, x in ((v, y) for v in units for y in v.blocks[0] if y.kind in kinds):
            s = layer_config(eng, u, x, unit)
            if (kinds, s.mw, s.mh, s.batch, s.raw) in seen:
                continue
            seen.add((kinds, s.mw, s.mh, s.batch, s.raw))
            if x.kind != "matmul":
                shapes.append((x.name, "gemm", x.mw, x.mh, s, 1, a.tokens))
                continue
            t = u.window * u.window
            if not s.raw:  # AV's V^T, transposed on the unit first (engine.v_transpose_step)
                shapes.append((f"{x.name} (V transpose)", "transpose", x.mh, t, transpose_shape(t, x.mh, unit),
                               a.windows, x.mh))
            shapes.append((f"{x.name} ({'raw' if s.raw else 'requantised'})", "attention", x.mw, x.mh, s, a.windows, t))
    rng = np.random.default_rng(0)
    frames, rows, base = [], [], 0
    for name, kind, mw, mh, s, n, t in shapes:
        mwp, mhp, b = s.mw, s.mh, s.batch
        w = np.zeros((n, mhp, mwp), dtype=np.int64)
        w[:, :mh, :mw] = rng.integers(-128, 128, (n, mh, mw))
        if kind == "transpose":  # one-hot inputs, the identity requantisation: outputs = V^T's rows
            _, x1, rq1 = transpose_frame(w[0, :, :mw], unit)
            x = np.repeat(x1, n, axis=0)
            rq = tb.RequantParams(*(np.repeat(v, n, axis=0) for v in (rq1.scale, rq1.bias, rq1.shift)))
        else:  # random tokens; the padding inputs meet zero weights
            x = rng.integers(-128, 128, (n, t, mwp))
            rq = None if s.raw else tb.sample_requant(s, n, rng)
        frames.append(Frame(x, w, base=base, rq=rq, shape=s))
        base += -(-n * s.min_stride // 4096) * 4096
        c = tb.schedule_cycles(s, n, t)
        rows.append({"layer": name, "mw": mw, "mh": mh, "padded": [mwp, mhp], "batch": b, "iterations": n,
                     "tokens": t, "sf": s.sf, "nf": s.nf, "raw": s.raw, "model_cycles": c["total"],
                     "model_compute": c["compute"], "model_params": c["params"], "model_raw_wait": c["raw_wait"],
                     "model_weight_bound": c["weight_bound"],
                     "model_ddr_bytes": tb.ddr_bytes_per_frame(s, n, t), "macs": n * t * mw * mh})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        build_s = build(unit, Path(tmp))
        res = simulate(unit, frames, [Pass("free")], Path(tmp), seed=1, tag="layers")
        wall = time.time() - t0
    if res.error:
        raise SystemExit(f"simulation failed: {res.error}")
    p = res.passes[0]
    done = [0, *p["frame_done_cycles"]]
    for k, r in enumerate(rows):
        # a frame's own cycles: from the previous frame's last output word to its own (the first from the start)
        r["rtl_cycles"] = done[k + 1] - done[k]
    out = {"command": f"PYTHONPATH=sw:models:hw:. .venv/bin/python bench/engine_unit_sim.py --size {a.size} "
                      f"--tokens {a.tokens} --windows {a.windows}",
           "source": "Verilator + cocotb RTL simulation (cocotbext-axi AXI RAM as DDR, no stalls)",
           "unit": unit.to_dict(), "tokens": a.tokens, "windows": a.windows, "bit_exact": p["mismatches"] == 0 and p["words_compared"] > 0,
           "words_compared": p["words_compared"], "mismatches": p["mismatches"], "err": p["err"],
           "ddr_bytes": p["ddr_bytes"], "model_ddr_bytes": sum(r["model_ddr_bytes"] for r in rows),
           "build_s": round(build_s, 1), "wall_s": round(wall, 1), "layers": rows}
    path = Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    write_md(out, path.with_suffix(".md"))
    print(path.with_suffix(".md").read_text())
    return 0 if out["bit_exact"] else 1


def write_md(out: dict, path: Path) -> None:
    """The markdown table of a result ``out`` (the JSON this bench writes)."""
    u, rows = out["unit"], out["layers"]
    steady = [r["model_compute"] + r["model_params"] + r.get("model_raw_wait", 0) + r["model_weight_bound"]
              for r in rows]
    rtl = sum(r["rtl_cycles"] for r in rows)
    lines = ["# The KV260 engine's GEMM unit in RTL simulation: vit_t layer shapes back to back", "",
             f"`{out['command']}`; {out['source']}. Unit: PE {u['pe']} x SIMD {u['simd']}, batch {u['batch']}, "
             f"buffers for MW {u['mw']} / MH {u['mh']}, dot {u['dot']}, RT_SHAPE = 1, RAW_OUT = "
             f"{int(u.get('raw_out', False))} (raw sums of {u.get('raw_bits', 0)} bits), read FIFO "
             f"{u['wfifo_depth']} beats. {out['tokens']} random tokens per GEMM layer (one of each shape), then the "
             f"attention products ({out.get('windows', 0)} window-head iterations of the window's tokens each; QK^T "
             f"raw, V transposed on the unit, AV requantised), back to back. Bit-exact: **{'yes' if out['bit_exact'] else 'NO'}"
             f"** ({out['words_compared']:,} output words, {out['mismatches']} mismatches, err {out['err']}); DDR bytes "
             f"read {out['ddr_bytes']:,} (model {out['model_ddr_bytes']:,}). Build {out['build_s']} s, whole run "
             f"{out['wall_s']} s.", "",
             f"All layers: **{rtl:,} cycles** in RTL; the unit's schedule model (``schedule_cycles``) gives "
             f"{sum(steady):,} back to back (MAC + parameter + raw-wait + weight-bound cycles; RTL / model "
             f"{rtl / sum(steady):.3f}) and {sum(r['model_cycles'] for r in rows):,} with each layer's batch fill and "
             f"drain on its own, as the engine plan charges every step (RTL / that "
             f"{rtl / sum(r['model_cycles'] for r in rows):.3f}: the plan is conservative here, less so at a "
             f"layer's full token count, where fill and drain are a smaller share).", "",
             "A layer's RTL cycles are from the previous layer's last output word to its own, so they include the "
             "overlap of its fill with the previous drain (hence ratios below 1 per layer).", "",
             "| layer (first of its shape) | MW x MH (padded) | batch | iterations x tokens | RTL cycles | model back "
             "to back | model alone (fill + drain) |", "|---|---|---|---|---|---|---|"]
    for r, st in zip(rows, steady, strict=True):
        lines.append(f"| {r['layer']} | {r['mw']} x {r['mh']} ({r['padded'][0]} x {r['padded'][1]}) | {r['batch']} "
                     f"| {r.get('iterations', 1)} x {r.get('tokens', out['tokens'])} | {r['rtl_cycles']:,} | {st:,} | "
                     f"{r['model_cycles']:,} |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
