"""Streamlining the encoder graphs need beyond FINN's ``Streamline``: float scale multiplications gone from
integer streams.

After FINN's streamlining the encoder still has float ``Mul``/``Add`` nodes between integer layers:
    residual adds   Add(a * s, b * s): both branches dequantized with the same scale before the join
    conv outputs    MatMul -> Transpose -> Mul(per channel) -> Add(bias) -> Reshape -> Transpose -> MultiThreshold
                    (FINN only moves *scalar* linear ops past Reshape/Transpose)
    LayerNorm       Mul(s) -> LayerNormalization (FINN has no rule for it)
and runs of Transpose/Reshape that together keep the row-major element order (a plain Reshape).
``StreamlineExtra`` removes them with the rules below, each exact in float32 arithmetic (tolerance 0):
    MoveScaleMulPastJoinAdd    Add(a*s, b*s) -> Add(a, b)*s         s: the same power-of-two constant on both
    MoveLinearPastDataMovement f(x (*|+) P) -> f(x) (*|+) f(P)       f: Transpose/Reshape, P moved with the data
    EqualiseChannelScalesBeforeLayerNorm  LN(MatMul(x, W)*s_c) -> LN(MatMul(x, W*s_c/min s)*min s)   s_c: po2
    AbsorbPo2MulIntoLayerNorm  LN(x*s, eps) -> LN(x, eps/s**2)       s: a positive power-of-two scalar
    CollapseDataMovement       Transpose/Reshape runs with identity element order -> one Reshape
and FINN's fork / absorb rules in between (``MoveLinearPastFork``, ``AbsorbAddIntoMultiThreshold``,
``AbsorbMulIntoMultiThreshold``, ``CollapseRepeatedMul``). Power-of-two scales make the moves exact: multiplying
by 2**k commutes with every float rounding (no overflow/underflow at these magnitudes), and LayerNorm's
(x - mean) / sqrt(var + eps) scales by 2**k exactly because var scales by 4**k.
What stays (see ``remaining_float_muls``): scales before Softmax (no scale input in FINN+'s HWSoftmax), scales
before a qkv Split whose input is still float (the shared qkv quantizer of samfpga.models.quant plus
``integer_split.IntegerSplit`` remove those), and the graph output's dequantization (moved to the host).
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

DATA_MOVEMENT = ("Transpose", "Reshape")


def is_po2(a: np.ndarray) -> bool:
    """True when every element of ``a`` is a positive power of two (float32 exponent only)."""
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0 or np.any(a <= 0) or not np.all(np.isfinite(a)):
        return False
    return bool(np.all(np.exp2(np.round(np.log2(a))) == a))


def _const_param(model: ModelWrapper, node) -> np.ndarray | None:
    """The constant operand of a binary Mul/Add whose first input is dynamic, else None."""
    if len(node.input) != 2 or model.get_initializer(node.input[0]) is not None:
        return None
    return model.get_initializer(node.input[1])


def _sole_consumer(model: ModelWrapper, tensor: str):
    """The only consumer of ``tensor`` (None when it has several, none, or is a graph output)."""
    if tensor in [o.name for o in model.graph.output]:
        return None
    cons = model.find_consumers(tensor)
    return cons[0] if len(cons) == 1 else None


def apply_data_movement(model: ModelWrapper, node, x: np.ndarray) -> np.ndarray:
    """Apply Transpose/Reshape ``node`` to ``x`` (shape = its input shape)."""
    if node.op_type == "Transpose":
        perm = helper.get_node_attr_value(node, "perm")
        return np.transpose(x, perm)
    return x.reshape(model.get_tensor_shape(node.output[0]))


def _compress(p: np.ndarray) -> np.ndarray:
    """Smallest broadcastable form of ``p``: every axis along which it is constant reduced to size 1."""
    for ax in range(p.ndim):
        if p.shape[ax] > 1 and np.all(p == p.take([0], axis=ax)):
            p = p.take([0], axis=ax)
    return p


class MoveLinearPastDataMovement(Transformation):
    """``Transpose/Reshape(x op P) -> Transpose/Reshape(x) op P'`` for op in Mul/Add with a constant ``P`` of any
    broadcastable shape: ``P`` is broadcast to x's shape, moved by the same Transpose/Reshape and compressed back
    (``_compress``). FINN's ``MoveScalarLinearPastInvariants`` does this for scalars only. Skips forks (FINN's
    ``MoveLinearPastFork`` first) and constants larger than ``max_elems`` after broadcasting."""

    def __init__(self, max_elems: int = 1 << 22) -> None:
        super().__init__()
        self.max_elems = max_elems

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        changed = False
        for n in list(model.graph.node):
            if n.op_type not in ("Mul", "Add"):
                continue
            p = _const_param(model, n)
            nxt = _sole_consumer(model, n.output[0])
            if p is None or nxt is None or nxt.op_type not in DATA_MOVEMENT or nxt.input[0] != n.output[0]:
                continue
            in_shape = model.get_tensor_shape(n.input[0])
            if in_shape is None or model.get_tensor_shape(nxt.output[0]) is None:
                continue
            try:
                keeps_shape = np.broadcast_shapes(tuple(in_shape), p.shape) == tuple(in_shape)
            except ValueError:  # not broadcastable: leave the node to the graph's own checks
                continue
            if not keeps_shape or np.prod(in_shape) > self.max_elems:
                continue  # P would change the shape, or is too large to move elementwise
            moved = _compress(apply_data_movement(model, nxt, np.broadcast_to(p, in_shape)))
            # rewire: x -> nxt -> new tensor -> n -> nxt's old output (consumers unchanged)
            x, mid, out = n.input[0], model.make_new_valueinfo_name(), nxt.output[0]
            nxt.input[0], nxt.output[0] = x, mid
            n.input[0], n.output[0] = mid, out
            model.set_tensor_shape(mid, model.get_tensor_shape(out))
            model.set_tensor_datatype(mid, model.get_tensor_datatype(x))
            pname = model.make_new_valueinfo_name()
            model.set_initializer(pname, moved.astype(np.float32))
            n.input[1] = pname
            graph = model.graph
            graph.node.remove(n)
            graph.node.insert(list(graph.node).index(nxt) + 1, n)
            changed = True
        if changed:
            model = model.transform(InferShapes())
            model = model.transform(InferDataTypes())
        return model, False


class MoveScaleMulPastJoinAdd(Transformation):
    """``Add(a * s, b * s) -> Add(a, b) * s`` when both Add inputs come from Mul nodes (not forks) with the same
    power-of-two constant ``s`` (then exact: see module doc). The join then adds the integer streams."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        changed = False
        for add in list(model.graph.node):
            if add.op_type != "Add" or len(add.input) != 2:
                continue
            prods = [model.find_producer(t) for t in add.input]
            if any(p is None or p.op_type != "Mul" or model.is_fork_node(p) for p in prods) or prods[0] is prods[1]:
                continue
            ps = [_const_param(model, p) for p in prods]
            if ps[0] is None or ps[1] is None or ps[0].shape != ps[1].shape or not np.array_equal(ps[0], ps[1]):
                continue
            if not is_po2(ps[0]) or any(model.find_producer(p.input[0]) is None for p in prods):
                continue  # (a graph input as a branch: FINN's AbsorbAddIntoMultiThreshold would take the Add
                # of two streams for a constant bias and fail)
            out = add.output[0]
            mid = model.make_new_valueinfo_name()
            add.input[0], add.input[1] = prods[0].input[0], prods[1].input[0]
            add.output[0] = mid
            keep, drop = prods
            keep.input[0], keep.output[0] = mid, out
            graph = model.graph
            graph.node.remove(drop)
            graph.node.remove(keep)
            graph.node.insert(list(graph.node).index(add) + 1, keep)
            model.set_tensor_shape(mid, model.get_tensor_shape(out))
            changed = True
        if changed:
            model = model.transform(InferShapes())
            model = model.transform(InferDataTypes())
        return model, False


