"""Integer LayerNorm / softmax (samfpga.kernels.layernorm / .softmax, the FINN custom ops IntLayerNorm /
IntSoftmax, the graph transformation samfpga.hw.build.int_ops).

Tolerances, each against float64 math of the float layer:
  * IntLayerNorm output z vs 2^F (x - mean) / sqrt(var + eps): |error| <= 0.5 + |exact| * 2^-(T-1) (the final
    rounding plus the rsqrt table's relative error; saturation excluded);
  * IntSoftmax vs clip(round(softmax(a s + B) / s_o)): at most 1 step per output, on at most 2% of the outputs
    with G = 8 (measured 0.3%) and 5% with G = 6 (measured 1.4%);
  * a graph after the transformation vs before (float LayerNorm / softmax): measured deviation, bounded below.
The RTL is checked bit-exact against these kernels by the sim benches (tests/test_sim_benches.py,
tests/test_sim_int_ops.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.kernels.layernorm import (
    IntLayerNormParams,
    eps_int_for,
    int_layernorm,
    max_abs_input,
    max_abs_output,
    out_bits_for,
)
from samfpga.kernels.softmax import int_softmax, make_params


def _tokens(rng, n: int, c: int, bits: int = 8) -> np.ndarray:
    """Tokens of integers with spreads from nearly constant to the full range."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1))
    x = rng.integers(lo, hi, size=(n, c)) * rng.choice([0.01, 0.05, 0.3, 1.0], size=(n, 1))
    x = np.clip(np.round(x) + rng.integers(-1, 2, size=(n, 1)), lo, hi - 1)
    x[0] = 3  # constant token: variance 0, the output is all zero
    return x


@pytest.mark.parametrize("c,f,t", [(32, 8, 10), (160, 8, 10), (64, 6, 8), (12, 4, 6)])
def test_layernorm_matches_float_within_table_error(c, f, t) -> None:
    rng = np.random.default_rng(c + f)
    x = _tokens(rng, 400, c)
    eps = 1e-5 / 2.0**-8  # a po2 input scale absorbed into eps, as the FINN graph has it
    p = IntLayerNormParams(c, eps_int_for(c, eps), frac_bits=f, out_bits=out_bits_for(c, f), lut_bits=t)
    z = int_layernorm(x, p)
    # var + eps as the kernel defines it: (C^2 var + round(C^2 eps)) / C^2, at least 1 / C^2 (eps 0, var 0)
    e = np.maximum(c * c * x.var(-1, keepdims=True) + eps_int_for(c, eps), 1) / (c * c)
    exact = (x - x.mean(-1, keepdims=True)) / np.sqrt(e) * 2**f
    assert z.dtype == np.int64 and z.shape == x.shape
    assert np.abs(z - exact).max() <= 0.5 + np.abs(exact).max() * 2.0 ** -(t - 1)
    assert np.all(np.abs(z - exact) <= 0.5 + np.abs(exact) * 2.0 ** -(t - 1))
    assert (z[0] == 0).all()
    # the output range holds every value (no saturation on valid input)
    assert np.abs(z).max() < 2 ** (p.out_bits - 1)


@pytest.mark.parametrize("c,f,t", [(64, 8, 10), (128, 8, 10), (256, 8, 10), (12, 4, 6), (48, 6, 8)])
def test_layernorm_output_bound_holds_and_is_tight(c, f, t) -> None:
    """``max_abs_output``: no input drives |z| past it (the outputs unclipped: out_bits 32), the worst inputs (one
    value apart from the rest, at every magnitude, eps 0, either sign) come within 0.5% + 2 of it; the bundled
    default's 64-channel LayerNorm (12 bits) never reaches its clip, so it computes the same at 13 bits."""
    rng = np.random.default_rng(c)
    p = IntLayerNormParams(c, 0, frac_bits=f, out_bits=32, lut_bits=t)
    worst = []
    for a in range(1, 3000):  # x = (a, b, b, ..., b): |x0 - mean| / std = sqrt(C - 1) exactly
        x = np.zeros((2, c), np.int64)
        x[0, 0], x[1] = a, -a
        x[1, 1:] = rng.integers(-3, 4)
        worst.append(x)
    x = np.concatenate(worst + [_tokens(rng, 2000, c)])
    z = np.abs(int_layernorm(x, p))
    bound = max_abs_output(p)
    assert z.max() <= bound and bound - z.max() <= 0.005 * bound + 2
    narrow = IntLayerNormParams(64, 5, out_bits=out_bits_for(64, 8))
    assert narrow.out_bits == 12 and max_abs_output(narrow) < 1 << 11
    xs = _tokens(rng, 500, 64)
    np.testing.assert_array_equal(int_layernorm(xs, narrow), int_layernorm(xs, IntLayerNormParams(64, 5, out_bits=13)))


