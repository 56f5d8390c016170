"""The layer-sequential engine's program for a whole integer graph, and its execution in python on the engine's
own unit models (``samfpga.hw.plan.engine``, docs/engine.md).

``compile_program`` turns the accelerator part of a FINN build's integer graph (``samfpga.intexec``'s graph.json:
MVAU, Requant, Thresholding, DepthwiseVVAU, IntLayerNorm, IntSoftmax, AddStreams and the data movement between
them) into the steps the host would launch, one per pass of the engine over a feature map:

- ``gemm``: reader -> [pixel table | LayerNorm + requantiser lanes] -> [padding + sliding window] -> the GEMM
  unit (token_batch_mvu.sv, run-time shape, weights and requantisation words from one DDR image; a raw frame where
  the graph keeps the sums) -> [residual adder + requantiser lanes] -> writer;
- ``dw``: reader -> padding + sliding window -> depthwise unit -> requantiser lanes -> writer;
- ``qk``: per window and head the queries against K's rows on the GEMM unit as a raw frame, the padded keys
  dropped (raw_rows.sv), the softmax (int_softmax.sv's kernel) -> writer;
- ``vt``: V's rows transposed on the GEMM unit (one-hot inputs, identity requantisation,
  ``attention_operands.transpose_frame``; the GEMM path runs it as a raw frame whose low bytes are V's values,
  ``attention_operands.transpose_raw_shape``) into AV's weight image, around AV's requantisation words;
- ``av``: the softmax rows against V^T on the GEMM unit, requantised -> writer;
- ``layernorm``: reader -> LayerNorm + requantiser lanes -> writer (a LayerNorm no GEMM follows).

Every Reshape / Shuffle / PagePermute / StreamingSplit / DuplicateStreams of the graph becomes a step's address
pattern (``samfpga.hw.sim.dma_access``): an affine loop nest over the stored tensor, found from the element order
the consumer needs and refused when there is none; a tensor the graph writes permuted and reads back permuted is
stored in its producer's stream order instead where that moves fewer runs (``EngineProgram.layouts``; ``graph_order``
puts it back in the graph's order), and an attention's qkv tensor as Q / K / V regions (``_attention_regions``: K's
and V's rows one block per window and head, as the GEMM unit fetches its weights). Every Requant and every kept Thresholding becomes integer
requantiser parameters (``samfpga.hw.sim.lane_requant``; thresholds only where a requantiser reproduces them on
the whole input range), since the engine holds no threshold tables. The one exception is a threshold table on
the 8-bit image itself (the pixel input's normalisation): a 256-entry table per channel on the image reader.

``run_program`` executes the steps on a model of DDR (stored tensors as flat integer arrays, weight images as
bytes read by ``token_batch_mvu.unit_model``); tests/test_engine_program.py compares every stored tensor with the
integer graph's own execution (``samfpga.intexec``, itself equal to FINN's python execution) at tolerance 0.

What the engine needs beyond the built GEMM unit to run a graph this way is reported per program
(``EngineProgram.needs``): activations of 9 signed bits (INT8 and UINT8 layers on one unit), a run-time output
sign for the requantiser's clip, the raw sums' width, the LayerNorm's input width, the address patterns' loop
depth. Not modelled here: cycles beyond the GEMM unit's schedule, byte packing of feature maps (the strip reader
and writer's own benches cover theirs).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from samfpga.backends.unit_regs import ENGINE_CNT_BITS
from samfpga.hw.sim import token_batch_mvu as tb
from samfpga.hw.sim.attention_operands import padded
from samfpga.hw.sim.dma_access import Access, factor, gather, scatter
from samfpga.hw.sim.lane_requant import (
    LaneRequant,
    dtype_limits,
    from_requant,
    from_thresholds,
    int_dtype,
    signed_bits,
)

#: the GEMM unit's layers: FINN's MVAU (its Requant a separate node) or the project's token-batched node (fused)
GEMM_OPS = ("MVAU", "TokenBatchMVU")
#: data movement: the engine's readers and writers do these with their address patterns
MOVEMENT = ("Reshape", "InnerShuffle", "OuterShuffle", "Shuffle", "PagePermute", "StreamingSplit", "DuplicateStreams",
            "StreamingDataWidthConverter", "StreamingFIFO", "Identity")
#: every weight image starts on a 4 KiB page
PAGE = 4096


class EngineProgramError(ValueError):
    """The graph needs something the engine does not do (the message names the node)."""


@dataclass
class Operand:
    """A stored tensor read in an affine order; ``shape``: the consumer's view of the elements."""

    tensor: str
    access: Access
    shape: tuple[int, ...]


@dataclass
class EngineStep:
    """One launch of the engine. ``layer``: the GEMM unit's configuration for the frame (``layer_shape``),
    ``iters`` x ``tokens`` its iterations and tokens; ``offset``: its weight image in ``EngineProgram.image``."""

    name: str
    kind: str  # gemm | dw | qk | vt | av | layernorm
    nodes: list[str]
    input: Operand
    output: str
    out_shape: tuple[int, ...]
    table: np.ndarray | None = None  # (C, 2^bits): the image reader's per-channel table, from value table_lo
    table_lo: int = 0
    ln: object | None = None  # IntLayerNormParams
    ln_rq: LaneRequant | None = None
    window: dict | None = None  # pad (top, left, bottom, right), kernel, stride, dilation
    layer: tb.TokenBatchConfig | None = None
    iters: int = 1
    tokens: int = 0
    offset: int = 0
    mw: int = 0  # true (unpadded) input width / outputs of the frame
    mh: int = 0
    dw_weights: np.ndarray | None = None  # (C, K)
    rq: LaneRequant | None = None  # the depthwise unit's lanes
    residual: Operand | None = None
    add_range: tuple[int, int] | None = None
    add_rq: LaneRequant | None = None
    softmax: object | None = None  # IntSoftmaxParams
    weights: Operand | None = None  # qk: K's rows; vt: V's rows
    vt_of: str | None = None  # av: the vt step's output (V^T's rows)
    rq_params: tb.RequantParams | None = None  # av: the unit's parameters per iteration
    in_dtype: str = ""  # the GEMM unit's input datatype (gemm, qk, av)
    identity: bool = False  # gemm: a requantisation alone, run on the unit with identity weights (``_requant``)
    write_index: np.ndarray | None = None  # stored element j = the stream's element write_index[j] (None: in order)
    write: Access | None = None  # the writer's address pattern for that order
    stream_channels: int = 0  # channels of the unit's output stream
    rq_channels: np.ndarray | None = None  # (iters, stream channels): the requantisation's channel of each output

    @property
    def unit_cycles(self) -> int:
        """The GEMM unit's cycles for this frame (``token_batch_mvu.schedule_cycles``; 0 for other units)."""
        return tb.schedule_cycles(self.layer, self.iters, self.tokens)["total"] if self.layer is not None else 0


