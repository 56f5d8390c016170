"""Fit the dataflow pipeline to a board: the folding (PE/SIMD per layer) and memory styles with the highest
throughput whose total stays within ``limit`` of every board resource, as ONE pipeline.

Two halves:

* ``build_table`` (FINN): a table of per-layer options. For a ladder of cycle targets (``ratio`` apart) FINN's
  ``SetFolding`` folds the graph in place (its per-op rules and divisibility constraints), and each layer is priced
  in each memory style (``memory.STYLES``) with ``samfpga.hw.resources.layer_costs``; a layer's price depends only
  on its own attributes, so each (layer, attributes) is priced once. No graph is rebuilt per trial.
* ``search`` (pure, on the table): for a target T every layer group takes its cheapest option (resources weighted
  by the board budget) among those with ≤ T cycles; the smallest T whose total fits wins (bisection over the
  tabulated cycle counts; ``max_fps`` bounds T from below). Resource weights of over-used resources are raised and
  the choice repeated, so a layer moves its memory from the binding resource to a free one.

A depthwise ConvolutionInputGenerator and the VVAU it feeds must share their folding (SWG SIMD = VVAU PE), so such
pairs form one group whose options come from the same SetFolding run. When nothing fits, ``FitResult`` names the
binding resource, by how much it is over, and ``advice`` what would make it fit.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from samfpga.hw.boards import BOARDS, RESOURCES, Board

#: node attributes that set a layer's folding (recorded and re-applied per option)
FOLD_ATTRS = ("PE", "SIMD", "parallel_window")


@dataclass(frozen=True)
class Option:
    """One way to build one layer group: attributes per node, and the resulting cycles and resources per node."""

    attrs: dict[str, dict]  # node name -> {attribute: value}
    cycles: dict[str, int]  # node name -> expected cycles per frame
    res: dict[str, dict[str, float]]  # node name -> {LUT, FF, BRAM36, URAM, DSP}
    style: str = ""  # memory style name (memory.STYLES), "" when the layers have no memory attribute
    variant: str = ""  # "" the layers as they are; else what a later step makes of them (e.g. "token_batch")
    origin: str = ""  # "" from the ladder of SetFolding targets; WORD_WIDTH: a Shuffle's extra word width

    @cached_property
    def max_cycles(self) -> int:
        return max(self.cycles.values())

    @cached_property
    def _total(self) -> dict[str, float]:
        return {r: float(sum(x[r] for x in self.res.values())) for r in RESOURCES}

    def total(self) -> dict[str, float]:
        """Summed resources of the group's layers (a copy)."""
        return dict(self._total)


@dataclass
class Group:
    """Layers folded together (a single layer, or a depthwise SWG with its VVAU) and their options."""

    names: tuple[str, ...]
    op_types: tuple[str, ...]
    options: list[Option]


@dataclass
class FitResult:
    """Outcome of ``search``.

    fits:        the chosen configuration is within ``limit`` of every resource
    cycles:      the chosen configuration's slowest layer (cycles per frame); fps = clock / cycles
    choice:      index into each group's options
    totals:      summed resources of the choice; utilization = totals / budget
    binding:     resource with the highest totals / (limit x budget); over_by: that ratio (> 1: does not fit)
    min_cycles:  the fastest the table allows at all (every layer at its fastest option); capped: ``max_fps`` set T
    trials:      configurations evaluated; seconds: time of the table (``table_seconds``) and of the search
    reserved:    resources set aside for what the table does not hold (the FIFOs the chosen folding needs), included
                 in ``totals``
    streams:     the FIFOs and width converters the choice needs (priced on the choice itself; ``reserved`` may
                 hold more: it only grows between searches)
    predicted:   what the build's report will count for the choice: its layers as built + ``streams``
    """

    fits: bool
    cycles: int
    fps: float
    clock_mhz: float
    limit: float
    choice: list[int]
    totals: dict[str, float]
    budget: dict[str, int]
    utilization: dict[str, float | None]
    binding: str
    over_by: float
    min_cycles: int
    capped: bool
    trials: int
    seconds: float
    table_seconds: float = 0.0
    table_size: int = 0
    reserved: dict[str, float] = field(default_factory=dict)
    by_op_type: dict[str, dict[str, float]] = field(default_factory=dict)
    advice: list[str] = field(default_factory=list)
    streams: dict[str, float] = field(default_factory=dict)
    predicted: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