def _mul_into_layernorm(model: ModelWrapper, node):
    """(constant, LayerNorm) when ``node`` is a non-fork Mul by a constant whose only consumer is a LayerNorm's data
    input, else None."""
    if node.op_type != "Mul" or model.is_fork_node(node):
        return None
    p = _const_param(model, node)
    ln = _sole_consumer(model, node.output[0])
    if p is None or ln is None or ln.op_type != "LayerNormalization" or ln.input[0] != node.output[0]:
        return None
    return p, ln


class AbsorbPo2MulIntoLayerNorm(Transformation):
    """``LayerNormalization(x * s, eps) -> LayerNormalization(x, eps / s**2)`` for a positive power-of-two scalar
    (or uniform) ``s`` on a non-fork Mul; LayerNorm is invariant to the scale up to epsilon, and the rescaled
    epsilon keeps it exact (module doc)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        changed = False
        for n in list(model.graph.node):
            m = _mul_into_layernorm(model, n)
            if m is None:
                continue
            p, ln = m
            if p.size == 0 or not np.all(p == p.flat[0]) or not is_po2(p.flat[0]):
                continue
            s = float(p.flat[0])
            eps_attr = next((a for a in ln.attribute if a.name == "epsilon"), None)
            eps = eps_attr.f if eps_attr is not None else 1e-5
            new_eps = np.float32(eps) / np.float32(s * s)
            if not np.isfinite(new_eps) or new_eps == 0:
                continue
            if eps_attr is None:
                ln.attribute.append(helper.make_attribute("epsilon", float(new_eps)))
            else:
                eps_attr.f = float(new_eps)
            ln.input[0] = n.input[0]
            model.graph.node.remove(n)
            changed = True
        if changed:
            model = model.transform(InferDataTypes())
        return model, False


class EqualiseChannelScalesBeforeLayerNorm(Transformation):
    """``LN(MatMul(x, W) * s_c)`` with per-channel power-of-two scales ``s_c`` (per-output-channel weight scales)
    -> ``LN(MatMul(x, W * (s_c / min s)) * min s)``: the ratios are powers of two >= 1, so the weight columns
    scale exactly (integers stay integers, far below 2**24) and the remaining scale is uniform, for
    ``AbsorbPo2MulIntoLayerNorm``. LayerNorm mixes channels, so a per-channel scale cannot move past it; this is
    what lets the encoder's neck LayerNorm take an integer input. The weights' datatype widens to what the scaled
    columns need (``minimize_bit_width`` keeps it tight)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from qonnx.core.datatype import DataType

        changed = False
        for n in list(model.graph.node):
            m = _mul_into_layernorm(model, n)
            if m is None:
                continue
            p, ln = m
            if np.all(p == p.flat[0]) or not is_po2(p):
                continue
            mm = model.find_producer(n.input[0])
            if mm is None or mm.op_type != "MatMul" or model.is_fork_node(mm):
                continue
            w = model.get_initializer(mm.input[1])
            c = w.shape[-1] if w is not None and w.ndim == 2 else None
            if c is None or p.size != c or list(p.shape[:-1]) != [1] * (p.ndim - 1) or not np.all(w == np.round(w)):
                continue
            ratio = p.reshape(-1).astype(np.float64) / float(p.min())
            w2 = w.astype(np.float64) * ratio[None, :]
            if np.abs(w2).max() >= 2**24:
                continue
            model.set_initializer(mm.input[1], w2.astype(np.float32))
            lo, hi = int(w2.min()), int(w2.max())
            bits = max(lo.bit_length() if lo < 0 else 0, hi.bit_length()) + 1
            model.set_tensor_datatype(mm.input[1], DataType[f"INT{max(bits, 2)}"])
            model.set_initializer(n.input[1], np.full(p.shape, p.min(), dtype=np.float32))
            changed = True
        if changed:
            model = model.transform(InferDataTypes())
        return model, False


