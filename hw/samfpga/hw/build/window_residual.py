"""``WindowOrderResidual``: the residual around windowed attention taken in window order, so its skip FIFO holds
what the attention holds back (about a window) instead of what the window (un)partition shuffles hold back
(pages of rows: up to a frame).

In the HW graph (after ``convert_to_hw``) a TinyViT attention block is::

    x -> DuplicateStreams -> [E1] -> Shuffle P (window partition) -> attention -> Shuffle P^-1 -> [E2] -> AddStreams
                         \\-> [E3] -------------------------------------------------------------------/

where each ``[E]`` is a chain (possibly empty) of per-token layers whose parameters act on the channel axis only
(``TOKENWISE``: Requant, Thresholding, IntLayerNorm, ChannelwiseOp). A token permutation P (the channel axis fixed)
commutes with every such layer and with the elementwise add, so the block equals::

    x -> Shuffle P -> DuplicateStreams' -> [E1'] -> attention -> [E2'] -> AddStreams' -> Shuffle P^-1
                                       \\-> [E3'] -------------------------------/

(primes: the same layers on the window-order shape; bit-exact by construction). Tensor values inside the
attention are unchanged; only the fork, the join and the ``[E]`` layers see tokens in window order. A block with
anything else between fork/join and the shuffles (a Pad/Slice of padded windows, a broadcast constant, a layer
that mixes tokens) is left as it is and its reason recorded (``WindowOrderResidual.refused``).

Shapes: the window-order shape is P's ``out_shape`` (e.g. [1, 256, 128] -> [4, 64, 128] for 4 windows of 64
tokens): the moved layers' ``numInputVectors`` become its leading axes, tensors keep their datatypes, P^-1 gets
the join's output datatype.
"""

from __future__ import annotations

import logging

from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from samfpga.hw import HW_DOMAIN
from samfpga.hw.rolled.blocks import base_op

log = logging.getLogger(__name__)

#: HW layers (op type without the _rtl/_hls suffix) that act on each token alone with parameters along the channel
#: axis (the last one) only: they commute with any permutation of tokens that keeps the channel axis
TOKENWISE = ("Requant", "Thresholding", "IntLayerNorm", "ChannelwiseOp")
FORK, JOIN, SHUFFLE = "DuplicateStreams", "AddStreams", "Shuffle"


def _is(node, base: str) -> bool:
    return node is not None and node.domain.startswith(HW_DOMAIN) and base_op(node.op_type) == base


def _only_consumer(model, tensor: str):
    """The single consumer of ``tensor``, or None (several, none, or a graph output)."""
    if tensor in {o.name for o in model.graph.output}:
        return None
    cons = model.find_consumers(tensor)
    return cons[0] if cons is not None and len(cons) == 1 else None


def _tokenwise(model, node) -> bool:
    if not node.domain.startswith(HW_DOMAIN) or base_op(node.op_type) not in TOKENWISE:
        return False
    if "numInputVectors" not in getCustomOp(node).get_nodeattr_types():
        return False
    # one streamed input; every other input a constant along the channel axis only (per-channel or shared)
    streamed = [t for t in node.input if model.get_initializer(t) is None]
    return len(streamed) == 1 and node.input[0] == streamed[0] and len(node.output) == 1


def _walk_down(model, tensor: str) -> tuple[list, object]:
    """From ``tensor`` along single consumers: (tokenwise nodes passed, the first other node or None)."""
    chain = []
    node = _only_consumer(model, tensor)
    while node is not None and _tokenwise(model, node):
        chain.append(node)
        node = _only_consumer(model, node.output[0])
    return chain, node


def _walk_up(model, tensor: str) -> tuple[list, object]:
    """From ``tensor`` up along single producers whose output has a single consumer: (tokenwise nodes passed, in
    stream order, the first other node or None)."""
    chain = []
    node = model.find_producer(tensor)
    while node is not None and _tokenwise(model, node) and _only_consumer(model, node.output[0]) is not None:
        chain.insert(0, node)
        node = model.find_producer(node.input[0])
    return chain, node


def _token_permutation(op) -> str | None:
    """Why Shuffle ``op`` is not a permutation of tokens with the channel axis fixed, else None."""
    perm = list(op.get_nodeattr("perm"))
    tin, tout = list(op.get_nodeattr("transpose_in_shape")), list(op.get_nodeattr("transpose_out_shape"))
    ins, outs = list(op.get_nodeattr("in_shape")), list(op.get_nodeattr("out_shape"))
    if not perm or perm[-1] != len(perm) - 1:
        return f"perm {perm} moves the channel axis"
    if not (tin[-1] == tout[-1] == ins[-1] == outs[-1]):
        return f"channel axis regrouped ({ins} -> {tin} -> {tout} -> {outs})"
    return None


def _inverse(p, q) -> str | None:
    """Why Shuffle ``q`` does not undo Shuffle ``p`` exactly, else None."""
    a = lambda op, k: list(op.get_nodeattr(k))  # noqa: E731
    perm_p, perm_q = a(p, "perm"), a(q, "perm")
    if len(perm_p) != len(perm_q) or [perm_p[i] for i in perm_q] != list(range(len(perm_p))):
        return f"perms {perm_p} and {perm_q} are not inverse"
    if a(q, "transpose_in_shape") != a(p, "transpose_out_shape") or a(q, "in_shape") != a(p, "out_shape") \
            or a(q, "out_shape") != a(p, "in_shape"):
        return "shapes of the unpartition do not mirror the partition"
    return None