# ----------------------------------------------------------------------------------------------- search (pure)

def _weights(budget: dict[str, int], limit: float) -> dict[str, float]:
    return {r: 1.0 / (limit * budget[r]) for r in RESOURCES if budget[r] > 0}


def _price(opt: Option, w: dict[str, float]) -> float:
    """Weighted cost of an option; inf when it uses a resource the board does not have."""
    tot = opt._total
    if any(tot[r] > 0 and r not in w for r in RESOURCES):
        return math.inf
    return sum(w[r] * tot[r] for r in w)


def _choose(groups: list[Group], t: float, w: dict[str, float]) -> list[int] | None:
    """Per group the cheapest option with ≤ ``t`` cycles (ties: the slower, i.e. less parallel one); None when a
    group has no such option that the board can hold."""
    out = []
    for g in groups:
        best, key = None, None
        for i, o in enumerate(g.options):
            if o.max_cycles > t:
                continue
            k = (_price(o, w), -o.max_cycles)
            if key is None or k < key:
                best, key = i, k
        if best is None or math.isinf(key[0]):
            return None
        out.append(best)
    return out


def _totals(groups: list[Group], choice: list[int]) -> dict[str, float]:
    tot = dict.fromkeys(RESOURCES, 0.0)
    for g, i in zip(groups, choice, strict=True):
        for r, v in g.options[i]._total.items():
            tot[r] += v
    return tot


def layer_totals(groups: list[Group], choice: list[int], extra: dict[str, float] | None = None) -> dict[str, float]:
    """Summed resources of the chosen options, plus ``extra`` (per resource name)."""
    tot = _totals(groups, choice)
    for r, v in (extra or {}).items():
        tot[r] += v
    return tot


def _pressure(tot: dict[str, float], budget: dict[str, int], limit: float) -> dict[str, float]:
    """totals / (limit x budget) per resource; inf for a resource the board lacks but the design uses."""
    return {r: (tot[r] / (limit * budget[r]) if budget[r] else (math.inf if tot[r] > 0 else 0.0)) for r in RESOURCES}


def _evaluate(groups: list[Group], t: float, budget: dict[str, int], limit: float, rounds: int = 8,
              reserved: dict[str, float] | None = None):
    """Best choice at target ``t``: (choice, totals, pressure, worst pressure) with the lowest worst pressure over
    a few rounds of re-weighting, or None when some group cannot reach ``t``. ``reserved`` is added to the totals."""
    w = _weights(budget, limit)
    best = None
    for _ in range(rounds):
        choice = _choose(groups, t, w)
        if choice is None:
            return None
        tot = _totals(groups, choice)
        for r, v in (reserved or {}).items():
            tot[r] += v
        p = _pressure(tot, budget, limit)
        worst = max(p.values())
        if best is None or worst < best[3]:
            best = (choice, tot, p, worst)
        if worst <= 1.0:
            break
        # raise the weight of every over-used resource, so the next round moves memory off it
        w = {r: v * max(1.0, p[r]) ** 2 for r, v in w.items()}
    return best


def search(groups: list[Group], budget: dict[str, int], clock_mhz: float, limit: float = 0.85,
           max_fps: float | None = None, reserved: dict[str, float] | None = None) -> FitResult:
    """Fastest configuration of ``groups`` within ``limit`` x ``budget`` (see the module docstring), with
    ``reserved`` resources (per resource name) counted on top of every configuration's layers."""
    t0 = time.time()
    if not groups:
        raise ValueError("fit search: the graph has no HW layers to fold")
    empty = [g.names for g in groups if not g.options]
    if empty:
        raise ValueError(f"fit search: no folding options for {empty[:3]}")
    lower = max(min(o.max_cycles for o in g.options) for g in groups)
    cap = math.ceil(clock_mhz * 1e6 / max_fps) if max_fps else 0
    cands = sorted({o.max_cycles for g in groups for o in g.options if o.max_cycles >= max(lower, cap)}
                   | ({cap} if cap > lower else set()))
    trials = 0

    def ev(t):
        nonlocal trials
        trials += 1
        return _evaluate(groups, t, budget, limit, reserved=reserved)

    # bisection for the smallest target that fits (cheaper configurations at larger targets)
    lo, hi = 0, len(cands) - 1
    slowest = ev(cands[hi])
    found = slowest if slowest is not None and slowest[3] <= 1.0 else None
    found_t = cands[hi] if found else None
    while found and lo < hi:
        mid = (lo + hi) // 2
        r = ev(cands[mid])
        if r is not None and r[3] <= 1.0:
            found, found_t, hi = r, cands[mid], mid
        else:
            lo = mid + 1
    best = found or slowest
    if best is None:  # only possible when a layer cannot avoid a resource the board lacks
        w = _weights(budget, limit)
        bad = [g.names[0] for g in groups if all(math.isinf(_price(o, w)) for o in g.options)]
        raise ValueError(f"fit search: layers {bad[:3]} need a resource this board lacks in every option")
    choice, tot, p, worst = best
    cycles = max(g.options[i].max_cycles for g, i in zip(groups, choice, strict=True))
    binding = max(p, key=p.get)
    return FitResult(
        fits=found is not None, cycles=cycles, fps=clock_mhz * 1e6 / cycles, clock_mhz=clock_mhz, limit=limit,
        choice=choice, totals=tot, budget=dict(budget),
        utilization={r: (tot[r] / budget[r] if budget[r] else None) for r in RESOURCES},
        binding=binding, over_by=p[binding], min_cycles=lower, capped=bool(found and cap and found_t == cap),
        trials=trials, seconds=round(time.time() - t0, 3), table_size=sum(len(g.options) for g in groups),
        reserved={r: float(v) for r, v in (reserved or {}).items()}, by_op_type=_by_op_type(groups, choice))


