"""Streamlining and Shuffle decomposition of the FINN flow (hw/samfpga/hw/build/streamline_rules.py, steps
``streamline`` and ``transpose_decomposition``) on the first TinyViT block of the chain tests' tiny encoder.

The block (LayerNorm, attention with QK^T / softmax / AV, residual adds, local depthwise conv, LayerNorm + MLP)
runs through the software steps up to ``transpose_decomposition``; checked:
  * FastStreamline gives the same graph as FINN+'s Streamline (serialized models equal);
  * after the flow every MVAU / AddStreams input stream is integer-typed, and a Thresholding layer takes a float
    stream only behind a float layer (LayerNorm, HWSoftmax) or the graph input: no float scale multiplication is
    left in front of an integer layer (the one left is the QK^T scale before the softmax); the residual adds
    are the project's AddStreams_rtl;
  * no ``Shuffle`` is left (PagePermute_rtl, or InnerShuffle_rtl / OuterShuffle_hls, instead);
  * the final graph, executed in Python (FINN's per-layer Python models of the specialised layers), equals the
    ``convert_to_hw`` graph and the QONNX slice: tolerance 0.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from samfpga.hw import HW_DOMAIN
from samfpga.hw.build.package import python_view
from samfpga.hw.build.verify import execute, slice_qonnx
from tests.support.graphs import thresholds, tiny_graph
from tests.support.tiny_encoder import VIT_BLOCK

STEPS = ("qonnx_to_finn", "tidy_up", "streamline", "convert_to_hw", "minimize_bit_width_initial", "partition",
         "specialize", "fold", "minimize_bit_width", "transpose_decomposition")
FLOAT_LAYERS = ("LayerNorm", "HWSoftmax")  # FINN+ runs these in float; their outputs are float streams


@pytest.fixture(scope="module")
def block(tmp_path_factory, tiny_qonnx):
    """(QONNX slice path, input, {step: graph after it}, build results) for the first TinyViT block of
    ``tiny_qonnx`` (``tiny_encoder_qonnx()``: seed 3, W8A8, PTQ on images(4, seed=0); exported once per session)."""
    d = tmp_path_factory.mktemp("streamline")
    sliced = slice_qonnx(tiny_qonnx, d / "vit_block.onnx", *VIT_BLOCK)

    from samfpga.hw.build.config import BuildConfig, BuildOptions
    from samfpga.hw.build.steps import STEPS as ALL_STEPS
    from samfpga.hw.build.steps import BuildContext
    from samfpga.hw.finn_env import boot

    boot(d / "finn_build")
    from qonnx.core.modelwrapper import ModelWrapper

    import samfpga.hw.custom_ops  # noqa: F401

    # float LayerNorm / softmax kept (the float-LayerNorm model's HW layers are what this test checks)
    ctx = BuildContext(cfg=BuildConfig(board="kv260", output_dir=str(d / "work"), options=BuildOptions(int_ops=False)),
                       out=d / "work")
    model = ModelWrapper(str(sliced))
    x = np.random.default_rng(7).normal(size=model.get_tensor_shape(VIT_BLOCK[0][0])).astype(np.float32)
    graphs = {}
    for name in STEPS:
        model = ALL_STEPS[name](model, ctx)
        graphs[name] = copy.deepcopy(model)
    return sliced, x, graphs, ctx.results


def _source(model, tensor: str):
    """The node producing ``tensor``, looking through pure data-movement layers (Shuffles, Reshape)."""
    node = model.find_producer(tensor)
    while node is not None and node.op_type.split("_")[0] in ("InnerShuffle", "OuterShuffle", "Shuffle", "PagePermute",
                                                                "Reshape", "DuplicateStreams", "StreamingSplit"):
        node = model.find_producer(node.input[0])
    return node


def test_fast_streamline_is_finns_streamline(block) -> None:
    from finn.transformation.streamline import Streamline

    from samfpga.hw.build.fast_streamline import FastStreamline

    tidy = block[2]["tidy_up"]
    a = tidy.transform(FastStreamline())
    b = tidy.transform(Streamline())
    assert len(a.graph.node) < len(tidy.graph.node)  # it did streamline something
    assert a.model.SerializeToString() == b.model.SerializeToString()


def test_integer_streams_into_integer_layers(block) -> None:
    model = block[2]["transpose_decomposition"]
    ops = [n.op_type for n in model.graph.node]
    assert "Shuffle" not in ops and {"InnerShuffle_rtl", "OuterShuffle_hls", "PagePermute_rtl"} & set(ops), ops
    assert "ElementwiseAdd_hls" not in ops and ops.count("AddStreams_rtl") == 2, ops  # the two residual adds
    # a float scale multiplication remains only in front of a float layer (QK^T scale before the softmax); the
    # output's dequantization scale is a host Mul
    muls = [(n.name, [c.op_type for c in model.find_consumers(n.output[0])])
            for n in model.graph.node if n.op_type.startswith("ElementwiseMul")]
    assert len(muls) == 1 and muls[0][1] == ["HWSoftmax_hls"], muls
    # the only host node is that Mul, after the HW layers: FINN's dataflow partition applies (the build goes on
    # with the HW partition alone)
    assert [op for _, op in block[3].host_nodes] == ["Mul"], block[3].host_nodes
    assert all(n.domain.startswith(HW_DOMAIN) for n in model.graph.node)
    bad = []
    for n in model.graph.node:
        kind = n.op_type.rsplit("_", 1)[0]
        if kind not in ("MVAU", "VVAU", "DepthwiseVVAU", "AddStreams", "Thresholding"):
            continue
        for t in n.input:
            if model.get_initializer(t) is not None or model.get_tensor_datatype(t).is_integer():
                continue
            src = _source(model, t)
            from_float_layer = src is None or src.op_type.rsplit("_", 1)[0] in FLOAT_LAYERS
            if kind != "Thresholding" or not from_float_layer:
                bad.append((n.name, t, src.op_type if src is not None else "graph input"))
    assert not bad, f"float streams into integer layers: {bad}"


def test_flow_bit_exact(block) -> None:
    """QONNX slice == convert_to_hw graph; the HW partition after transpose_decomposition == the same graph's
    tensor at the partition output (before the host's output scale Mul)."""
    sliced, x, graphs, _ = block
    from finn.core.onnx_exec import execute_onnx
    from qonnx.core.modelwrapper import ModelWrapper

    ref = execute(ModelWrapper(str(sliced)), x)
    hw_graph = graphs["convert_to_hw"]
    ctx = execute_onnx(hw_graph, {hw_graph.graph.input[0].name: x}, return_full_exec_context=True)
    np.testing.assert_array_equal(ctx[hw_graph.graph.output[0].name].reshape(ref.shape), ref)
    assert np.unique(ref).size > 32  # a non-trivial block output
    final_graph = python_view(graphs["transpose_decomposition"])
    final = execute(final_graph, x)
    np.testing.assert_array_equal(final, ctx[final_graph.graph.output[0].name].reshape(final.shape))


def test_rules_on_conv_output_and_residual_join() -> None:
    """Per-channel po2 scale + bias behind Reshape/Transpose, and a join of two equally (po2) scaled branches:
    after StreamlineExtra no Mul/Add constant is left in front of the thresholds, outputs equal (tolerance 0).
    A join with a non-po2 scale is left alone (its move would round differently)."""
    from finn.core.onnx_exec import execute_onnx
    from onnx import helper

    from samfpga.hw.build.streamline_rules import StreamlineExtra
    from samfpga.hw.finn_env import boot

    boot()
    mt = dict(domain="qonnx.custom_op.general", out_dtype="UINT4")
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Mul", ["x", "s"], ["xs"]), helper.make_node("Add", ["xs", "b"], ["xb"]),
        helper.make_node("Reshape", ["xb", "shape"], ["xr"]), helper.make_node("Transpose", ["xr"], ["xt"], perm=[0, 2, 1]),
        helper.make_node("MultiThreshold", ["xt", "T"], ["y0"], **mt),
        helper.make_node("MultiThreshold", ["zf", "T2"], ["z"], **mt),
        helper.make_node("Mul", ["y0", "s2"], ["a"]), helper.make_node("Mul", ["z", "s2"], ["c"]),
        helper.make_node("Add", ["a", "c"], ["r"]), helper.make_node("MultiThreshold", ["r", "T2"], ["y"], **mt),
    ]
    scale = np.exp2(rng.integers(-8, -4, size=(1, 4, 1, 1)))
    inits = {"s": scale, "b": rng.normal(size=(1, 4, 1, 1)) * 0.01, "shape": [1, 4, 6], "T": thresholds(4) * 0.05,
             "s2": np.float32(2.0 ** -3), "T2": thresholds(1)}
    model = tiny_graph(nodes, {"x": [1, 4, 2, 3], "zf": [1, 6, 4]}, "y", inits, {"x": "INT8"})
    out = model.transform(StreamlineExtra())
    assert [n.op_type for n in out.graph.node if n.op_type in ("Mul", "Add")] == ["Add"]  # the integer join
    feeds = {"x": rng.integers(-128, 128, size=(1, 4, 2, 3)).astype(np.float32),
             "zf": rng.normal(size=(1, 6, 4)).astype(np.float32)}
    np.testing.assert_array_equal(execute_onnx(out, feeds)["y"], execute_onnx(model, feeds)["y"])

    inits["s2"] = np.float32(0.3)
    odd = tiny_graph(nodes, {"x": [1, 4, 2, 3], "zf": [1, 6, 4]}, "y", inits, {"x": "INT8"})
    kept = odd.transform(StreamlineExtra())
    assert sum(n.op_type == "Mul" for n in kept.graph.node) == 2  # the two 0.3 scales stay in front of the join


