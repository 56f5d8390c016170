"""Arithmetic requantization: samfpga.kernels.requant (fixed-point model of finn-rtllib's requant.sv) against
FINN+'s Requant Python execution and decomposition, and samfpga.hw.build.requant.InferExactRequant against the
MultiThreshold it replaces. Tolerance 0 everywhere, over every input integer of the range."""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.kernels.requant import fixed_point_params, requant_fixed, requant_spec


def _po2_case(rng, c: int, in_bits: int, out_bits: int, signed: bool):
    """Per-channel power-of-two scales 2**-k and biases ``0.5 - T0/d + out_bias`` as a round-half-up quantizer's
    thresholds ``T0 + i*d`` give them (|bias| within what requant.sv accepts: below 2**(in_bits - out_bits))."""
    k = rng.integers(0, max(1, in_bits - out_bits + 2), size=c)
    d = 2.0**k
    lim = min(2 ** max(0, in_bits - out_bits) - 1, 2**out_bits)
    u = rng.integers(-lim, lim + 1, size=c) + rng.integers(0, d) / d  # T0/d - out_bias, on the 1/d grid
    return (1 / d).astype(np.float32), (0.5 - u).astype(np.float32)


@pytest.mark.parametrize("in_bits, out_bits, signed", [(8, 8, True), (12, 8, False), (20, 8, True), (16, 4, False)])
def test_fixed_point_kernel_equals_spec_and_finn(in_bits: int, out_bits: int, signed: bool) -> None:
    from qonnx.core.datatype import DataType

    from samfpga.hw.finn_env import boot

    boot(None)  # FINN settings without Vivado, for custom-op construction

    rng = np.random.default_rng(in_bits * 31 + out_bits)
    c = 6
    scale, bias = _po2_case(rng, c, in_bits, out_bits, signed)
    lo, hi = -(2 ** (in_bits - 1)), 2 ** (in_bits - 1) - 1
    xs = np.unique(np.concatenate([np.arange(max(lo, -4096), min(hi, 4095) + 1),
                                   np.arange(lo, hi + 1, max(1, (hi - lo) // 5000))])).astype(np.int64)
    x = np.repeat(xs[:, None], c, axis=1)
    p = fixed_point_params(scale, bias, in_bits, out_bits)
    fixed = requant_fixed(x, p, out_bits, signed)
    spec = requant_spec(x, scale, bias, out_bits, signed)
    np.testing.assert_array_equal(fixed, spec)
    assert np.unique(fixed).size > 2  # not all saturated

    # FINN+'s own decomposition and Python execution of the same layer
    from onnx import helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.util.basic import qonnx_make_model

    odt = DataType[f"{'INT' if signed else 'UINT'}{out_bits}"]
    idt = DataType[f"INT{in_bits}"]
    node = helper.make_node("Requant", ["x", "s", "b"], ["y"], domain="finn.custom_op.fpgadataflow",
                            backend="fpgadataflow", NumChannels=c, PE=1, inputDataType=idt.name,
                            outputDataType=odt.name, numInputVectors=[1, x.shape[0]])
    g = helper.make_graph([node], "rq", [helper.make_tensor_value_info("x", 1, [1, x.shape[0], c])],
                          [helper.make_tensor_value_info("y", 1, [1, x.shape[0], c])])
    m = ModelWrapper(qonnx_make_model(g))
    m.set_initializer("s", scale)
    m.set_initializer("b", bias)
    op = getCustomOp(m.graph.node[0])
    ref = op.decompose_params(m, 2)
    np.testing.assert_array_equal(np.array(ref["scale"]).ravel(), p.scale.astype(np.int64))
    np.testing.assert_array_equal(np.array(ref["bias"]).ravel(), p.bias.astype(np.int64))
    np.testing.assert_array_equal(np.array(ref["shift"]).ravel(), p.shift.astype(np.int64))
    from qonnx.core.onnx_exec import execute_onnx

    y = execute_onnx(m, {"x": x[None].astype(np.float32)})["y"][0]
    np.testing.assert_array_equal(y, fixed)


def test_bad_params_are_refused() -> None:
    with pytest.raises(ValueError, match="channel 0: scale 1000000000.0 too large"):
        fixed_point_params(np.array([1e9]), np.array([0.0]), 8, 8)
    with pytest.raises(ValueError, match="bias 1000000.0 overflows"):
        fixed_point_params(np.array([0.25]), np.array([1e6]), 8, 8)
    with pytest.raises(ValueError, match="must hold integers"):
        requant_fixed(np.array([0.5]), fixed_point_params(np.array([1.0]), np.array([0.0]), 8, 8), 8, True)


def _mt_model(thresholds: np.ndarray, idt: str, odt: str, out_bias: float, n_vec: int):
    from onnx import helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    c = thresholds.shape[0]
    node = helper.make_node("MultiThreshold", ["x", "t"], ["y"], domain="qonnx.custom_op.general",
                            out_dtype=odt, out_bias=out_bias, data_layout="NC", name="mt")
    g = helper.make_graph([node], "mt", [helper.make_tensor_value_info("x", 1, [n_vec, c])],
                          [helper.make_tensor_value_info("y", 1, [n_vec, c])])
    m = ModelWrapper(qonnx_make_model(g))
    m.set_initializer("t", thresholds.astype(np.float32))
    m.set_tensor_datatype("x", DataType[idt])
    m.set_tensor_datatype("y", DataType[odt])
    return m


def test_infer_exact_requant_matches_multithreshold_on_every_input() -> None:
    """Uniform power-of-two thresholds (clipped to the input range by RoundAndClipThresholds, as after
    streamlining) -> Requant, equal on every INT10 input; alternating (half-even) thresholds stay."""
    import json

    from qonnx.core.onnx_exec import execute_onnx

    from samfpga.hw.build.requant import InferExactRequant

    x = np.repeat(np.arange(-512, 512, dtype=np.float32)[:, None], 3, axis=1)
    t0 = np.array([-500, -266, -126])[:, None]  # |bias| < 8: what requant.sv accepts for INT10 -> INT8
    d = np.array([4, 2, 1])[:, None]
    uni = np.clip(t0 + d * np.arange(255)[None], -512, 512)
    m = _mt_model(uni, "INT10", "INT8", -128.0, x.shape[0])
    ref = execute_onnx(m, {"x": x})["y"]
    r = m.transform(InferExactRequant())
    assert [n.op_type for n in r.graph.node] == ["Requant"], r.get_metadata_prop("samfpga_thresholds_kept")
    np.testing.assert_array_equal(execute_onnx(r, {"x": x})["y"], ref)

    even = uni + (np.arange(255)[None] % 2 == 0)  # odd output levels moved above the tie: alternating steps
    m2 = _mt_model(np.clip(even, -512, 512), "INT10", "INT8", -128.0, x.shape[0])
    r2 = m2.transform(InferExactRequant())
    assert [n.op_type for n in r2.graph.node] == ["MultiThreshold"]
    assert "non-uniform" in json.loads(r2.get_metadata_prop("samfpga_thresholds_kept"))["mt"]


def test_infer_exact_requant_takes_any_step_exactly() -> None:
    """Thresholds ceil(T0 + i*d) of a non-power-of-two step (a LayerNorm's gamma, a weight scale folded in) ->
    Requant, equal to the MultiThreshold on every INT12 input in FINN's execution and in the RTL's fixed-point
    datapath; a table off that grid by one at a single threshold stays a MultiThreshold."""
    import json

    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.requant import InferExactRequant
    from samfpga.kernels.requant import fixed_point_params, requant_fixed

    x = np.repeat(np.arange(-2048, 2048, dtype=np.float32)[:, None], 3, axis=1)
    t0 = np.array([-1000.3, -700.71, -300.05])[:, None]
    d = np.array([7.83, 5.3, 2.37])[:, None]
    t = np.clip(np.ceil(t0 + d * np.arange(255)[None]), -2048, 2048)
    m = _mt_model(t, "INT12", "INT8", -128.0, x.shape[0])
    ref = execute_onnx(m, {"x": x})["y"]
    r = m.transform(InferExactRequant())
    assert [n.op_type for n in r.graph.node] == ["Requant"], r.get_metadata_prop("samfpga_thresholds_kept")
    np.testing.assert_array_equal(execute_onnx(r, {"x": x})["y"], ref)
    node = r.graph.node[0]
    p = fixed_point_params(r.get_initializer(node.input[1]), r.get_initializer(node.input[2]), 12, 8)
    np.testing.assert_array_equal(requant_fixed(x, p, 8, True), ref)
    assert getCustomOp(node).get_nodeattr("NumChannels") == 3

    off = t.copy()
    off[1, 100] += 1  # one threshold off the grid (float rounding in streamlining does this)
    m2 = _mt_model(off, "INT12", "INT8", -128.0, x.shape[0])
    r2 = m2.transform(InferExactRequant())
    assert [n.op_type for n in r2.graph.node] == ["MultiThreshold"]
    assert "non-uniform" in json.loads(r2.get_metadata_prop("samfpga_thresholds_kept"))["mt"]
