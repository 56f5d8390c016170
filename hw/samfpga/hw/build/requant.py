"""Uniform MultiThresholds -> FINN+'s arithmetic ``Requant`` layers, only where the result is provably identical.

After streamlining and ``RoundAndClipThresholds`` a requantizer with power-of-two scales and round-half-up rounding
(the project's rule, samfpga.models.quant.rounding) is a MultiThreshold on an integer input whose thresholds per
channel are ``T0 + i*d`` (integers, ``d`` a power of two): ``out = out_bias + #{i: x >= T0 + i*d}``. That equals
``clip(floor(x/d + 1 - T0/d + out_bias))`` = FINN+'s ``Requant`` (``floor(x*scale + bias + 0.5)``, clipped to the
output datatype) with ``scale = 1/d`` and ``bias = 0.5 - T0/d + out_bias``: every term a multiple of
``min(1/d, 0.5)``, so float32 evaluates it exactly while the magnitudes stay below 2**24 of that grid (checked), and
the RTL's fixed-point decomposition of a power-of-two scale is exact (finn-rtllib requant.sv; checked through FINN's
``decompose_params`` port and samfpga.kernels.requant).

FINN's own ``InferRequantLayer`` accepts thresholds whose steps agree within 1% (not exact) and float inputs;
this transformation converts only exact cases and leaves the rest as MultiThreshold (-> Thresholding), recording
why in ``model`` metadata key ``samfpga_thresholds_kept`` (node name: reason).
"""

from __future__ import annotations

import json

import numpy as np
from onnx import helper
from qonnx.transformation.base import Transformation

from samfpga.hw.build.streamline_rules import is_po2

DSP_VERSION = 2  # DSP48E2 (Zynq UltraScale+); requant.sv derives its operand widths from it
_X_WIDTH_MAX = {1: 25, 2: 27, 3: 27}  # wider inputs lose their LSBs in requant.sv (X1 takes the top bits)


_PASS = ("Transpose", "Reshape", "Im2Col", "MaxPool", "Identity", "Split", "Flatten", "Squeeze", "Unsqueeze")


def input_range(model, tensor: str, _depth: int = 0) -> tuple[int, int]:
    """Conservative integer range of ``tensor``: through data movement, sums, and MatMuls with constant integer
    weights (per output column ``sum max(w*lo, w*hi)``); its datatype's range otherwise (and as a bound).
    Before ``minimize_bit_width`` FINN annotates every MatMul output INT32; this is what the accumulator needs."""
    dt = model.get_tensor_datatype(tensor)
    lo, hi = int(dt.min()), int(dt.max())
    n = model.find_producer(tensor)
    if n is None or _depth > 64 or not dt.is_integer():
        return lo, hi
    consts = [model.get_initializer(i) for i in n.input]
    if n.op_type in _PASS:
        r = input_range(model, n.input[0], _depth + 1)
    elif n.op_type == "Add" and consts[1] is None and consts[0] is None:
        (a0, a1), (b0, b1) = (input_range(model, i, _depth + 1) for i in n.input[:2])
        r = (a0 + b0, a1 + b1)
    elif n.op_type == "MatMul" and consts[0] is None and consts[1] is not None:
        w = np.asarray(consts[1], dtype=np.float64).reshape(-1, consts[1].shape[-1])
        if not np.all(w == np.round(w)):
            return lo, hi
        a0, a1 = input_range(model, n.input[0], _depth + 1)
        r = (int(np.minimum(w * a0, w * a1).sum(0).min()), int(np.maximum(w * a0, w * a1).sum(0).max()))
    elif n.op_type == "MatMul" and consts[0] is None and consts[1] is None:
        (a0, a1), (b0, b1) = (input_range(model, i, _depth + 1) for i in n.input[:2])
        k = model.get_tensor_shape(n.input[0])[-1]
        m = max(abs(a0), abs(a1)) * max(abs(b0), abs(b1)) * k
        r = (-m, m)
    else:
        return lo, hi
    return max(lo, r[0]), min(hi, r[1])


def signed_bits(lo: int, hi: int) -> int:
    """Bits of the smallest signed integer type holding [lo, hi]."""
    return max(int(lo).bit_length() if lo < 0 else 0, int(hi).bit_length()) + 1


