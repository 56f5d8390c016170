"""Rolled stages in the build (``BuildOptions.roll``): the N blocks of a repeated stage built as ONE body run N times.

Where the build uses ``samfpga.hw.rolled`` (the rolled graph and its python execution, docs/loop_rolling.md):

- **fold** (the fit search): ``rollable`` finds the stages one body serves; ``tie`` makes each body node's layer
  group one group for all N blocks (the same folding, set on every block's node), its cycles N x the node's (the
  body runs N times per frame) and its resources once (the largest of the blocks' at that folding, after
  ``unify_datatypes`` gave every block the body's widest datatypes), plus the per-iteration parameters it keeps on
  chip (``param_extra``). With ``token_batch`` each MVAU + Requant pair also has options as the token-batched unit
  (``TokenBatchPricer``): weights on chip (N iterations' in a rolled body) or iteration i's read from DDR at
  BASE + i x STRIDE, whichever the search finds cheaper.
- **roll** (after ``estimates``): ``rolled_costs`` prices the rolled graph itself (``samfpga.hw.rolled.roll``): every
  unrolled piece and each body once (the body's unified attributes and datatypes), the FIFOs and width converters
  of each part, the iterations' parameters, and the strip DMA engines of each stage's frame and loop buffers in DDR;
  ``verify`` runs the rolled graph against the unrolled one (FINN python execution, tolerance 0).

Execution model (as ``samfpga.hw.plan``'s ``rolled_batched`` units): a rolled stage reads its input from a frame
buffer in DDR (written by the unit before it) and loops through a loop buffer in DDR: per frame one write and one
read of its input map, then N - 1 writes and reads of the map, by one reader and one writer engine
(``strip_reader.sv`` / ``strip_writer.sv``, their Yosys counts in ``samfpga.hw.plan.pricing.DMA``). The loop
control is the host's (docs/rolled_stage.md). Not built: the HDL of a rolled body (its per-iteration parameter
memories and the loop DMAs in the stitched design); the build stops before ``hw_codegen`` in this mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from samfpga.hw.boards import RESOURCES, Board

#: what the per-iteration parameters kept on chip are priced as (LayerCost.source, op_type)
PARAM_SOURCE = "own model"
PARAM_OP = "rolled parameters (on chip)"


def rollable(model) -> tuple[list, list]:
    """(plans of the stages one body serves, plans of those it does not) of a FINN HW graph
    (``samfpga.hw.rolled.find_stages`` / ``compare_blocks``)."""
    from samfpga.hw.rolled import compare_blocks, find_stages

    plans = [compare_blocks(model, s) for s in find_stages(model)]
    return [p for p in plans if p.rollable], [p for p in plans if not p.rollable]


def present_columns(model, plans: list) -> list[tuple[str, ...]]:
    """Each body node's names in every block (``BodyPlan.columns``), the names the graph has (an identity node the
    comparison made for a block is not in the graph)."""
    names = {n.name for n in model.graph.node}
    return [tuple(x for x in col if x in names) for p in plans for col in p.columns]


def unify_datatypes(model, plans: list) -> list[str]:
    """Set each rolled body's unified datatype attributes (``BodyPlan.attrs``: the widest of its blocks', which the
    body will have) on the node of every block, so the fit search prices the layers as the body builds them
    (widening is exact: ``samfpga.hw.rolled.body``). Returns the nodes changed."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.rolled.body import DTYPE_ATTRS

    nodes = {n.name: n for n in model.graph.node}
    changed = []
    for p in plans:
        for col in p.columns:
            unified = {k: v for k, v in p.attrs.get(col[0], {}).items() if k in DTYPE_ATTRS}
            for x in col:
                if x not in nodes:
                    continue
                op = getCustomOp(nodes[x])
                types = op.get_nodeattr_types()
                for k, v in unified.items():
                    if k in types and op.get_nodeattr(k) != v:
                        op.set_nodeattr(k, v)
                        changed.append(x)
    return sorted(set(changed))