def _by_op_type(groups: list[Group], choice: list[int]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(("layers", *RESOURCES), 0.0))
    for g, i in zip(groups, choice, strict=True):
        o = g.options[i]
        for name, op in zip(g.names, g.op_types, strict=True):
            row = out[op]
            row["layers"] += 1
            for r in RESOURCES:
                row[r] += o.res[name][r]
    return dict(out)


def advice(totals: dict[str, float], by_op_type: dict[str, dict[str, float]], board: Board,
           limit: float) -> list[str]:
    """What would make a design with resource ``totals`` (per layer type: ``by_op_type``) fit ``board`` within
    ``limit``: the binding resource and by how much, the layer types that use it, and the levers (bit widths,
    input size, a bigger board found by the same counting). Empty when it fits."""
    budget = board.budget()
    p = _pressure(totals, budget, limit)
    r = max(p, key=p.get)
    if p[r] <= 1.0:
        return []
    need, have = totals[r], limit * budget[r]
    over = "the board has none" if not budget[r] else f"{p[r]:.2f}x the {100 * limit:.0f}% budget ({have:,.0f})"
    lines = [f"{r} binds: {need:,.0f} {r} needed, {over} of {board.name}."]
    users = sorted(by_op_type.items(), key=lambda kv: -kv[1].get(r, 0.0))
    share = ", ".join(f"{op} {100 * v[r] / need:.0f}%" for op, v in users[:3] if need and v.get(r, 0.0) > 0)
    if share:
        lines.append(f"{r} by layer type: {share}.")
    thr = sum(v.get(r, 0.0) for op, v in by_op_type.items() if op.startswith("Thresholding"))
    if need and thr / need > 0.3:
        lines.append(f"Lower bit widths: threshold tables ({100 * thr / need:.0f}% of {r}) hold 2^bits - 1 "
                     "thresholds per channel, so 4-bit activations need 1/17 of the 8-bit tables; arithmetic "
                     "requantization (Requant) replaces a table by a multiply-add.")
    wts = sum(v.get(r, 0.0) for op, v in by_op_type.items() if op.startswith(("MVAU", "VVAU", "DepthwiseVVAU")))
    if need and r in ("BRAM36", "URAM") and wts / need > 0.3:
        lines.append(f"Lower weight bit widths: weight memories take {100 * wts / need:.0f}% of {r}; they scale with "
                     "the weight bits (`--bits 4` halves them; its accuracy cost is not part of this report).")
    line = sum(v.get(r, 0.0) for op, v in by_op_type.items() if op.startswith(_IMAGE_SIZED))
    if need:
        lines.append(f"Smaller input: layers whose buffers grow with the image width (sliding windows, padding, "
                     f"shuffles) take {100 * line / need:.0f}% of {r}; weight and threshold memories do not shrink "
                     "with the input (cycles do).")
    bigger = [b.name for b in BOARDS.values()
              if b.name != board.name and all(totals[x] <= limit * b.budget()[x] for x in RESOURCES)]
    if bigger:
        lines.append(f"A bigger board: {', '.join(bigger)} would hold it by the same counting (these layer costs, "
                     f"within {100 * limit:.0f}% of its resources).")
    else:
        lines.append("A bigger board: none of " + ", ".join(BOARDS) + " holds it by the same counting.")
    return lines


