"""Replace the float LayerNorm and softmax of a streamlined FINN graph by the project's integer layers.

Run on the streamlined graph, before ``convert_to_hw`` (the new nodes are HW layers already; FINN's conversion
leaves them alone and specialisation picks ``IntLayerNorm_rtl`` / ``IntSoftmax_rtl``):

    LayerNormalization(x: integer, gamma, beta, eps)
        -> IntLayerNorm(x) -> Mul(|gamma| * 2^-F) -> Add(beta)       (gamma < 0: that channel negated inside)
       the Mul/Add are then absorbed into the following MultiThreshold (FINN's AbsorbAdd/MulIntoMultiThreshold):
       the threshold layer sees integers z ~= 2^F (x - mean) / std instead of floats.
    a: integer -> [Mul(scalar s) | Add(constant B)]* -> Softmax(last axis) -> MultiThreshold(uniform, unsigned)
        -> IntSoftmax(a, BQ)
       the logit scale (1/sqrt(d) times the q/k scales), the attention bias (relative-position table, repeated
       over windows: stored once per period of rows) and the output quantizer are folded into one layer.

Nodes that do not match (a float LayerNorm input, a non-uniform or signed softmax quantizer, a Mul that is not a
positive scalar) are left as they are and listed in the transformation's ``skipped``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.transformation.base import Transformation

from samfpga.hw import HW_DOMAIN
from samfpga.kernels.int_params import IntOpsConfig, layernorm_affine, layernorm_params, softmax_params

__all__ = ["ConvertQIntLayerNorm", "ConvertQIntSoftmax", "ConvertToIntLayerNorm", "ConvertToIntSoftmax",
           "IntOpsConfig", "apply_from_build", "use_int_ops"]


def _attr(node, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _hw_node(op_type: str, inputs: list[str], outputs: list[str], name: str, **attrs):
    return helper.make_node(op_type, inputs, outputs, domain=HW_DOMAIN, backend="fpgadataflow", name=name,
                            preferred_impl_style="rtl", **attrs)


def _add_tensor(model, name: str, shape: list[int], dt: DataType) -> None:
    model.graph.value_info.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
    model.set_tensor_datatype(name, dt)


def _int_layernorm_node(x: str, z: str, name: str, p, idt: DataType, odt: DataType, shape: list[int]):
    """The IntLayerNorm HW node of ``IntLayerNormParams`` ``p`` on ``x`` (``shape``, last axis normalised)."""
    return _hw_node(
        "IntLayerNorm", [x], [z], name, NumChannels=p.channels, PE=1, inputDataType=idt.name,
        outputDataType=odt.name, numInputVectors=list(shape[:-1]), eps_int=p.eps_int, frac_bits=p.frac_bits,
        lut_bits=p.lut_bits, r_bits=p.r_bits, negate=list(p.negate or (0,) * p.channels))


def _int_softmax_node(inputs: list[str], out: str, name: str, p, idt: DataType, odt: DataType, shape: list[int]):
    """The IntSoftmax HW node of ``IntSoftmaxParams`` ``p`` (bias table, if any, as ``inputs[1]``)."""
    return _hw_node(
        "IntSoftmax", inputs, [out], name, NumChannels=p.n, PE=1, inputDataType=idt.name,
        outputDataType=odt.name, numInputVectors=list(shape[:-1]), mult=p.mult, pre_shift=p.pre_shift,
        out_num=p.out_num, recip_bits=p.recip_bits, exp_frac_bits=p.exp_frac_bits, exp_bits=p.exp_bits)


@dataclass
class _Result:
    replaced: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


class ConvertToIntLayerNorm(Transformation):
    """LayerNormalization on an integer input -> IntLayerNorm + Mul/Add absorbed into the next thresholds."""

    def __init__(self, cfg: IntOpsConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or IntOpsConfig()
        self.result = _Result()

    def _convert(self, model, node) -> str | None:
        """Replace ``node``; returns None, or why it was not replaced."""
        x = node.input[0]
        idt = model.get_tensor_datatype(x)
        if not idt.is_integer():
            return f"input {x} is {idt.name}, not integer"
        shape = list(model.get_tensor_shape(x))
        axis = int(_attr(node, "axis", -1))
        if axis not in (-1, len(shape) - 1):
            return f"normalises axis {axis}, not the last"
        c = int(shape[-1])
        eps = float(_attr(node, "epsilon", 1e-5))
        gamma = np.ones(c) if len(node.input) < 2 else model.get_initializer(node.input[1])
        beta = np.zeros(c) if len(node.input) < 3 or not node.input[2] else model.get_initializer(node.input[2])
        if gamma is None or beta is None:
            return "scale or bias is not a constant"
        gamma = np.broadcast_to(np.asarray(gamma, dtype=np.float64), (c,))
        beta = np.broadcast_to(np.asarray(beta, dtype=np.float64), (c,))
        if (gamma == 0).any():
            return "a channel has gamma == 0 (its output is constant; thresholds cannot absorb it)"
        p = layernorm_params(c, eps, 1.0, gamma, self.cfg)  # the input scale is in eps (AbsorbPo2MulIntoLayerNorm)
        f = p.frac_bits
        odt = DataType[f"INT{p.out_bits}"]
        z = f"{node.name}_int_out"
        zs = f"{node.name}_int_scaled"
        _add_tensor(model, z, shape, odt)
        ln = _int_layernorm_node(x, z, f"{node.name}_int", p, idt, odt, shape)
        mul_c, add_c = f"{node.name}_int_scale", f"{node.name}_int_bias"
        model.set_initializer(mul_c, (np.abs(gamma) * 2.0 ** -f).astype(np.float32))
        out = node.output[0]
        new = [ln, helper.make_node("Mul", [z, mul_c], [zs if beta.any() else out], name=f"{node.name}_int_mul")]
        if beta.any():
            _add_tensor(model, zs, shape, DataType["FLOAT32"])
            model.set_initializer(add_c, beta.astype(np.float32))
            new.append(helper.make_node("Add", [zs, add_c], [out], name=f"{node.name}_int_add"))
        i = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        for k, n in enumerate(new):
            model.graph.node.insert(i + k, n)
        return None

    def apply(self, model):
        for node in [n for n in model.graph.node if n.op_type == "LayerNormalization"]:
            why = self._convert(model, node)
            if why is None:
                self.result.replaced.append(node.name)
            else:
                self.result.skipped.append((node.name, why))
        return model, False


def _uniform_step(thr: np.ndarray) -> float | None:
    """The step s_o of thresholds at (k + 1/2) s_o, k = 0..n-1 (identical rows), else None."""
    t = np.asarray(thr, dtype=np.float64)
    if t.ndim != 2 or not np.allclose(t, t[:1], rtol=0, atol=0):
        return None
    t = t[0]
    s = (t[-1] - t[0]) / (len(t) - 1) if len(t) > 1 else 2 * t[0]
    ideal = (np.arange(len(t)) + 0.5) * s
    if not s > 0 or np.abs(t - ideal).max() > 1e-3 * s:
        return None
    return float(s)


def _bias_rows(b: np.ndarray, shape: list[int]) -> np.ndarray | None:
    """The additive bias as its smallest repeating table of rows ``(rows, n)``; None for no bias."""
    full = np.broadcast_to(b, shape).reshape(-1, shape[-1])
    if not full.any():
        return None
    total = full.shape[0]
    for j in range(len(shape) - 1, -1, -1):
        rows = int(np.prod(shape[j:-1], dtype=np.int64))
        blocks = full.reshape(total // rows, rows, shape[-1])
        if (blocks == blocks[:1]).all():
            return blocks[0]
    return full


class ConvertToIntSoftmax(Transformation):
    """Integer logits -> scalar Mul / constant Add chain -> Softmax -> uniform unsigned MultiThreshold
    => one IntSoftmax (bias table as its second input, an initializer)."""

    def __init__(self, cfg: IntOpsConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or IntOpsConfig()
        self.result = _Result()

    def _convert(self, model, sm) -> str | None:
        shape = list(model.get_tensor_shape(sm.input[0]))
        if int(_attr(sm, "axis", -1)) not in (-1, len(shape) - 1):
            return "softmax not over the last axis"
        chain, t = [], sm.input[0]
        while True:
            p = model.find_producer(t)
            if p is None or p.op_type not in ("Mul", "Add") or len(model.find_consumers(p.output[0])) != 1:
                break
            consts = [model.get_initializer(i) for i in p.input]
            if sum(c is not None for c in consts) != 1:
                break
            chain.insert(0, p)
            t = p.input[0] if consts[1] is not None else p.input[1]
        idt = model.get_tensor_datatype(t)
        if not idt.is_integer():
            return f"logits {t} are {idt.name}, not integer"
        s, b = 1.0, np.zeros(1)
        for p in chain:
            c = np.asarray(next(model.get_initializer(i) for i in p.input if model.get_initializer(i) is not None),
                           dtype=np.float64)
            if p.op_type == "Mul":
                if c.size != 1 or not c.ravel()[0] > 0:
                    return f"{p.name} is not a positive scalar scale"
                s, b = s * float(c.ravel()[0]), b * float(c.ravel()[0])
            else:
                b = b + c
        cons = model.find_consumers(sm.output[0])
        if len(cons) != 1 or cons[0].op_type != "MultiThreshold":
            return "softmax output does not go to one MultiThreshold"
        mt = cons[0]
        odt = DataType[_attr(mt, "out_dtype", b"").decode() or "FLOAT32"]
        if not odt.is_integer() or odt.signed():
            return f"output quantizer {mt.name} is {odt.name}, not unsigned integer"
        if float(_attr(mt, "out_bias", 0.0)) != 0 or float(_attr(mt, "out_scale", 1.0)) != 1:
            return f"{mt.name} has an output scale or bias"
        thr = model.get_initializer(mt.input[1])
        s_o = None if thr is None or thr.shape[-1] != odt.get_num_possible_values() - 1 else _uniform_step(thr)
        if s_o is None:
            return f"{mt.name}'s thresholds are not one uniform quantizer"
        n = shape[-1]
        bias = _bias_rows(b, shape) if b.shape != (1,) else None
        c = self.cfg
        p = softmax_params(n, s, s_o, bias, odt.bitwidth(), c)
        inputs = [t]
        if p.bias is not None:
            bname = f"{sm.name}_int_bias"
            model.set_initializer(bname, p.bias.astype(np.float32))
            bits = int(np.abs(p.bias).max(initial=0)).bit_length() + 1
            model.set_tensor_datatype(bname, DataType[f"INT{max(bits, 2)}"])
            inputs.append(bname)
        new = _int_softmax_node(inputs, mt.output[0], f"{sm.name}_int", p, idt, odt, shape)
        i = list(model.graph.node).index(chain[0] if chain else sm)
        for old in [*chain, sm, mt]:
            model.graph.node.remove(old)
        model.graph.node.insert(i, new)
        return None

    def apply(self, model):
        for sm in [n for n in model.graph.node if n.op_type == "Softmax"]:
            why = self._convert(model, sm)
            if why is None:
                self.result.replaced.append(sm.name)
            else:
                self.result.skipped.append((sm.name, why))
        return model, False


def _mt_channel_axis(mt, rank: int) -> int | None:
    """The axis a MultiThreshold thresholds per channel, as qonnx's execution picks it."""
    layout = _attr(mt, "data_layout", b"")
    layout = layout.decode() if isinstance(layout, bytes) else layout
    if not layout:
        layout = {2: "NC", 3: "NWC", 4: "NCHW"}.get(rank)
    if layout is None or "C" not in layout:
        return 1
    return layout.index("C")


