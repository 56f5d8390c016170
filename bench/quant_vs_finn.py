"""The ``quant`` backend (samfpga.intexec, numpy) against FINN's Python execution of the same build, on the encoder
inputs of the bundled samples (compiler environment: needs finn-plus).

    .venv/bin/python bench/quant_vs_finn.py --deploy PKG --build BUILD_DIR [--out bench/results/quant_vs_finn.json]

PKG is the deployment package ``samfpga deploy BUILD_DIR --out PKG`` made. Each sample is preprocessed by the
package's predictor; the integer graph's embedding must equal FINN's value for value (tolerance 0).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from samfpga.assets import sample_images
from samfpga.image_io import read_image
from samfpga.predictor import Predictor


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deploy", required=True, type=Path)
    ap.add_argument("--build", required=True, type=Path)
    ap.add_argument("--out", type=Path, default=Path("bench/results/quant_vs_finn.json"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/quant_vs_finn"))
    args = ap.parse_args(argv)
    from samfpga.hw.build.package import finn_execute

    p = Predictor.from_deploy(args.deploy, backend="quant")
    inputs: list[np.ndarray] = []
    run = p.encoder.graph.run
    # the graph input the predictor makes (normalised float image, or uint8 pixels padded with the pad codes)
    p.encoder.graph.run = lambda x, **kw: (inputs.append(x), run(x, **kw))[1]
    rows = []
    for path in sample_images():
        image, _ = read_image(path)
        t0 = time.perf_counter()
        p.set_image(image)
        t_quant = time.perf_counter() - t0
        got = p.get_image_embedding()
        t0 = time.perf_counter()
        ref = np.asarray(finn_execute(args.build, inputs[-1].astype(np.float32), args.work))
        t_finn = time.perf_counter() - t0
        rows.append({"image": path.name, "values": int(ref.size), "distinct": int(np.unique(ref).size),
                     "differ": int(np.count_nonzero(got.reshape(ref.shape) != ref)),
                     "quant_set_image_s": round(t_quant, 3), "finn_s": round(t_finn, 1)})
        print(json.dumps(rows[-1]), flush=True)
    cfg = json.loads((args.build / "build_config.json").read_text())
    summary = {"package": str(args.deploy), "build": str(args.build), "board": cfg["board"],
               "options": cfg.get("options", {}), "all_equal": all(r["differ"] == 0 for r in rows), "samples": rows,
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"quant == FINN on all samples: {summary['all_equal']}; wrote {args.out}")
    return 0 if summary["all_equal"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
