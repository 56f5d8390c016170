"""The layer-sequential engine (``samfpga.hw.plan.engine``) planned for vit_t on each board and size, with the
assumptions it rests on moved one at a time on the KV260.

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/plan_engine.py [--out bench/results/plan_engine]

Own model throughout (no FINN build of the engine, no synthesis of it as a whole). Per board and size: the fastest
engine of ``engine.SEARCH`` within 85% of every resource, its fps against the DSP roofline, what binds, the DDR
traffic. Then on the KV260, the same search with one assumption worse each: step launches 10x slower (100 us),
DDR efficiency 0.35 instead of 0.7, the GEMM unit's logic 1.5x its fitted LUT/FF (the fit's measured foldings are
PE <= 10, SIMD <= 40; the engine's are far wider), and a 150 MHz clock. Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

BOARDS = ("kv260", "zcu104", "vck190")
SIZES = (512, 1024)


def _row(p, label: str, seconds: float) -> dict:
    c = p.config
    return {"case": label, "board": p.board, "image_size": c["image_size"], "fits": p.fits, "fps": p.fps,
            "engine": {k: c[k] for k in ("pe", "simd", "batch", "dw_pe", "ln_lanes", "sm_lanes", "dot")},
            "totals": {k: round(v, 1) for k, v in p.totals.items()}, "budget": p.budget,
            "pressure": {k: round(v, 3) for k, v in p.pressure.items()}, "binding": p.binding,
            "roofline_fps": p.roofline["fps"], "roofline_fraction": p.roofline["fraction"],
            "mac_utilisation": p.roofline["mac_utilisation"], "ddr_mb_per_frame": p.ddr["bytes_per_frame"] / 1e6,
            "ddr_gb_per_s": p.ddr["gb_per_s"], "by_engine": p.by_engine, "searched": p.searched,
            "search_s": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results/plan_engine")
    args = ap.parse_args(argv)

    from samfpga.hw.plan import engine
    from samfpga.hw.plan.engine import EngineConfig, search

    rows = []

    def run(cfg: EngineConfig, label: str) -> None:
        t0 = time.time()
        p = search(cfg)
        rows.append(_row(p, label, time.time() - t0))
        r = rows[-1]
        print(f"{label}: {r['board']} {r['image_size']} PE {r['engine']['pe']} x SIMD {r['engine']['simd']} "
              f"B {r['engine']['batch']}: {'fits' if r['fits'] else 'no fit'} {r['fps']:.3f} fps "
              f"({r['roofline_fraction']:.0%} of the roofline), binds {r['binding']} "
              f"{r['pressure'][r['binding']]:.2f}x", flush=True)

    for board in BOARDS:
        for size in SIZES:
            run(EngineConfig(board=board, image_size=size), "as modelled")
    for size in SIZES:
        base = EngineConfig(board="kv260", image_size=size)
        run(replace(base, launch_cycles=20000), "step launch 100 us")
        run(replace(base, ddr_efficiency=0.35), "DDR efficiency 0.35")
        run(replace(base, clock_mhz=150.0), "clock 150 MHz")
        run(replace(base, unit_logic_scale=1.5), "GEMM unit logic 1.5x the fit")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "not_built": list(engine.NOT_BUILT)},
                                                   indent=1) + "\n")
    lines = ["# The layer-sequential engine for vit_t, per board and size (own model)", "",
             "`PYTHONPATH=sw:models:hw:. .venv/bin/python bench/plan_engine.py` (samfpga.hw.plan.engine; every "
             "figure is the project's own model: token_batch_mvu.sv's Yosys-fitted logic and its schedule, the "
             "project's memory, LayerNorm, softmax, depthwise and DMA models; not a build, not synthesis of the "
             "engine). Search over " + ", ".join(f"{k} {v}" for k, v in engine.SEARCH.items()) + ".", "",
             "| case | board | size | engine (PE x SIMD, batch, dw, LN lanes, softmax lanes) | fits (85%) | fps | "
             "roofline fps | of roofline | GEMM MAC use | LUT | BRAM36 | URAM | DSP | binds | DDR GB/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e, t, b = r["engine"], r["totals"], r["budget"]
        lines.append(
            f"| {r['case']} | {r['board']} | {r['image_size']}² | {e['pe']} x {e['simd']}, {e['batch']}, "
            f"{e['dw_pe']}, {e['ln_lanes']}, {e['sm_lanes']} | {'yes' if r['fits'] else 'no'} | "
            f"{r['fps']:.3f} | "
            f"{r['roofline_fps']:.2f} | {r['roofline_fraction']:.0%} | {r['mac_utilisation']:.0%} | "
            f"{t['LUT']:,.0f} ({t['LUT'] / b['LUT']:.0%}) | {t['BRAM36']:,.0f} | {t['URAM']:,.0f} | "
            f"{t['DSP']:,.0f} ({t['DSP'] / b['DSP']:.0%}) | {r['binding']} {r['pressure'][r['binding']]:.2f}x | "
            f"{r['ddr_gb_per_s']:.2f} |")
    lines += ["", "Not built (priced from the parts that are): " + "; ".join(engine.NOT_BUILT) + "."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