def exact_thresholds(z_bits: int, gamma: np.ndarray, beta: np.ndarray, frac_bits: int,
                     thr: np.ndarray) -> np.ndarray:
    """Integer thresholds on IntLayerNorm's output ``z`` (signed ``z_bits``) that give, for every reachable z,
    the same count as thresholds ``thr`` (C or 1, K) on ``layernorm_affine(z, gamma, beta)``: per channel the first
    z whose float32 affine value reaches each threshold (the affine is non-decreasing in z: |gamma| >= 0, the
    sign is in the integer layer). Exact by enumeration, not by dividing the thresholds in float. (C, K) float32.
    """
    c = gamma.size
    z = np.arange(-(1 << (z_bits - 1)), 1 << (z_bits - 1), dtype=np.int64)
    y = layernorm_affine(np.broadcast_to(z[:, None], (z.size, c)), gamma, beta, frac_bits)  # (Z, C)
    t = np.broadcast_to(np.asarray(thr, dtype=np.float32), (c, thr.shape[-1]))
    out = np.empty(t.shape, dtype=np.float64)
    for ch in range(c):
        out[ch] = z[0] + np.searchsorted(y[:, ch], t[ch], side="left")  # z[-1] + 1 where never reached
    return out.astype(np.float32)


class ConvertQIntLayerNorm(Transformation):
    """The quantized model's ``QIntLayerNorm`` (samfpga.models.quant.qonnx_ops, integer input) -> IntLayerNorm with
    its gamma/beta folded EXACTLY into the following MultiThreshold (directly behind it or behind Transposes that
    carry its channel axis to the threshold's), or, failing that, IntLayerNorm -> Mul -> Add (the same float32
    operations as the node). Bit-exact either way: the parameters are the node's."""

    def __init__(self) -> None:
        super().__init__()
        self.result = _Result()

    def _threshold_behind(self, model, node, rank: int):
        """(MultiThreshold, the data-movement nodes before it) when the LN output reaches exactly one
        MultiThreshold through single-consumer Transposes that move the last axis to its channel axis."""
        axis, t, moves = rank - 1, node.output[0], []
        while True:
            cons = model.find_consumers(t)
            if len(cons) != 1:
                return None
            nxt = cons[0]
            if nxt.op_type == "Transpose":
                perm = list(_attr(nxt, "perm", []))
                axis = perm.index(axis)
                moves.append(nxt)
                t = nxt.output[0]
                continue
            if nxt.op_type == "MultiThreshold" and nxt.input[0] == t \
                    and _mt_channel_axis(nxt, rank) == axis and model.get_initializer(nxt.input[1]) is not None:
                return nxt, moves
            return None

    def _convert(self, model, node) -> str | None:
        from qonnx.custom_op.registry import getCustomOp

        x = node.input[0]
        idt = model.get_tensor_datatype(x)
        if not idt.is_integer():
            return f"input {x} is {idt.name}, not integer (its input scale was not absorbed)"
        gamma, beta = model.get_initializer(node.input[1]), model.get_initializer(node.input[2])
        if gamma is None or beta is None:
            return "gamma or beta is not a constant"
        shape = list(model.get_tensor_shape(x))
        p = getCustomOp(node).params(gamma)
        if p.channels != shape[-1]:
            return f"gamma has {p.channels} channels, the input {shape[-1]}"
        odt = DataType[f"INT{p.out_bits}"]
        z = f"{node.name}_int_out"
        _add_tensor(model, z, shape, odt)
        new = [_int_layernorm_node(x, z, f"{node.name}_int", p, idt, odt, shape)]
        behind = self._threshold_behind(model, node, len(shape))
        if behind is not None:
            mt, moves = behind
            thr = model.get_initializer(mt.input[1])
            model.set_initializer(mt.input[1], exact_thresholds(p.out_bits, gamma.ravel(), beta.ravel(),
                                                                p.frac_bits, thr))
            first = moves[0] if moves else mt
            first.input[0] = z
            model.set_tensor_datatype(mt.input[0], odt)
            for mv in moves:
                model.set_tensor_datatype(mv.output[0], odt)
        else:
            g, b = f"{node.name}_int_scale", f"{node.name}_int_bias"
            zs = f"{node.name}_int_scaled"
            model.set_initializer(g, (np.abs(gamma.astype(np.float32)) * np.float32(2.0 ** -p.frac_bits)))
            model.set_initializer(b, beta.astype(np.float32))
            _add_tensor(model, zs, shape, DataType["FLOAT32"])
            new += [helper.make_node("Mul", [z, g], [zs], name=f"{node.name}_int_mul"),
                    helper.make_node("Add", [zs, b], [node.output[0]], name=f"{node.name}_int_add")]
        i = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        for k, n in enumerate(new):
            model.graph.node.insert(i + k, n)
        return None

    def apply(self, model):
        for node in [n for n in model.graph.node if n.op_type == "QIntLayerNorm"]:
            why = self._convert(model, node)
            if why is None:
                self.result.replaced.append(node.name)
            else:
                self.result.skipped.append((node.name, why))
        return model, False


