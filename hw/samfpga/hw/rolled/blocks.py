"""The repeated blocks of a FINN HW graph, found by structure.

The QONNX export carries PyTorch's name scopes as node metadata (``pkg.torch.onnx.name_scopes``, what FINN+'s
``LoopExtraction`` keys on), but the flow's transformations make new nodes without it. Measured on the reduced test
encoder: nodes with name scopes 197/475 after ``qonnx_to_finn``, 68/231 after ``streamline``, 8/246 after
``convert_to_hw`` (a few host Reshapes), 0/244 after ``specialize``. So blocks are found from the graph's structure;
``block_scopes`` reads what metadata remains, as a label and a cross-check.

1. **Units.** Walking the nodes in (topological) graph order, a *cut* is a point where exactly one tensor is live
   (produced before, consumed after). The nodes between consecutive cuts form a unit with one activation in and one
   out: a residual branch (fork ... join) is one unit, a lone layer between residuals is another.
2. **Exact repeats.** Each unit gets a signature: its nodes' op types, the shapes of their non-initializer inputs and
   outputs, and its internal wiring (never datatypes or parameter values). A run of units that repeats with period
   ``p`` at least twice, and holds a weight layer (MVAU/VVAU), is a stage of ``copies`` blocks of ``p`` units.
3. **Near repeats.** Where streamlining made the blocks of a stage differ (a layer in one block only), the units
   with weight layers still repeat: blocks are then cut at the first weight unit of each repeat, and the last block
   takes the trailing units that match the first block's. Such stages are marked ``exact=False``; the body
   comparison (``samfpga.hw.rolled.body``) then names what differs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

#: layers with weights (base op types; DepthwiseVVAU: the project's depthwise RTL layer; TokenBatchMVU: an MVAU +
#: Requant pair on the token-batched unit, weights in DDR): a block worth rolling holds at least one
WEIGHT_OPS = ("MVAU", "VVAU", "DepthwiseVVAU", "TokenBatchMVU")


def base_op(op_type: str) -> str:
    """``MVAU_rtl`` / ``VVAU_hls`` -> ``MVAU`` / ``VVAU``: the HW abstraction's op type."""
    for suffix in ("_rtl", "_hls"):
        if op_type.endswith(suffix):
            return op_type[: -len(suffix)]
    return op_type


@dataclass(frozen=True)
class Unit:
    """Nodes between two cuts: ``act_in`` -> nodes -> ``act_out`` (the only tensors crossing its borders)."""

    nodes: tuple[str, ...]
    act_in: str
    act_out: str
    signature: tuple
    heavy: bool  # holds a weight layer


@dataclass(frozen=True)
class Block:
    """One block of a repeated stage: its nodes in graph order, its activation input and output tensors."""

    index: int
    nodes: tuple[str, ...]
    act_in: str
    act_out: str


@dataclass(frozen=True)
class RepeatedStage:
    """``len(blocks)`` consecutive blocks of the same structure (``exact``: identical unit signatures; else blocks
    found by their weight units, see the module doc). ``units``: index range of the units they cover."""

    blocks: tuple[Block, ...]
    exact: bool
    units: tuple[int, int]

    @property
    def iterations(self) -> int:
        return len(self.blocks)

    @property
    def name(self) -> str:
        """``<first node of block 0>..<last node of the last block>`` (x N)."""
        return f"{self.blocks[0].nodes[0]}..{self.blocks[-1].nodes[-1]} (x{self.iterations})"


def block_scopes(model, block: Block) -> list[str]:
    """The ``<layer>.blocks.<i>`` PyTorch scopes named in the surviving ``pkg.torch.onnx.name_scopes`` metadata of
    ``block``'s nodes (sorted; empty when none survived)."""
    import ast
    import re

    byname = {n.name: n for n in model.graph.node}
    out = set()
    for name in block.nodes:
        for p in byname[name].metadata_props:
            if p.key == "pkg.torch.onnx.name_scopes":
                out.update(s for s in ast.literal_eval(p.value) if re.fullmatch(r"[\w.]*\.blocks\.\d+", s))
    return sorted(out)


def _node_signature(model, node, inits: set[str]) -> tuple:
    shapes = tuple(tuple(model.get_tensor_shape(t) or ()) for t in node.input if t and t not in inits)
    outs = tuple(tuple(model.get_tensor_shape(t) or ()) for t in node.output)
    return node.op_type, shapes, outs