@dataclass
class EngineProgram:
    unit: tb.TokenBatchConfig
    steps: list[EngineStep]
    image: bytes
    input: str
    output: str
    output_read: Operand | None = None  # the accelerator's output where it is a moved stored tensor
    needs: dict = field(default_factory=dict)
    #: tensors stored in their producer's stream order instead of the graph's: stored = graph (flat)[layout]
    layouts: dict[str, np.ndarray] = field(default_factory=dict)
    #: every stored tensor's QONNX datatype (INT8, UINT8, ...)
    dtypes: dict[str, str] = field(default_factory=dict)
    #: the lanes of the GEMM path's side units where the build chooses them (keys ``dw_pe``: the depthwise unit's
    #: channels a beat, ``ln_pe``: the LayerNorm's lanes, ``sm_pe``: the softmax's); a missing key takes the path's
    #: default (``samfpga.hw.sim.engine_gemm_path.dw_pe`` / ``ln_pe`` / ``rows_config``)
    lanes: dict[str, int] = field(default_factory=dict)

    def graph_order(self, tensor: str, stored: np.ndarray) -> np.ndarray:
        """A stored tensor's values (flat) in the graph's element order (``layouts``)."""
        lay = self.layouts.get(tensor)
        if lay is None:
            return stored
        out = np.empty_like(stored)
        out[lay] = stored
        return out

    def elem_bytes(self, tensor: str) -> int:
        """Bytes per element of a stored tensor in DDR: a raw frame's sums take ``raw_words`` bytes, the rest one."""
        for s in self.steps:
            if s.output == tensor and s.layer is not None and s.layer.raw and s.kind == "gemm":
                return s.layer.raw_words
        return 1

    def stored(self, tensor: str, values: np.ndarray) -> bytes:
        """The DDR bytes of a stored tensor holding ``values`` (flat integers): ``elem_bytes`` little-endian bytes
        per element, two's complement."""
        e = self.elem_bytes(tensor)
        v = np.asarray(values, dtype=np.int64).ravel()
        if v.size and not (-(1 << 8 * e - 1) <= v.min() and v.max() < 1 << 8 * e):
            raise ValueError(f"{tensor}: values [{v.min()}, {v.max()}] do not fit {e} byte(s) per element")
        return (v.astype("<i8").view(np.uint8).reshape(-1, 8)[:, :e]).tobytes()

    def summary(self) -> list[dict]:
        """A row per step: kind, nodes, frame shape, its reads' address patterns (bytes)."""
        rows = []
        for s in self.steps:
            reads = [("input", s.input)] + [(k, getattr(s, k)) for k in ("residual", "weights") if getattr(s, k)]
            rows.append({"step": s.name, "kind": s.kind, "nodes": s.nodes,
                         "frame": None if s.layer is None else f"{s.iters} x {s.tokens} tokens, {s.layer.mw} -> "
                         f"{s.layer.mh}{' raw' if s.layer.raw else ''}",
                         "unit_cycles": s.unit_cycles,
                         "reads": {k: f"{o.tensor} {o.access.describe(self.elem_bytes(o.tensor))}" for k, o in reads},
                         **({"write": s.write.describe()} if s.write is not None else {})})
        return rows


# --- compiling --------------------------------------------------------------------------------------------------

def _is_integer(dtype: str) -> bool:
    return dtype.startswith(("INT", "UINT"))


def _act_val(n) -> int:
    """A Thresholding node's output bias (FINN's ActVal)."""
    return int(float(n.attrs.get("ActVal", 0)))


