"""Replay the build's steps from ``fold`` to ``estimates`` on a saved ``08_specialize.onnx`` of an earlier build and
compare the fit search's prediction for its choice with the totals the ``estimates`` step counts.

    PYTHONPATH=sw:models:hw .venv/bin/python bench/fit_replay.py DIR/intermediate/08_specialize.onnx OUT [--board B]

Prints the fit's choice (fps, fits, binding), its prediction (layers as built + FIFOs + width converters), the
estimates' totals and the per-layer-type figures; writes OUT/replay.json. ~3 min for the bundled default on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("graph", help="08_specialize.onnx of an earlier build (intermediate/)")
    ap.add_argument("out", help="scratch directory (replaced)")
    ap.add_argument("--board", default="kv260")
    args = ap.parse_args(argv)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)

    from samfpga.hw.finn_env import boot

    boot(out / "finn_build")
    from qonnx.core.modelwrapper import ModelWrapper

    import samfpga.hw.custom_ops  # noqa: F401
    from samfpga.hw.boards import RESOURCES
    from samfpga.hw.build.config import BuildConfig
    from samfpga.hw.build.context import BuildContext
    from samfpga.hw.build.speedups import installed
    from samfpga.hw.build.steps import STEPS

    ctx = BuildContext(cfg=BuildConfig(board=args.board, output_dir=str(out)), out=out)
    model = ModelWrapper(args.graph)
    seconds = {}
    with installed():
        for name in ("fold", "minimize_bit_width", "transpose_decomposition", "estimates"):
            t0 = time.time()
            model = STEPS[name](model, ctx)
            seconds[name] = round(time.time() - t0, 1)
    fit, res = ctx.results.fit, ctx.results
    total = dict.fromkeys(RESOURCES, 0.0)
    by_type: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(RESOURCES, 0.0))
    for c in [*res.costs.values(), *res.fifos]:
        key = c.op_type + (" (estimated)" if c.detail.get("estimated") else "")
        for r in RESOURCES:
            total[r] += getattr(c, r)
            by_type[key][r] += getattr(c, r)
    print(f"steps (s): {seconds}")
    print(f"fit: {fit.fps:.1f} fps, fits {fit.fits}, binding {fit.binding} x{fit.over_by:.3f}")
    print("fit predicted:", {r: round(v, 1) for r, v in fit.predicted.items()})
    print("estimates:    ", {r: round(v, 1) for r, v in total.items()})
    for k, v in sorted(by_type.items(), key=lambda kv: -kv[1]["BRAM36"]):
        print(f"  {k:45s}", {r: round(x, 1) for r, x in v.items()})
    (out / "replay.json").write_text(json.dumps({"seconds": seconds, "fit": fit.to_dict(), "estimates": total,
                                                 "by_type": by_type}, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