def _channel_step(t: np.ndarray, in_lo: int, in_hi: int) -> tuple[float, float] | None:
    """(T0, d) with ``#{i: x >= t[i]} == #{i: x >= T0 + i*d}`` for every integer x in [in_lo, in_hi], d a power of
    two, else None. ``t``: one channel's sorted integer thresholds. Thresholds at or below ``in_lo`` (always passed)
    and above ``in_hi`` (never passed) only bound the uniform sequence: RoundAndClipThresholds clips them there."""
    n = t.size
    inner = np.flatnonzero((t > in_lo) & (t <= in_hi))
    if inner.size >= 2:
        diffs = np.diff(t[inner])
        if not np.all(diffs == diffs[0]) or np.any(np.diff(inner) != 1):
            return None
        candidates = [float(diffs[0])]
    else:
        candidates = [2.0**k for k in range(0, 31)]
    i0 = int(np.sum(t <= in_lo))  # thresholds before i0 are always passed (sorted)
    anchor = t[inner[0]] if inner.size else in_hi + 1  # value of threshold i0 (never passed if none is inner)
    for d in candidates:
        if not is_po2(np.array([d])):
            return None
        u = anchor + (np.arange(n) - i0) * d
        inside = (t > in_lo) & (t <= in_hi)
        if np.all((u <= in_lo) == (t <= in_lo)) and np.all((u > in_hi) == (t > in_hi)) and np.all(u[inside] == t[inside]):
            return float(u[0]), d
    return None


def uniform_requant_params(thresholds: np.ndarray, out_bias: float, in_lo: int, in_hi: int
                           ) -> tuple[np.ndarray, np.ndarray] | str:
    """(scale, bias) float32 per channel for FINN's Requant reproducing a MultiThreshold exactly on every integer
    input in [in_lo, in_hi], or the reason why not. ``thresholds``: (C, N)."""
    t = np.sort(np.asarray(thresholds, dtype=np.float64), axis=1)
    if not np.all(t == np.round(t)):
        return "non-integer thresholds"
    steps = [_channel_step(row, in_lo, in_hi) for row in t]
    if any(s is None for s in steps):
        return "non-uniform or non-power-of-two threshold steps (not a round-half-up po2 quantizer)"
    t0 = np.array([s[0] for s in steps])
    d = np.array([s[1] for s in steps])
    scale, bias = 1.0 / d, 0.5 - t0 / d + out_bias
    grid = np.minimum(1.0 / d, 0.5)
    mag = (max(abs(in_lo), abs(in_hi)) + np.abs(t0)) / d + np.abs(out_bias) + 1.5
    if np.any(mag / grid >= 2**24):
        return "float32 evaluation of x*scale+bias would round"
    s32, b32 = scale.astype(np.float32), bias.astype(np.float32)
    if np.any(s32 != scale) or np.any(b32 != bias):
        return "scale/bias not exact in float32"
    return s32, b32


def _breakpoints(t: np.ndarray, in_lo: int, in_hi: int) -> np.ndarray:
    """The inputs where a monotone step function with thresholds ``t`` (C, N) can change, per channel: both ends
    of the range and each threshold and its predecessor inside it ((C, 2N + 2) int64)."""
    pts = np.concatenate([t, t - 1, np.full((t.shape[0], 1), in_lo), np.full((t.shape[0], 1), in_hi)], axis=1)
    return np.clip(pts, in_lo, in_hi).astype(np.int64)


def _widest_step(k: np.ndarray, t: np.ndarray) -> float | None:
    """A step ``d > 0`` with integers ``t = ceil(T0 + k*d)`` for some T0, or None. For a given d the possible T0
    form the interval (max(t - 1 - k*d), min(t - k*d)]; its width is concave in d, so a ternary search finds the
    d with the widest interval (the middle of the feasible range, far from every rounding boundary)."""
    def width(d: float) -> float:
        return float(np.min(t - k * d) - np.max(t - 1 - k * d))

    d0 = float(np.polyfit(k, t, 1)[0])
    if not d0 > 0:
        return None
    a, b = 0.5 * d0, 1.5 * d0
    for _ in range(200):
        m1, m2 = a + (b - a) / 3, b - (b - a) / 3
        if width(m1) < width(m2):
            a = m1
        else:
            b = m2
    d = 0.5 * (a + b)
    return d if width(d) > 1e-9 else None