class _Graph:
    """The accelerator's nodes with producer / consumer maps and the element orders of data movement."""

    def __init__(self, g) -> None:
        self.g = g
        self.nodes = [n for n in g.nodes if n.on == "hw"]
        if not self.nodes:
            raise EngineProgramError(f"{g.source}: no accelerator nodes")
        self.producer = {t: n for n in self.nodes for t in n.outputs}
        self.consumers: dict[str, list] = {}
        for n in self.nodes:
            for t in n.inputs:
                self.consumers.setdefault(t, []).append(n)
        self.input = self.nodes[0].inputs[0]
        self.output = self.nodes[-1].outputs[0]
        for n in self.nodes:  # the engine's units and DMA move integers
            for t in (t for t in n.inputs + n.outputs if t not in g.weights):
                if not _is_integer(g.dtype(t)):
                    raise EngineProgramError(f"{g.source}: node {n.name} ({n.op}): tensor {t} is {g.dtype(t)}; the "
                                             "engine runs integer graphs (build with --int-ops and --pixel-input)")

    def weight(self, name: str) -> np.ndarray:
        return np.asarray(self.g.weights[name])

    def trace(self, tensor: str) -> tuple[str, np.ndarray]:
        """(stored tensor, positions): ``tensor``'s elements as positions in the flat stored tensor it is moved
        from (through data movement nodes), shaped as ``tensor``."""
        from samfpga.kernels import shuffle

        n = self.producer.get(tensor)
        if n is None or n.op not in MOVEMENT:
            return tensor, np.arange(int(np.prod(self.g.shape(tensor))), dtype=np.int64).reshape(self.g.shape(tensor))
        src, idx = self.trace(n.inputs[0])
        a = n.attrs
        if n.op == "Reshape":
            outs = [idx.reshape(self.g.shape(n.outputs[0]))]
        elif n.op == "InnerShuffle":
            outs = [shuffle.inner_shuffle(idx, tuple(a["transpose_in_shape"]))]
        elif n.op in ("OuterShuffle", "Shuffle", "PagePermute"):
            outs = [shuffle.outer_shuffle(idx, tuple(a["transpose_in_shape"]), tuple(a["perm"]),
                                          tuple(a["out_shape"]))]
        elif n.op == "StreamingSplit":
            outs = shuffle.split(idx, list(a["ChannelsPerStream"]))
        elif n.op == "DuplicateStreams":
            outs = [idx] * len(n.outputs)
        else:  # width converters, FIFOs, Identity
            outs = [idx]
        return src, np.asarray(outs[n.outputs.index(tensor)]).reshape(self.g.shape(tensor))

    def operand(self, tensor: str, order: np.ndarray | None = None) -> Operand:
        """``tensor`` as a read of its stored source: ``order`` (positions, default ``trace``'s) factored into an
        address pattern; EngineProgramError when no affine loop nest gives it."""
        src, idx = self.trace(tensor)
        idx = idx if order is None else order
        acc = factor(idx.ravel())
        if acc is None:
            raise EngineProgramError(f"{self.g.source}: {tensor} is {src} in an order no affine address pattern gives "
                                     f"(an element-level transpose: the engine's readers move runs of bytes)")
        return Operand(src, acc, tuple(idx.shape))

    def next_compute(self, tensor: str):
        """The one consumer of ``tensor`` through order-preserving movement (Reshape, FIFOs), or None."""
        while True:
            cons = self.consumers.get(tensor, [])
            if len(cons) != 1:
                return None
            n = cons[0]
            if n.op in ("Reshape", "StreamingDataWidthConverter", "StreamingFIFO", "Identity"):
                tensor = n.outputs[0]
                continue
            return n

    def requant_of(self, n, in_bits: int, unit: tb.TokenBatchConfig) -> LaneRequant:
        """Requant or Thresholding node ``n`` as requantiser parameters for ``in_bits``-bit inputs, within
        ``unit``'s parameter widths."""
        channels = int(n.attrs["NumChannels"])
        odt = self.g.dtype(n.outputs[0])
        try:
            if n.op == "Requant":
                return from_requant(self.weight(n.inputs[1]), self.weight(n.inputs[2]), channels, in_bits, odt,
                                    bool(int(n.attrs.get("narrow", 0))))
            if n.op == "Thresholding":
                t = self.weight(n.inputs[1]).reshape(-1, self.weight(n.inputs[1]).shape[-1])
                lo, hi = dtype_limits(self.g.dtype(n.inputs[0]))
                rq = from_thresholds(t, _act_val(n), lo, hi, odt, unit.rq_scale_bits, unit.rq_bias_bits,
                                     unit.rq_shift_bits)
                # per-tensor thresholds: every channel the one row's parameters
                return rq.take(np.zeros(channels, dtype=np.int64)) if rq.channels == 1 else rq
        except ValueError as e:
            raise EngineProgramError(f"{self.g.source}: node {n.name} ({n.op}): {e}") from e
        raise EngineProgramError(f"{self.g.source}: node {n.name} ({n.op}) is not a requantisation")


def _acc_bits(graph, n) -> int:
    """Bits of a GEMM node's sums: its output's (MVAU) or its accumulator attribute (TokenBatchMVU, which
    requantises inside)."""
    if n.op == "TokenBatchMVU":
        return int_dtype(str(n.attrs["accDataType"]))[0]
    return int_dtype(graph.dtype(n.outputs[0]))[0]


def engine_unit(graph, pe: int, simd: int, batch: int, axi_dw: int = 128) -> tb.TokenBatchConfig:
    """The GEMM unit that runs every MVAU of ``graph`` (an ``IntGraph``): PE x SIMD, ``batch`` tokens, as wide as
    its widest layer (padded to whole folds), sums as wide as its widest, 9-bit signed activations (INT8 and
    UINT8 layers), the raw output as wide as its widest raw sums (QK^T's, and the sums the graph keeps), and
    requantiser scales wide enough for every kept Thresholding (at least the unit's default 18 bits)."""
    from samfpga.hw.sim.lane_requant import min_scale_bits

    G = _Graph(graph)
    scale_bits = tb.TokenBatchConfig.rq_scale_bits
    for n in G.nodes:
        if n.op == "Thresholding" and n.inputs[0] != G.input:
            t = G.weight(n.inputs[1])
            lo, hi = dtype_limits(graph.dtype(n.inputs[0]))
            # the unit has at least the default width: search only above it
            bits = min_scale_bits(t.reshape(-1, t.shape[-1]), _act_val(n), lo, hi, graph.dtype(n.outputs[0]),
                                  start=scale_bits)
            if bits is None:
                raise EngineProgramError(f"{graph.source}: node {n.name}: no requantiser of up to 32-bit scales "
                                         "reproduces its thresholds")
            scale_bits = max(scale_bits, bits)
    mvaus = [n for n in G.nodes if n.op in GEMM_OPS]
    if not mvaus:
        raise EngineProgramError(f"{graph.source}: no MVAU or TokenBatchMVU nodes")
    acc = max(_acc_bits(graph, n) for n in mvaus)
    raw = [int_dtype(graph.dtype(n.outputs[0]))[0] for n in mvaus if n.op == "MVAU" and
           ((c := G.next_compute(n.outputs[0])) is None or c.op not in ("Requant", "Thresholding"))]
    mw = max(tb.whole_folds(int(n.attrs["MW"]), simd) for n in mvaus)
    # the outputs: every layer's MH, and the V transposes' keys (a dynamic product's MW)
    mh = max(tb.whole_folds(max(int(n.attrs["MH"]), int(n.attrs["MW"]) if n.attrs.get("mem_mode") == "dynamic"
                                else 0), pe) for n in mvaus)
    return tb.TokenBatchConfig(mw=mw, mh=mh, simd=simd, pe=pe, batch=batch, a_bits=9, a_signed=True, acc_bits=acc,
                               requant=True, axi_dw=axi_dw, dot="pack", rt_shape=True, raw_out=bool(raw),
                               raw_bits=max(raw, default=0), rq_scale_bits=scale_bits, cnt_bits=ENGINE_CNT_BITS)