def test_layernorm_negate_and_errors() -> None:
    rng = np.random.default_rng(0)
    x = _tokens(rng, 50, 16)
    neg = tuple(int(i % 2) for i in range(16))
    base = IntLayerNormParams(16, 5, frac_bits=6, out_bits=out_bits_for(16, 6))
    flipped = IntLayerNormParams(16, 5, frac_bits=6, out_bits=out_bits_for(16, 6), negate=neg)
    a, b = int_layernorm(x, base), int_layernorm(x, flipped)
    sign = np.where(np.array(neg, dtype=bool), -1, 1)
    assert np.array_equal(b, a * sign) and (a != 0).any()
    with pytest.raises(ValueError, match="non-integer"):
        int_layernorm(x + 0.5, base)
    with pytest.raises(ValueError, match="channels"):
        int_layernorm(x[:, :8], base)
    with pytest.raises(ValueError, match="lut_bits"):
        IntLayerNormParams(16, 0, lut_bits=7)
    with pytest.raises(ValueError, match="negate"):
        IntLayerNormParams(16, 0, negate=(1, 0))
    with pytest.raises(ValueError, match="eps"):
        eps_int_for(16, -1.0)


def test_layernorm_wide_inputs_exact() -> None:
    """Inputs as wide as a conv accumulator (the neck's LayerNorm2d of an int_ops build sees INT21..INT24): the
    kernel is exact up to ``max_abs_input``, checked by its scale invariance: x * 2^s with eps_int * 2^2s gives
    the same integers bit for bit (E, d and the shift all carry the 2^s exactly); above the bound it refuses."""
    rng = np.random.default_rng(5)
    c, s = 256, 15
    x = _tokens(rng, 200, c)  # |x| <= 128
    base = IntLayerNormParams(c, 6040, out_bits=out_bits_for(c, 8))
    wide = IntLayerNormParams(c, 6040 << (2 * s), out_bits=out_bits_for(c, 8))
    xw = x * 2**s  # |x| up to 2^22
    assert np.abs(xw).max() > 1 << 21 and np.abs(xw).max() <= max_abs_input(wide)
    np.testing.assert_array_equal(int_layernorm(xw, wide), int_layernorm(x, base))
    too_big = np.full((1, c), max_abs_input(wide) + 1)
    too_big[0, 0] = 0
    with pytest.raises(ValueError, match="overflow the int64"):
        int_layernorm(too_big, wide)


def _float_softmax_q(a, s, b, s_o, bits=8):
    t = a * s + b
    e = np.exp(t - t.max(-1, keepdims=True))
    return np.clip(np.round(e / e.sum(-1, keepdims=True) / s_o), 0, 2**bits - 1)


@pytest.mark.parametrize("g,limit", [(8, 0.02), (6, 0.05)])
def test_softmax_matches_float(g, limit) -> None:
    rng = np.random.default_rng(g)
    heads, n, s, s_o = 4, 64, 2.0**-12 * 0.17, 2.0**-8
    bias = rng.normal(scale=2.0, size=(heads, n, n))
    a = rng.integers(-(1 << 17), 1 << 17, size=(3, heads, n, n))
    p = make_params(n, s, s_o, bias.reshape(-1, n), exp_frac_bits=g)
    y = int_softmax(a, p)
    ref = _float_softmax_q(a, s, bias, s_o)
    assert y.shape == a.shape and y.min() >= 0 and y.max() <= 255
    assert np.abs(y - ref).max() <= 1
    assert (y != ref).mean() <= limit
    # the bias really is applied per (head, query) row: a wrong row order is far off
    q_wrong = int_softmax(a, make_params(n, s, s_o, bias[::-1].reshape(-1, n), exp_frac_bits=g))
    assert np.abs(q_wrong - ref).max() > 10