class WindowOrderResidual(Transformation):
    """Moves the window partition / unpartition Shuffles of each residual around windowed attention outside its
    fork and join (see the module doc). ``moved``: fork names rewritten; ``refused``: {fork name: reason} of the
    forks whose branch holds a window shuffle but could not be rewritten (graph unchanged there)."""

    def __init__(self) -> None:
        super().__init__()
        self.moved: list[str] = []
        self.refused: dict[str, str] = {}

    def apply(self, model):
        changed = False
        for fork in [n for n in model.graph.node if _is(n, FORK)]:
            plan = self._plan(model, fork)
            if isinstance(plan, str):
                self.refused[fork.name] = plan
                log.info("window residual: %s left in row order: %s", fork.name, plan)
            elif plan is not None:
                _rewrite(model, fork, *plan)
                self.moved.append(fork.name)
                changed = True
        if changed:
            from qonnx.transformation.general import RemoveUnusedTensors
            from qonnx.transformation.infer_datatypes import InferDataTypes
            from qonnx.transformation.infer_shapes import InferShapes

            # the tensors the two shuffles no longer produce lose their shapes; the rest checked by inference
            model = model.transform(RemoveUnusedTensors()).transform(InferShapes()).transform(InferDataTypes())
        return model, False

    @staticmethod
    def _plan(model, fork):
        """None (not a windowed residual), a reason (windowed, not rewritable), or the rewrite's pieces
        (branch output index, E1, P, P^-1, E2, E3, join)."""
        if len(fork.output) != 2:
            return None
        for b in (0, 1):
            e3, join = _walk_down(model, fork.output[1 - b])
            if not _is(join, JOIN):
                continue
            e1, p = _walk_down(model, fork.output[b])
            other = [t for t in join.input if t != (e3[-1].output[0] if e3 else fork.output[1 - b])]
            if len(other) != 1:
                continue
            e2, q = _walk_up(model, other[0])
            if not _is(p, SHUFFLE) and not _is(q, SHUFFLE):
                return None  # an ordinary residual (e.g. the MLP's): nothing to move
            for node, side in ((p, "partition"), (q, "unpartition")):
                if not _is(node, SHUFFLE):
                    what = f"{node.op_type} {node.name}" if node is not None else "a fan-out"
                    return f"{what} between the residual and its window {side} is not a per-token layer"
            why = _token_permutation(getCustomOp(p)) or _inverse(getCustomOp(p), getCustomOp(q))
            if why:
                return f"{p.name} / {q.name}: {why}"
            if _only_consumer(model, q.output[0]) is None:
                return f"{q.name}'s output fans out"
            return b, e1, p, q, e2, e3, join
        return None


def _insert_after(model, anchor, node) -> None:
    nodes = model.graph.node
    idx = list(nodes).index(anchor)
    nodes.insert(idx + 1, node)


def _rewrite(model, fork, b, e1, p, q, e2, e3, join) -> None:
    """The rewrite of the module doc, in place (graph order kept topological)."""
    pop, qop = getCustomOp(p), getCustomOp(q)
    win = [int(d) for d in pop.get_nodeattr("out_shape")]
    x, w, v, r = fork.input[0], p.output[0], q.input[0], join.output[0]
    x_dt, r_dt = model.get_tensor_datatype(x), model.get_tensor_datatype(r)
    graph = model.graph
    graph.node.remove(p)
    graph.node.remove(q)
    # P on the fork's input
    x_win = model.make_new_valueinfo_name()
    p.input[0], p.output[0] = x, x_win
    pop.set_nodeattr("data_type", x_dt.name)
    graph.node.insert(list(graph.node).index(fork), p)
    model.set_tensor_shape(x_win, win)
    model.set_tensor_datatype(x_win, x_dt)
    fork.input[0] = x_win
    # the attention keeps its input tensor w (now the end of the fork's branch) and its output v
    if e1:
        e1[-1].output[0] = w
    else:
        fork.output[b] = w
    if e2:
        e2[0].input[0] = v
    else:
        join.input[list(join.input).index(q.output[0])] = v
    # P^-1 on the join's output
    r_win = model.make_new_valueinfo_name()
    join.output[0] = r_win
    q.input[0], q.output[0] = r_win, r
    qop.set_nodeattr("data_type", r_dt.name)
    _insert_after(model, join, q)
    model.set_tensor_shape(r_win, win)
    model.set_tensor_datatype(r_win, r_dt)
    vecs = win[:-1]
    for node in (fork, *e1, *e2, *e3, join):
        getCustomOp(node).set_nodeattr("numInputVectors", vecs)
        for t in node.output:
            if t not in (w, r_win):
                model.set_tensor_shape(t, win)


def window_order_residual(model, notes: dict | None = None):
    """``WindowOrderResidual`` on ``model``; ``notes["window_residual"]`` gets what it moved and refused."""
    t = WindowOrderResidual()
    model = model.transform(t)
    if notes is not None:
        notes["window_residual"] = {"moved": list(t.moved), "refused": dict(t.refused)}
    return model


def apply_from_build(model, ctx):
    """The build's hook (end of ``step_specialize``, before folding, so the fit search and its FIFO reserve see
    the window-order residuals): applied when ``cfg.options.window_residual`` is on."""
    if not ctx.cfg.options.window_residual:
        return model
    notes: dict = {}
    model = window_order_residual(model, notes)
    ctx.results.window_residual = notes["window_residual"]
    return model


__all__ = ["TOKENWISE", "WindowOrderResidual", "apply_from_build", "window_order_residual"]
