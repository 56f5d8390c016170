"""Build report: nodes on HW / host, resources per layer and per layer type (each figure with its source), the
fit verdict for ONE pipeline on the board, memories that need the driver, and report.md with a bar chart."""

from __future__ import annotations

from collections import Counter, defaultdict

from samfpga.hw import HW_DOMAIN
from samfpga.hw.boards import RESOURCES, Board
from samfpga.hw.build.context import BuildResults
from samfpga.hw.build.fit import advice


def float_input_layers(model, hw: list) -> list[str]:
    """Names of the HW layers ``hw`` with a float (non-integer) input stream; constant inputs don't count."""
    return [n.name for n in hw
            if any(t and model.get_initializer(t) is None and not model.get_tensor_datatype(t).is_integer()
                   for t in n.input)]


def node_census(model, results: BuildResults) -> dict:
    """Nodes on HW layers and on the host (those in ``model`` plus those the partition step cut off)."""
    nodes = list(model.graph.node)
    hw = [n for n in nodes if n.domain.startswith(HW_DOMAIN)]
    host = [(n.name, n.op_type) for n in nodes if not n.domain.startswith(HW_DOMAIN)]
    host += [tuple(x) for x in results.host_nodes if x[1] != "StreamingDataflowPartition"]
    total = len(hw) + len(host)
    op_of = {n.name: n.op_type for n in nodes}
    float_in = float_input_layers(model, hw)
    return {
        "total": total,
        "on_hw": len(hw),
        "on_host": len(host),
        "hw_fraction": len(hw) / total if total else 0.0,
        "hw_op_types": dict(Counter(n.op_type for n in hw).most_common()),
        "host_op_types": dict(Counter(op for _, op in host).most_common()),
        "host_nodes": [list(x) for x in host],
        "float_input_op_types": dict(Counter(op_of[x] for x in float_in).most_common()),
        "float_input_layers": float_in,
    }


def cost_row(cost, cycles: int, name: str | None = None, op_type: str | None = None,
             runtime_writeable: bool = False, **more) -> dict:
    """The report row of one priced layer (a ``LayerCost``): resources with their source and unmodelled zeros,
    ``cycles`` per frame, ``more`` keys after them; ``name`` / ``op_type`` replace the cost's."""
    return {"name": name or cost.name, "op_type": op_type or cost.op_type, "cycles": int(cycles),
            **{r: float(getattr(cost, r)) for r in RESOURCES}, "source": cost.source,
            "unmodelled": list(cost.unmodelled), "runtime_writeable": runtime_writeable, **more}


def estimated_stream_row(cost, name: str | None = None, **more) -> dict:
    """The row of a FIFO or width converter the stitched pipeline needs (not in the graph yet): counted, its op type
    marked "(estimated)", with its depth."""
    return cost_row(cost, 0, name=name, op_type=f"{cost.op_type} (estimated)", depth=cost.detail.get("depth"),
                    **more)


def layer_rows(model, results: BuildResults) -> list[dict]:
    """One row per HW layer: resources with their source and unmodelled zeros, cycles, runtime-writeable."""
    rw = set(results.runtime_writeable)
    rows = []
    for n in model.graph.node:
        if not n.domain.startswith(HW_DOMAIN):
            continue
        c = results.costs.get(n.name)
        if c is not None:
            rows.append(cost_row(c, results.cycles.get(n.name, 0), runtime_writeable=n.name in rw))
            continue
        rows.append({"name": n.name, "op_type": n.op_type, "cycles": results.cycles.get(n.name, 0),
                     **dict.fromkeys(RESOURCES, 0.0), "source": "not estimated", "unmodelled": list(RESOURCES),
                     "runtime_writeable": n.name in rw})
    rows += [estimated_stream_row(c) for c in results.fifos]
    return rows


def by_op_type(rows: list[dict]) -> dict[str, dict]:
    """Per layer type: count, summed resources, the sources of its figures, the resources left unmodelled (0 not
    measured) by any of its layers, and its slowest layer's cycles."""
    out: dict[str, dict] = defaultdict(lambda: {"layers": 0, **dict.fromkeys(RESOURCES, 0.0), "sources": [],
                                                "unmodelled": [], "max_cycles": 0})
    for row in rows:
        t = out[row["op_type"]]
        t["layers"] += 1
        for r in RESOURCES:
            t[r] += row[r]
        t["sources"] = sorted(set(t["sources"]) | {row["source"]})
        t["unmodelled"] = [r for r in RESOURCES if r in set(t["unmodelled"]) | set(row["unmodelled"])]
        t["max_cycles"] = max(t["max_cycles"], row["cycles"])
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["LUT"]))