#: op types whose memory grows with the image size (line buffers), for ``advice``
_IMAGE_SIZED = ("ConvolutionInputGenerator", "FMPadding", "Shuffle", "InnerShuffle", "OuterShuffle", "PagePermute")


# ----------------------------------------------------------------------------------------------- table (FINN)

def ladder(slowest: int, fastest: int, ratio: float) -> list[int]:
    """Cycle targets from ``slowest`` down to ``fastest``, each ``ratio`` below the one before."""
    out, t = [], float(slowest)
    while t > fastest:
        out.append(int(t))
        t /= ratio
    out.append(int(fastest))
    return out


def _coupled(model) -> list[tuple[str, ...]]:
    """Groups of node names that must be folded together, in graph order: a depthwise SWG with the VVAU/Pool it
    feeds; every other HW node alone."""
    from samfpga.hw import HW_DOMAIN

    hw = [n for n in model.graph.node if n.domain.startswith(HW_DOMAIN)]
    partner: dict[str, str] = {}
    for n in hw:
        if n.op_type.startswith(("VVAU", "Pool")):
            p = model.find_producer(n.input[0])
            if p is not None and p.op_type.startswith("ConvolutionInputGenerator"):
                partner[p.name] = n.name
    groups, seen = [], set()
    for n in hw:
        if n.name in seen:
            continue
        g = (n.name, partner[n.name]) if n.name in partner else (n.name,)
        seen.update(g)
        groups.append(g)
    return groups


class _Priced:
    """Prices single nodes with ``layer_costs`` (the resources registry), cached per (node, attributes). A node
    that the build replaces after folding (a Shuffle, a depthwise VVAU: ``after_folding.changes_after_folding``) is
    priced as what it becomes (``after_folding.priced_as_built``)."""

    def __init__(self, model, board: Board, own_rtl: bool = True):
        self.model, self.board, self.own_rtl = model, board, own_rtl
        self.cache: dict[tuple, dict[str, float]] = {}
        self.calls = 0

    def key(self, node) -> tuple:
        from samfpga.hw.build.memory import is_shuffle, shuffle_styles

        style = shuffle_styles(self.model).get(node.output[0]) if is_shuffle(node) else None
        return (node.name, tuple(sorted((a.name, str(a)) for a in node.attribute)), style)

    def __call__(self, nodes: list) -> dict[str, dict[str, float]]:
        from samfpga.hw.build.after_folding import changes_after_folding, priced_as_built
        from samfpga.hw.resources import layer_costs

        keys = {n.name: self.key(n) for n in nodes}
        todo = [n for n in nodes if keys[n.name] not in self.cache]
        for n in [n for n in todo if changes_after_folding(n)]:
            self.cache[keys[n.name]] = priced_as_built(self.model, n, self.board, self.own_rtl)
        todo = [n for n in todo if keys[n.name] not in self.cache]
        if todo:
            self.calls += 1
            for c in layer_costs(_NodeSubset(self.model, todo), self.board):
                self.cache[keys[c.name]] = c.resources()
        return {n.name: self.cache[keys[n.name]] for n in nodes}


class _NodeSubset:
    """The model seen with only ``nodes`` in its graph (everything else, initializers and datatypes included,
    read from the model): lets ``layer_costs`` price a few nodes without copying the graph."""

    def __init__(self, model, nodes):
        self._model = model
        self.graph = _GraphView(model.graph, nodes)

    def __getattr__(self, name):
        return getattr(self._model, name)


class _GraphView:
    def __init__(self, graph, nodes):
        self._graph, self.node = graph, nodes

    def __getattr__(self, name):
        return getattr(self._graph, name)


def _fold_attrs(op) -> dict:
    types = op.get_nodeattr_types()
    return {a: op.get_nodeattr(a) for a in FOLD_ATTRS if a in types}