#: per-iteration attributes a unit holds in its own registers, not in a parameter memory (the token-batched unit's
#: BASE + i x STRIDE address: its STRIDE and ITERS registers, counted with the unit)
UNIT_REGISTERS = frozenset({"ddr_offset"})


def param_bits(plan, node: str, in_ddr: bool = False) -> int:
    """Bits of one iteration's per-iteration parameters of body node ``node`` (block 0's name) kept on chip: its
    PARAMETER initializers at their (unified) datatypes' widths, FLOAT32 at 32, and its per-iteration attributes
    (32 bits each, 64 beyond 32-bit values, one bit per channel for flag lists; not ``UNIT_REGISTERS``). ``in_ddr``:
    the node reads its initializers from DDR (the token-batched unit), only the attributes stay."""
    from samfpga.hw.rolled import Role

    bits = 0
    if not in_ddr:
        bits += sum(i.values[0].size * i.bits for i in plan.inputs if i.node == node and i.role == Role.PARAMETER)
    for (n, attr), vals in plan.attr_params.items():
        if n != node or attr in UNIT_REGISTERS:
            continue
        if isinstance(vals[0], list):
            bits += len(vals[0])
        else:
            bits += 64 if any(abs(int(v)) >= 2**31 for v in vals) else 32
    return int(bits)


def param_extra(bits: int, iterations: int) -> dict[str, float]:
    """Resources of the other ``iterations`` - 1 iterations' parameters of one body node (``bits`` each): one memory
    of a word per iteration (``bits`` <= 72) or of 72-bit words (``resources.memory.place``, FINN's "auto"
    placement: distributed RAM when small), an own model of the concatenated per-iteration memory FINN+'s loop
    rolling builds for Requant (docs/loop_rolling.md)."""
    from samfpga.hw.resources import memory

    res = dict.fromkeys(RESOURCES, 0.0)
    total = bits * (iterations - 1)
    if total <= 0:
        return res
    # a few words per iteration: one word per iteration; else packed in 72-bit words
    m = memory.place(iterations - 1, bits) if bits <= 72 else memory.place(math.ceil(total / 72), 72)
    res.update(LUT=m.LUT, BRAM36=m.BRAM36, URAM=m.URAM)
    return res


def tie(groups: list, plans: list, model, extra: dict[str, dict[str, dict[str, float]]]) -> list:
    """The fit table's ``groups`` with each rolled stage's blocks tied (module doc): a body node's group keeps its
    options, each setting its attributes on the node of every block, with N x the cycles and ``extra[node][variant]``
    (the other iterations' parameters of that body node in that option's variant) added to its resources; the groups
    of the other blocks' nodes are dropped."""
    from samfpga.hw.build.fit import Group, Option

    mates: dict[str, tuple[str, ...]] = {}
    later: set[str] = set()
    reps: dict[str, int] = {}
    for p in plans:
        for col in present_columns(model, [p]):
            mates[col[0]] = col
            reps[col[0]] = p.stage.iterations
            later.update(col[1:])
    by_first = {g.names[0]: g for g in groups}
    out = []
    for g in groups:
        body = [x for x in g.names if x in mates]
        if not body and not any(x in later for x in g.names):
            out.append(g)
            continue
        if not body:
            if not all(x in later for x in g.names):
                raise ValueError(f"fit group {g.names} mixes rolled and unrolled nodes")
            continue
        if len(body) != len(g.names):
            raise ValueError(f"fit group {g.names} mixes a rolled body's nodes with others")
        # the same option of every block's group (the blocks' nodes differ in datatypes, which the body unifies to
        # the widest): the body is priced at the largest of them, per node and resource
        others = []
        for b in range(1, max(len(mates[x]) for x in g.names)):
            gb = by_first.get(mates[g.names[0]][b]) if b < len(mates[g.names[0]]) else None
            if gb is not None and len(gb.names) == len(g.names):
                others.append({_option_key(o, gb.names): o for o in gb.options})
        opts = []
        for o in g.options:
            same = [m.get(_option_key(o, g.names)) for m in others]
            res = {}
            for k, x in enumerate(g.names):
                res[x] = {r: max([o.res[x][r]] + [s_.res[_names(s_)[k]][r] for s_ in same if s_ is not None])
                          + extra.get(x, {}).get(o.variant, {}).get(r, 0.0) for r in RESOURCES}
            opts.append(Option(attrs={y: dict(o.attrs[x]) for x in g.names for y in mates[x]},
                               cycles={x: o.cycles[x] * reps[x] for x in g.names}, res=res, style=o.style,
                               variant=o.variant, origin=o.origin))
        out.append(Group(g.names, g.op_types, opts))
    return out