def test_softmax_without_bias_and_errors() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(-3000, 3000, size=(20, 9))
    p = make_params(9, 2.0**-7, 1 / 200.0)  # a non-power-of-two output scale
    y = int_softmax(a, p)
    assert np.abs(y - np.clip(_float_softmax_q(a, 2.0**-7, 0.0, 1 / 200.0), 0, 255)).max() <= 1
    with pytest.raises(ValueError, match="positive"):
        make_params(9, -1.0, 0.01)
    with pytest.raises(ValueError, match="output scale"):
        make_params(9, 1.0, 0.0)
    with pytest.raises(ValueError, match="n 9"):
        int_softmax(a[:, :4], p)
    with pytest.raises(ValueError, match="non-integer"):
        int_softmax(a + 0.25, p)


# ---- custom ops and the graph transformation (FINN) ------------------------------------------------------------

def _exec(model, inputs: dict) -> dict:
    from finn.core.onnx_exec import execute_onnx

    return execute_onnx(model, inputs, return_full_exec_context=True)


def test_custom_ops_execute_the_kernels(tmp_path) -> None:
    """FINN python execution of IntLayerNorm_rtl / IntSoftmax_rtl nodes (after SpecializeLayers and HDL
    generation) equals the kernels, and the generated tables hold the kernels' tables."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.sim import nodes

    rng = np.random.default_rng(5)
    ln_spec = nodes.int_layernorm(ch=16, pe=4, n=5)
    sm_spec = nodes.int_softmax(n=8, pe=2, heads=2, windows=3)
    for spec, kernel in ((ln_spec, int_layernorm), (sm_spec, int_softmax)):
        model = nodes.build_hw_graph([spec])
        node = model.graph.node[0]
        assert node.op_type == spec.op_type + "_rtl"
        op = getCustomOp(node)
        name, (shape, dt) = next(iter(spec.inputs.items()))
        x = nodes._rand(dt, shape, rng)
        out = _exec(model, {name: x})[node.output[0]]
        params = op.params() if spec.op_type == "IntLayerNorm" else op.params(op.bias_table(model))
        assert np.array_equal(out, kernel(x, params).astype(np.float32))
        code = op.get_nodeattr("code_gen_dir_ipgen")
        table = params.table
        dat = sorted(p for p in __import__("pathlib").Path(code).glob("*.dat") if "bias" not in p.name)[0]
        assert [int(v, 16) for v in dat.read_text().split()] == [int(v) for v in table]
        # priced by the own model (not FINN's zero estimate)
        from samfpga.hw.boards import get_board
        from samfpga.hw.resources import layer_costs

        cost = layer_costs(model, get_board("kv260"))[0]
        assert cost.source == "own model" and cost.LUT > 0 and cost.FF > 0 and cost.DSP >= 2


def _ln_softmax_graph(rng):
    """INT8 tokens -> LayerNormalization (a negative gamma) -> MultiThreshold; INT16 logits -> Mul -> Add(bias)
    -> Softmax -> uniform UINT8 MultiThreshold (thresholds at (k + 1/2) / 256)."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    c, heads, n = 16, 2, 8
    vi = helper.make_tensor_value_info
    nodes_ = [
        helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["ln"], axis=-1, epsilon=0.3, name="LN"),
        helper.make_node("MultiThreshold", ["ln", "thr_ln"], ["y"], domain="qonnx.custom_op.general",
                         out_dtype="INT8", out_bias=-128.0, data_layout="NHC", name="MT_ln"),
        helper.make_node("Mul", ["a", "s"], ["as"], name="Scale"),
        helper.make_node("Add", ["as", "bias"], ["ab"], name="Bias"),
        helper.make_node("Softmax", ["ab"], ["p"], axis=-1, name="SM"),
        helper.make_node("MultiThreshold", ["p", "thr_sm"], ["q"], domain="qonnx.custom_op.general",
                         out_dtype="UINT8", data_layout="NHWC", name="MT_sm"),
    ]
    graph = helper.make_graph(
        nodes_, "g", [vi("x", TensorProto.FLOAT, [1, 6, c]), vi("a", TensorProto.FLOAT, [3, heads, n, n])],
        [vi("y", TensorProto.FLOAT, [1, 6, c]), vi("q", TensorProto.FLOAT, [3, heads, n, n])],
        value_info=[vi("ln", TensorProto.FLOAT, [1, 6, c]), vi("as", TensorProto.FLOAT, [3, heads, n, n]),
                    vi("ab", TensorProto.FLOAT, [3, heads, n, n]), vi("p", TensorProto.FLOAT, [3, heads, n, n])])
    m = ModelWrapper(qonnx_make_model(graph))
    gamma = rng.uniform(0.5, 2.0, size=c) * np.where(np.arange(c) % 4 == 1, -1, 1)
    m.set_initializer("gamma", gamma.astype(np.float32))
    m.set_initializer("beta", rng.normal(scale=0.3, size=c).astype(np.float32))
    m.set_initializer("thr_ln", ((np.arange(255) - 127 + 0.5) / 32.0)[None].astype(np.float32))
    m.set_initializer("s", np.array(2.0**-8, dtype=np.float32))
    m.set_initializer("bias", rng.normal(size=(heads, n, n)).astype(np.float32))
    m.set_initializer("thr_sm", ((np.arange(255) + 0.5) / 256.0)[None].astype(np.float32))
    m.set_tensor_datatype("x", DataType["INT8"])
    m.set_tensor_datatype("a", DataType["INT16"])
    return m


