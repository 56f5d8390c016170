"""The integer thresholds a requantizer with a float bias really has, as Brevitas and QONNX compute it in float32.

A quantized layer with a float bias ends, in Brevitas (torch ``F.linear``/``conv2d``) and in the QONNX graph, in
``y = fl32(acc * s_acc + b)`` followed by the activation quantizer's comparison ``y >= T_k`` (``T_k`` the half steps
of the output quantizer; ``acc`` the integer accumulator, ``s_acc = s_in * s_w`` a power of two, so ``acc * s_acc``
is exact in float32; torch adds the bias with one rounding: checked in tests/test_threshold_reference.py). Where
the bias has bits below float32's ulp of ``y`` (a bias like ``447 * 2**-23`` against ``|y|`` in [4, 8), ulp
``2**-21``) that one rounding moves the integer breakpoint of some levels by one, differently per binade of ``T_k``:
the requantizer is then *not* uniform in the reference, whatever arithmetic computes its thresholds.

FINN's streamlining computes the same thresholds as ``fl32(T_k - b) / s_acc`` (``AbsorbAddIntoMultiThreshold``;
the power-of-two Mul absorptions after it are exact), and ``RoundAndClipThresholds`` takes the ceiling. This module
computes both the reference (``reference_thresholds``: the smallest integer ``acc`` with ``fl32(acc*s_acc + b) >=
T_k``, found exactly) and the real-arithmetic ones (``exact_thresholds``: ``ceil((T_k - b)/s_acc)`` in rationals),
so a build can tell "float32 streamlining rounded a uniform requantizer" (exact == reference, graph differs: fix
the graph) from "the reference model itself is not uniform" (graph == reference != exact: only a model whose bias
lies on the accumulator grid ``s_acc`` is uniform; ``bias_on_accumulator_grid``).

``bias_chain`` finds the pattern ``MultiThreshold <- Add(bias) <- Mul(per-channel scale) <- MatMul/Conv(integer
weights) <- Mul(scalar input scale) <- integer tensor`` in the graph before streamlining (FINN's ``tidy_up``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from qonnx.transformation.base import Transformation

from samfpga.hw.build.streamline_rules import is_po2


@dataclass(frozen=True)
class BiasChain:
    """One requantizer ``MultiThreshold(fl32(acc * acc_scale + bias))`` found by ``bias_chain``.

    ``acc_scale``, ``bias``: (C,) float32 per output channel; ``thresholds``: (1 or C, N) float32 as the
    MultiThreshold holds them before streamlining; ``node``: the MultiThreshold's name; ``accumulator``: the
    MatMul/Conv output tensor (the integer accumulator times ``s_in``)."""

    node: str
    accumulator: str
    acc_scale: np.ndarray
    bias: np.ndarray
    thresholds: np.ndarray


def _const(model, node, i: int):
    return model.get_initializer(node.input[i]) if len(node.input) > i else None


def bias_chain(model, mt) -> BiasChain | None:
    """The requantizer feeding MultiThreshold ``mt`` when it is ``Add(b) <- Mul(s_w) <- MatMul|Conv(W integer) <-
    Mul(s_in scalar) <- integer tensor`` with power-of-two scales, else None. Channels: last axis for MatMul,
    axis 1 for Conv (the bias and scale shapes (1, C, 1, 1) or (C,) are flattened)."""
    add = model.find_producer(mt.input[0])
    if add is None or add.op_type != "Add" or _const(model, add, 1) is None:
        return None
    mul = model.find_producer(add.input[0])
    if mul is None or mul.op_type != "Mul" or _const(model, mul, 1) is None:
        return None
    mm = model.find_producer(mul.input[0])
    if mm is None or mm.op_type not in ("MatMul", "Conv") or _const(model, mm, 1) is None:
        return None
    if mm.op_type == "Conv" and len(mm.input) > 2:
        return None  # a conv bias would be added before the scale: another chain
    w = _const(model, mm, 1)
    mul_in = model.find_producer(mm.input[0])
    if mul_in is None or mul_in.op_type != "Mul" or _const(model, mul_in, 1) is None:
        return None
    s_in = np.asarray(_const(model, mul_in, 1), dtype=np.float32)
    if s_in.size != 1 or not model.get_tensor_datatype(mul_in.input[0]).is_integer():
        return None
    s_w = np.asarray(_const(model, mul, 1), dtype=np.float32).ravel()
    b = np.asarray(_const(model, add, 1), dtype=np.float32).ravel()
    if not (np.all(w == np.round(w)) and is_po2(np.abs(s_in)) and is_po2(np.abs(s_w)) and np.all(s_w > 0)):
        return None
    c = w.shape[0] if mm.op_type == "Conv" else w.shape[-1]
    if s_w.size not in (1, c) or b.size not in (1, c):
        return None
    acc_scale = (np.broadcast_to(s_w, (c,)).astype(np.float64) * float(s_in.ravel()[0])).astype(np.float32)
    t = model.get_initializer(mt.input[1])
    if t is None or t.shape[0] not in (1, c):
        return None
    return BiasChain(mt.name, mm.output[0], acc_scale, np.broadcast_to(b, (c,)).astype(np.float32),
                     np.asarray(t, dtype=np.float32))


def exact_thresholds(t: np.ndarray, bias: np.ndarray, acc_scale: np.ndarray) -> np.ndarray:
    """``ceil((t - bias) / acc_scale)`` per channel in exact rational arithmetic: the integer thresholds of the
    requantizer in real arithmetic. ``t``: (1 or C, N) float32; ``bias``, ``acc_scale``: (C,). Returns (C, N)
    float64 (integers)."""
    c = bias.size
    t = np.broadcast_to(np.asarray(t, dtype=np.float32), (c, t.shape[1]))
    out = np.empty(t.shape, dtype=np.float64)
    for ch in range(c):
        b, s = Fraction(float(bias[ch])), Fraction(float(acc_scale[ch]))
        for k in range(t.shape[1]):
            q = (Fraction(float(t[ch, k])) - b) / s
            out[ch, k] = -((-q.numerator) // q.denominator)  # ceil
    return out


def reference_thresholds(t: np.ndarray, bias: np.ndarray, acc_scale: np.ndarray, window: int = 4) -> np.ndarray:
    """Smallest integer ``acc`` with ``fl32(fl32(acc * acc_scale) + bias) >= t`` per channel and level: the
    breakpoints of the requantizer as Brevitas/QONNX evaluate it in float32. ``t``: (1 or C, N) float32;
    ``bias``, ``acc_scale``: (C,) float32. Returns (C, N) float64 (integers).

    float32 rounding is monotone, so the breakpoint lies within a few integers of the exact one when the
    rounding error (half an ulp of ``y``) is below ``window * acc_scale``; checked (ValueError otherwise)."""
    c = bias.size
    t = np.broadcast_to(np.asarray(t, dtype=np.float32), (c, t.shape[1]))
    ex = exact_thresholds(t, bias, acc_scale)
    cand = ex[:, :, None] + np.arange(-window, window + 1)  # (C, N, W)
    if np.abs(cand).max() >= 2**24:
        raise ValueError("reference_thresholds: accumulator beyond 2**24 (acc * acc_scale not exact in float32)")
    s = np.asarray(acc_scale, dtype=np.float32)[:, None, None]
    y = (cand.astype(np.float32) * s).astype(np.float32) + np.asarray(bias, dtype=np.float32)[:, None, None]
    passed = y.astype(np.float32) >= t[:, :, None]
    if np.any(passed[:, :, 0]) or not np.all(passed[:, :, -1]):
        raise ValueError("reference_thresholds: breakpoint outside the search window")
    return cand[:, :, 0] + np.argmax(passed, axis=2)


def execute_float_chain(tidy, mt_name: str, y0: np.ndarray) -> np.ndarray:
    """The original Mul(s_w) -> Add(b) -> MultiThreshold nodes of MultiThreshold ``mt_name`` in graph ``tidy``,
    executed by QONNX on accumulator values ``y0`` ((P, C) float32 = acc * s_in, channels last); returns the
    (P, C) output levels. An independent check of ``reference_thresholds`` (QONNX's own execution)."""
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.basic import qonnx_make_model

    mt = tidy.get_node_from_name(mt_name)
    op = getCustomOp(mt)
    add = tidy.find_producer(mt.input[0])
    mul = tidy.find_producer(add.input[0])
    c = y0.shape[1]
    nodes = [helper.make_node("Mul", ["y0", "s"], ["y1"]), helper.make_node("Add", ["y1", "b"], ["y"]),
             helper.make_node("MultiThreshold", ["y", "t"], ["q"], domain="qonnx.custom_op.general",
                              out_dtype=op.get_nodeattr("out_dtype"), out_bias=float(op.get_nodeattr("out_bias")),
                              data_layout="NC")]
    vi = helper.make_tensor_value_info
    g = helper.make_graph(nodes, "chain", [vi("y0", TensorProto.FLOAT, list(y0.shape))],
                          [vi("q", TensorProto.FLOAT, list(y0.shape))])
    m = ModelWrapper(qonnx_make_model(g))
    for name, node in (("s", mul), ("b", add)):  # (1, C, 1, 1) / (1, C) / scalar -> (1, C)
        m.set_initializer(name, np.broadcast_to(tidy.get_initializer(node.input[1]).ravel(), (c,))[None, :].copy())
    m.set_initializer("t", tidy.get_initializer(mt.input[1]))
    return execute_onnx(m.transform(InferShapes()), {"y0": y0})["q"]


def bias_on_accumulator_grid(bias: np.ndarray, acc_scale: np.ndarray) -> np.ndarray:
    """``bias`` rounded (half up) to a multiple of ``acc_scale`` per channel (float32 (C,)): with such a bias
    ``fl32(acc * acc_scale + bias)`` is exact while ``|acc + bias/acc_scale| < 2**24``, so the reference
    requantizer is uniform and its thresholds equal ``exact_thresholds`` (a model-side change: Brevitas'
    integer bias quantization at the accumulator scale)."""
    s = np.asarray(acc_scale, dtype=np.float64)
    return (np.floor(np.asarray(bias, dtype=np.float64) / s + 0.5) * s).astype(np.float32)


_META_KEY = "samfpga_bias_chains"  # model metadata: the chains recorded before streamlining (JSON)


class RecordBiasChains(Transformation):
    """Records every ``bias_chain`` requantizer of the graph (before streamlining, e.g. after FINN's tidy_up) in
    model metadata ``samfpga_bias_chains``, keyed by the MultiThreshold's output tensor (and with its name), for
    ``UseReferenceThresholds`` after streamlining. The graph is unchanged."""

    def apply(self, model):
        chains = {}
        for n in model.get_nodes_by_op_type("MultiThreshold"):
            c = bias_chain(model, n)
            if c is not None:
                chains[n.output[0]] = {"node": n.name, "acc_scale": c.acc_scale.tolist(),
                                       "bias": c.bias.tolist(), "thresholds": c.thresholds.tolist()}
        model.set_metadata_prop(_META_KEY, json.dumps(chains))
        return model, False


class UseReferenceThresholds(Transformation):
    """Each MultiThreshold recorded by ``RecordBiasChains`` gets the integer thresholds of its requantizer as
    Brevitas/QONNX evaluate it (``reference_thresholds``) instead of those FINN's float32 streamlining computed,
    where the streamlined node is recognisably the same requantizer: its input is the output of a MatMul with
    integer weights (the accumulator), its thresholds are integers (run after ``RoundAndClipThresholds``) of the
    recorded shape, and no level moves by more than one (float32 rounding moves a breakpoint by at most one;
    anything else is another node). Thresholds clipped at the input range stay clipped there. Counts in
    metadata ``samfpga_reference_thresholds`` (nodes matched, levels changed)."""

    def apply(self, model):
        from samfpga.hw.build.requant import input_range

        chains = json.loads(model.get_metadata_prop(_META_KEY) or "{}")
        by_name = {v["node"]: v for v in chains.values()}
        done = {"nodes": 0, "levels_changed": 0, "skipped": []}
        for n in model.get_nodes_by_op_type("MultiThreshold"):
            # the output tensor identifies the node unless a transpose was absorbed behind it (lowered convs); then
            # its name does (streamlining keeps the MultiThreshold count, so unique names stay in place)
            rec = chains.get(n.output[0], by_name.get(n.name))
            if rec is None:
                continue
            prod = model.find_producer(n.input[0])
            w = model.get_initializer(prod.input[1]) if prod is not None and prod.op_type == "MatMul" else None
            t = model.get_initializer(n.input[1])
            acc_scale = np.array(rec["acc_scale"], dtype=np.float32)
            if w is None or not np.all(w == np.round(w)) or t is None or t.shape[0] != acc_scale.size:
                done["skipped"].append(f"{n.name}: not an integer MatMul's per-channel requantizer")
                continue
            if not np.all(t == np.round(t)) or not model.get_tensor_datatype(n.input[0]).is_integer():
                done["skipped"].append(f"{n.name}: thresholds or input not integer")
                continue
            try:
                ref = reference_thresholds(np.array(rec["thresholds"], dtype=np.float32),
                                           np.array(rec["bias"], dtype=np.float32), acc_scale)
            except ValueError as e:
                done["skipped"].append(f"{n.name}: {e}")
                continue
            dt = model.get_tensor_datatype(n.input[0])
            ref = np.clip(ref, dt.min(), dt.max() + 1)  # as RoundAndClipThresholds clips
            lo, hi = input_range(model, n.input[0])
            tq = np.clip(t.astype(np.float64), lo, hi + 1)
            if ref.shape != t.shape or np.abs(np.clip(ref, lo, hi + 1) - tq).max() > 1:
                done["skipped"].append(f"{n.name}: thresholds more than one apart (another requantizer)")
                continue
            done["nodes"] += 1
            done["levels_changed"] += int(np.sum(np.clip(ref, lo, hi + 1) != tq))
            model.set_initializer(n.input[1], ref.astype(np.float32))
        model.set_metadata_prop("samfpga_reference_thresholds", json.dumps(done))
        return model, False