def fold_unknown(model, target: int) -> None:
    """Fold the HW layers FINN's SetFolding does not know (``_OWN_PE_OPS``: a ``PE`` over ``NumChannels``): the
    smallest PE dividing NumChannels that meets ``target`` cycles."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw import HW_DOMAIN

    for n in model.graph.node:
        if not n.domain.startswith(HW_DOMAIN) or n.op_type not in _OWN_PE_OPS:
            continue
        op = getCustomOp(n)
        ch = op.get_nodeattr("NumChannels")
        for pe in (d for d in range(1, ch + 1) if ch % d == 0):
            op.set_nodeattr("PE", pe)
            if op.get_exp_cycles() <= target:
                break


#: op types with a ``PE`` over ``NumChannels`` that FINN's SetFolding leaves at PE 1, folded by ``fold_unknown``:
#: the project's own RTL and FINN+'s Requant_rtl (left at PE 1, a requantiser after a wide layer would be the slowest
#: layer of any folding: 8.4 M cycles, 24 fps, for vit_t at 512²)
_OWN_PE_OPS = ("AddStreams_rtl", "DuplicateStreams_rtl", "Requant_rtl", "IntLayerNorm_rtl", "IntSoftmax_rtl")


@dataclass
class Table:
    """``build_table``'s result: the groups with their options, the cycle targets tried, the time it took and
    how many times the resource models were called."""

    groups: list[Group]
    targets: list[int]
    seconds: float
    pricing_calls: int


def build_table(model, board: Board, clock_mhz: float, max_fps: float | None = None, ratio: float = 2.0,
                styles: tuple[str, ...] = ("",), mvau_wwidth_max: int = 36, log=None, own_rtl: bool = True,
                alternative=None, repeats: dict[str, int] | None = None, twins=None) -> Table:
    """Options per layer group of ``model`` (specialised HW graph; folded in place, left at the last trial).

    ``styles``: memory styles to price (``memory.STYLES`` names; "" keeps the graph's memory attributes);
    ``own_rtl``: the build maps layers to the project's RTL after folding (their price is that of the RTL);
    ``alternative``: ``(variant, fn)``, ``fn(model, node) -> (resources, cycles) | None`` the price and cycles of a
    node as a later step may build it instead (a layer fused onto the token-batched unit): a group where any node
    has one also gets, per folding, an option of that ``variant`` with those figures (``pair_variants`` then ties a
    layer to the one it absorbs in that variant);
    ``repeats``: {node: N} for the nodes of a rolled body (run N times per frame, ``rolling.tie``): the ladder of
    targets goes on down to the fastest frame time / N, so that a body node has foldings N x faster than the rest;
    ``twins``: prices some nodes as other hardware at their attributes (``rolling.StripTwins``: a rolled body's node
    as built for column strips): ``twins.price(model, nodes) -> {node: (resources, cycles)}`` for those it covers.

    Besides the ladder, each Shuffle is priced at every word width ``shuffle_simds`` allows: its buffer's shape
    (depth x word bits) decides how well it packs into BRAM or URAM, which FINN's folding of the Shuffle (the
    slowest SIMD meeting a target) never explores at slow targets."""
    from finn.transformation.fpgadataflow.set_folding import SetFolding
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.memory import apply_style

    t0 = time.time()

    def fold(t: int) -> None:
        # attributes are set in place (the model SetFolding returns is a copy)
        SetFolding(target_cycles_per_frame=t, mvau_wwidth_max=mvau_wwidth_max, two_pass_relaxation=False).apply(model)
        fold_unknown(model, t)

    groups = _coupled(model)
    fold(2**62)  # slowest folding: its bottleneck is the top of the ladder
    slowest = max(getCustomOp(n).get_exp_cycles() for n in _hw_nodes(model))
    fold(1)  # fastest folding FINN allows
    reps = repeats or {}
    fastest = max(getCustomOp(n).get_exp_cycles() * reps.get(n.name, 1) for n in _hw_nodes(model))
    floor = max(fastest, math.ceil(clock_mhz * 1e6 / max_fps) if max_fps else 0)
    # per-node targets: a body node run N times per frame must meet floor / N
    floor = max(1, floor // max(reps.values(), default=1))
    targets = ladder(slowest, min(floor, slowest), ratio)
    by_name = {n.name: n for n in model.graph.node}
    priced = _Priced(model, board, own_rtl)
    opts: dict[tuple, dict[tuple, Option]] = {g: {} for g in groups}
    for t in targets:
        fold(t)
        for style in styles:
            if style:
                apply_style(model, style, board)
            nodes = [by_name[x] for g in groups for x in g]
            res, cyc = _priced_with(priced, twins, model, nodes)
            for g in groups:
                insts = {x: getCustomOp(by_name[x]) for x in g}
                attrs = {x: {**_fold_attrs(i), **_memory_attrs(i, model)} for x, i in insts.items()}
                key = tuple((x, tuple(sorted(a.items()))) for x, a in attrs.items())
                if key not in opts[g]:
                    opts[g][key] = Option(attrs=attrs, cycles={x: cyc[x] for x in g}, res={x: res[x] for x in g},
                                          style=style)
                if alternative and (key, alternative[0]) not in opts[g]:
                    alt = {x: alternative[1](model, by_name[x]) for x in g}
                    if any(v is not None for v in alt.values()):
                        own = opts[g][key]
                        opts[g][(key, alternative[0])] = Option(
                            attrs=attrs, cycles={x: (alt[x][1] if alt[x] else own.cycles[x]) for x in g},
                            res={x: (alt[x][0] if alt[x] else own.res[x]) for x in g}, style=style,
                            variant=alternative[0])
        if log:
            log(f"fit table: target {t:,} cycles, {sum(len(v) for v in opts.values())} options")
    _shuffle_widths(model, groups, opts, by_name, styles, board, priced, twins)
    out = [Group(names=g, op_types=tuple(by_name[x].op_type for x in g), options=list(opts[g].values()))
           for g in groups]
    for g in out:
        g.options.sort(key=lambda o: -o.max_cycles)
    return Table(out, targets, round(time.time() - t0, 2), priced.calls)


def shuffle_simds(op, max_word_bits: int = 144) -> list[int]:
    """SIMD values (elements per stream word) a Shuffle ``op`` can take as the PagePermute it becomes
    (``page_permute.page_view`` accepts them, they divide the innermost input and output axes, a page keeps at least
    2 words), up to ``max_word_bits`` bits per word (two URAM words): wider words pack no better and need wider
    width converters."""
    from samfpga.hw.custom_ops.page_permute import page_view

    bits = op.get_input_datatype().bitwidth()
    ins, outs = op.get_nodeattr("in_shape"), op.get_nodeattr("out_shape")
    shape, perm = op.get_nodeattr("transpose_in_shape"), op.get_nodeattr("perm")
    out = []
    for s in range(1, max(1, max_word_bits // bits) + 1):
        if ins[-1] % s or outs[-1] % s:
            continue
        try:
            view = page_view(shape, perm, s)
        except ValueError:
            continue
        if view.words >= 2:
            out.append(s)
    return out or [1]


def _priced_with(priced, twins, model, nodes: list) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
    """({node: resources}, {node: cycles}) of ``nodes`` at their attributes now: ``priced``, FINN's cycle estimates,
    and ``twins``' figures for the nodes it covers (``build_table``)."""
    from qonnx.custom_op.registry import getCustomOp

    own = [n for n in nodes if twins is None or n.name not in twins]
    res = priced(own)
    cyc = {n.name: int(getCustomOp(n).get_exp_cycles()) for n in own}
    if twins is not None:
        for x, (r, c) in twins.price(model, [n for n in nodes if n.name in twins]).items():
            res[x], cyc[x] = r, c
    return res, cyc