def test_transformation_on_small_graph() -> None:
    from samfpga.hw.finn_env import boot

    boot()
    from samfpga.hw.build.int_ops import use_int_ops

    rng = np.random.default_rng(9)
    m = _ln_softmax_graph(rng)
    notes: dict = {}
    mi = use_int_ops(m, notes=notes)
    ops = [n.op_type for n in mi.graph.node]
    assert sorted(ops) == ["IntLayerNorm", "IntSoftmax", "MultiThreshold"], ops
    assert notes["int_ops"] == {"layernorm": ["LN"], "softmax": ["SM"], "approximate": ["LN", "SM"], "skipped": []}
    # the relative-position-like bias is stored once per (head, query) row, not per window
    sm = mi.get_nodes_by_op_type("IntSoftmax")[0]
    assert mi.get_initializer(sm.input[1]).shape == (16, 8)
    x = rng.integers(-128, 128, size=(1, 6, 16)).astype(np.float32)
    a = rng.integers(-(1 << 15), 1 << 15, size=(3, 2, 8, 8)).astype(np.float32)
    ref, got = _exec(m, {"x": x, "a": a}), _exec(mi, {"x": x, "a": a})
    dy = np.abs(ref["y"] - got["y"])
    dq = np.abs(ref["q"] - got["q"])
    assert dy.max() <= 1 and (dy > 0).mean() <= 0.05, ((dy > 0).mean(), dy.max())
    assert dq.max() <= 1 and (dq > 0).mean() <= 0.05, ((dq > 0).mean(), dq.max())


