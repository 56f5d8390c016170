"""Host-to-RTL co-simulation of the 64x64 test encoder (issue 12): the ``pynq`` backend, unmodified, over the
simulated PYNQ device's DMA model into the Verilator simulation of the stitched RTL, against the ``quant`` backend.

Development environment: the tiny encoder's int_ops build (bench/sim_stitched.py's, or --build), its float bundle,
``samfpga deploy``'s package. Board environment (.venv-board, no finn/cocotb): bench/cosim_board.py runs
``Predictor.from_deploy(PKG, backend="pynq-sim", accelerator=ExternalAccelerator(...))`` whose accelerator model is
a child process of this environment (``python -m samfpga.hw.sim.cosim``: builds the stitched RTL once, then one
Verilator run per DMA transfer), and compares every embedding value with ``backend="quant"`` (tolerance 0).

    .venv/bin/python bench/cosim_stitched.py [--build OUT/build] [--images 2] [--out bench/results/cosim_pynq_rtl_64.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _python(env_dir: str, var: str) -> str:
    """The interpreter of a project environment: $VAR, else ROOT/<env_dir>/bin/python."""
    p = os.environ.get(var) or str(ROOT / env_dir / "bin" / "python")
    if not Path(p).is_file():
        raise SystemExit(f"cosim: {p} not found (make setup, or set {var})")
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=Path, default=None, help="reuse this int_ops build of the tiny encoder")
    ap.add_argument("--work", type=Path, default=ROOT / "out" / "cosim_stitched")
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--reuse-rtl", action="store_true", help="keep the simulator built under WORK/rtl by a previous "
                                                             "run on the same --build")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cosim_pynq_rtl_64.json")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    work = args.work.resolve()
    keep = [] if args.reuse_rtl else [work / "rtl"]
    for d in ([work] if args.build is None else [work / "bundle", work / "pkg", *keep, work / "finn_build"]):
        shutil.rmtree(d, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    from samfpga.hw.finn_env import boot

    boot(work / "finn_build")
    sys.path.insert(0, str(ROOT / "bench"))
    from sim_stitched import build

    build_dir = (args.build or build(work, "kv260")).resolve()
    import torch

    from samfpga.deploy.write import write_package
    from samfpga.models.build import variant_config
    from samfpga.models.export import export_bundle
    from samfpga.models.quant.source import TINY_STUDENT, random_student

    torch.set_num_threads(1)
    sam = random_student(seed=3, config=variant_config("vit_t", **TINY_STUDENT))  # the build's encoder weights
    export_bundle(sam, work / "bundle", source="tiny test encoder (bench/cosim_stitched.py, seed 3)")
    write_package(build_dir, work / "pkg", bundle_dir=work / "bundle")
    dev, board = _python(".venv", "SAMFPGA_DEV_PYTHON"), _python(".venv-board", "SAMFPGA_BOARD_PYTHON")
    model = [dev, "-m", "samfpga.hw.sim.cosim", "--build", str(build_dir), "--work", str(work / "rtl")]
    if args.reuse_rtl:
        model.append("--reuse")
    raw = work / "board_result.json"
    # a private overlay lock folder: the simulated device's lock must not meet other processes' pynq-sim runs
    env = {**os.environ, "SAMFPGA_LOCK_DIR": str(work / "locks")}
    rc = subprocess.call([board, str(ROOT / "bench" / "cosim_board.py"), "--package", str(work / "pkg"),
                          "--out", str(raw), "--images", str(args.images), "--", *model], cwd=ROOT, env=env)
    if not raw.is_file():
        print(f"cosim: the board-environment run wrote no result (status {rc})", file=sys.stderr)
        return 1
    res = json.loads(raw.read_text())
    cmd = "python bench/cosim_stitched.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = {"command": cmd.strip(), "build": str(build_dir),
           "how": "samfpga pynq backend (unmodified) on pynq_sim.SimDevice whose accelerator model is the Verilator "
                  "simulation of the stitched RTL (samfpga.hw.sim.cosim, a dev-env child process), vs the quant "
                  "backend (samfpga.intexec), every embedding value compared, tolerance 0",
           **res, "total_wall_s": round(time.monotonic() - t0, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"[cosim] {'PASS' if rc == 0 and res['mismatches'] == 0 else 'FAIL'}: {res['values_compared']} embedding "
          f"values compared, {res['mismatches']} mismatches; {args.out}")
    return 0 if rc == 0 and res["mismatches"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