class CollapseDataMovement(Transformation):
    """A run of Transpose/Reshape nodes (each feeding only the next) whose composition keeps the row-major
    element order is one Reshape (or nothing, when the shape is unchanged too)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for first in list(model.graph.node):
            if first.op_type not in DATA_MOVEMENT:
                continue
            prod = model.find_producer(first.input[0])
            if prod is not None and prod.op_type in DATA_MOVEMENT and _sole_consumer(model, prod.output[0]) is first:
                continue  # not the head of its run
            shape = model.get_tensor_shape(first.input[0])
            if shape is None:
                continue
            run, cur = [first], first
            while (nxt := _sole_consumer(model, cur.output[0])) is not None and nxt.op_type in DATA_MOVEMENT \
                    and nxt.input[0] == cur.output[0]:
                run.append(nxt)
                cur = nxt
            # longest prefix of the run that is an identity reordering (>= 2 nodes, or a lone identity Transpose)
            idx = np.arange(int(np.prod(shape))).reshape(shape)
            best = 0
            for k, node in enumerate(run, 1):
                if model.get_tensor_shape(node.output[0]) is None:
                    break
                idx = apply_data_movement(model, node, idx)
                if np.array_equal(idx.reshape(-1), np.arange(idx.size)) and (k >= 2 or node.op_type == "Transpose"):
                    best = k
            if best == 0:
                continue
            self._replace(model, run[:best])
            return model, True
        return model, False

    @staticmethod
    def _replace(model: ModelWrapper, run: list) -> None:
        graph = model.graph
        src, dst = run[0].input[0], run[-1].output[0]
        in_shape, out_shape = model.get_tensor_shape(src), model.get_tensor_shape(dst)
        pos = list(graph.node).index(run[0])
        for node in run:
            graph.node.remove(node)
        if list(in_shape) == list(out_shape) and dst not in [o.name for o in graph.output]:
            for c in model.find_consumers(dst):
                for i, t in enumerate(c.input):
                    if t == dst:
                        c.input[i] = src
            return
        shp = model.make_new_valueinfo_name()
        model.set_initializer(shp, np.asarray(out_shape, dtype=np.int64))
        graph.node.insert(pos, helper.make_node("Reshape", [src, shp], [dst], name=f"{run[0].name}_collapsed"))


class StreamlineExtra(Transformation):
    """The rules of this module and FINN's fork/absorb rules, repeated until nothing changes (at most
    ``max_rounds`` rounds; each round is one pass of each rule)."""

    def __init__(self, max_rounds: int = 6) -> None:
        super().__init__()
        self.max_rounds = max_rounds

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from finn.transformation.streamline.absorb import (
            AbsorbAddIntoMultiThreshold,
            AbsorbMulIntoMultiThreshold,
        )
        from finn.transformation.streamline.collapse_repeated import CollapseRepeatedMul
        from finn.transformation.streamline.reorder import MoveLinearPastFork
        from qonnx.transformation.general import SortGraph

        rules = [MoveScaleMulPastJoinAdd(), MoveLinearPastFork(), MoveLinearPastDataMovement(),
                 CollapseRepeatedMul(), AbsorbAddIntoMultiThreshold(), AbsorbMulIntoMultiThreshold(),
                 EqualiseChannelScalesBeforeLayerNorm(), AbsorbPo2MulIntoLayerNorm(), CollapseDataMovement()]
        for _ in range(self.max_rounds):
            before = _signature(model)
            for rule in rules:
                model = model.transform(rule)
            model = model.transform(SortGraph())
            if _signature(model) == before:
                break
        return model, False


class AbsorbScalarBiasIntoMultiThresholdAll(Transformation):
    """FINN's ``AbsorbScalarBiasIntoMultiThreshold`` (same checks and result, ``max_bitwidth_increase=0``) in one
    pass: FINN's absorbs one MultiThreshold -> Add(scalar) pair per call and re-runs InferDataTypes + InferShapes
    (deep copies) before looking for the next, quadratic in the graph size: 300 s in ``tidy_up`` of the 256²
    default (511 nodes). The pairs are independent (an absorption changes only its own MultiThreshold's
    ``out_bias`` / ``out_dtype`` and removes its Add), so absorbing all at once and inferring once gives the
    same graph (tests/test_finn_streamline.py compares, through ``FastStreamline``)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from qonnx.core.datatype import DataType
        from qonnx.custom_op.registry import getCustomOp

        for node in list(model.graph.node):
            if node.op_type != "MultiThreshold" or model.is_fork_node(node) or model.is_join_node(node):
                continue
            add = model.find_consumer(node.output[0])
            if add is None or add.op_type != "Add":
                continue
            bias, thresholds = model.get_initializer(add.input[1]), model.get_initializer(node.input[1])
            if bias is None or thresholds is None or not (bias.ndim == 0 or all(x == 1 for x in bias.shape)):
                continue
            op = getCustomOp(node)
            bits = DataType[op.get_nodeattr("out_dtype")].bitwidth()
            out_bias = float(op.get_nodeattr("out_bias") + bias.flatten()[0])
            new_min, new_max = out_bias, out_bias + thresholds.shape[-1]
            if new_min >= 0:
                odt = DataType.get_smallest_possible(new_max)
            else:
                odt = DataType.get_smallest_possible(min(new_min, -(new_max + 1)))
            if not (odt.allowed(new_max) and odt.allowed(new_min)) or odt.bitwidth() > bits:
                continue
            op.set_nodeattr("out_bias", out_bias)
            op.set_nodeattr("out_dtype", odt.name)
            node.output[0] = add.output[0]
            model.graph.node.remove(add)
            model.set_tensor_datatype(node.output[0], odt)
        model = model.transform(InferDataTypes())
        model = model.transform(InferShapes())
        return model, False


def _signature(model: ModelWrapper) -> tuple:
    return tuple((n.op_type, tuple(n.input), tuple(n.output)) for n in model.graph.node)


def remaining_float_muls(model: ModelWrapper) -> list[tuple[str, str]]:
    """(Mul name, op type of its consumer or 'graph output') for each Mul left with a float output."""
    outs = {o.name for o in model.graph.output}
    rows = []
    for n in model.graph.node:
        if n.op_type == "Mul":
            c = model.find_consumers(n.output[0])
            rows.append((n.name, "graph output" if n.output[0] in outs else ",".join(x.op_type for x in c)))
    return rows
