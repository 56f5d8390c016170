"""samfpga.models.export.onnx_fusion.fuse_skip_layer_norm: the rewritten graph computes what the original did
(onnxruntime, max abs diff <= 1e-5 on unit-scale layer-norm outputs), with a broadcast residual as the split
decoder's first layer has; a pattern whose intermediate sum is used elsewhere is left alone."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from samfpga.models.export.onnx_fusion import fuse_skip_layer_norm


def _graph(expose_inner: bool, residual_batch: int) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    c = 8
    inits = [numpy_helper.from_array(rng.normal(size=(6, c)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(size=(c,)).astype(np.float32), "bias"),
             numpy_helper.from_array(rng.normal(size=(c,)).astype(np.float32), "gamma"),
             numpy_helper.from_array(rng.normal(size=(c,)).astype(np.float32), "beta")]
    nodes = [helper.make_node("MatMul", ["a", "w"], ["mm"], name="mm"),
             helper.make_node("Add", ["mm", "bias"], ["inner"], name="inner"),
             helper.make_node("Add", ["x", "inner"], ["outer"], name="outer"),
             helper.make_node("Identity", ["gamma"], ["gamma_id"], name="gamma_id"),  # as the exporter shares weights
             helper.make_node("LayerNormalization", ["outer", "gamma_id", "beta"], ["y"], name="ln", axis=-1,
                              epsilon=1e-5)]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if expose_inner:
        outputs.append(helper.make_tensor_value_info("inner", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["b", 5, 6]),
                                           helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         [residual_batch or "b", 5, c])],
                              outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def test_fused_graph_computes_the_same():
    rng = np.random.default_rng(1)
    for residual_batch in (0, 1):  # residual (B, S, C), and (1, S, C) broadcast over the batch
        model = _graph(False, residual_batch)
        feeds = {"a": rng.normal(size=(3, 5, 6)).astype(np.float32),
                 "x": rng.normal(size=(3 if residual_batch == 0 else 1, 5, 8)).astype(np.float32)}
        ref = _run(model, feeds)[0]
        assert fuse_skip_layer_norm(model) == 1
        assert [n.op_type for n in model.graph.node] == ["MatMul", "Identity", "SkipLayerNormalization"]
        got = _run(model, feeds)[0]
        assert np.abs(got - ref).max() <= 1e-5


def test_shared_intermediate_is_not_fused():
    model = _graph(True, 0)
    assert fuse_skip_layer_norm(model) == 0
    assert "SkipLayerNormalization" not in {n.op_type for n in model.graph.node}
