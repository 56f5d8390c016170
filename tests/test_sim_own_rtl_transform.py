"""UseOwnRTL maps the residual ElementwiseAdd and DuplicateStreams onto the project's RTL ops on Zynq
UltraScale+, keeping FINN's python execution result identical (exact integer equality)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from samfpga.hw.sim import nodes
from samfpga.hw.sim.finn_boot import boot_finn


def _residual_graph():
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    shape = [1, 4, 8]
    dup = helper.make_node("DuplicateStreams", ["x"], ["x0", "x1"], domain="finn.custom_op.fpgadataflow",
                           backend="fpgadataflow", name="dup", NumChannels=8, PE=2, NumOutputStreams=2,
                           inputDataType="INT8", numInputVectors=[1, 4])
    add = helper.make_node("ElementwiseAdd", ["x0", "x1"], ["y"], domain="finn.custom_op.fpgadataflow",
                           backend="fpgadataflow", name="add", lhs_dtype="INT8", rhs_dtype="INT8",
                           out_dtype="INT9", lhs_shape=shape, rhs_shape=shape, out_shape=shape, PE=2)
    vi = [helper.make_tensor_value_info(t, TensorProto.FLOAT, shape) for t in ("x0", "x1")]
    g = helper.make_graph([dup, add], "res", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], value_info=vi)
    m = ModelWrapper(qonnx_make_model(g, producer_name="test"))
    for t in ("x", "x0", "x1"):
        m.set_tensor_datatype(t, DataType["INT8"])
    m.set_tensor_datatype("y", DataType["INT9"])
    return m


def test_use_own_rtl_maps_residual_ops_and_keeps_results():
    boot_finn()
    from finn.core.onnx_exec import execute_onnx
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    from samfpga.hw.custom_ops.transforms import UseOwnRTL

    model = _residual_graph()
    x = nodes._rand("INT8", (1, 4, 8), np.random.default_rng(0))
    ref = execute_onnx(model, {"x": x})["y"]
    np.testing.assert_array_equal(ref, 2 * x)
    zynq_default = model.transform(SpecializeLayers(nodes.ZYNQ_PART))
    # with the own ops registered, FINN already prefers DuplicateStreams_rtl; the int residual add stays HLS
    assert [n.op_type for n in zynq_default.graph.node] == ["DuplicateStreams_rtl", "ElementwiseAdd_hls"]
    own = model.transform(UseOwnRTL())
    assert [n.op_type for n in own.graph.node] == ["DuplicateStreams", "AddStreams"]
    own = own.transform(SpecializeLayers(nodes.ZYNQ_PART))
    assert [n.op_type for n in own.graph.node] == ["DuplicateStreams_rtl", "AddStreams_rtl"]
    from qonnx.custom_op.registry import getCustomOp

    for n in own.graph.node:
        getCustomOp(n).set_nodeattr("exec_mode", "cppsim")
    np.testing.assert_array_equal(execute_onnx(own, {"x": x})["y"], ref)