def _shuffle_widths(model, groups, opts, by_name, styles, board: Board, priced, twins=None) -> None:
    """Add to ``opts`` an option per Shuffle group, word width (``shuffle_simds``) and memory style (in place; the
    Shuffles are left at their folding)."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.memory import apply_style, is_shuffle

    shuffles = [g for g in groups if len(g) == 1 and is_shuffle(by_name[g[0]])]
    if not shuffles:
        return
    insts = {g[0]: getCustomOp(by_name[g[0]]) for g in shuffles}
    kept = {x: i.get_nodeattr("SIMD") for x, i in insts.items()}
    widths = {x: shuffle_simds(i) for x, i in insts.items()}
    for k in range(max(len(w) for w in widths.values())):
        for x, i in insts.items():
            i.set_nodeattr("SIMD", widths[x][min(k, len(widths[x]) - 1)])
        for style in styles:
            if style:
                apply_style(model, style, board, names=set(insts))
            res, cyc = _priced_with(priced, twins, model, [by_name[g[0]] for g in shuffles])
            for g in shuffles:
                x, i = g[0], insts[g[0]]
                attrs = {x: {**_fold_attrs(i), **_memory_attrs(i, model)}}
                key = ((x, tuple(sorted(attrs[x].items()))),)
                if key not in opts[g]:
                    opts[g][key] = Option(attrs=attrs, cycles={x: cyc[x]}, res={x: res[x]}, style=style,
                                          origin=WORD_WIDTH)
    for x, i in insts.items():
        i.set_nodeattr("SIMD", kept[x])


#: ``Option.origin`` of a Shuffle's word-width options (``_shuffle_widths``)
WORD_WIDTH = "word_width"


def without_origin(groups: list[Group], origin: str) -> list[Group]:
    """``groups`` without the options of ``origin`` (a group keeps its others). The width converters a wider Shuffle
    needs are priced with the FIFOs, after the search (``steps._settle``), so more options can lead the greedy search
    to a slower choice: the build settles the table with and without them and keeps the faster."""
    return [Group(g.names, g.op_types, [o for o in g.options if o.origin != origin] or g.options) for g in groups]


def _hw_nodes(model) -> list:
    from samfpga.hw import HW_DOMAIN

    return [n for n in model.graph.node if n.domain.startswith(HW_DOMAIN)]


def _memory_attrs(op, model=None) -> dict:
    """The node's memory attributes; a Shuffle's ``ram_style`` is that of the PagePermute it becomes
    (``memory.shuffle_styles``)."""
    from samfpga.hw.build.memory import MEMORY_ATTRS, is_shuffle, shuffle_styles

    if model is not None and is_shuffle(op.onnx_node):
        return {"ram_style": shuffle_styles(model).get(op.onnx_node.output[0], "auto")}
    types = op.get_nodeattr_types()
    return {a: op.get_nodeattr(a) for a in MEMORY_ATTRS if a in types}


def pair_variants(groups: list[Group], pairs: dict[str, str], variant: str) -> list[Group]:
    """Each pair ``a -> b`` of single-layer groups (``a``'s ``variant`` absorbs ``b``: an MVAU and the Requant the
    token-batched unit takes in) as one group: every combination of their plain options, and ``a``'s options of
    ``variant`` with ``b``'s (priced as absorbed), so no choice prices one in the variant and the other not."""
    single = {g.names[0]: g for g in groups if len(g.names) == 1}
    merged, absorbed = {}, set()
    for a, b in pairs.items():
        ga, gb = single.get(a), single.get(b)
        if ga is None or gb is None:
            continue
        opts = [Option({**oa.attrs, **ob.attrs}, {**oa.cycles, **ob.cycles}, {**oa.res, **ob.res}, oa.style)
                for oa in ga.options if not oa.variant for ob in gb.options if not ob.variant]
        bv = [o for o in gb.options if o.variant == variant][:1]
        opts += [Option({**oa.attrs, **bv[0].attrs}, {**oa.cycles, **bv[0].cycles}, {**oa.res, **bv[0].res},
                        oa.style, variant) for oa in ga.options if oa.variant == variant and bv]
        opts.sort(key=lambda o: -o.max_cycles)
        merged[a] = Group((a, b), (ga.op_types[0], gb.op_types[0]), opts)
        absorbed.add(b)
    return [merged.get(g.names[0], g) for g in groups if not (len(g.names) == 1 and g.names[0] in absorbed)]


