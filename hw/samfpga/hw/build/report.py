"""Build report: nodes on HW / host, FINN resource + cycle estimates, partitions against the board budget, fps."""

from __future__ import annotations

import math
from collections import Counter

from samfpga.hw import HW_DOMAIN
from samfpga.hw.boards import RESOURCES, Board


def layer_resources(est: dict) -> dict[str, float]:
    """FINN's per-node estimate -> our units (BRAM in 36 Kb blocks = BRAM_18K / 2; FF when FINN gives it)."""
    return {
        "LUT": float(est.get("LUT", 0)),
        "FF": float(est.get("FF", 0)),
        "BRAM36": float(est.get("BRAM_18K", 0)) / 2.0,
        "URAM": float(est.get("URAM", 0)),
        "DSP": float(est.get("DSP", 0)),
    }


def _sum(rows: list[dict[str, float]]) -> dict[str, float]:
    return {r: float(sum(x[r] for x in rows)) for r in RESOURCES}


def _fits(total: dict[str, float], budget: dict[str, int], limit: float) -> bool:
    return all(total[r] <= limit * budget[r] for r in RESOURCES if budget[r] > 0 or total[r] > 0)


def split_by_budget(names: list[str], res: dict[str, dict[str, float]], budget: dict[str, int],
                    limit: float) -> list[list[str]]:
    """Greedy split of a run of HW nodes (topological order) into consecutive groups each within ``limit`` x budget.

    A single node larger than the budget gets a group of its own (it cannot be split without refolding).
    """
    groups: list[list[str]] = []
    cur: list[str] = []
    for n in names:
        trial = cur + [n]
        if cur and not _fits(_sum([res[x] for x in trial]), budget, limit):
            groups.append(cur)
            cur = [n]
        else:
            cur = trial
    if cur:
        groups.append(cur)
    return groups


def float_input_layers(model, hw: list) -> list[str]:
    """Names of the HW layers ``hw`` with a float (non-integer) input stream; constant inputs don't count."""
    return [n.name for n in hw
            if any(t and model.get_initializer(t) is None and not model.get_tensor_datatype(t).is_integer()
                   for t in n.input)]


def build_report(model, notes: dict, board: Board, clock_mhz: float, limit: float) -> dict:
    """Report dict (see docs/hardware.md for the fields). ``model`` is the estimated HW graph."""
    nodes = list(model.graph.node)
    hw = [n for n in nodes if n.domain.startswith(HW_DOMAIN)]
    # host nodes: those left in this graph plus those the partition step cut off around the dataflow partition
    host = [(n.name, n.op_type) for n in nodes if not n.domain.startswith(HW_DOMAIN)]
    host += [tuple(x) for x in notes.get("host_nodes", []) if x[1] != "StreamingDataflowPartition"]
    nodes_total = len(hw) + len(host)
    res = {n.name: layer_resources(notes.get("resources", {}).get(n.name, {})) for n in hw}
    cycles = notes.get("cycles", {})
    budget = board.budget()
    hw_names = {n.name for n in hw}
    segments = [[x for x in s if x in hw_names] for s in notes.get("segments", [[n.name for n in hw]])]
    segments = [s for s in segments if s]
    op_of = {n.name: n.op_type for n in nodes}
    float_in = float_input_layers(model, hw)

    partitions = []
    for si, seg in enumerate(segments):
        for group in split_by_budget(seg, res, budget, limit):
            tot = _sum([res[x] for x in group])
            cyc = max((cycles.get(x, 0) for x in group), default=0)
            partitions.append({
                "index": len(partitions),
                "host_segment": si,
                "nodes": len(group),
                "op_types": dict(Counter(op_of[x] for x in group).most_common()),
                "resources": tot,
                "utilization": {r: (tot[r] / budget[r] if budget[r] else (math.inf if tot[r] else 0.0))
                                for r in RESOURCES},
                "margin": {r: budget[r] - tot[r] for r in RESOURCES},
                "fits": _fits(tot, budget, 1.0),
                "bottleneck_cycles": cyc,
                "bottleneck_node": max(group, key=lambda x: cycles.get(x, 0)),
                "fps_at_clock": clock_mhz * 1e6 / cyc if cyc else None,
                "layers": [{"name": x, "op_type": op_of[x], "cycles": cycles.get(x, 0), **res[x]} for x in group],
            })
    total = _sum([res[n.name] for n in hw])
    total_fits = _fits(total, budget, 1.0)
    # one partition: the dataflow pipeline's rate is set by its slowest layer. Several partitions on one device
    # run one after the other (reconfiguration time not counted), so their bottleneck cycles add up.
    seq_cycles = sum(p["bottleneck_cycles"] for p in partitions)
    one_cycles = max((cycles.get(n.name, 0) for n in hw), default=0)
    return {
        "board": board.to_dict(),
        "clock_mhz": clock_mhz,
        "nodes": {
            "total": nodes_total,
            "on_hw": len(hw),
            "on_host": len(host),
            "hw_fraction": len(hw) / nodes_total if nodes_total else 0.0,
            "hw_op_types": dict(Counter(n.op_type for n in hw).most_common()),
            "host_op_types": dict(Counter(op for _, op in host).most_common()),
            "host_nodes": [list(x) for x in host],
            "float_input_op_types": dict(Counter(op_of[x] for x in float_in).most_common()),
            "float_input_layers": float_in,
        },
        "total": {
            "resources": total,
            "budget": budget,
            "utilization": {r: (total[r] / budget[r] if budget[r] else None) for r in RESOURCES},
            "margin": {r: budget[r] - total[r] for r in RESOURCES},
            "fits": total_fits,
            "single_pipeline_bottleneck_cycles": one_cycles,
            "fps_if_fits": clock_mhz * 1e6 / one_cycles if (one_cycles and total_fits) else None,
            "fps_single_pipeline_unconstrained": clock_mhz * 1e6 / one_cycles if one_cycles else None,
            "partitions": len(partitions),
            "fps_partitions_sequential": clock_mhz * 1e6 / seq_cycles if seq_cycles else None,
            "partition_limit": limit,
        },
        "partitions": partitions,
    }


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.1f}" if abs(x) < 1e6 else f"{x:.3g}"
    return str(x)