def test_transformation_skips_what_it_cannot_do() -> None:
    from qonnx.core.datatype import DataType

    from samfpga.hw.finn_env import boot

    boot()
    from samfpga.hw.build.int_ops import use_int_ops

    m = _ln_softmax_graph(np.random.default_rng(1))
    m.set_tensor_datatype("x", DataType["FLOAT32"])  # float LayerNorm input
    m.set_initializer("thr_sm", ((np.arange(255) ** 1.5 + 0.5) / 4096.0)[None].astype(np.float32))  # non-uniform
    notes: dict = {}
    mi = use_int_ops(m, notes=notes)
    assert sorted(n.op_type for n in mi.graph.node) == sorted(n.op_type for n in m.graph.node)
    reasons = dict(notes["int_ops"]["skipped"])
    assert "not integer" in reasons["LN"] and "uniform" in reasons["SM"]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_vit_block_all_integer(tmp_path, tiny_qonnx) -> None:
    """The first TinyViT block of the chain tests' tiny encoder through the software flow with
    ``BuildOptions(int_ops=True)``: no LayerNorm / softmax / float elementwise layer is left, the only float stream
    is at the graph input (its layout shuffle and quantizer), and FINN's python execution of the final HW graph equals the streamlined
    graph with the integer layers (tolerance 0). Against the QONNX slice (float LayerNorm/softmax) the INT8
    output deviates by at most 2 steps on at most 5% of the values (measured: 2.2%, max 2 steps)."""
    from samfpga.hw.build.config import BuildConfig, BuildOptions
    from samfpga.hw.build.package import python_view
    from samfpga.hw.build.steps import STEPS, BuildContext
    from samfpga.hw.build.verify import slice_qonnx
    from samfpga.hw.finn_env import boot
    from tests.support.tiny_encoder import VIT_BLOCK

    # tiny_qonnx: tiny_encoder_qonnx() (seed 3, W8A8, PTQ on images(4, seed=0)), exported once per session
    sliced = slice_qonnx(tiny_qonnx, tmp_path / "blk.onnx", *VIT_BLOCK)
    boot(tmp_path / "finn")
    from qonnx.core.modelwrapper import ModelWrapper

    from samfpga.hw.build.int_ops import use_int_ops

    ctx = BuildContext(cfg=BuildConfig(board="kv260", output_dir=str(tmp_path / "w"),
                                       options=BuildOptions(int_ops=True)), out=tmp_path / "w")
    qonnx = ModelWrapper(str(sliced))
    model = qonnx
    for name in ("qonnx_to_finn", "tidy_up", "streamline"):
        model = STEPS[name](model, ctx)
    int_streamlined = use_int_ops(model)
    for name in ("convert_to_hw", "minimize_bit_width_initial", "partition", "specialize", "fold",
                 "minimize_bit_width", "transpose_decomposition"):
        model = STEPS[name](model, ctx)
    assert ctx.results.int_ops["skipped"] == [] and len(ctx.results.int_ops["layernorm"]) == 2
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("IntLayerNorm_rtl") == 2 and ops.count("IntSoftmax_rtl") == 1, ops
    assert not [o for o in ops if o.startswith(("LayerNorm", "HWSoftmax", "Elementwise"))], ops
    float_in = [n.name for n in model.graph.node if model.get_tensor_datatype(n.input[0]) == "FLOAT32"
                or not model.get_tensor_datatype(n.input[0]).is_integer()]
    # float streams only at the graph input: its layout shuffle and its quantizer (the first Thresholding)
    assert [f for f in float_in if f.startswith("Thresholding")] == ["Thresholding_rtl_0"], float_in
    assert all(f.startswith(("Thresholding", "InnerShuffle", "OuterShuffle", "PagePermute", "Reshape")) for f in float_in), \
        float_in

    rng = np.random.default_rng(7)
    x = rng.normal(size=qonnx.get_tensor_shape(VIT_BLOCK[0][0])).astype(np.float32)
    ref = _exec(int_streamlined, {int_streamlined.graph.input[0].name: x})
    hw = python_view(model)
    hin, hout = hw.graph.input[0].name, hw.graph.output[0].name
    got = _exec(hw, {hin: ref[hin]})[hout]
    assert np.array_equal(got, ref[hout])
    full = _exec(qonnx, {qonnx.graph.input[0].name: x})[qonnx.graph.output[0].name]
    out = ref[int_streamlined.graph.output[0].name]
    step = float(np.min(np.diff(np.unique(full))))
    dev = np.abs(out - full) / step
    assert dev.max() <= 2 and (dev > 0).mean() <= 0.05, (dev.max(), (dev > 0).mean())


def test_compact_bias_recognises_tinyvit_window_offsets() -> None:
    """The RTL stores TinyViT's attention bias as (head, |dy|, |dx|) entries; any other table is stored whole."""
    from samfpga.hw.custom_ops.intsoftmax import compact_bias

    side, heads = 4, 3
    n = side * side
    y, x = np.divmod(np.arange(n), side)
    idx = np.abs(y[:, None] - y[None, :]) * side + np.abs(x[:, None] - x[None, :])
    t = np.random.default_rng(0).integers(-500, 500, size=(heads, n))
    full = t[:, idx].reshape(heads * n, n)
    got = compact_bias(full)
    assert got is not None and got[0] == side
    # entries never addressed (none here: every offset occurs) would be 0; every addressed one is the table's
    assert np.array_equal(got[1].reshape(heads, n)[:, idx], t[:, idx])
    broken = full.copy()
    broken[5, 7] += 1  # one entry off the structure
    assert compact_bias(broken) is None
    assert compact_bias(full[:, :15]) is None  # row length not a square
    assert compact_bias(np.zeros((9 * 2, 9), dtype=np.int64)) is None  # side 3: not a power of two
