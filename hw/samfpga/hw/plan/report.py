"""report.json / report.md / chart of a ``Plan``, counting every layer and memory as the build report does."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from samfpga.hw.boards import RESOURCES


def by_type(plan) -> dict[str, dict]:
    """Per layer type (compute layers by op type, memories by kind and placement): count and summed resources."""
    out: dict[str, dict] = defaultdict(lambda: {"count": 0, **dict.fromkeys(RESOURCES, 0.0), "source": ""})
    for x in plan.layers:
        t = out[x.op_type]
        t["count"] += 1
        t["source"] = x.source
        for r in RESOURCES:
            t[r] += x.res.get(r, 0.0)
    for m in plan.memories:
        t = out[f"{m.kind} ({m.placed})"]
        t["count"] += 1
        t["source"] = "own model (samfpga.hw.resources.memory)" if m.placed != "DDR" else "in DDR"
        for r in RESOURCES:
            t[r] += m.res.get(r, 0.0)
    return dict(sorted(out.items(), key=lambda kv: -max(kv[1][r] / max(1, plan.budget[r]) for r in RESOURCES)))


def plan_dict(plan) -> dict:
    d = plan.to_dict()
    d["by_type"] = by_type(plan)
    d["label"] = ("own model (samfpga.hw.plan): layer shapes from samfpga.models TinyViT, logic/DSP from "
                  "samfpga.hw.resources models, memories from samfpga.hw.resources.memory; no FINN build, no "
                  "synthesis")
    return d


def markdown(plan, chart: str | None = None) -> str:
    c, b = plan.config, plan.board
    roof = plan.roofline
    u_ = {r: plan.totals[r] / plan.budget[r] if plan.budget[r] else None for r in RESOURCES}
    lines = [f"# Plan: {c['variant']} at {c['image_size']}² on {b['name']} ({plan.clock_mhz:g} MHz)", "",
             f"**{'Fits' if plan.fits else 'Does not fit'}** within {100 * c['limit']:.0f}% of every resource: "
             f"{plan.period_cycles:,} cycles per frame -> **{plan.fps:.3g} fps**"
             + ("" if plan.fits else " (the smallest configuration, not a design that fits)")
             + f". DSP roofline: {roof['fps']:.3g} fps ({roof['basis']}, {roof['encoder_macs'] / 1e9:.2f} GMAC); "
             f"plan at {100 * plan.fps / roof['fps']:.1f}% of it.", "",
             "What binds: " + "; ".join(plan.binds), "",
             f"DDR: {plan.ddr['bytes_per_frame'] / 1e6:,.2f} MB per frame (weights {plan.ddr['weights_bytes'] / 1e6:,.2f},"
             f" spilled feature maps {plan.ddr['spill_bytes'] / 1e6:,.2f}, image + embedding "
             f"{plan.ddr['io_bytes'] / 1e6:,.2f}) = {plan.ddr['gbps_at_plan_fps']:.2f} GB/s at the plan's fps, of "
             f"{plan.ddr['peak_gbps']} GB/s peak x {plan.ddr['efficiency']:.0%} ({plan.ddr['source']}).", "",
             f"Column strips: up to {c['strips']} per unit (of >= {c['min_strip']} output columns, whole windows in "
             "attention units; samfpga.hw.plan.strips): line and window buffers are a strip wide, halo columns are "
             "computed again (the halo column: extra MACs over the model's) and read again from the unit's frame "
             "buffer.", "",
             "| unit | mode | blocks | W bits | strips | halo | cycles/frame | iteration | fetch/block | stall | DDR MB "
             "| GMAC |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for u in plan.units:
        lines.append(f"| {u.name} | {u.mode} | {u.blocks} | {u.w_bits} | {u.strips} | "
                     f"{100 * u.halo_macs / max(1, u.macs):.1f}% | {u.cycles:,} | {u.iteration:,} | "
                     f"{u.fetch_cycles:,} | {u.stall_cycles:,} | {u.ddr_bytes / 1e6:.2f} | {u.macs / 1e9:.2f} |")
    lines += ["", "| resource | total | budget | utilization |", "|---|---|---|---|"]
    for r in RESOURCES:
        lines.append(f"| {r} | {plan.totals[r]:,.1f} | {plan.budget[r]:,} | "
                     + ("-" if u_[r] is None else f"{100 * u_[r]:.1f}%") + " |")
    lines += ["", "## Per layer type", ""]
    if chart:
        lines += [f"![resource use per layer type]({chart})", ""]
    lines += ["| layer type | count | LUT | FF | BRAM36 | URAM | DSP | source |", "|---|---|---|---|---|---|---|---|"]
    for k, t in plan_dict(plan)["by_type"].items():
        lines.append(f"| {k} | {t['count']} | " + " | ".join(f"{t[r]:,.1f}" for r in RESOURCES) + f" | {t['source']} |")
    lines += ["", "## Every compute layer", "",
              "| layer | unit | type | PE | SIMD | cycles per run | runs | LUT | DSP |", "|---|---|---|---|---|---|---|---|---|"]
    for x in plan.layers:
        lines.append(f"| {x.name} | {x.unit} | {x.op_type} | {x.pe} | {x.simd} | {x.cycles:,} | {x.runs} | "
                     f"{x.res['LUT']:,.0f} | {x.res['DSP']:,.0f} |")
    lines += ["", "Not counted: stream FIFOs between layers, data-width converters, DMA engines, loop control, "
              "residual adds and shuffles other than the window buffers. Memories and every layer are in "
              "report.json."]
    return "\n".join(lines) + "\n"


def write(plan, out: str | Path) -> dict[str, Path]:
    """report.json, report.md and report.png of ``plan`` in ``out``."""
    from samfpga.hw.build.chart import resource_chart

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    d = plan_dict(plan)
    png = resource_chart({k: {r: v[r] for r in RESOURCES} for k, v in d["by_type"].items()}, plan.budget,
                         plan.config["limit"], f"plan {plan.config['variant']} {plan.config['image_size']}² on "
                         f"{plan.board['name']}: {plan.fps:.3g} fps, {'fits' if plan.fits else 'does not fit'}",
                         out / "report.png")
    (out / "report.json").write_text(json.dumps(d, indent=1, default=float))
    (out / "report.md").write_text(markdown(plan, png.name))
    return {"json": out / "report.json", "md": out / "report.md", "png": png}