def _names(option) -> list[str]:
    """The node names of an option, in its group's order (the order its attributes were recorded in)."""
    return list(option.attrs)


def _option_key(option, names: tuple[str, ...]) -> tuple:
    """An option's folding, memory attributes, style and variant, by position in its group (not by node name)."""
    return (tuple(repr(sorted(option.attrs[x].items())) for x in names), option.style, option.variant)


#: the fit option variant of a layer on the token-batched unit
TOKEN_BATCH = "token_batch"


class TokenBatchPricer:
    """``fit.build_table``'s ``alternative`` (``TOKEN_BATCH``, this): an MVAU in ``names`` (None: every MVAU) followed
    by a Requant the unit can compute is priced as the token-batched unit at its folding (``custom_ops.costs`` of
    ``TokenBatchMVU_rtl``, its ``get_exp_cycles``), and that Requant as nothing (it is inside the unit)."""

    def __init__(self, board: Board, batch: int, dot: str, names: set[str] | None) -> None:
        self.board, self.batch, self.dot, self.names = board, batch, dot, names
        self.cache: dict[tuple, tuple[dict[str, float], int] | None] = {}

    def _unit(self, model, node):
        from qonnx.custom_op.registry import getCustomOp

        from samfpga.hw.custom_ops.token_batch import fused_pair

        op = getCustomOp(node)
        key = (node.name, op.get_nodeattr("PE"), op.get_nodeattr("SIMD"))
        if key not in self.cache:
            pair = fused_pair(model, node, self.batch, self.dot)
            if pair is None or pair[2]:
                self.cache[key] = None
            else:
                from samfpga.hw.build.fit import _NodeSubset
                from samfpga.hw.resources import layer_costs

                unit = pair[0]
                cost = layer_costs(_NodeSubset(model, [unit]), self.board)[0]
                self.cache[key] = (cost.resources(), int(getCustomOp(unit).get_exp_cycles()))
        return self.cache[key]

    def pairs(self, model) -> dict[str, str]:
        """{MVAU: its Requant} of every pair this prices as the unit (``fit.build_table``'s ``couple``)."""
        return {n.name: model.find_consumers(n.output[0])[0].name for n in model.graph.node
                if self._ours(n) and self._unit(model, n) is not None}

    def _ours(self, node) -> bool:
        from samfpga.hw.custom_ops.token_batch import MVAU_TYPES

        return node.op_type in MVAU_TYPES and (self.names is None or node.name in self.names)

    def __call__(self, model, node):
        if self._ours(node):
            return self._unit(model, node)
        if node.op_type in ("Requant", "Requant_rtl"):
            prod = model.find_producer(node.input[0])
            if prod is not None and self._ours(prod) and self._unit(model, prod) is not None:
                return dict.fromkeys(RESOURCES, 0.0), 0
        return None


# --------------------------------------------------------------------------------------- the rolled graph's price

@dataclass
class RolledCosts:
    """What ``rolled_costs`` finds: ``rows`` (report rows of every hardware part, as ``report.layer_rows``), the DDR
    bytes per frame of the loops (frame and loop buffers), and per stage a summary; ``strip_weight_ddr_bytes``: the
    token-batched weights the strips' halo tokens read again per frame (0 without strips)."""

    rows: list[dict]
    loop_ddr_bytes: float
    stages: list[dict]
    strip_weight_ddr_bytes: float = 0.0