def compile_program(graph, unit: tb.TokenBatchConfig) -> EngineProgram:
    """The engine's steps for the accelerator part of ``graph`` (an ``IntGraph``) on the GEMM ``unit``
    (``engine_unit``). EngineProgramError naming the node where the engine cannot run the graph."""
    G = _Graph(graph)
    c = _Compiler(G, unit)
    done: set[str] = set()
    for n in G.nodes:
        if n.name in done or n.op in MOVEMENT:
            continue
        steps = c.step_from(n)
        for s in steps:
            done.update(s.nodes)
            c.steps.append(s)
    missing = [n.name for n in G.nodes if n.op not in MOVEMENT and n.name not in done]
    if missing:
        raise EngineProgramError(f"{graph.source}: nodes no step runs: {missing}")
    stored = {s.output for s in c.steps}
    # an accelerator ending in data movement: its output is a last read of the stored tensor
    last = None if G.output in stored else G.operand(G.output)
    prog = EngineProgram(unit, c.steps, bytes(c.image), G.input, G.output, output_read=last)
    _stream_order_stores(prog)
    _attention_regions(prog)
    reads = [o for s in c.steps for o in (s.input, s.residual, s.weights) if o is not None] + ([last] if last else [])
    prog.dtypes = {t: graph.dtype(t) for t in sorted(stored | {o.tensor for o in reads} | {G.input})
                   if t in graph.tensors}  # the V transposes' outputs are the engine's own (no graph tensor)
    lane_rqs = [r for s in c.steps for r in (s.ln_rq, s.rq, s.add_rq) if r is not None]
    prog.needs = {**c.needs(), "address_loops": max(o.access.levels for o in reads),
                  "shortest_run_bytes": min(o.access.run * prog.elem_bytes(o.tensor) for o in reads),
                  # requant_lanes.sv's S_BITS (two's complement) for every lane requantiser of the program
                  "lane_scale_bits": max((signed_bits(r.scale) for r in lane_rqs), default=0)}
    return prog


def _runs(a: Access) -> int:
    return a.size // a.run


def _internal(prog: EngineProgram, t: str) -> bool:
    """Whether stored tensor ``t`` is the program's alone: not the accelerator's output, nor read back as it."""
    return t != prog.output and (prog.output_read is None or prog.output_read.tensor != t)


def _moved_reads(prog: EngineProgram, t: str, where: np.ndarray) -> list | None:
    """Every read of stored tensor ``t`` once its elements move from stored position p to ``where[p]``: [(step,
    operand key, the operand re-factored)]; None when one of them has no affine address pattern."""
    out = []
    for s in prog.steps:
        for k in ("input", "residual", "weights"):
            o = getattr(s, k)
            if o is not None and o.tensor == t:
                a = factor(where[o.access.indices()])
                if a is None:
                    return None
                out.append((s, k, replace(o, access=a)))
    return out


def _stream_order_stores(prog: EngineProgram) -> None:
    """Store a permuted write in the producer's stream order where that moves fewer runs: the writer's permutation
    folded into every read of the tensor instead (a transpose written and read back transposed, as TinyViT's
    tokens -> NCHW -> depthwise conv, becomes two sequential transfers). Only tensors the program alone reads (not
    the accelerator's output), and only when every read still has an affine address pattern."""
    for s in prog.steps:
        if s.write is None or not _internal(prog, s.output):
            continue
        moved = _moved_reads(prog, s.output, np.argsort(s.write.indices()))  # stored position -> stream element
        if moved is None:
            continue
        if 1 + sum(_runs(o.access) for _, _, o in moved) >= _runs(s.write) + sum(
                _runs(getattr(t, k).access) for t, k, _ in moved):
            continue
        prog.layouts[s.output] = s.write.indices()
        s.write = None
        for t, k, o in moved:
            setattr(t, k, o)


def _attention_regions(prog: EngineProgram) -> None:
    """Store each attention's qkv tensor as three regions, Q, K and V, each (window x head, token, dim) in order,
    where its producer's writer can (an affine address pattern: the stream's (token, head, q / k / v, dim) runs of a
    head's dims scattered to three bases): the GEMM unit fetches a weight pass per iteration as one sequential read
    (base + iteration x stride), so QK^T's K rows and the V transpose's V rows must be one block per window and head
    (``attention_operands.qk_frame`` / ``vt_frame``); the queries' reader then reads one run too. The stored order
    is composed into ``layouts`` (``graph_order`` still gives the graph's) and every read of the tensor re-factored;
    left as it is where any of that has no affine pattern."""
    for qk in (s for s in prog.steps if s.kind == "qk"):
        t = qk.weights.tensor
        vt = next((s for s in prog.steps if s.kind == "vt" and s.input.tensor == t), None)
        prod = next((s for s in prog.steps if s.output == t), None)
        if vt is None or prod is None or qk.input.tensor != t or not _internal(prog, t):
            continue
        perm = np.concatenate([o.access.indices() for o in (qk.input, qk.weights, vt.input)])
        if not np.array_equal(np.sort(perm), np.arange(perm.size)):  # Q, K and V are not the whole tensor
            continue
        where = np.argsort(perm)  # stored position now -> in the regions
        write = factor(where if prod.write is None else where[prod.write.indices()])
        moved = _moved_reads(prog, t, where)
        if write is None or moved is None:
            continue
        lay = prog.layouts.get(t)
        prog.layouts[t] = perm if lay is None else lay[perm]
        prod.write = write
        for s, k, o in moved:
            setattr(s, k, o)