def test_per_channel_po2_scale_moves_into_weights_before_layernorm() -> None:
    """MatMul -> Mul(per-channel po2) -> LayerNorm (the neck's 1x1 conv with per-channel weight scales): the
    scale ratios move into the integer weight columns and the uniform rest into LayerNorm's epsilon, so the
    LayerNorm input is the integer accumulator; outputs equal (tolerance 0). A non-po2 scale is left alone."""
    from finn.core.onnx_exec import execute_onnx
    from onnx import helper

    from samfpga.hw.build.streamline_rules import StreamlineExtra
    from samfpga.hw.finn_env import boot

    boot()
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["acc"]), helper.make_node("Mul", ["acc", "s"], ["xs"]),
             helper.make_node("LayerNormalization", ["xs", "g", "b"], ["y"], axis=-1, epsilon=1e-6)]
    c = 8
    inits = {"W": rng.integers(-127, 128, size=(16, c)), "s": np.exp2(rng.integers(-14, -11, size=(1, 1, c))),
             "g": rng.normal(size=c), "b": rng.normal(size=c)}
    model = tiny_graph(nodes, {"x": [1, 5, 16]}, "y", inits, {"x": "INT8", "W": "INT8"})
    out = model.transform(StreamlineExtra())
    assert "Mul" not in [n.op_type for n in out.graph.node]
    ln = next(n for n in out.graph.node if n.op_type == "LayerNormalization")
    assert out.get_tensor_datatype(ln.input[0]).is_integer()
    feeds = {"x": rng.integers(-128, 128, size=(1, 5, 16)).astype(np.float32)}
    np.testing.assert_array_equal(execute_onnx(out, feeds)["y"], execute_onnx(model, feeds)["y"])

    inits["s"] = inits["s"] * 0.3
    kept = tiny_graph(nodes, {"x": [1, 5, 16]}, "y", inits, {"x": "INT8", "W": "INT8"}).transform(StreamlineExtra())
    assert "Mul" in [n.op_type for n in kept.graph.node]