class ConvertQIntSoftmax(Transformation):
    """The quantized model's ``QIntSoftmax`` (integer logits) -> IntSoftmax with the same parameters and bias table."""

    def __init__(self) -> None:
        super().__init__()
        self.result = _Result()

    def _convert(self, model, node) -> str | None:
        from qonnx.custom_op.registry import getCustomOp

        a = node.input[0]
        idt = model.get_tensor_datatype(a)
        if not idt.is_integer():
            return f"logits {a} are {idt.name}, not integer (their scale was not absorbed)"
        shape = list(model.get_tensor_shape(a))
        bias = model.get_initializer(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        if len(node.input) > 1 and node.input[1] and bias is None:
            return "bias table is not a constant"
        p = getCustomOp(node).params(shape[-1], None if bias is None else np.asarray(bias, dtype=np.int64))
        odt = DataType[f"UINT{p.out_bits}"]
        inputs = [a]
        if bias is not None:
            bits = int(np.abs(p.bias).max(initial=0)).bit_length() + 1
            model.set_tensor_datatype(node.input[1], DataType[f"INT{max(bits, 2)}"])
            inputs.append(node.input[1])  # int64 initializer: the entries can exceed float32's mantissa
        i = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        model.graph.node.insert(i, _int_softmax_node(inputs, node.output[0], f"{node.name}_int", p, idt, odt, shape))
        model.set_tensor_datatype(node.output[0], odt)
        return None

    def apply(self, model):
        for node in [n for n in model.graph.node if n.op_type == "QIntSoftmax"]:
            why = self._convert(model, node)
            if why is None:
                self.result.replaced.append(node.name)
            else:
                self.result.skipped.append((node.name, why))
        return model, False


def use_int_ops(model, cfg: IntOpsConfig | None = None, notes: dict | None = None, float_ops: bool = True):
    """The quantized model's integer nodes (``QIntLayerNorm`` / ``QIntSoftmax``: exact) and, with ``float_ops``,
    the float LayerNormalization / Softmax (approximate, ``cfg``) to the integer HW layers; then the LayerNorm
    scale/bias absorbed into the thresholds and datatypes re-inferred.

    ``notes`` (optional) receives ``int_ops``: the replaced LayerNorm and softmax node names, those of them that
    were float (``approximate``: not bit-exact against the QONNX model) and the skipped ones (with the reason)."""
    from finn.transformation.streamline.absorb import AbsorbAddIntoMultiThreshold, AbsorbMulIntoMultiThreshold
    from qonnx.transformation.general import RemoveUnusedTensors
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    import samfpga.hw.custom_ops  # noqa: F401  (registers IntLayerNorm / IntSoftmax with FINN)

    exact = [ConvertQIntLayerNorm(), ConvertQIntSoftmax()]
    approx = [ConvertToIntLayerNorm(cfg), ConvertToIntSoftmax(cfg)] if float_ops else []
    for t in exact + approx:
        model = model.transform(t)
    if approx:
        model = model.transform(AbsorbAddIntoMultiThreshold()).transform(AbsorbMulIntoMultiThreshold())
    model = model.transform(InferShapes()).transform(InferDataTypes()).transform(RemoveUnusedTensors())
    if notes is not None:
        ln, sm = [t for t in exact + approx if "LayerNorm" in type(t).__name__], \
            [t for t in exact + approx if "Softmax" in type(t).__name__]
        notes["int_ops"] = {
            "layernorm": [n for t in ln for n in t.result.replaced],
            "softmax": [n for t in sm for n in t.result.replaced],
            "approximate": [n for t in approx for n in t.result.replaced],
            "skipped": [list(s) for t in exact + approx for s in t.result.skipped],
        }
    return model


def apply_from_build(model, ctx):
    """The build's hook (``step_convert_to_hw``): the quantized model's exact integer nodes always (they have no
    float HW layer), the float LayerNorm / softmax too when ``cfg.options.int_ops`` is on (approximate: not
    bit-exact against a float-LayerNorm Brevitas/QONNX model; docs/hardware.md, "Integer LayerNorm and softmax").
    ``model`` unchanged when there is nothing to do."""
    has_exact = any(n.op_type in ("QIntLayerNorm", "QIntSoftmax") for n in model.graph.node)
    if not (ctx.cfg.options.int_ops or has_exact):
        return model
    notes: dict = {}
    model = use_int_ops(model, IntOpsConfig(), notes=notes, float_ops=ctx.cfg.options.int_ops)
    ctx.results.int_ops = notes["int_ops"]
    return model