class _Compiler:
    def __init__(self, G: _Graph, unit: tb.TokenBatchConfig) -> None:
        self.G, self.g, self.unit = G, G.g, unit
        self.steps: list[EngineStep] = []
        self.image = bytearray()
        self.ln_in_bits: list[int] = []

    def needs(self) -> dict:
        """What the graph asks of the engine beyond the built GEMM unit (docs/engine.md)."""
        signs = {s.in_dtype.startswith("INT") for s in self.steps if s.in_dtype}
        return {"activation_bits": 9 if len(signs) > 1 else 8,
                "unit_inputs": sorted({s.in_dtype for s in self.steps if s.in_dtype}),
                "run_time_output_sign": len({s.layer.out_signed for s in self.steps
                                             if s.layer is not None and s.layer.requantises}) > 1,
                "raw_bits": self.unit.raw_bits, "requant_scale_bits": self.unit.rq_scale_bits,
                "layernorm_in_bits": max(self.ln_in_bits, default=0),
                "image_table": any(s.table is not None for s in self.steps)}

    def _place(self, data: bytes) -> int:
        off = tb.whole_folds(len(self.image), PAGE)
        self.image += bytes(off - len(self.image)) + data
        return off

    def _err(self, n, msg: str) -> EngineProgramError:
        return EngineProgramError(f"{self.g.source}: node {n.name} ({n.op}): {msg}")

    def step_from(self, n) -> list[EngineStep]:
        G = self.G
        if n.op == "MVAU" and n.attrs.get("mem_mode") == "dynamic":
            nxt = G.next_compute(n.outputs[0])
            return [self._qk(n)] if nxt is not None and nxt.op == "IntSoftmax" else self._av(n)
        nodes, inp = [], n
        step = EngineStep(name=n.name, kind="gemm", nodes=nodes, input=G.operand(n.inputs[0]), output="", out_shape=())
        cur = n
        if cur.op == "Thresholding":  # the image's table: only on the 8-bit accelerator input
            if cur.inputs[0] != G.input and int_dtype(self.g.dtype(cur.inputs[0]))[0] <= 8:
                return [self._requant(step, cur)]
            if cur.inputs[0] != G.input:
                raise self._err(cur, "thresholds on a computed tensor of more than 8 bits: the engine has no "
                                     "threshold memories and no requantiser reproduces them")
            step.table, step.table_lo = self._table(cur), dtype_limits(self.g.dtype(cur.inputs[0]))[0]
            nodes.append(cur.name)
            cur = G.next_compute(cur.outputs[0])
        if cur is not None and cur.op == "IntLayerNorm":
            from samfpga.kernels import layernorm

            step.ln = layernorm.params_from_attrs(cur.attrs, int_dtype(self.g.dtype(cur.outputs[0]))[0])
            self.ln_in_bits.append(int_dtype(self.g.dtype(cur.inputs[0]))[0])
            nodes.append(cur.name)
            rq = G.next_compute(cur.outputs[0])
            if rq is None or rq.op not in ("Requant", "Thresholding"):
                raise self._err(cur, "a LayerNorm not followed by a requantisation")
            step.ln_rq = G.requant_of(rq, int_dtype(self.g.dtype(rq.inputs[0]))[0], self.unit)
            nodes.append(rq.name)
            nxt = G.next_compute(rq.outputs[0])
            if nxt is None or nxt.op not in ("MVAU", "FMPadding", "ConvolutionInputGenerator"):
                step.kind, step.output = "layernorm", rq.outputs[0]
                step.out_shape = self.g.shape(rq.outputs[0])
                return [step]
            cur = nxt
        if cur is not None and cur.op in ("FMPadding", "ConvolutionInputGenerator"):
            step.window = {"pad": (0, 0, 0, 0)}
            if cur.op == "FMPadding":
                step.window["pad"] = tuple(int(v) for v in cur.attrs["Padding"])
                nodes.append(cur.name)
                cur = G.next_compute(cur.outputs[0])
            if cur is None or cur.op != "ConvolutionInputGenerator":
                raise self._err(inp, "padding not followed by a sliding window")
            step.window.update(kernel=tuple(cur.attrs["ConvKernelDim"]), stride=tuple(cur.attrs["Stride"]),
                               dilation=tuple(cur.attrs.get("Dilation", [1, 1])))
            nodes.append(cur.name)
            cur = G.next_compute(cur.outputs[0])
        if cur is None:
            raise self._err(inp, "the step's input path ends without a unit")
        if cur.op == "DepthwiseVVAU":
            return [self._dw(step, cur)]
        if cur.op not in GEMM_OPS:
            raise self._err(cur, "not a node the engine's units run here")
        return [self._gemm(step, cur)]

    def _table(self, n) -> np.ndarray:
        lo, hi = dtype_limits(self.g.dtype(n.inputs[0]))
        t = self.G.weight(n.inputs[1])
        t = t.reshape(-1, t.shape[-1])
        c = int(n.attrs["NumChannels"])
        x = np.arange(lo, hi + 1)
        vals = _act_val(n) + (x[None, :, None] >= t[:, None, :]).sum(axis=2)
        return np.broadcast_to(vals, (c, len(x))).astype(np.int64)

    def _follow(self, step: EngineStep, tensor: str, ops: tuple[str, ...]):
        """The next node on the step's stream after ``tensor`` through any data movement, when it is one of
        ``ops`` (else None). The movement is left to the writer (``step.write_index`` composes it); ``_channels``
        checks that per-channel parameters still fit the unit's outputs."""
        cur = tensor
        while True:
            cons = self.G.consumers.get(cur, [])
            if len(cons) != 1:
                return None
            n = cons[0]
            if n.op in MOVEMENT and n.op not in ("StreamingSplit", "DuplicateStreams"):
                cur = n.outputs[0]
                continue
            break
        if n.op not in ops:
            return None
        if step.stream_channels == 0:
            step.stream_channels = self.g.shape(tensor)[-1]
        if cur != tensor:
            src, idx = self.G.trace(cur)
            if src != tensor:
                raise self._err(n, f"its input {cur} is not moved from {tensor}")
            step.write_index = idx if step.write_index is None else step.write_index.ravel()[idx]
        return n

    def _channels(self, step: EngineStep, n, rq: LaneRequant) -> np.ndarray:
        """Which of requantisation ``n``'s (``rq``'s) channels each of the unit's outputs gets: (iters, stream
        channels). The unit takes parameters per iteration and output channel, so the map must not vary over
        tokens (any map does when every channel has the same parameters)."""
        if all((a == a[0]).all() for a in (rq.scale, rq.bias, rq.shift)):
            return np.zeros((step.iters, step.stream_channels), dtype=np.int64)
        size = int(np.prod(self.g.shape(n.inputs[0])))
        pos = np.arange(size) if step.write_index is None else step.write_index.ravel()
        ch = np.empty(size, dtype=np.int64)
        ch[pos] = np.arange(size) % self.g.shape(n.inputs[0])[-1]
        ch = ch.reshape(step.iters, -1, step.stream_channels)
        if not (ch == ch[:, :1, :]).all():
            raise self._err(n, "its channels vary over the unit's tokens (data movement between them moves channels)")
        return ch[:, 0, :]

    def _lanes(self, step: EngineStep, n, rq: LaneRequant) -> LaneRequant:
        """``rq`` in the order of the stream's channels (the same for every iteration: lanes have one set)."""
        table = self._channels(step, n, rq)
        if not (table == table[:1]).all():
            raise self._err(n, "requantiser lanes with parameters per iteration")
        return rq.take(table[0])

    def _out_path(self, step: EngineStep, tensor: str, in_bits: int) -> tuple[LaneRequant | None, str]:
        """The requantisation after the unit (if any) and the tensor after it."""
        n = self._follow(step, tensor, ("Requant", "Thresholding"))
        if n is None:
            return None, tensor
        step.nodes.append(n.name)
        rq = self.G.requant_of(n, in_bits, self.unit)
        step.rq_channels = self._channels(step, n, rq)
        return rq, n.outputs[0]

    def _residual(self, step: EngineStep, tensor: str) -> str:
        """A residual adder and its requantisation after the step's output ``tensor``, when the graph has one."""
        n = self._follow(step, tensor, ("AddStreams",))
        if n is None:
            return tensor
        mine = [i for i, t in enumerate(n.inputs) if self.G.trace(t)[0] == tensor]
        if len(mine) != 1:
            raise self._err(n, "a sum of a tensor with itself")
        src, oidx = self.G.trace(n.inputs[1 - mine[0]])
        order = oidx.ravel() if step.write_index is None else oidx.ravel()[np.argsort(step.write_index.ravel())]
        step.residual = self.G.operand(n.inputs[1 - mine[0]], order)
        step.add_range = dtype_limits(self.g.dtype(n.outputs[0]))
        step.nodes.append(n.name)
        rq = self._follow(step, n.outputs[0], ("Requant", "Thresholding"))
        if rq is None:
            raise self._err(n, "a residual sum not requantised to 8 bits before it is stored")
        step.add_rq = self._lanes(step, rq, self.G.requant_of(rq, int_dtype(self.g.dtype(rq.inputs[0]))[0], self.unit))
        step.nodes.append(rq.name)
        return rq.outputs[0]

    def _store(self, step: EngineStep, out: str) -> EngineStep:
        step.output, step.out_shape = out, self.g.shape(out)
        if step.write_index is not None:
            inv = np.argsort(step.write_index.ravel())
            step.write = factor(inv)
            if step.write is None:
                raise EngineProgramError(f"{self.g.source}: {out}: the writer's order is no affine address pattern")
        return step

    def _gemm(self, step: EngineStep, n) -> EngineStep:
        u = self.unit
        step.name = n.name
        step.nodes.append(n.name)
        mw, mh = int(n.attrs["MW"]), int(n.attrs["MH"])
        t = int(np.prod(n.attrs["numInputVectors"]))
        acc_bits = self._sums(n)
        if n.op == "TokenBatchMVU":  # its Requant fused: (x, weights, scale, bias)
            rq, out = self._fused_requant(step, n, acc_bits), n.outputs[0]
        else:
            rq, out = self._out_path(step, n.outputs[0], acc_bits)
        mwp, mhp = tb.whole_folds(mw, u.simd), tb.whole_folds(mh, u.pe)
        raw = rq is None
        try:
            layer = tb.layer_shape(u, mwp, mhp, raw=raw)
        except ValueError as e:
            raise self._err(n, str(e)) from e
        w = padded(self.G.weight(n.inputs[1]).reshape(mw, mh).T[None], mhp, mwp)
        params = None
        if rq is not None:
            layer = replace(layer, out_bits=rq.out_bits, out_signed=rq.out_signed)
            params = _unit_params(rq, step.rq_channels, mhp, layer, n, self)
        step.layer, step.iters, step.tokens, step.mw, step.mh = layer, 1, t, mw, mh
        step.in_dtype = self.g.dtype(n.inputs[0])
        step.offset = self._place(tb.pack_weights(w, layer, rq=params))
        return self._store(step, self._residual(step, out))

    def _requant(self, step: EngineStep, n) -> EngineStep:
        """Thresholding ``n`` on a computed tensor of at most 8 bits (a requantisation after another, as where a
        block's ReLU output, UINT8, is re-quantised for the next block's INT8 input; the two roundings are no one
        requantiser's) as a GEMM step of identity weights, its requantiser the thresholds' (``requant_of``): the
        engine has no threshold memories. EngineProgramError where no requantiser reproduces them."""
        u = self.unit
        step.name, step.identity = n.name, True
        step.nodes.append(n.name)
        c = int(n.attrs["NumChannels"])
        t = int(np.prod(self.g.shape(n.inputs[0]))) // c
        in_bits = int_dtype(self.g.dtype(n.inputs[0]))[0]
        step.stream_channels = c
        step.rq_channels = np.arange(c, dtype=np.int64)[None, :]
        rq = self.G.requant_of(n, in_bits + 1, u)
        mwp, mhp = tb.whole_folds(c, u.simd), tb.whole_folds(c, u.pe)
        try:
            layer = replace(tb.layer_shape(u, mwp, mhp), out_bits=rq.out_bits, out_signed=rq.out_signed)
        except ValueError as e:
            raise self._err(n, str(e)) from e
        w = padded(np.eye(c, dtype=np.int64)[None], mhp, mwp)
        params = _unit_params(rq, step.rq_channels, mhp, layer, n, self)
        step.layer, step.iters, step.tokens, step.mw, step.mh = layer, 1, t, c, c
        step.in_dtype = self.g.dtype(n.inputs[0])
        step.offset = self._place(tb.pack_weights(w, layer, rq=params))
        return self._store(step, self._residual(step, n.outputs[0]))

    def _sums(self, n) -> int:
        """Bits of GEMM node ``n``'s sums; EngineProgramError where the unit's accumulator is narrower."""
        bits = _acc_bits(self.g, n)
        if bits > self.unit.acc_bits:
            raise self._err(n, f"{bits}-bit sums, the unit's accumulator holds {self.unit.acc_bits}")
        return bits

    def _fused_requant(self, step: EngineStep, n, acc_bits: int) -> LaneRequant:
        mh = int(n.attrs["MH"])
        try:
            rq = from_requant(self.G.weight(n.inputs[2]), self.G.weight(n.inputs[3]), mh, acc_bits,
                              self.g.dtype(n.outputs[0]))
        except ValueError as e:
            raise self._err(n, str(e)) from e
        step.stream_channels = mh
        step.rq_channels = np.arange(mh, dtype=np.int64)[None, :]
        return rq

    def _dw(self, step: EngineStep, n) -> EngineStep:
        step.kind, step.name = "dw", n.name
        step.nodes.append(n.name)
        c = int(n.attrs["Channels"])
        kh, kw = n.attrs["Kernel"]
        step.dw_weights = self.G.weight(n.inputs[1]).reshape(c, kh * kw).astype(np.int64)
        rq, out = self._out_path(step, n.outputs[0], int_dtype(self.g.dtype(n.outputs[0]))[0])
        if rq is None:
            raise self._err(n, "a depthwise layer without requantisation")
        step.rq = rq.take(step.rq_channels[0])  # one iteration: the lanes' order
        return self._store(step, self._residual(step, out))

    def _qk(self, n) -> EngineStep:
        from samfpga.kernels import softmax

        u, G = self.unit, self.G
        self._sums(n)
        q_shape = self.g.shape(n.inputs[0])  # (..., heads, t, d)
        mw, mh = int(n.attrs["MW"]), int(n.attrs["MH"])
        iters, t = int(np.prod(q_shape[:-2])), q_shape[-2]
        k_src, k_idx = G.trace(n.inputs[1])  # FINN's weight operand (..., MW = d, MH = keys)
        k_rows = np.swapaxes(k_idx, -1, -2)  # the unit's weight rows: (..., keys, d)
        sm = G.next_compute(n.outputs[0])
        sm_bias = self.G.weight(sm.inputs[1]) if len(sm.inputs) > 1 else None
        step = EngineStep(name=n.name, kind="qk", nodes=[n.name, sm.name], input=G.operand(n.inputs[0]),
                          output=sm.outputs[0], out_shape=self.g.shape(sm.outputs[0]),
                          weights=G.operand(n.inputs[1], k_rows), mw=mw, mh=mh, iters=iters, tokens=t,
                          in_dtype=self.g.dtype(n.inputs[0]))
        mwp, mhp = tb.whole_folds(mw, u.simd), tb.whole_folds(mh, u.pe)
        try:
            step.layer = tb.layer_shape(u, mwp, mhp, min(t, tb.max_batch(u, mwp, mhp, raw=True)), raw=True)
        except ValueError as e:
            raise self._err(n, str(e)) from e
        step.softmax = softmax.params_from_attrs(sm.attrs, int_dtype(self.g.dtype(sm.outputs[0]))[0], sm_bias)
        if step.softmax.n != mh:
            raise self._err(sm, f"rows of {step.softmax.n} values after {mh} keys")
        return step

    def _av(self, n) -> list[EngineStep]:
        from samfpga.hw.sim.attention_operands import transpose_shape

        u, G = self.unit, self.G
        a_shape = self.g.shape(n.inputs[0])  # (..., heads, t, keys)
        mw, mh = int(n.attrs["MW"]), int(n.attrs["MH"])  # keys, d
        iters, t = int(np.prod(a_shape[:-2])), a_shape[-2]
        v = G.operand(n.inputs[1])  # FINN's (..., MW = keys, MH = d): V's rows as stored
        vt = EngineStep(name=f"{n.name} (V transpose)", kind="vt", nodes=[], input=v, output=f"{n.name}.vt",
                        out_shape=(iters, mh, tb.whole_folds(mw, u.pe)), mw=mh, mh=mw, iters=iters, tokens=mh)
        vt.layer = transpose_shape(mw, mh, u)
        step = EngineStep(name=n.name, kind="av", nodes=[n.name], input=G.operand(n.inputs[0]), output="",
                          out_shape=(), mw=mw, mh=mh, iters=iters, tokens=t, vt_of=vt.output,
                          in_dtype=self.g.dtype(n.inputs[0]))
        rq, out = self._out_path(step, n.outputs[0], self._sums(n))
        if rq is None:
            raise self._err(n, "AV without requantisation")
        mwp, mhp = tb.whole_folds(mw, u.simd), tb.whole_folds(mh, u.pe)
        try:
            layer = tb.layer_shape(u, mwp, mhp, min(t, tb.max_batch(u, mwp, mhp)))
        except ValueError as e:
            raise self._err(n, str(e)) from e
        step.layer = replace(layer, out_bits=rq.out_bits, out_signed=rq.out_signed)
        step.rq_params = _unit_params(rq, step.rq_channels, step.layer.mh, step.layer, n, self)
        return [vt, self._store(step, out)]