def _map_bytes(model, tensor: str) -> int:
    shape = model.get_tensor_shape(tensor)
    bits = model.get_tensor_datatype(tensor).bitwidth()
    return math.ceil(int(np.prod(shape)) * bits / 8)


def _dma_engine(kind: str, channels: int, beat: int) -> str:
    return f"strip_{kind}_aligned" if channels % beat == 0 else f"strip_{kind}"


def dma_engines(model, plans: list, beat: int = 16,
                read_factor: dict[str, float] | None = None) -> list[tuple[str, str, int]]:
    """(name, engine, cycles per frame) of the strip DMA engines the rolled stages ``plans`` of ``model`` need: per
    stage a reader and a writer of its loop buffer (N passes over the map: block 0 reads the frame buffer, the
    later blocks the loop buffer), and a writer of its frame buffer when the unit before it is not a rolled stage
    (whose loop writer writes it). Aligned engines where the channels fill whole ``beat``-byte beats.
    ``read_factor``: per stage, the columns its reader reads per map column (column strips re-read their halos)."""
    ends = {p.stage.blocks[-1].act_out for p in plans}
    out = []
    for p in plans:
        t = p.stage.blocks[0].act_in
        ch = int(model.get_tensor_shape(t)[-1])
        beats = math.ceil(_map_bytes(model, t) / beat)
        n = p.stage.iterations
        if t not in ends:
            out.append((f"{p.stage.name}.frame_writer", _dma_engine("writer", ch, beat), beats))
        reads = math.ceil(beats * (read_factor or {}).get(p.stage.name, 1.0))
        out.append((f"{p.stage.name}.loop_reader", _dma_engine("reader", ch, beat), n * reads))
        out.append((f"{p.stage.name}.loop_writer", _dma_engine("writer", ch, beat), n * beats))
    return out


def rolled_costs(model, board: Board, own_rtl: bool = True, beat: int = 16,
                 strips: int | tuple[int, ...] = 1) -> tuple[object, RolledCosts]:
    """(the ``RolledGraph`` of ``model``, its price): see the module doc. ``beat``: bytes per AXI beat of the strip
    DMA engines (128-bit ports, as the planner's ``PlanConfig.dma_beat_bytes``). ``strips`` > 1: each body that
    strips can cut priced at the widest of its ``strips`` column strips (``body_in_strips``), its cycles summed over
    the strips, its loop reader's halo columns and its token-batched units' extra weight passes counted in DDR; a
    tuple: one count per loop, in graph order (``BuildOptions.roll_strips``)."""
    from samfpga.hw import HW_DOMAIN
    from samfpga.hw.build.config import strips_per_stage
    from samfpga.hw.build.report import cost_row, estimated_stream_row
    from samfpga.hw.plan import pricing
    from samfpga.hw.resources import LayerCost, layer_costs, stream_costs
    from samfpga.hw.rolled import Loop, roll

    rg = roll(model)
    tiles = dict(zip((id(lp) for lp in rg.loops),
                     strips_per_stage(strips, [lp.plan.stage.name for lp in rg.loops]), strict=True))
    rows: list[dict] = []
    stages: list[dict] = []
    loop_bytes = weight_bytes = 0.0
    read_factor: dict[str, float] = {}
    for k, part in enumerate(rg.parts):
        is_loop = isinstance(part, Loop)
        m = part.body if is_loop else part
        n = part.iterations if is_loop else 1
        cut = body_in_strips(m, tiles[id(part)]) if is_loop else StripBody(m)
        m = cut.widest
        cycles = {x.name: cut.cycles(x.name) for x in m.graph.node if x.domain.startswith(HW_DOMAIN)}
        rows += [cost_row(c, n * cycles.get(c.name, 0), iterations=n) for c in layer_costs(m, board)]
        rows += [estimated_stream_row(c, name=f"part{k}.{c.name}", iterations=n) for c in stream_costs(m, board)]
        if not is_loop:
            continue
        plan = part.plan
        b = _map_bytes(model, plan.stage.blocks[0].act_in)
        read_factor[plan.stage.name] = cut.columns_read
        # frame buffer: one write (by the unit before) and one read; loop buffer: N - 1 writes and reads; in strips
        # the reads take each strip's halo columns again
        stage_bytes = (math.ceil(b / beat) + math.ceil(b * cut.columns_read / beat)) * beat * n
        loop_bytes += stage_bytes
        in_ddr = {x.name for x in m.graph.node if x.op_type.startswith("TokenBatchMVU")}
        halo_weights = n * sum(cut.extra_weight_bytes(x) for x in sorted(in_ddr))
        weight_bytes += halo_weights
        for x in m.graph.node:
            bits = param_bits(plan, x.name, x.name in in_ddr)
            res = param_extra(bits, n)
            if any(res.values()):
                rows.append(cost_row(LayerCost(f"{x.name}.iterations", PARAM_OP, **res, source=PARAM_SOURCE,
                                               detail={"bits_per_iteration": bits}), 0, iterations=n,
                                     bits_per_iteration=bits))
        stages.append({"name": plan.stage.name, "iterations": n, "body_nodes": len(m.graph.node),
                       "body_interval": max(cycles.values(), default=0), "interval": n * max(cycles.values(), default=0),
                       "map_bytes": b, "ddr_bytes_per_frame": stage_bytes,
                       "param_bytes_per_iteration": plan.param_bytes(),
                       "token_batched": sorted(in_ddr), "ddr_stride": _strides(m, plan, in_ddr),
                       "unified": len(plan.unified), "strips": cut.summary(),
                       "strip_weight_ddr_bytes_per_frame": halo_weights})
    for name, eng, cyc in dma_engines(model, [lp.plan for lp in rg.loops], beat, read_factor):
        rows.append(cost_row(LayerCost(name, eng, **pricing.DMA[eng], source="Yosys synthesis"), cyc, iterations=1))
    return rg, RolledCosts(rows, loop_bytes, stages, weight_bytes)


