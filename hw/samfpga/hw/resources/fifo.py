"""Analytic FIFO depths for a FINN dataflow graph, and their cost, without rtlsim (FINN's set_fifo_depths needs it).

Where a pipeline needs a FIFO:
- **Fork/join branches.** A DuplicateStreams node (or attention's q/k/v StreamingSplit) feeds a long branch
  (e.g. LayerNorm -> MVAU -> ...) and a short one (the skip path), joined by AddStreams. The long branch emits its
  first word only after each of its layers has taken a "start-up" part of the frame (an MVAU one input row, an
  attention MVAU one window x head matrix of its streamed operand, a token-batched MVU two batches of B input
  vectors, a sliding window its line buffer, an
  InnerShuffle or a PagePermute one page, a LayerNorm/Softmax one row, an OuterShuffle its buffer). Until then
  the join takes nothing, so the short branch must hold what the fork sends meanwhile, or the fork stalls and the
  pipeline deadlocks. Depth (words of the short edge) = (start-up fraction of the long branch - that of the short branch) x
  the words per frame on the short edge, + ``SLACK_PER_LAYER`` per layer of the long branch (pipeline registers in
  flight). The throughput difference needs no extra depth: a slower long branch back-pressures the fork.
- **An MVAU's data input**: at least one input vector, ``MW / SIMD`` words (the MVU reads it in one burst, then
  replays it from its own buffer; behind a slower producer such as a DWC a shallower FIFO stretches every vector).
- **Every other edge**: ``min_depth`` words (default 32: one SRL32 per bit), the decoupling a Vivado
  set_fifo_depths run typically leaves between layers of different rates.

``fifo_costs(model, board)`` prices each estimated FIFO with the StreamingFIFO_rtl model; the FIFOs are not
inserted into the graph. ``stream_costs(model, board)`` prices what the stitched pipeline adds to the layers:
FINN's data-width converters (InsertDWC on a copy of the graph) and the FIFOs on every edge of that graph, DWC
edges included, in the order FINN's set_fifo_depths and ``samfpga.hw.sim.stitched`` insert them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from samfpga.hw import HW_DOMAIN
from samfpga.hw.boards import Board
from samfpga.hw.resources.cost import LayerCost

SLACK_PER_LAYER = 8
# nodes whose outputs branch and meet again: residual forks, and attention's q/k/v split (v joins at the
# attention-times-values matmul, after the long q/k path through QK^T and softmax)
FORKS = ("DuplicateStreams", "StreamingSplit")
DEFAULT_MIN_DEPTH = 32


@dataclass
class FifoEstimate:
    """One estimated FIFO on the edge ``producer -> consumer`` (``tensor``): ``depth`` words of ``width`` bits."""

    producer: str
    consumer: str
    tensor: str
    depth: int
    width: int
    reason: str


def _elems(shape) -> int:
    return int(math.prod(int(s) for s in shape))


def startup_fraction(op) -> float:
    """Fraction of its input frame a layer consumes before its first output word (see module docstring)."""
    t = op.onnx_node.op_type
    total = max(1, _elems(op.get_normal_input_shape(0)))
    attrs = op.get_nodeattr_types()
    if t.startswith("MVAU"):
        mw = int(op.get_nodeattr("MW"))
        if op.get_nodeattr("mem_mode") == "dynamic":
            # attention matmul: the streamed operand (input 1) of the first batch item (window x head: FINN+'s
            # dynamic MVAU takes one matrix per index of the first two input-vector axes) must be complete
            # before the first product
            vecs = [int(v) for v in op.get_nodeattr("numInputVectors")]
            return 1.0 / math.prod(vecs[:2]) if len(vecs) >= 3 else 1.0
        return mw / total
    if t.startswith("TokenBatchMVU"):
        # the token-batched unit (custom_ops.token_batch): a whole batch of B input vectors before its first pass
        # computes, and the next batch loads into the other input bank before that pass's outputs leave
        return min(1.0, 2 * int(op.get_nodeattr("batch")) * int(op.get_nodeattr("MW")) / total)
    if t.startswith("VVAU"):
        return _elems(op.get_nodeattr("Kernel")) * int(op.get_nodeattr("Channels")) / total
    if t.startswith("ConvolutionInputGenerator"):
        return min(1.0, int(op.get_buffer_depth()) * int(op.get_nodeattr("SIMD")) / total)
    if t.startswith("InnerShuffle"):
        shape = op.get_nodeattr("transpose_in_shape") or op.get_nodeattr("in_shape")
        return min(1.0, int(shape[-2]) * int(shape[-1]) / total)
    if t.startswith("PagePermute"):
        # own RTL (page_permute.sv): one page in before the first word out
        return min(1.0, op.view().words * int(op.get_nodeattr("SIMD")) / total)
    if t == "Shuffle":
        # not built yet: as the PagePermute ShuffleToPagePermute makes of it, else the first InnerShuffle of
        # FINN+'s chain (one swap of the two innermost axes)
        from samfpga.hw.custom_ops.page_permute import page_view

        simd = int(op.get_nodeattr("SIMD"))
        shape = op.get_nodeattr("transpose_in_shape")
        try:
            return min(1.0, page_view(shape, op.get_nodeattr("perm"), simd).words * simd / total)
        except ValueError:
            return min(1.0, int(shape[-2]) * int(shape[-1]) / total)
    if t.startswith("OuterShuffle"):
        from samfpga.hw.resources.models import outer_shuffle_buffer

        return min(1.0, outer_shuffle_buffer(op) * int(op.get_nodeattr("SIMD")) / total)
    if t.startswith(("LayerNorm", "HWSoftmax")) and "ifm_dim" in attrs:
        return int(op.get_nodeattr("ifm_dim")[-1]) / total
    if t.startswith(("IntLayerNorm", "IntSoftmax")):
        # own integer RTL: a whole row (its statistics or its maximum) before the row's first output
        return int(op.get_nodeattr("NumChannels")) / total
    return 0.0


def _hw_nodes(model) -> dict:
    from qonnx.custom_op.registry import getCustomOp

    return {n.name: (n, getCustomOp(n)) for n in model.graph.node if n.domain.startswith(HW_DOMAIN)}


def _consumers(model, tensor: str) -> list:
    return [n for n in model.graph.node if tensor in n.input]


def _longest(model, hw: dict, start_tensor: str, join: str, memo: dict) -> tuple[float, int] | None:
    """(start-up fraction, layers) of the longest path from ``start_tensor`` to node ``join``; None if none."""
    best: tuple[float, int] | None = None
    for c in _consumers(model, start_tensor):
        if c.name == join:
            cand = (0.0, 0)
        elif c.name in hw:
            key = c.name
            if key not in memo:
                sub = None
                for out in c.output:
                    r = _longest(model, hw, out, join, memo)
                    if r is not None and (sub is None or r[0] > sub[0]):
                        sub = r
                memo[key] = None if sub is None else (sub[0] + startup_fraction(hw[c.name][1]), sub[1] + 1)
            cand = memo[key]
        else:
            cand = None
        if cand is not None and (best is None or cand[0] > best[0]):
            best = cand
    return best


def _reachable(model, tensor: str) -> set[str]:
    seen: set[str] = set()
    stack = [tensor]
    while stack:
        t = stack.pop()
        for c in _consumers(model, t):
            if c.name not in seen:
                seen.add(c.name)
                stack.extend(c.output)
    return seen


def _join_of(model, fork) -> str | None:
    """The first node (graph order) reached from every output of ``fork``."""
    common = set.intersection(*[_reachable(model, o) for o in fork.output])
    for n in model.graph.node:
        if n.name in common:
            return n.name
    return None


def _input_burst(consumer, hw: dict, tensor: str) -> int:
    """Words an MVAU reads in one burst on its data input (``MW / SIMD``: one input vector, replayed from its own
    buffer for the other output row groups), 0 for other layers and inputs. A FIFO in front of it must hold them, or
    a producer slower than one word per cycle (a DWC assembling wide words) stretches every vector's first pass:
    stage 4 of the 256x256 default ran 32.7% over its estimate with 32 words in front of an MVAU with MW/SIMD = 64,
    at the estimate with 64 (bench/results/sim_stage_default*.json)."""
    if not consumer.op_type.startswith("MVAU") or list(consumer.input).index(tensor) != 0:
        return 0
    op = hw[consumer.name][1]
    return int(op.get_nodeattr("MW")) // int(op.get_nodeattr("SIMD"))


def estimate_fifo_depths(model, min_depth: int = DEFAULT_MIN_DEPTH) -> list[FifoEstimate]:
    """One ``FifoEstimate`` per HW-to-HW edge of ``model`` (a FINN ModelWrapper after specialize_layers)."""
    hw = _hw_nodes(model)
    branch_depth: dict[tuple[str, str], tuple[int, str]] = {}
    for name, (node, op) in hw.items():
        if not node.op_type.startswith(FORKS) or len(node.output) < 2:
            continue
        join = _join_of(model, node)
        if join is None:
            continue
        paths = {o: _longest(model, hw, o, join, {}) for o in node.output}
        paths = {o: p for o, p in paths.items() if p is not None}
        if len(paths) < 2:
            continue
        longest = max(p[0] for p in paths.values())
        layers = max(p[1] for p in paths.values())
        for o, (frac, _) in paths.items():
            if frac >= longest:
                continue
            words = int(math.prod(op.get_folded_output_shape(list(node.output).index(o))[:-1]))
            first = _consumers(model, o)[0]
            depth = math.ceil((longest - frac) * words) + SLACK_PER_LAYER * layers
            branch_depth[(name, first.name)] = (
                max(min_depth, depth),
                f"fork {name} -> join {join}: long branch start-up {longest:.3f} of a frame "
                f"({layers} layers) vs {frac:.3f} on this branch, {words} words per frame")
    out = []
    for name, (node, op) in hw.items():
        for i, t in enumerate(node.output):
            for c in _consumers(model, t):
                if c.name not in hw or c.op_type.startswith("StreamingFIFO"):
                    continue
                width = int(op.get_outstream_width(i))
                depth, reason = branch_depth.get((name, c.name), (min_depth, "minimum decoupling depth"))
                burst = _input_burst(c, hw, t)
                if burst > depth:
                    depth, reason = burst, f"{c.name} reads its input vector in one burst of {burst} words"
                out.append(FifoEstimate(name, c.name, t, int(depth), width, reason))
    return out


def fifo_costs(model, board: Board, min_depth: int = DEFAULT_MIN_DEPTH) -> list[LayerCost]:
    """Price the FIFOs ``estimate_fifo_depths`` places (own model of finn-rtllib fifo.sv, ram_style auto)."""
    from samfpga.hw.resources.models import cost_from_terms, fifo_terms

    class _Named:  # cost_from_terms reads only onnx_node.name / op_type
        def __init__(self, name: str) -> None:
            self.onnx_node = type("N", (), {"name": name, "op_type": "StreamingFIFO_rtl"})()

    out = []
    for f in estimate_fifo_depths(model, min_depth):
        c = cost_from_terms(_Named(f"fifo_{f.producer}__{f.consumer}"), fifo_terms(f.depth, f.width),
                            "estimated FIFO depth (samfpga.hw.resources.fifo), finn-rtllib fifo.sv structure")
        c.detail.update({"depth": f.depth, "width": f.width, "tensor": f.tensor, "reason": f.reason,
                         "estimated": True})
        out.append(c)
    return out


def stream_costs(model, board: Board, min_depth: int = DEFAULT_MIN_DEPTH) -> list[LayerCost]:
    """The data-width converters and FIFOs the stitched pipeline of ``model`` (folded, specialised) will have, each
    priced by its own model (``LayerCost.detail["estimated"]``: not yet in the graph); see the module doc."""
    import copy

    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.transformation.general import GiveUniqueNodeNames

    from samfpga.hw.resources.cost import layer_costs

    stitched = copy.deepcopy(model).transform(InsertDWC()).transform(SpecializeLayers(board.part))
    stitched = stitched.transform(GiveUniqueNodeNames())
    dwcs = [c for c in layer_costs(stitched, board) if c.op_type.startswith("StreamingDataWidthConverter")]
    for c in dwcs:
        c.detail["estimated"] = True
    return dwcs + fifo_costs(stitched, board, min_depth)