def verdict(totals: dict[str, float], types: dict[str, dict], board: Board, limit: float, fps: float | None,
            clock_mhz: float) -> dict:
    """Does the design fit ``board`` as one pipeline within ``limit`` of every resource; if not, which resource
    binds, by how much, and what would make it fit."""
    budget = board.budget()
    pressure = {r: (totals[r] / (limit * budget[r]) if budget[r] else (float("inf") if totals[r] else 0.0))
                for r in RESOURCES}
    binding = max(pressure, key=pressure.get)
    fits = pressure[binding] <= 1.0
    if fits:
        text = (f"fits {board.name} as one pipeline within {100 * limit:.0f}% of every resource "
                f"({binding} highest at {100 * limit * pressure[binding]:.0f}% of the board)"
                + (f"; {fps:,.1f} fps at {clock_mhz:g} MHz" if fps else ""))
    else:
        over = sorted((r for r in RESOURCES if pressure[r] > 1.0), key=lambda r: -pressure[r])
        text = (f"does not fit {board.name} as one pipeline: over the {100 * limit:.0f}% budget on "
                + ", ".join(f"{r} " + ("(the board has none)" if pressure[r] == float("inf") else
                                       f"{pressure[r]:.2f}x") for r in over) + f" ({binding} binds)")
    return {"fits": fits, "binding": binding, "pressure": pressure, "text": text,
            "advice": advice(totals, {k: {r: v[r] for r in RESOURCES} for k, v in types.items()}, board, limit)}


def build_report(model, results: BuildResults, board: Board, clock_mhz: float, limit: float) -> dict:
    """Report dict (fields in docs/hardware.md). ``model``: the estimated HW graph; ``results``: the steps'."""
    rolled = results.rolled if results.rolled.get("rows") else None
    # a rolled build is counted as built: its unrolled pieces and each body once (rows of the roll step)
    rows = [dict(x) for x in rolled["rows"]] if rolled else layer_rows(model, results)
    types = by_op_type(rows)
    budget = board.budget()
    tot = {r: float(sum(x[r] for x in rows)) for r in RESOURCES}
    slow = max(rows, key=lambda x: x["cycles"], default=None)
    cycles = slow["cycles"] if slow else 0
    ddr = ddr_traffic(results, board, clock_mhz)
    compute_fps = clock_mhz * 1e6 / cycles if cycles else None
    fps = min(compute_fps, ddr["fps_limit"]) if compute_fps and ddr else compute_fps
    v = verdict(tot, types, board, limit, fps, clock_mhz)
    binding = v["binding"]
    return {
        "board": board.to_dict(),
        "clock_mhz": clock_mhz,
        "nodes": node_census(model, results),
        "total": {
            "resources": tot,
            "budget": budget,
            "utilization": {r: (tot[r] / budget[r] if budget[r] else None) for r in RESOURCES},
            "margin": {r: limit * budget[r] - tot[r] for r in RESOURCES},
            "fit_limit": limit,
            "fits": v["fits"],
            "bottleneck_cycles": cycles,
            "bottleneck_node": slow["name"] if slow else None,
            "fps": fps,
            "compute_fps": compute_fps,
            "ddr": ddr,
            "sources": sorted({x["source"] for x in rows}),
            "unmodelled": {op: t["unmodelled"] for op, t in types.items() if t["unmodelled"]},
        },
        "verdict": v,
        "fit_search": results.fit.to_dict() if results.fit else None,
        "op_types": types,
        "layers": rows,
        "largest_layers": sorted(rows, key=lambda x: -x[binding])[:10],
        "memory": {"placed_without_uram": results.memory_forced, "runtime_writeable": results.runtime_writeable,
                   "block": block_memory(types, board, limit)},
        "segments": len(results.segments),
        "partition_note": results.partition_note,
        # integer LayerNorm / softmax layers: replaced (exactly, or "approximate" from a float LayerNorm), skipped
        "int_ops": results.int_ops,
        # the graph input: uint8 image (layout, pad codes), or why it stayed as it was; None: option off
        "pixel_input": results.pixel_input,
        # residuals around windowed attention moved into window order (fork names), and those refused (reason)
        "window_residual": results.window_residual,
        # layers on the token-batched unit (weights in DDR): offsets, bytes, DDR traffic per frame; {} when off
        "token_batch": _token_batch_summary(results.token_batch, fps),
        # rolled stages (options.roll): what was rolled or refused, the rolled-vs-unrolled check; {} when off
        "rolled": {k: v for k, v in results.rolled.items() if k != "rows"},
    }