def units(model) -> list[Unit]:
    """The graph cut into units (module doc, step 1), in graph order. The graph's nodes must be topologically
    sorted (FINN's steps keep them so)."""
    g = model.graph
    inits = {i.name for i in g.initializer}
    nodes = list(g.node)
    produced: dict[str, int] = {i.name: -1 for i in g.input}
    for i, n in enumerate(nodes):
        for t in n.output:
            produced[t] = i
    last: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for t in n.input:
            if t in produced:
                if produced[t] >= i:
                    raise ValueError(f"node {n.name} reads {t} before it is produced: sort the graph first")
                last[t] = max(last.get(t, -1), i)
    for o in g.output:
        last[o.name] = len(nodes)
    starts, ends = defaultdict(list), defaultdict(list)
    for t, p in produced.items():
        if t in last:
            starts[p].append(t)
            ends[last[t]].append(t)
    live = set(starts[-1])
    out, cur, cur_in = [], [], next(iter(live)) if len(live) == 1 else ""
    for i, n in enumerate(nodes):
        live.difference_update(ends[i])
        live.update(starts[i])
        cur.append(n)
        if len(live) == 1:
            act_out = next(iter(live))
            out.append(_unit(model, cur, cur_in, act_out, inits))
            cur, cur_in = [], act_out
    if cur:
        out.append(_unit(model, cur, cur_in, "", inits))
    return out


def _unit(model, nodes: list, act_in: str, act_out: str, inits: set[str]) -> Unit:
    where = {t: (k, j) for k, n in enumerate(nodes) for j, t in enumerate(n.output)}
    wiring = tuple(tuple(where.get(t, "in" if t == act_in else "init" if t in inits else "ext") for t in n.input)
                   for n in nodes)
    sig = (tuple(_node_signature(model, n, inits) for n in nodes), wiring)
    heavy = any(base_op(n.op_type) in WEIGHT_OPS for n in nodes)
    return Unit(tuple(n.name for n in nodes), act_in, act_out, sig, heavy)


def _periodic_runs(sigs: list, min_copies: int) -> list[tuple[int, int, int]]:
    """(start, period, copies) of every maximal run of ``sigs`` that repeats with some period ``copies`` >= min
    times."""
    out, n = [], len(sigs)
    for p in range(1, n // min_copies + 1):
        j = 0
        while j + p < n:
            if sigs[j] != sigs[j + p]:
                j += 1
                continue
            e = j
            while e + p < n and sigs[e] == sigs[e + p]:
                e += 1
            copies = (e - j + p) // p
            if copies >= min_copies:
                out.append((j, p, copies))
            j = e
    return out


def _select(cands: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Non-overlapping candidates (start, period, copies, weight) by covered weight, then smaller period."""
    taken: list[tuple[int, int, int, int]] = []
    for c in sorted(cands, key=lambda c: (-c[3], c[1], c[0])):
        lo, hi = c[0], c[0] + c[1] * c[2]
        if all(hi <= t[0] or lo >= t[0] + t[1] * t[2] for t in taken):
            taken.append(c)
    return sorted(taken)


def find_stages(model, min_blocks: int = 2) -> list[RepeatedStage]:
    """The repeated stages of ``model`` (a FINN HW graph, one input), in graph order; see the module doc."""
    us = units(model)
    sizes = [len(u.nodes) for u in us]
    exact = []
    for s, p, c in _periodic_runs([u.signature for u in us], min_blocks):
        if any(us[k].heavy for k in range(s, s + p)):
            exact.append((s, p, c, sum(sizes[s: s + p * c])))
    chosen = _select(exact)
    stages = [_stage(us, [list(range(s + i * p, s + (i + 1) * p)) for i in range(c)], True) for s, p, c, _ in chosen]
    covered = {k for s, p, c, _ in chosen for k in range(s, s + p * c)}
    # near repeats: the sequence of weight units repeats although glue units between them differ
    heavy = [k for k, u in enumerate(us) if u.heavy]
    near = []
    for s, p, c in _periodic_runs([us[k].signature for k in heavy], min_blocks):
        first, last = heavy[s], heavy[s + p * c - 1]
        if any(k in covered for k in range(first, last + 1)):
            continue
        near.append((s, p, c, sum(sizes[first: last + 1])))
    for s, p, c, _ in _select(near):
        starts = [heavy[s + i * p] for i in range(c)]
        groups = [list(range(a, b)) for a, b in zip(starts, starts[1:], strict=False)]
        tail = [k for k in groups[0] if k > heavy[s + p - 1]]  # first block's units after its last weight unit
        lastg = list(range(starts[-1], heavy[s + p * c - 1] + 1))
        k = lastg[-1] + 1
        for t in tail:  # the last block takes the following units that match the first block's tail, in order
            if k < len(us) and not us[k].heavy and us[k].signature == us[t].signature:
                lastg.append(k)
                k += 1
        groups.append(lastg)
        stages.append(_stage(us, groups, False))
    return sorted(stages, key=lambda st: st.units[0])


def _stage(us: list[Unit], groups: list[list[int]], exact: bool) -> RepeatedStage:
    blocks = tuple(Block(i, tuple(n for k in g for n in us[k].nodes), us[g[0]].act_in, us[g[-1]].act_out)
                   for i, g in enumerate(groups))
    return RepeatedStage(blocks, exact, (groups[0][0], groups[-1][-1] + 1))