def fitted_requant_params(thresholds: np.ndarray, out_bias: float, in_lo: int, in_hi: int, out_bits: int,
                          signed: bool, in_bits: range, dsp_version: int = DSP_VERSION
                          ) -> tuple[np.ndarray, np.ndarray] | str:
    """(scale, bias) float32 per channel for Requant where the thresholds are those of a requantizer with any
    positive scale (integer thresholds ``ceil(T0 + i*d)``, ``d`` not a power of two), or the reason why not.

    Exact, not approximate: both Requant evaluations — FINN+'s float32 specification (``requant_spec``, FINN's
    python execution) and the RTL's fixed-point datapath (``requant_fixed``, for every input width in
    ``in_bits``: ``minimize_bit_width`` narrows it later and the decomposition depends on it) — are monotone in
    ``x`` like the MultiThreshold, so they equal it on every integer of [in_lo, in_hi] iff they equal it at the
    range ends and at each threshold and its predecessor (``_breakpoints``); that is what is checked."""
    from samfpga.kernels.requant import fixed_point_params, requant_fixed, requant_spec

    t = np.sort(np.asarray(thresholds, dtype=np.float64), axis=1)
    if not np.all(t == np.round(t)):
        return "non-integer thresholds"
    c, n = t.shape
    scale, bias = np.empty(c), np.empty(c)
    k = np.arange(n, dtype=np.float64)
    for ch in range(c):
        inner = (t[ch] > in_lo) & (t[ch] <= in_hi)
        if inner.sum() < 2:
            return "fewer than two thresholds inside the input range (step not determined)"
        ki, ti = k[inner], t[ch, inner]
        d = _widest_step(ki, ti)
        if d is None:
            return "non-uniform thresholds: not ceil(T0 + i*d) for one step d"
        lo_t0, hi_t0 = float(np.max(ti - 1 - ki * d)), float(np.min(ti - ki * d))
        t0 = 0.5 * (lo_t0 + hi_t0)
        scale[ch], bias[ch] = 1.0 / d, 0.5 - t0 / d + out_bias
    s32, b32 = scale.astype(np.float32), bias.astype(np.float32)
    x = _breakpoints(t, in_lo, in_hi)  # (C, P)
    want = out_bias + (x[:, :, None] >= t[:, None, :]).sum(axis=2)  # (C, P)
    xs = x.T  # (P, C): channels last, as Requant evaluates
    got = requant_spec(xs, s32, b32, out_bits, signed).T
    if not np.array_equal(got, want):
        return "float32 Requant differs from the thresholds at a breakpoint"
    for bits in in_bits:
        try:
            p = fixed_point_params(s32, b32, bits, out_bits, dsp_version)
        except ValueError as e:
            return f"RTL parameters at {bits} input bits: {e}"
        if p.x_drop or not np.array_equal(requant_fixed(xs, p, out_bits, signed).T, want):
            return f"fixed-point Requant ({bits} input bits) differs from the thresholds at a breakpoint"
    return s32, b32


def _channels_last(layout, rank: int) -> bool:
    if not layout:
        return rank <= 2
    return layout[-1] == "C"  # FINN's layout inference mislabels some ranks (e.g. NWHC on rank 3): last axis counts


def _normalised_last_axis(model, tensor: str) -> bool:
    """Whether ``tensor`` comes from an integer LayerNorm (through data movement): LayerNorm normalises the last
    axis, so its channels are last whatever layout annotation (often none) the tensor carries."""
    n = model.find_producer(tensor)
    while n is not None and n.op_type in ("Reshape", "Identity"):
        n = model.find_producer(n.input[0])
    return n is not None and n.op_type.startswith("IntLayerNorm")


def params_mem_mode(scale: np.ndarray, bias: np.ndarray) -> str:
    """``internal_embedded`` when every parameter prints exactly with 6 decimals (FINN+'s Requant_rtl writes them
    into the SV source as ``f"{v:.6f}"``, e.g. 2**-12 -> 0.000244: a different scale), else ``internal_decoupled``
    (FINN decomposes the float32 values into fixed point in Python, exactly)."""
    vals = np.concatenate([np.ravel(scale), np.ravel(bias)]).astype(np.float32)
    exact = all(np.float32(float(f"{float(v):.6f}")) == v for v in vals)
    return "internal_embedded" if exact else "internal_decoupled"