def report_markdown(rep: dict) -> str:
    """Readable summary of ``build_report``'s dict."""
    b, n, t = rep["board"], rep["nodes"], rep["total"]
    lines = [
        f"# FINN build report: {b['name']} ({b['part']}, {rep['clock_mhz']:g} MHz)",
        "",
        "FINN analytical estimates (no synthesis). FINN has no flip-flop model: FF shows 0 (not estimated).",
        "",
        f"Nodes: {n['total']} total, {n['on_hw']} on HW layers ({100 * n['hw_fraction']:.1f}%), "
        f"{n['on_host']} left on the host: {n['host_op_types'] or 'none'}",
        "",
        f"HW layers with a float input stream: {n['float_input_op_types'] or 'none'}",
        "",
        "| resource | estimate | budget | utilization | margin |",
        "|---|---|---|---|---|",
    ]
    for r in RESOURCES:
        u = t["utilization"][r]
        lines.append(f"| {r} | {_fmt(t['resources'][r])} | {t['budget'][r]:,} | "
                     f"{'-' if u is None else f'{100 * u:.1f}%'} | {_fmt(t['margin'][r])} |")
    lines += [
        "",
        f"Fits the board as one pipeline: **{'yes' if t['fits'] else 'no'}**. "
        f"Slowest layer: {t['single_pipeline_bottleneck_cycles']:,} cycles -> "
        f"{_fmt(t['fps_single_pipeline_unconstrained'])} fps at {rep['clock_mhz']:g} MHz if it fit.",
        f"Partitions (each within {100 * t['partition_limit']:.0f}% of the budget, run one after the other): "
        f"{t['partitions']} -> {_fmt(t['fps_partitions_sequential'])} fps (reconfiguration not counted).",
        "",
        "| partition | nodes | LUT | BRAM36 | URAM | DSP | fits | bottleneck cycles | fps |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in rep["partitions"]:
        r = p["resources"]
        lines.append(f"| {p['index']} | {p['nodes']} | {_fmt(r['LUT'])} | {_fmt(r['BRAM36'])} | {_fmt(r['URAM'])} | "
                     f"{_fmt(r['DSP'])} | {'yes' if p['fits'] else 'no'} | {p['bottleneck_cycles']:,} | "
                     f"{_fmt(p['fps_at_clock'])} |")
    if "stopped" in rep:
        lines += ["", f"Build stopped before `{rep['stopped']['step']}`: {rep['stopped']['message']}"]
    return "\n".join(lines) + "\n"
