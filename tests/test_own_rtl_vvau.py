"""Own depthwise VVAU (FINN VVAU semantics, no activation) for Zynq UltraScale+: the numpy kernel and the custom
op's python execution against FINN's own VVAU python execution (tolerance 0), UseOwnRTL mapping the Zynq HLS
VVAU onto it, and a negative control of the Verilator bench (slow). The benches themselves (``dw_vvau*``,
bit-exact against the python execution) run in tests/test_sim_benches.py with the whole catalogue."""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.hw.sim import nodes
from samfpga.hw.sim.finn_boot import boot_finn
from samfpga.kernels import vvau as kernel


def test_kernel_matches_direct_convolution():
    rng = np.random.default_rng(0)
    c, kh, kw = 6, 3, 3
    img = rng.integers(-128, 128, size=(5, 5, c))
    w = rng.integers(-8, 8, size=(c, kh * kw))
    # windows in (K, C) order as an im2col produces them
    win = np.stack([img[i:i + 3, j:j + 3, :].reshape(9, c) for i in range(3) for j in range(3)]).reshape(3, 3, 9, c)
    ref = np.zeros((3, 3, c), dtype=np.int64)
    for i in range(3):
        for j in range(3):
            for ch in range(c):
                ref[i, j, ch] = sum(int(img[i + a, j + b, ch]) * int(w[ch, a * 3 + b]) for a in range(3) for b in range(3))
    np.testing.assert_array_equal(kernel.depthwise(win, w), ref)
    # the interleaved stream order (C//pe, K, pe) untangles to the same windows
    pe = 2
    inter = win.reshape(3, 3, 9, c // pe, pe).transpose(0, 1, 3, 2, 4).reshape(3, 3, 9 * c)
    np.testing.assert_array_equal(kernel.window_to_kc(inter, c, 9, pe), win)
    with pytest.raises(ValueError, match="integer"):
        kernel.depthwise(win + 0.5, w)
    with pytest.raises(ValueError, match="does not divide"):
        kernel.window_to_kc(inter, c, 9, 4)


def _exec(spec: nodes.NodeSpec, x: np.ndarray) -> np.ndarray:
    from finn.core.onnx_exec import execute_onnx

    model = nodes._make_graph([spec])
    return execute_onnx(model, {next(iter(spec.inputs)): x})[next(iter(spec.outputs))]


@pytest.mark.parametrize("pe,simd,idt,wdt", [(2, 3, "INT8", "INT4"), (4, 1, "UINT8", "INT8"), (8, 9, "INT4", "UINT4")])
def test_python_model_equals_finn_vvau(pe, simd, idt, wdt):
    boot_finn()
    import samfpga.hw.custom_ops  # noqa: F401

    finn = nodes.vvau(ch=8, pe=pe, simd=simd, idt=idt, wdt=wdt, odt="INT32")
    own = nodes.depthwise_vvau(ch=8, pe=pe, simd=simd, idt=idt, wdt=wdt, odt="INT32")
    x = nodes._rand(idt, finn.inputs["vvau_in"][0], np.random.default_rng(pe))
    ref = _exec(finn, x)
    assert np.abs(ref).max() > 0
    np.testing.assert_array_equal(_exec(own, x), ref)


def test_python_model_refuses_overflow_and_fused_thresholds():
    boot_finn()
    import samfpga.hw.custom_ops  # noqa: F401

    spec = nodes.depthwise_vvau(ch=4, pe=2, simd=3, idt="INT8", wdt="INT4", odt="INT8")
    x = np.full(spec.inputs["vvau_in"][0], 127, dtype=np.float32)
    spec.initializers["vvau_w"] = (np.full((4, 1, 3, 3), 7, dtype=np.float32), "INT4")
    with pytest.raises(ValueError, match="exceeds INT8"):
        _exec(spec, x)
    spec = nodes.depthwise_vvau(ch=4, pe=2, simd=3)
    spec.attrs["noActivation"] = 0
    with pytest.raises(ValueError, match="noActivation=0"):
        _exec(spec, np.zeros(spec.inputs["vvau_in"][0], dtype=np.float32))


def test_rtl_weight_word_order():
    """Word nf*SF + sf, element s*PE + p = weight of channel nf*PE + p at kernel position sf*SIMD + s."""
    boot_finn()
    from qonnx.custom_op.registry import getCustomOp

    spec = nodes.depthwise_vvau(ch=4, pe=2, simd=3, wdt="UINT4")
    w = np.arange(36).reshape(4, 1, 3, 3) % 16
    spec.initializers["vvau_w"] = (w.astype(np.float32), "UINT4")
    model = nodes.build_hw_graph([spec])
    op = getCustomOp(model.graph.node[0])
    lit = op.weight_words(model)
    bits, value = lit.split("'h")
    assert int(bits) == 36 * 4
    value = int(value, 16)
    nibble = [(value >> (4 * i)) & 15 for i in range(36)]
    pe, simd, sf = 2, 3, 3
    for nf in range(2):
        for f in range(sf):
            for s in range(simd):
                for p in range(pe):
                    i = (nf * sf + f) * simd * pe + s * pe + p
                    assert nibble[i] == w[nf * pe + p, 0].reshape(9)[f * simd + s]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_detects_a_wrong_weight(tmp_path):
    """Negative control: one weight changed in the HDL only (FINN's execution keeps the original) must show up
    as mismatching words."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.sim.runner import run_bench

    spec = nodes.depthwise_vvau()
    model = nodes.build_hw_graph([spec])
    op = getCustomOp(model.graph.node[0])
    w = model.get_initializer("vvau_w")
    w2 = w.copy()
    w2[0, 0, 0, 0] = 1 if w[0, 0, 0, 0] != 1 else 2
    model.set_initializer("vvau_w", w2)
    op.generate_hdl(model, nodes.ZYNQ_PART, nodes.CLK_NS)
    model.set_initializer("vvau_w", w)
    x = nodes._rand("INT8", spec.inputs["vvau_in"][0], np.random.default_rng(4))
    res = run_bench("dw_vvau_wrong_weight", model, {"vvau_in": x}, tmp_path / "b", pause=0.0)
    assert res.words_compared > 0
    assert 0 < res.mismatches < res.words_compared


def test_python_model_behind_sliding_window_equals_finn_and_convolution():
    """SWG_rtl (depthwise, SIMD = PE) -> VVAU: FINN's python execution of the specialised generator emits the
    hardware order (C/PE, K, PE); FINN's VVAU (its Versal VVAU_rtl) and the own op (Zynq) then untangle by PE.
    Both equal a direct depthwise convolution (tolerance 0)."""
    boot_finn()
    from finn.core.onnx_exec import execute_onnx
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.custom_op.registry import getCustomOp

    import samfpga.hw.custom_ops  # noqa: F401

    x = nodes._rand("INT8", (1, 5, 5, 8), np.random.default_rng(6))
    outs = {}
    for op_type, part in (("VVAU", nodes.VERSAL_PART), ("DepthwiseVVAU", nodes.ZYNQ_PART)):
        specs = nodes.depthwise_conv_segment()
        specs[1].op_type = op_type
        if op_type == "VVAU":
            specs[1].attrs["mem_mode"] = "internal_decoupled"
        model = nodes._make_graph(specs).transform(SpecializeLayers(part))
        assert [n.op_type for n in model.graph.node] == ["ConvolutionInputGenerator_rtl", f"{op_type}_rtl"]
        for n in model.graph.node:
            getCustomOp(n).set_nodeattr("exec_mode", "cppsim")  # the python models of the specialised layers
        outs[op_type] = execute_onnx(model, {model.graph.input[0].name: x})[model.graph.output[0].name]
    w = nodes._rand("INT4", (8, 1, 3, 3), np.random.default_rng(5)).reshape(8, 9)
    win = np.stack([x[0, i:i + 3, j:j + 3, :].reshape(9, 8) for i in range(3) for j in range(3)]).reshape(3, 3, 9, 8)
    ref = kernel.depthwise(win, w)
    np.testing.assert_array_equal(outs["VVAU"].reshape(3, 3, 8), ref)
    np.testing.assert_array_equal(outs["DepthwiseVVAU"].reshape(3, 3, 8), ref)
