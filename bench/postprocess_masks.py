"""Mask upscaling (``samfpga.transforms.postprocess_masks``) before and after the banded products (issue 16),
side by side in one run.

    .venv/bin/python -m bench.postprocess_masks [--before b30814f] [--rounds 5] [--threads 2] \
        [--out bench/results/postprocess_masks]

"Before" is ``sw/samfpga/transforms.py`` at git revision ``--before`` (the composed resampling matrices applied
whole, one GEMM per axis over every mask), loaded from git as a scratch module; "after" is the working tree's
(the matrices cut into blocks of output samples, each multiplying only the low-res samples its taps reach, a few
masks at a time). Both get the same seeded logits, alternating in ``--rounds`` rounds (the machine is shared; the
fastest round counts); their outputs are compared (max abs diff; both are torch's two ``interpolate`` calls up to
float32 rounding, tests/test_postprocess_masks.py). Cases: the bundled default (256², 64² low-res) and vit_t
(1024², 256² low-res) at five image shapes, 3 masks (one prompt) and 63 (a vit_t decoder run of 21 prompts).
Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ((480, 640), (640, 480), (500, 500), (333, 517), (1080, 1920))
MODELS = (("default", 256, 64), ("vit_t", 1024, 256))


def load_before(rev: str, scratch: Path):
    """``samfpga.transforms`` at git ``rev`` as the module ``transforms_before``."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:sw/samfpga/transforms.py"], check=True,
                         capture_output=True, text=True).stdout
    path = scratch / "transforms_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("transforms_before", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(before_rev: str, rounds: int, masks: tuple[int, ...]) -> list[dict]:
    import numpy as np

    from samfpga import transforms as after

    with tempfile.TemporaryDirectory() as td:
        before = load_before(before_rev, Path(td))
    rows = []
    for model, size, low_side in MODELS:
        for shape in SHAPES:
            input_size = after.preprocess_shape(*shape, size)
            for k in masks:
                low = (np.random.default_rng(k + shape[0]).normal(size=(k, low_side, low_side)) * 8).astype(
                    np.float32)
                best = {"before": float("inf"), "after": float("inf")}
                outs = {}
                for _ in range(rounds):
                    for name, mod in (("before", before), ("after", after)):
                        t = time.perf_counter()
                        outs[name] = mod.postprocess_masks(low, size, input_size, shape)
                        best[name] = min(best[name], time.perf_counter() - t)
                diff = float(np.abs(outs["before"] - outs["after"]).max())
                flips = int(np.count_nonzero((outs["before"] > 0) != (outs["after"] > 0)))
                del outs
                rows.append({"model": model, "image_size": size, "shape": list(shape), "masks": k,
                             "before_ms": round(best["before"] * 1e3, 3), "after_ms": round(best["after"] * 1e3, 3),
                             "speedup": round(best["before"] / best["after"], 2), "max_abs_diff": diff,
                             "sign_flips": flips})
                print(rows[-1], flush=True)
    return rows


def markdown(res: dict) -> str:
    lines = ["# Mask upscaling: whole resampling matrices vs banded blocks (issue 16)", "",
             f"`{res['command']}`  ",
             f"{res['machine']}; numpy {res['numpy']}, {res['threads']} BLAS threads; fastest of {res['rounds']} "
             f"interleaved rounds; before = `sw/samfpga/transforms.py` at {res['before']}, after = this tree's; "
             f"load average {res['load_start']} at the start, {res['load_end']} at the end", "",
             "Logits in, float32 logits out at the image's size (`postprocess_masks`); ms per call of all the "
             "masks; max abs diff between the two on logits of order 10 (each equals torch's `interpolate` "
             "chain up to float32 rounding); sign flips: output pixels whose side of 0 differs.", "",
             "| model (input, low-res) | image | masks | before ms | after ms | speedup | max abs diff | sign flips |",
             "|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['model']} ({r['image_size']}², {r['image_size'] // 4}²) | {r['shape'][0]} x "
                     f"{r['shape'][1]} | {r['masks']} | {r['before_ms']:.2f} | {r['after_ms']:.2f} | "
                     f"{r['speedup']:.2f}x | {r['max_abs_diff']:.1e} | {r['sign_flips']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="b30814f", help="git revision of the whole-matrix version")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads (set before numpy is imported)")
    ap.add_argument("--masks", default="3,63")
    ap.add_argument("--out", default="bench/results/postprocess_masks")
    args = ap.parse_args(argv)
    if "numpy" in sys.modules:
        raise SystemExit("bench.postprocess_masks: numpy was imported before the thread count could be set")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np

    load0 = round(os.getloadavg()[0], 2)
    rows = run(args.before, args.rounds, tuple(int(x) for x in args.masks.split(",")))
    res = {"command": "python -m bench.postprocess_masks " + " ".join(argv if argv is not None else sys.argv[1:]),
           "machine": f"{platform.machine()} {os.cpu_count()} cpus", "numpy": np.__version__,
           "threads": args.threads, "rounds": args.rounds, "before": args.before, "load_start": load0,
           "load_end": round(os.getloadavg()[0], 2), "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(res))
    print(f"wrote {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
