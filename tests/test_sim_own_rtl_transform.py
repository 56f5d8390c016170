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


def _vvau_split_graph(no_activation: int = 1):
    """VVAU (standalone, depthwise 3x3 windows) -> StreamingSplit into two halves of the channels."""
    vv = nodes.vvau(ch=8, pe=2, simd=3, idt="INT8", wdt="INT4", odt="INT16")
    vv.attrs["noActivation"] = no_activation
    vv.attrs.pop("preferred_impl_style")
    split = nodes.streaming_split(channels=(4, 4), simd=2, n=3, dt="INT16")
    split.attrs.pop("preferred_impl_style")
    split.attrs["numInputVectors"] = [1, 3, 3]
    split.inputs = {"vvau_out": ((1, 3, 3, 8), "INT16")}
    split.outputs = {"s0": ((1, 3, 3, 4), "INT16"), "s1": ((1, 3, 3, 4), "INT16")}
    return nodes._make_graph([vv, split])


def test_use_own_rtl_maps_depthwise_vvau_and_split_and_keeps_results():
    boot_finn()
    from finn.core.onnx_exec import execute_onnx
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.custom_ops.transforms import UseOwnRTL

    model = _vvau_split_graph()
    x = nodes._rand("INT8", (1, 3, 3, 72), np.random.default_rng(1))
    ref = execute_onnx(model, {"vvau_in": x})
    assert np.abs(ref["s0"]).max() > 0
    # before folding: the split prefers RTL, the VVAU is left for FINN's folding (HLS on Zynq: its RTL needs DSP58)
    early = model.transform(UseOwnRTL()).transform(SpecializeLayers(nodes.ZYNQ_PART))
    assert [n.op_type for n in early.graph.node] == ["VVAU_hls", "StreamingSplit_rtl"]
    # after folding (as a folding step leaves it: PE 4 set on the HLS node): VVAU_hls -> DepthwiseVVAU, PE kept
    getCustomOp(early.graph.node[0]).set_nodeattr("PE", 4)
    own = early.transform(UseOwnRTL(after_folding=True))
    assert [n.op_type for n in own.graph.node] == ["DepthwiseVVAU", "StreamingSplit_rtl"]
    op = getCustomOp(own.graph.node[0])
    assert op.get_nodeattr("mem_mode") == "internal_embedded" and op.get_nodeattr("PE") == 4
    own = own.transform(SpecializeLayers(nodes.ZYNQ_PART))
    assert [n.op_type for n in own.graph.node] == ["DepthwiseVVAU_rtl", "StreamingSplit_rtl"]
    # PE 4 (not the PE 2 the reference ran with) changes only the standalone window order: feed the input in it
    x4 = x.reshape(1, 3, 3, 4, 9, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 3, 3, 9, 8)  # (K, C) order
    x4 = x4.reshape(1, 3, 3, 9, 2, 4).transpose(0, 1, 2, 4, 3, 5).reshape(1, 3, 3, 72)  # (C/4, K, 4) order
    got = execute_onnx(own, {"vvau_in": x4})
    for t in ("s0", "s1"):
        np.testing.assert_array_equal(got[t], ref[t])
    # on Versal FINN's own VVAU_rtl (DSP58) stays
    versal = UseOwnRTL("xcvc1902-vsva2197-2MP-e-S", after_folding=True).apply(_vvau_split_graph())[0]
    assert versal.graph.node[0].op_type == "VVAU"


def test_use_own_rtl_leaves_vvau_with_fused_thresholds():
    boot_finn()
    from samfpga.hw.custom_ops.transforms import UseOwnRTL

    model = _vvau_split_graph(no_activation=0)
    assert [n.op_type for n in model.transform(UseOwnRTL(after_folding=True)).graph.node] == ["VVAU", "StreamingSplit"]
