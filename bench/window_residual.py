"""Skip FIFOs of the attention residuals with and without ``BuildOptions.window_residual`` (issue 11).

What-if on one build's folded graph (``intermediate/09_fold.onnx`` of a build made WITHOUT the option, e.g. one
from before it existed): the graph as it is, and with ``WindowOrderResidual`` applied, each then through the build's
``minimize_bit_width`` and ``transpose_decomposition`` steps (Shuffles -> PagePermute_rtl) and priced with
``samfpga.hw.resources.stream_costs`` (analytic FIFO depths, own StreamingFIFO_rtl model), as the ``estimates``
step does. Same folding both ways, so the difference is the structure alone. Optionally the totals and verdicts of
two full builds' report.json (without / with the option) side by side.

    python bench/window_residual.py --fold OLD_BUILD/intermediate/09_fold.onnx \\
        [--before OLD_BUILD/report.json --after NEW_BUILD/report.json] [--out bench/results/window_residual.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

SKIP_MIN_DEPTH = 1000  # the attention/MBConv residual skips; every other FIFO is at the 32-word minimum or ~2k


def _streams(model, board) -> tuple[list[dict], dict[str, float]]:
    from samfpga.hw.resources import stream_costs

    rows, tot = [], {}
    for c in stream_costs(model, board):
        for r, v in c.resources().items():
            tot[r] = tot.get(r, 0.0) + v
        if c.name.startswith("fifo_DuplicateStreams") and c.detail.get("depth", 0) > SKIP_MIN_DEPTH:
            rows.append({"fifo": c.name, "depth": int(c.detail["depth"]), "width": int(c.detail["width"]),
                         "BRAM36": c.resources()["BRAM36"], "LUT": c.resources()["LUT"], "reason": c.detail["reason"]})
    return rows, tot


def what_if(fold: Path, board_name: str) -> dict:
    from qonnx.core.modelwrapper import ModelWrapper

    from samfpga.hw.finn_env import boot

    work = Path(tempfile.mkdtemp(prefix="window_residual_"))
    boot(work / "finn_build")
    import samfpga.hw.custom_ops  # noqa: F401
    from samfpga.hw.boards import get_board
    from samfpga.hw.build.config import BuildConfig
    from samfpga.hw.build.context import BuildContext
    from samfpga.hw.build.speedups import installed
    from samfpga.hw.build.steps import STEPS
    from samfpga.hw.build.window_residual import window_order_residual

    board = get_board(board_name)
    out: dict = {}
    for on in (False, True):
        t0 = time.monotonic()
        model = ModelWrapper(str(fold))
        notes: dict = {}
        if on:
            model = window_order_residual(model, notes)
        ctx = BuildContext(cfg=BuildConfig(board=board_name, output_dir=str(work)), out=work)
        with installed():
            for step in ("minimize_bit_width", "transpose_decomposition"):
                model = STEPS[step](model, ctx)
        rows, tot = _streams(model, board)
        out["with" if on else "without"] = {
            "skip_fifos": rows, "skip_BRAM36": sum(r["BRAM36"] for r in rows),
            "skip_LUT": sum(r["LUT"] for r in rows), "stream_totals": tot,
            "window_residual": notes.get("window_residual"), "seconds": round(time.monotonic() - t0, 1)}
    return out


def _report(path: Path) -> dict:
    d = json.loads(path.read_text())
    t = d["total"]
    return {"report": str(path), "resources": t["resources"], "utilization": t["utilization"],
            "fits": t["fits"], "fps": t["fps"], "bottleneck_node": t["bottleneck_node"],
            "verdict": d["verdict"]["text"], "advice": d["verdict"].get("advice", []),
            "window_residual": d.get("window_residual"),
            "fifo_estimated_BRAM36": sum(r["BRAM36"] for r in d["layers"]
                                         if r["op_type"].startswith("StreamingFIFO")),
            "skip_fifos": [{"fifo": r["name"], "depth": r.get("depth"), "BRAM36": r["BRAM36"]} for r in d["layers"]
                           if r["name"].startswith("fifo_DuplicateStreams") and (r.get("depth") or 0) > SKIP_MIN_DEPTH],
            "step_seconds_total": round(sum(d.get("step_seconds", {}).values()), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fold", type=Path, required=True, help="09_fold.onnx of a build without the option")
    ap.add_argument("--board", default="kv260")
    ap.add_argument("--before", type=Path, help="report.json of a full build without the option")
    ap.add_argument("--after", type=Path, help="report.json of a full build with the option")
    ap.add_argument("--out", type=Path, default=Path("bench/results/window_residual.json"))
    args = ap.parse_args(argv)
    for p in (args.fold, args.before, args.after):
        if p is not None and not p.is_file():
            ap.error(f"not found: {p}")
    res = {"command": "python bench/window_residual.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "how": "FINN graph of a build after folding; FIFO depths from the analytic model "
                  "(samfpga.hw.resources.fifo), BRAM36/LUT from the own StreamingFIFO_rtl model; no synthesis",
           "what_if": what_if(args.fold, args.board)}
    if args.before and args.after:
        res["builds"] = {"without": _report(args.before), "with": _report(args.after)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    w = res["what_if"]
    print(f"skip FIFOs: {w['without']['skip_BRAM36']} -> {w['with']['skip_BRAM36']} BRAM36; {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