def only_variant(groups: list[Group], variant: str, names: set[str] | None = None) -> list[Group]:
    """``groups`` where each group that has options of ``variant`` keeps only those (the variant imposed; "": the
    layers as they are, every alternative dropped); ``names``: only the groups holding one of these layers."""
    out = []
    for g in groups:
        keep = [o for o in g.options if o.variant == variant] if names is None or set(g.names) & names else []
        out.append(Group(g.names, g.op_types, keep) if keep else g)
    return out


def chosen(groups: list[Group], choice: list[int], variant: str) -> list[str]:
    """Names of the layers whose chosen option is of ``variant``, in group order."""
    return [x for g, i in zip(groups, choice, strict=True) if g.options[i].variant == variant for x in g.names]


def apply(model, groups: list[Group], choice: list[int]) -> None:
    """Set the chosen options' attributes on ``model``'s nodes (in place)."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.memory import is_shuffle, set_shuffle_style

    by_name = {n.name: n for n in model.graph.node}
    for g, i in zip(groups, choice, strict=True):
        for name, attrs in g.options[i].attrs.items():
            node = by_name[name]
            op = getCustomOp(node)
            for a, v in attrs.items():
                if a == "ram_style" and is_shuffle(node):
                    set_shuffle_style(model, node, v)
                else:
                    op.set_nodeattr(a, v)