def _unit_params(rq: LaneRequant, channels: np.ndarray, mh: int, layer: tb.TokenBatchConfig, n,
                 c: _Compiler) -> tb.RequantParams:
    """``rq`` as the unit's parameters per iteration: ``channels`` (iters, outputs) picks each output's channel;
    padded to ``mh`` outputs (zero), checked against the unit's parameter widths."""
    pad = mh - channels.shape[1]
    if pad < 0:
        raise c._err(n, f"requantiser for {channels.shape[1]} outputs on {mh}")
    p = tb.RequantParams(*(np.pad(np.asarray(a, np.int64)[channels], ((0, 0), (0, pad)))
                           for a in (rq.scale, rq.bias, rq.shift)))
    try:
        return p.checked(layer, channels.shape[0])
    except ValueError as e:
        raise c._err(n, f"beyond the unit's requantiser: {e}") from e


# --- executing --------------------------------------------------------------------------------------------------

def _read(mem: dict[str, np.ndarray], op: Operand) -> np.ndarray:
    return gather(mem[op.tensor], op.access).reshape(op.shape)


@dataclass
class UnitFrame:
    """One frame of the GEMM unit as a step runs it: inputs x (n, t, mw), weights w (n, mh, mw), requantisation
    parameters (None: raw or transposing without), the frame's configuration (``layer_shape``: its registers) and
    its outputs y (n, t, mh) as the unit's model computes them (padded outputs included)."""

    step: str
    x: np.ndarray
    w: np.ndarray
    rq: tb.RequantParams | None
    cfg: tb.TokenBatchConfig
    y: np.ndarray


