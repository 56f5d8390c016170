"""Board-environment half of the host-to-RTL co-simulation (run by bench/cosim_stitched.py with .venv-board):
``Predictor.from_deploy(PKG, backend="pynq-sim", accelerator=ExternalAccelerator(MODEL_CMD))`` (the unmodified
pynq backend and driver, the simulated PYNQ device's DMA model, the RTL in the development environment) against
``backend="quant"`` on the bundled sample images: every embedding value compared (tolerance 0).

    .venv-board/bin/python bench/cosim_board.py --package PKG --out RESULT.json --images 2 -- MODEL_CMD...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--images", type=int, default=2, help="how many bundled sample images")
    ap.add_argument("model", nargs="+", help="command of the accelerator model process (after --)")
    args = ap.parse_args(argv)

    from samfpga.assets import sample_images
    from samfpga.predictor import Predictor
    from samfpga.pynq_sim.external import ExternalAccelerator

    t0 = time.monotonic()
    rows = []
    with ExternalAccelerator(args.model) as rtl:
        t_ready = time.monotonic() - t0
        sim = Predictor.from_deploy(args.package, backend="pynq-sim", accelerator=rtl, timeout_s=3600.0)
        quant = Predictor.from_deploy(args.package, backend="quant")
        try:
            for path in sample_images()[: args.images]:
                img = np.asarray(Image.open(path).convert("RGB"))
                t1 = time.monotonic()
                sim.set_image(img)
                e_sim = sim.get_image_embedding()
                t2 = time.monotonic()
                quant.set_image(img)
                e_q = quant.get_image_embedding()
                rows.append({"image": path.name, "values": int(e_q.size), "distinct_values": int(np.unique(e_q).size),
                             "mismatches": int((e_sim != e_q).sum()), "max_abs_diff": float(np.abs(e_sim - e_q).max()),
                             "rtl_cycles": rtl.cycles[-1], "pynq_sim_s": round(t2 - t1, 1),
                             "timings": {k: round(float(v), 4) for k, v in sim.encoder.timings.items()}})
                print(f"[cosim] {path.name}: {rows[-1]['mismatches']} of {e_q.size} embedding values differ, "
                      f"{rtl.cycles[-1]} RTL cycles, {rows[-1]['pynq_sim_s']} s", flush=True)
        finally:
            sim.encoder.close()
    res = {"images": rows, "values_compared": sum(r["values"] for r in rows),
           "mismatches": sum(r["mismatches"] for r in rows), "model_start_s": round(t_ready, 1),
           "wall_s": round(time.monotonic() - t0, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    return 0 if rows and res["mismatches"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