def ddr_traffic(results: BuildResults, board: Board, clock_mhz: float) -> dict | None:
    """DDR bytes per frame of what the build keeps in DDR (token-batched weights, rolled stages' frame and loop
    buffers) and the frame rate the board's DDR allows at ``PlanConfig.ddr_efficiency`` of its peak
    (``plan.pricing.DDR_GBPS``); None when nothing is in DDR."""
    from samfpga.hw.plan.planner import PlanConfig
    from samfpga.hw.plan.pricing import DDR_GBPS

    # column strips read token-batched weights again for their halo tokens (rolled bodies, options.roll_strips)
    weights = float(results.token_batch.get("ddr_bytes_per_frame", 0.0)) + \
        float(results.rolled.get("strip_weight_ddr_bytes", 0.0))
    loops = float(results.rolled.get("loop_ddr_bytes", 0.0))
    if not weights and not loops:
        return None
    gbps, src = DDR_GBPS.get(board.name, (None, "unknown"))
    eff = PlanConfig().ddr_efficiency
    total = weights + loops
    return {"bytes_per_frame": total, "weights": weights, "loop_buffers": loops, "peak_gbps": gbps,
            "peak_source": src, "efficiency": eff,
            "fps_limit": (gbps * 1e9 * eff / total) if gbps else None}


def _token_batch_summary(tb: dict, fps: float | None) -> dict:
    """The token-batch step's results plus the DDR read bandwidth its layers need at the report's fps."""
    if not tb:
        return {}
    return {**tb, "ddr_gbps_at_fps": (tb["ddr_bytes_per_frame"] * fps / 1e9) if fps else None}


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.1f}" if abs(x) < 1e6 else f"{x:.3g}"
    return str(x)


def _cell(t: dict, r: str) -> str:
    """A resource figure; a 0 that its source does not model is shown as ``0*``."""
    return "0*" if (t[r] == 0 and r in t["unmodelled"]) else _fmt(t[r])