@dataclass
class LaneFrame:
    """One pass of requantiser lanes as a step runs it (``where``: after the LayerNorm, the depthwise unit or the
    residual adder): inputs x (..., C), the lanes' parameters and outputs y (..., C); after a LayerNorm also its
    parameters and its inputs (for the engine's LayerNorm unit, layernorm_lanes.sv)."""

    step: str
    where: str  # layernorm | depthwise | residual
    rq: LaneRequant
    x: np.ndarray
    y: np.ndarray
    ln: object | None = None  # IntLayerNormParams
    ln_x: np.ndarray | None = None


def run_program(prog: EngineProgram, x: np.ndarray, trace=None, frames: list[UnitFrame] | None = None,
                lanes: list[LaneFrame] | None = None) -> dict[str, np.ndarray]:
    """The steps in order on the accelerator input ``x`` (integers, the graph's input shape): every stored
    tensor (flat int64), keyed by name. ``trace(step, value)`` after each step; ``frames`` collects every frame of
    the GEMM unit (for its RTL: tests/test_engine_program.py), ``lanes`` every pass of requantiser lanes (for
    theirs: tests/test_sim_requant_lanes.py)."""
    from samfpga.hw.sim.attention_operands import transpose_frame
    from samfpga.kernels import fmpadding, layernorm, softmax, swg, vvau

    def unit(step: EngineStep, xs: np.ndarray, cfg: tb.TokenBatchConfig, w: np.ndarray | None = None,
             rq: tb.RequantParams | None = None) -> np.ndarray:
        if w is None:  # the step's layer from the program's DDR image
            y = tb.unit_model(xs, prog.image, cfg, base=step.offset)
            if frames is not None:
                w = tb.unpack_weights(prog.image, 1, cfg, base=step.offset)
                rq = tb.unpack_requant(prog.image, 1, cfg, base=step.offset) if cfg.requantises else None
        else:
            y = tb.unit_model(xs, tb.pack_weights(w, cfg, rq=rq), cfg)
        if frames is not None:
            frames.append(UnitFrame(step.name, xs, w, rq, cfg, y))
        return y

    def requant(step: EngineStep, where: str, rq: LaneRequant, v: np.ndarray, ln_x: np.ndarray | None = None
                ) -> np.ndarray:
        y = rq.apply(v)
        if lanes is not None:
            lanes.append(LaneFrame(step.name, where, rq, np.asarray(v, dtype=np.int64), y,
                                   step.ln if ln_x is not None else None, ln_x))
        return y

    mem: dict[str, np.ndarray] = {prog.input: np.asarray(x).astype(np.int64).ravel()}
    for s in prog.steps:
        if s.kind == "vt":
            v = _read(mem, s.input).reshape(s.iters, s.mh, s.mw)  # (n, keys, d)
            cfg, onehot, ident = transpose_frame(v[0], prog.unit)
            w = padded(v, cfg.mh, cfg.mw)
            rq = tb.RequantParams(*(np.repeat(a, s.iters, axis=0) for a in (ident.scale, ident.bias, ident.shift)))
            y = unit(s, np.repeat(onehot, s.iters, axis=0), cfg, w, rq)
            mem[s.output] = y.ravel()  # (n, d, keys padded): V^T's rows
            if trace:
                trace(s, y)
            continue
        a = _read(mem, s.input)
        if s.kind == "qk":
            q = a.reshape(s.iters, s.tokens, s.mw)
            k = _read(mem, s.weights).reshape(s.iters, s.mh, s.mw)
            cfg = s.layer
            sums = unit(s, padded(q, s.tokens, cfg.mw), cfg, padded(k, cfg.mh, cfg.mw))[:, :, :s.mh]  # raw_rows: padded keys dropped
            y = softmax.int_softmax(sums.reshape(s.out_shape), s.softmax)
        elif s.kind == "av":
            p = a.reshape(s.iters, s.tokens, s.mw)
            cfg = s.layer
            vt = mem[s.vt_of].reshape(s.iters, s.mh, -1)[:, :, :s.mw]  # V^T (n, d, keys)
            # AV's requantisation words (per head; the host writes them once around V^T's rows)
            y = unit(s, padded(p, s.tokens, cfg.mw), cfg, padded(vt, cfg.mh, cfg.mw), s.rq_params)[:, :, :s.mh]
        else:
            if s.table is not None:  # channels last: table[c, value - lowest]
                a = s.table[np.arange(a.shape[-1]), a - s.table_lo]
            if s.ln is not None:
                a = requant(s, "layernorm", s.ln_rq, layernorm.int_layernorm(a, s.ln), ln_x=a)
            if s.kind == "layernorm":
                y = a
            else:
                if s.window is not None:
                    a4 = a.reshape(1, *a.shape[-3:]) if a.ndim >= 3 else a
                    a4 = fmpadding.fmpadding(a4, s.window["pad"])
                    a = swg.sliding_window(a4, s.window["kernel"], s.window["stride"], s.window["dilation"])
                if s.kind == "dw":
                    c = s.dw_weights.shape[0]
                    acc = vvau.depthwise(vvau.window_to_kc(a, c, s.dw_weights.shape[1], c), s.dw_weights)
                    y = requant(s, "depthwise", s.rq, acc)
                else:
                    tok = a.reshape(1, -1, s.mw)
                    y = unit(s, padded(tok, tok.shape[1], s.layer.mw), s.layer)[0, :, :s.mh]
            if s.residual is not None:
                r = _read(mem, s.residual).reshape(y.shape)
                y = requant(s, "residual", s.add_rq, np.clip(y + r, *s.add_range))
        y = np.asarray(y).astype(np.int64).ravel()
        mem[s.output] = y if s.write is None else scatter(y, s.write)  # stream order: prog.layouts
        if trace:
            trace(s, y)
    if prog.output_read is not None:
        mem[prog.output] = _read(mem, prog.output_read).ravel()
    return mem
