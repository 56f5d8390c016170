"""Run the RTL benches and write the report: ``python -m samfpga.hw.sim --out hw/reports/sim/report.json``."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from samfpga.hw.sim.benches import bench_names, run_benches, write_report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m samfpga.hw.sim", description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("hw/reports/sim/report.json"), help="report JSON path")
    ap.add_argument("--work", type=Path, default=None, help="build folder (default: a fresh temporary folder)")
    ap.add_argument("--only", nargs="*", default=None, help=f"bench names: {' '.join(bench_names())}")
    ap.add_argument("--pause", type=float, default=0.3, help="backpressure pause probability per beat")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", type=Path, default=None,
                    help="bench the RTL nodes of this FINN HW graph (ONNX after specialize_layers) instead of the "
                         "catalogue; --only then selects node names")
    ap.add_argument("--part", default=None, help="FPGA part for --model (default: Zynq UltraScale+ xczu7ev)")
    ap.add_argument("--max-cycles", type=int, default=200_000, help="--model: skip nodes FINN estimates longer")
    ap.add_argument("--max-vectors", type=int, default=None,
                    help="--model: shrink MVAU/Thresholding/DWC/FIFO/own-op nodes to this many pixels/tokens")
    args = ap.parse_args(argv)
    if not 0 <= args.pause < 1:
        ap.error(f"--pause must be in [0, 1), got {args.pause}")
    work = args.work or Path(tempfile.mkdtemp(prefix="samfpga_sim_"))
    skipped = []
    if args.model is not None:
        from samfpga.hw.sim.from_build import bench_build
        from samfpga.hw.sim.nodes import ZYNQ_PART

        results, skipped = bench_build(args.model, work, part=args.part or ZYNQ_PART, max_cycles=args.max_cycles,
                                       only=args.only, seed=args.seed, pause=args.pause,
                                       max_vectors=args.max_vectors)
        for r in results:
            print(f"[sim] {r.name:30s} {'PASS' if r.passed else 'FAIL'} words={r.words_compared} "
                  f"mismatches={r.mismatches} cycles={r.cycles_simulated} finn_est={r.finn_estimated_cycles}")
        for k in skipped:
            print(f"[sim] {k.name:30s} SKIP {k.op_type}: {k.reason}")
    else:
        results = run_benches(args.only, work, seed=args.seed, pause=args.pause)
    report = write_report(results, args.out, args.pause, skipped=skipped,
                          source=str(args.model) if args.model else "catalogue")
    s = report["summary"]
    print(f"[sim] {s['passed']}/{s['benches']} benches passed, {s['words_compared']} words compared, "
          f"{s['mismatches']} mismatches, {s['wall_s_total']} s; report: {args.out}; builds: {work}")
    return 0 if not s["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