def report_markdown(rep: dict, chart: str | None = None) -> str:
    """Readable summary of ``build_report``'s dict; ``chart``: file name of the bar chart next to report.md."""
    b, n, t, v = rep["board"], rep["nodes"], rep["total"], rep["verdict"]
    lines = [
        f"# FINN build report: {b['name']} ({b['part']}, {rep['clock_mhz']:g} MHz)",
        "",
        f"**Verdict: {v['text']}.**",
        "",
        *[f"- {a}" for a in v["advice"]],
        "" if v["advice"] else None,
        f"Figures from: {', '.join(t['sources']) or '-'} (no synthesis). `0*`: the source does not model this "
        "resource for that layer type; the zero is not a measurement.",
        "",
        f"Nodes: {n['total']} total, {n['on_hw']} on HW layers ({100 * n['hw_fraction']:.1f}%), "
        f"{n['on_host']} left on the host: {n['host_op_types'] or 'none'}",
        "",
        f"HW layers with a float input stream: {n['float_input_op_types'] or 'none'}",
        "",
        f"Slowest layer: {t['bottleneck_node']} at {t['bottleneck_cycles']:,} cycles per frame -> "
        f"{_fmt(t.get('compute_fps', t['fps']))} fps at {rep['clock_mhz']:g} MHz.",
        "",
        *_ddr_lines(t.get("ddr"), t["fps"]),
        f"| resource | total | budget | utilization | margin to {100 * t['fit_limit']:.0f}% |",
        "|---|---|---|---|---|",
    ]
    lines = [x for x in lines if x is not None]
    for r in RESOURCES:
        u = t["utilization"][r]
        lines.append(f"| {r} | {_fmt(t['resources'][r])} | {t['budget'][r]:,} | "
                     f"{'-' if u is None else f'{100 * u:.1f}%'} | {_fmt(t['margin'][r])} |")
    lines += ["", "## Per layer type", ""]
    if chart:
        lines += [f"![resource use per layer type against the {b['name']} budget]({chart})", ""]
    lines += ["| layer type | layers | LUT | FF | BRAM36 | URAM | DSP | source | slowest (cycles) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for op, x in rep["op_types"].items():
        lines.append(f"| {op} | {x['layers']} | " + " | ".join(_cell(x, r) for r in RESOURCES)
                     + f" | {', '.join(x['sources'])} | {x['max_cycles']:,} |")
    lines.append("| **budget** | | " + " | ".join(f"{t['budget'][r]:,}" for r in RESOURCES) + " | | |")
    lines += _fit_lines(rep.get("fit_search")) + _memory_lines(rep["memory"]) + _token_batch_lines(rep.get("token_batch"))
    lines += _rolled_lines(rep.get("rolled"))
    lines += ["", "## Largest layers (by the binding resource)", "",
              "| layer | type | LUT | BRAM36 | URAM | DSP | cycles | source |", "|---|---|---|---|---|---|---|---|"]
    for x in rep["largest_layers"]:
        lines.append(f"| {x['name']} | {x['op_type']} | {_cell(x, 'LUT')} | {_cell(x, 'BRAM36')} | "
                     f"{_cell(x, 'URAM')} | {_cell(x, 'DSP')} | {x['cycles']:,} | {x['source']} |")
    if rep.get("partition_note"):
        lines += ["", f"Partition: {rep['partition_note']}."]
    if "stopped" in rep:
        lines += ["", f"Build stopped before `{rep['stopped']['step']}`: {rep['stopped']['message']}"]
    lines += ["", "Every layer (resources, source, cycles) is in report.json (`layers`)."]
    return "\n".join(lines) + "\n"


def _fit_lines(f: dict | None) -> list[str]:
    if not f:
        return ["", "Folding: not searched (folding file or FINN's target-fps folding)."]
    cap = " (capped by --target-fps)" if f["capped"] else ""
    return ["", "## Fit search", "",
            f"Searched folding and memory styles ({f['table_size']} per-layer options, table {f['table_seconds']:.1f}"
            f" s, search {f['seconds']:.2f} s, {f['trials']} trials): "
            + (f"fastest that fits: {f['cycles']:,} cycles per frame, {f['fps']:.3g} fps{cap}."
               if f["fits"] else
               f"nothing fits; the smallest configuration ({f['cycles']:,} cycles) needs {f['binding']} "
               f"{f['over_by']:.2f}x its budget share.")
            + f" Fastest possible at any size: {f['min_cycles']:,} cycles "
              f"({f['clock_mhz'] * 1e6 / f['min_cycles']:.3g} fps)."]


def _token_batch_lines(tb: dict | None) -> list[str]:
    if not tb:
        return []
    gbps = tb["ddr_gbps_at_fps"]
    out = ["", "## Token-batched layers (weights in DDR)", "",
           f"{len(tb['layers'])} MVAU + Requant pairs on the token-batched unit (B = {tb['batch']}, dot {tb['dot']}), "
           f"their weights and parameters in `{tb['image']}` ({tb['image_bytes']:,} bytes, loaded into DDR by the "
           f"host); {tb['ddr_bytes_per_frame']:,} bytes read per frame"
           + (f", {gbps:.3g} GB/s at the report's fps." if gbps is not None else ".")]
    if tb["kept"]:
        out += ["", "Kept on chip: " + "; ".join(f"{k} ({v})" for k, v in sorted(tb["kept"].items())) + "."]
    return out


def _ddr_lines(d: dict | None, fps: float | None) -> list[str]:
    if not d:
        return []
    lim = d["fps_limit"]
    return [f"DDR: {d['bytes_per_frame'] / 1e6:,.2f} MB per frame (weights {d['weights'] / 1e6:,.2f}, loop and frame "
            f"buffers {d['loop_buffers'] / 1e6:,.2f}); at {100 * d['efficiency']:.0f}% of {d['peak_gbps']} GB/s "
            f"({d['peak_source']}) that allows {_fmt(lim)} fps; the design's rate: {_fmt(fps)} fps.", ""]


def _rolled_lines(r: dict | None) -> list[str]:
    if not r or not r.get("stages"):
        return []
    out = ["", "## Rolled stages (one body per stage, run once per block)", "",
           "| stage | blocks | body nodes | body interval | stage interval | loop DDR bytes/frame | token-batched "
           "| DDR stride | column strips (input widths) |", "|---|---|---|---|---|---|---|---|---|"]
    for s in r["stages"]:
        strides = sorted(set(s["ddr_stride"].values()))
        st = s.get("strips") or {}
        cut = (f"{st['strips']} ({', '.join(map(str, st['widths']))} of {st['map_width']})" if st.get("widths")
               else f"whole map ({st['refused']})" if st.get("refused") else "whole map")
        out.append(f"| {s['name']} | {s['iterations']} | {s['body_nodes']} | {s['body_interval']:,} | "
                   f"{s['interval']:,} | {s['ddr_bytes_per_frame']:,} | {len(s['token_batched'])} | "
                   f"{', '.join(f'{x:,}' for x in strides) or '-'} | {cut} |")
    for x in r.get("refused", []):
        out.append(f"\nNot rolled: {x['name']}: {'; '.join(x['differences'][:3])}")
    if r.get("hdl"):
        from samfpga.hw.rolled.hdl import coverage_line

        line = coverage_line(r["hdl"])
        out.append(f"\n{line[0].upper()}{line[1:]}.")
    v = r.get("verify")
    if v:
        out += ["", f"Rolled vs unrolled graph (FINN python execution, {v['input']}): {v['differing']} of "
                    f"{v['values']:,} values differ (tolerance 0); {v['unrolled_seconds']} s unrolled, "
                    f"{v['rolled_seconds']} s rolled."]
    out += ["", "Each body's layers, FIFOs and per-iteration parameters (`rolled parameters (on chip)`, own model) "
                "are counted once; its cycles are N x the layer's; each stage's loop and frame buffers are in DDR, "
                "moved by strip DMA engines (Yosys counts). In column strips a body is counted at its widest strip, "
                "its cycles summed over the strips (halo columns included), the halos' extra DDR reads counted; "
                "strips are priced, not yet in the rolled HDL."]
    return out


URAM_IN_BRAM36 = 8  # bits: a URAM is 4K x 72 = 288 Kb, a BRAM36 1K x 36 = 36 Kb


def block_memory(types: dict, board, limit: float) -> dict:
    """Block memory counted by bits, in BRAM36 equivalents (1 URAM = 8): the design's (BRAM36 + 8 x URAM) against
    the board's at ``limit``. Memory styles trade BRAM for URAM, so no choice of them fits a design whose sum is
    over; LUTRAM is in the LUT figure, not here."""
    used = {op: t["BRAM36"] + URAM_IN_BRAM36 * t["URAM"] for op, t in types.items()}
    total = float(sum(used.values()))
    cap = float(board.bram36 + URAM_IN_BRAM36 * board.uram)
    return {"bram36_equivalents": total, "board": cap, "of_limit": total / (limit * cap) if cap else None,
            "by_op_type": {op: v for op, v in sorted(used.items(), key=lambda x: -x[1]) if v}}


def _memory_lines(m: dict) -> list[str]:
    out = []
    b = m.get("block")
    if b and b["board"]:
        top = ", ".join(f"{op} {v:,.1f}" for op, v in list(b["by_op_type"].items())[:4])
        out += ["", f"Block memory by bits (BRAM36 + 8 x URAM): {b['bram36_equivalents']:,.1f} BRAM36 equivalents "
                    f"of the board's {b['board']:,.0f}, {b['of_limit']:.2f}x its fit limit"
                    + (f" (largest: {top})" if top else "") + "."]
    if m["placed_without_uram"]:
        out += ["", f"No URAM on this board: {len(m['placed_without_uram'])} layers' memories placed in BRAM/LUTRAM "
                    "(FINN's automatic placement would count URAM)."]
    if m["runtime_writeable"]:
        out += ["", f"Runtime-writeable (memories in URAM, which the bitstream cannot initialise; the driver writes "
                    f"their weights/thresholds at start-up): {', '.join(m['runtime_writeable'])}."]
    return out