# ------------------------------------------------------------------------------------------------ column strips

class StripBody:
    """A rolled body as built for column strips (``samfpga.hw.rolled.strips``): ``widths`` (input columns of each
    strip, halo included), the body ``restripe``d to each distinct width (``graphs``; the hardware is the widest,
    ``widest``), and why strips were refused (``refused``: ""). Without strips (``widths`` empty) the body itself, a
    map wide."""

    def __init__(self, body, widths: list[int] | None = None, graphs: dict | None = None, refused: str = "") -> None:
        from samfpga.hw.rolled.strips import geometry

        self.body, self.widths, self.refused = body, list(widths or []), refused
        self.graphs = graphs or {}
        self.widest = self.graphs[max(self.widths)] if self.widths else body
        self.map_width = geometry(body).w if self.widths else 0
        # node by name in each graph (a map wide: key None), for the fit's many single-node lookups
        self._index = {w: {n.name: n for n in g.graph.node} for w, g in [*self.graphs.items(), (None, body)]}

    @property
    def columns_read(self) -> float:
        """Input columns the strips read per map column (1 a map wide; > 1 by the halos)."""
        return sum(self.widths) / self.map_width if self.widths else 1.0

    def node(self, name: str, width: int | None = None):
        """Node ``name`` in the graph of strips ``width`` wide (None: the body a map wide)."""
        return self._index[width][name]

    def _nodes(self, name: str) -> list:
        """The node ``name`` in the graph of each strip (one per strip, in order), or in the body a map wide."""
        return [self.node(name, w) for w in self.widths] or [self.node(name)]

    def cycles(self, name: str) -> int:
        """FINN's cycle estimate of body node ``name`` summed over the strips (the map's without strips)."""
        from qonnx.custom_op.registry import getCustomOp

        return sum(int(getCustomOp(x).get_exp_cycles()) for x in self._nodes(name))

    def extra_weight_bytes(self, name: str) -> int:
        """DDR bytes per iteration that token-batched node ``name`` reads beyond a map-wide run: one pass of its
        weights per batch of every strip's tokens, the halo's included."""
        from qonnx.custom_op.registry import getCustomOp

        from samfpga.hw.sim.token_batch_mvu import ddr_bytes_per_frame

        if not self.widths:
            return 0
        whole = getCustomOp(self.node(name))
        per = [getCustomOp(x) for x in self._nodes(name)]
        return sum(ddr_bytes_per_frame(op.unit_config(), 1, op.tokens()) for op in per) - \
            ddr_bytes_per_frame(whole.unit_config(), 1, whole.tokens())

    def set_attrs(self, name: str, attrs: dict, style: str | None = None) -> None:
        """Set attributes (a folding, memory attributes) and a Shuffle's memory ``style`` on node ``name`` of every
        strip graph."""
        from qonnx.custom_op.registry import getCustomOp

        from samfpga.hw.build.memory import set_shuffle_style

        for w, m in self.graphs.items():
            node = self.node(name, w)
            op = getCustomOp(node)
            for a, v in attrs.items():
                op.set_nodeattr(a, v)
            if style is not None:
                set_shuffle_style(m, node, style)

    def summary(self) -> dict:
        return {"strips": len(self.widths) or 1, "widths": self.widths, "map_width": self.map_width,
                "columns_read": round(self.columns_read, 4), "refused": self.refused}