class InferExactRequant(Transformation):
    """Each MultiThreshold with an integer input, ``out_scale`` 1, an output range of exactly its levels and
    uniform power-of-two threshold steps (``uniform_requant_params``), or the rounded thresholds of any positive
    step that Requant reproduces exactly (``fitted_requant_params``) -> FINN+ ``Requant`` (PE=1), channels on the
    last axis. Run after ``RoundAndClipThresholds`` and before FINN's ``step_convert_to_hw``."""

    def __init__(self, dsp_version: int = DSP_VERSION) -> None:
        super().__init__()
        self.dsp_version = dsp_version

    def apply(self, model):
        from qonnx.core.datatype import DataType
        from qonnx.custom_op.general.quant import max_int, min_int
        from qonnx.custom_op.registry import getCustomOp

        kept = {}
        graph = model.graph
        for node in list(graph.node):
            if node.op_type != "MultiThreshold":
                continue
            op = getCustomOp(node)
            idt = model.get_tensor_datatype(node.input[0])
            odt = DataType[op.get_nodeattr("out_dtype")]
            t = model.get_initializer(node.input[1])
            shape = model.get_tensor_shape(node.input[0])
            reason = None
            if not idt.is_integer():
                reason = f"input {idt.name} (not integer)"
            elif t is None or shape is None:
                reason = "thresholds or shape unknown"
            elif op.get_nodeattr("out_scale") != 1.0:
                reason = "out_scale != 1"
            elif signed_bits(*input_range(model, node.input[0])) > _X_WIDTH_MAX[self.dsp_version]:
                reason = f"input range {input_range(model, node.input[0])} wider than the DSP port"
            elif t.shape[0] > 1 and shape[-1] != t.shape[0]:
                reason = f"channels not on the last axis (layout {op.get_nodeattr('data_layout')})"
            elif not (_channels_last(model.get_tensor_layout(node.input[0]), len(shape))
                      or _normalised_last_axis(model, node.input[0])):
                # Requant is a channels-last HW layer; FINN's later layout transformations (Shuffle decomposition)
                # treat its input as such, so a channel-first tensor (even with shared thresholds) keeps its table
                reason = f"tensor layout {model.get_tensor_layout(node.input[0])} (channels not last)"
            if reason is None:
                ob = float(op.get_nodeattr("out_bias"))
                n = t.shape[1]
                signed = odt.signed()
                narrow = int(n == 2 ** odt.bitwidth() - 2)
                lo, hi = min_int(signed, narrow, odt.bitwidth()), max_int(signed, narrow, odt.bitwidth())
                if narrow:
                    reason = "narrow output range (requant.sv clips to the full range)"
                elif (lo, hi) != (ob, ob + n):
                    reason = f"levels [{ob}, {ob + n}] are not the range of {odt.name}"
            if reason is None:
                rng = input_range(model, node.input[0])
                params = uniform_requant_params(t, ob, *rng)
                if isinstance(params, str) and params.startswith("non-uniform"):
                    # not a power-of-two step: a requantizer with any scale, checked exactly at its breakpoints,
                    # for every input width minimize_bit_width may give it
                    widths = range(signed_bits(*rng), min(idt.bitwidth(), _X_WIDTH_MAX[self.dsp_version]) + 1)
                    params = fitted_requant_params(t, ob, *rng, odt.bitwidth(), odt.signed(), widths,
                                                   self.dsp_version)
                if isinstance(params, str):
                    reason = params
            if reason is not None:
                kept[node.name] = reason
                continue
            scale, bias = params
            c = shape[-1]
            if scale.size != c:  # one threshold row shared by all channels
                scale, bias = np.full(c, scale[0], np.float32), np.full(c, bias[0], np.float32)
            sname, bname = f"{node.name}_requant_scale", f"{node.name}_requant_bias"
            model.set_initializer(sname, scale)
            model.set_initializer(bname, bias)
            new = helper.make_node(
                "Requant", [node.input[0], sname, bname], [node.output[0]], domain="finn.custom_op.fpgadataflow",
                backend="fpgadataflow", NumChannels=int(c), PE=1, inputDataType=idt.name, outputDataType=odt.name,
                numInputVectors=[int(s) for s in shape[:-1]], narrow=narrow, name=f"Requant_{node.name}",
                mem_mode=params_mem_mode(scale, bias),  # an attribute of Requant_rtl, kept by SpecializeLayers
            )
            graph.node.insert(list(graph.node).index(node), new)
            graph.node.remove(node)
            try:  # the RTL's float -> fixed-point decomposition must accept it (else keep the thresholds)
                getCustomOp(new).decompose_params(model, self.dsp_version)
            except ValueError as e:
                graph.node.insert(list(graph.node).index(new), node)
                graph.node.remove(new)
                kept[node.name] = f"RTL parameters: {e}"
        model.set_metadata_prop("samfpga_thresholds_kept", json.dumps(kept))
        return model, False


def check_requant_inputs(model, dsp_version: int = DSP_VERSION) -> None:
    """Raise if a Requant layer's input is wider than requant.sv's multiplier port (its RTL would drop input
    LSBs, silently). Run after ``minimize_bit_width``: InferExactRequant checked the accumulator range, FINN
    annotates the tightened width there."""
    bad = [f"{n.name}: {model.get_tensor_datatype(n.input[0]).name}" for n in model.graph.node
           if n.op_type.startswith("Requant")
           and model.get_tensor_datatype(n.input[0]).bitwidth() > _X_WIDTH_MAX[dsp_version]]
    if bad:
        raise ValueError(f"Requant inputs wider than the DSP{dsp_version} port ({_X_WIDTH_MAX[dsp_version]} bits): {bad}")
