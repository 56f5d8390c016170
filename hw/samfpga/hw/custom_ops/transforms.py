"""Graph transformation mapping the encoder's stream ops onto the project's own RTL (for Zynq UltraScale+).

Run it on a FINN HW graph after ``convert_to_hw`` and before ``specialize_layers``:
    ElementwiseAdd with two streamed integer inputs of equal shape (the residual add)  -> AddStreams
    DuplicateStreams                                                                 -> preferred_impl_style rtl
FINN's own specialisation then picks AddStreams_rtl / DuplicateStreams_rtl (registered by importing
``samfpga.hw.custom_ops``) instead of HLS. Other ElementwiseAdd nodes (broadcast, constant operand, float) are
left to FINN.
"""

from __future__ import annotations

from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

import samfpga.hw.custom_ops  # noqa: F401  (registers AddStreams / *_rtl with FINN)
from samfpga.hw import HW_DOMAIN
from samfpga.hw.custom_ops.addstreams import sum_datatype


def _residual_add(model, node) -> bool:
    if node.op_type != "ElementwiseAdd" or node.domain != HW_DOMAIN:
        return False
    op = getCustomOp(node)
    if op.get_nodeattr("lhs_style") != "input" or op.get_nodeattr("rhs_style") != "input":
        return False
    if any(model.get_initializer(t) is not None for t in node.input):
        return False
    lhs, rhs = list(op.get_nodeattr("lhs_shape")), list(op.get_nodeattr("rhs_shape"))
    dts = [DataType[op.get_nodeattr("lhs_dtype")], DataType[op.get_nodeattr("rhs_dtype")]]
    return lhs == rhs == list(op.get_nodeattr("out_shape")) and all(d.is_integer() for d in dts)


class UseOwnRTL(Transformation):
    """Replace residual ElementwiseAdd nodes by AddStreams and prefer RTL for DuplicateStreams (see module doc)."""

    def apply(self, model):
        graph = model.graph
        for i, node in enumerate(list(graph.node)):
            if node.op_type == "DuplicateStreams" and node.domain == HW_DOMAIN:
                op = getCustomOp(node)
                if op.get_nodeattr("preferred_impl_style") != "rtl":
                    op.set_nodeattr("preferred_impl_style", "rtl")
            elif _residual_add(model, node):
                op = getCustomOp(node)
                a, b = DataType[op.get_nodeattr("lhs_dtype")], DataType[op.get_nodeattr("rhs_dtype")]
                # the smallest type holding every sum (FINN's ElementwiseAdd says INT32): the following layers
                # (thresholds) then compare on the real width; the RTL never wraps
                odt = sum_datatype(a, b)
                shape = list(op.get_nodeattr("out_shape"))
                new = helper.make_node(
                    "AddStreams", list(node.input), list(node.output), domain=HW_DOMAIN, backend="fpgadataflow",
                    name=node.name, NumChannels=shape[-1], PE=op.get_nodeattr("PE"),
                    inputDataTypes=[a.name, b.name], outputDataType=odt.name, numInputVectors=shape[:-1],
                    preferred_impl_style="rtl",
                )
                graph.node.remove(node)
                graph.node.insert(i, new)
                model.set_tensor_datatype(node.output[0], odt)
        return model, False