def body_in_strips(body, tiles: int) -> StripBody:
    """``body`` built for ``tiles`` column strips (``StripBody``); a body strips cannot cut stays a map wide, the
    reason in ``refused``; one strip is the body itself, a map wide."""
    from samfpga.hw.rolled.strips import restripe, strip_widths

    if tiles <= 1:
        return StripBody(body)
    try:
        widths = strip_widths(body, tiles)
        graphs = {w: restripe(body, w) for w in sorted(set(widths))}
    except ValueError as e:
        return StripBody(body, refused=str(e))
    return StripBody(body, widths, graphs)


class StripTwins:
    """The fit search's price of rolled bodies built for column strips (``BuildOptions.roll_strips``), as
    ``rolled_costs`` will price them: each body node (of any block) as its twin in block 0's body in strips
    (``body_in_strips``) at the node's current folding and memory attributes, resources at the widest strip, cycles
    summed over the strips. ``token_batch``: (batch, dot, names) of the build's ``TokenBatchPricer``, to price the
    twins on the unit too."""

    def __init__(self, model, plans: list, tiles: tuple[int, ...], board: Board, own_rtl: bool = True,
                 token_batch: tuple | None = None) -> None:
        from samfpga.hw.build.fit import _Priced
        from samfpga.hw.rolled.graph import body_model

        self.of: dict[str, tuple[int, str]] = {}
        self.bodies: list[tuple[StripBody, object, dict]] = []
        self.stages: dict[str, dict] = {}
        self._cache: dict[tuple, object] = {}
        for p, n in zip(plans, tiles, strict=True):
            cut = body_in_strips(body_model(model, p), n)
            self.stages[p.stage.name] = cut.summary()
            if not cut.widths:
                continue
            pricers = {w: TokenBatchPricer(board, *token_batch) for w in cut.graphs} if token_batch else {}
            self.bodies.append((cut, _Priced(cut.widest, board, own_rtl), pricers))
            for col in present_columns(model, [p]):
                for x in col:
                    self.of[x] = (len(self.bodies) - 1, col[0])

    def __contains__(self, name: str) -> bool:
        return name in self.of

    def _twin(self, model, node) -> tuple[StripBody, object, dict, str, tuple, dict, str | None]:
        """Node ``node``'s body, pricer, unit pricers and twin, the key of its pricing at its folding and memory
        attributes now, and those attributes and Shuffle style (set on the twin before a pricing not cached)."""
        from qonnx.custom_op.registry import getCustomOp

        from samfpga.hw.build.fit import _fold_attrs
        from samfpga.hw.build.memory import MEMORY_ATTRS, is_shuffle, shuffle_styles

        k, twin = self.of[node.name]
        cut, priced, pricers = self.bodies[k]
        op = getCustomOp(node)
        types = op.get_nodeattr_types()
        attrs = {**_fold_attrs(op), **{a: op.get_nodeattr(a) for a in MEMORY_ATTRS if a in types}}
        style = shuffle_styles(model).get(node.output[0]) if is_shuffle(node) else None
        return cut, priced, pricers, twin, (k, twin, repr(sorted(attrs.items())), style), attrs, style

    def price(self, model, nodes: list) -> dict[str, tuple[dict[str, float], int]]:
        """{node: (resources, cycles)} of the body nodes among ``nodes`` (of ``model``, at their attributes now),
        cached per twin and attributes (FINN's cycle estimate of a Shuffle builds a graph each call)."""
        out = {}
        for node in (x for x in nodes if x.name in self.of):
            cut, priced, _p, twin, key, attrs, style = self._twin(model, node)
            if key not in self._cache:
                cut.set_attrs(twin, attrs, style)
                self._cache[key] = (priced([cut.node(twin, max(cut.widths))])[twin], cut.cycles(twin))
            out[node.name] = self._cache[key]
        return out

    def alternative(self, pricer):
        """``pricer`` (a ``TokenBatchPricer``) with the body nodes priced as their twins on the unit."""

        def fn(model, node):
            if node.name not in self.of:
                return pricer(model, node)
            cut, _priced, pricers, twin, key, attrs, style = self._twin(model, node)
            if ("unit", key) not in self._cache:
                cut.set_attrs(twin, attrs, style)
                each = {w: pricers[w](g, cut.node(twin, w)) for w, g in cut.graphs.items()}
                self._cache["unit", key] = None if any(e is None for e in each.values()) else \
                    (each[max(cut.widths)][0], sum(each[w][1] for w in cut.widths))
            return self._cache["unit", key]

        return fn


def _strides(body, plan, in_ddr: set[str]) -> dict[str, int]:
    """Per token-batched body node: the byte stride between its iterations' weights in the DDR image (the unit reads
    iteration i at BASE + i x STRIDE); raises when the offsets are not evenly spaced."""
    out = {}
    for x in sorted(in_ddr):
        offs = plan.attr_params.get((x, "ddr_offset"))
        if offs is None:  # one iteration's weights shared by all (a CONSTANT): stride 0
            out[x] = 0
            continue
        steps = {b - a for a, b in zip(offs, offs[1:], strict=False)}
        if len(steps) != 1:
            raise ValueError(f"{x}: its iterations' DDR offsets {offs} are not evenly spaced; the unit reads "
                             "iteration i at BASE + i x STRIDE")
        out[x] = steps.pop()
    return out


def verify(rolled_graph, model, seed: int = 0) -> dict:
    """The rolled graph against the unrolled ``model`` on one random input of the graph's input datatype (FINN
    python execution): values that differ (tolerance 0) and the seconds each took."""
    import time

    from samfpga.hw.rolled import execute_rolled, execute_unrolled

    t = model.graph.input[0].name
    dt = model.get_tensor_datatype(t)
    rng = np.random.default_rng(seed)
    shape = model.get_tensor_shape(t)
    x = rng.integers(int(dt.min()), int(dt.max()) + 1, size=shape).astype(np.float32) if dt.is_integer() \
        else rng.standard_normal(shape).astype(np.float32)
    t0 = time.time()
    a = execute_unrolled(model, x)
    t1 = time.time()
    b = execute_rolled(rolled_graph, x)
    t2 = time.time()
    return {"input": f"random {dt.name} {list(shape)}, seed {seed}", "values": int(a.size),
            "differing": int(np.sum(a != b)), "max_abs_diff": float(np.max(np.abs(a - b))) if a.size else 0.0,
            "unrolled_seconds": round(t1 - t0, 1), "rolled_seconds": round(t2 - t1, 1)}
