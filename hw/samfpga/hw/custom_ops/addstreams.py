"""AddStreams: integer element-wise add of two equally shaped streams (the encoder's residual add).

``AddStreams`` is the HW abstraction (python execution: ``samfpga.kernels.elementwise.add``, exact);
``AddStreams_rtl`` wraps hw/samfpga/hw/rtl/add_streams.sv. Input layout: ``numInputVectors + [NumChannels]``,
folded by ``PE``.
"""

from __future__ import annotations

import numpy as np
from finn.custom_op.fpgadataflow import register_custom_op as register_hw_op
from finn.custom_op.fpgadataflow.rtl import register_custom_op as register_rtl_op
from onnx import helper
from qonnx.core.datatype import DataType

from samfpga.hw.custom_ops.rtl_base import (
    ChannelStreamOp,
    OwnRTLBackend,
    check_output_range,
    core_instance_text,
)
from samfpga.kernels import elementwise


def sum_datatype(a: DataType, b: DataType) -> DataType:
    """Smallest FINN integer datatype holding every a + b."""
    lo = int(a.min()) + int(b.min())
    hi = int(a.max()) + int(b.max())
    if lo >= 0:
        return DataType.get_smallest_possible(hi)
    return DataType.get_smallest_possible(min(lo, -hi - 1))


@register_hw_op
class AddStreams(ChannelStreamOp):
    """out[..., c] = in0[..., c] + in1[..., c] on integers; both inputs share shape and folding."""

    def get_nodeattr_types(self) -> dict:
        attrs = {
            "inputDataTypes": ("strings", True, [""]),
            "outputDataType": ("s", False, ""),
        }
        attrs.update(super().get_nodeattr_types())
        return attrs

    def get_input_datatype(self, ind: int = 0) -> DataType:
        return DataType[self.get_nodeattr("inputDataTypes")[ind]]

    def get_output_datatype(self, ind: int = 0) -> DataType:
        odt = self.get_nodeattr("outputDataType")
        return DataType[odt] if odt else sum_datatype(self.get_input_datatype(0), self.get_input_datatype(1))

    def make_shape_compatible_op(self, model):
        node = self.onnx_node
        return helper.make_node("Add", [node.input[0], node.input[1]], [node.output[0]])

    def infer_node_datatype(self, model) -> None:
        dts = [model.get_tensor_datatype(t).name for t in self.onnx_node.input[:2]]
        self.set_nodeattr("inputDataTypes", dts)
        model.set_tensor_datatype(self.onnx_node.output[0], self.get_output_datatype())

    def verify_node(self) -> list[str]:
        msgs = []
        dts = self.get_nodeattr("inputDataTypes")
        if len(dts) != 2 or not all(DataType[d].is_integer() for d in dts):
            msgs.append(f"AddStreams needs two integer input datatypes, got {dts}")
        return msgs

    def execute_node(self, context, graph) -> None:
        node = self.onnx_node
        try:
            out = elementwise.add(context[node.input[0]], context[node.input[1]])
        except ValueError as exc:
            raise ValueError(f"{node.name}: {exc}") from exc
        odt = self.get_output_datatype()
        check_output_range(node.name, out, odt)
        context[node.output[0]] = out.astype(np.float32).reshape(self.get_normal_output_shape())


@register_rtl_op
class AddStreams_rtl(AddStreams, OwnRTLBackend):
    """RTL variant: hw/samfpga/hw/rtl/add_streams.sv, one output register, full throughput (one beat per cycle)."""

    RTL_SOURCES = ("add_streams.sv",)

    def core_instance(self, model) -> str:
        a, b, o = self.get_input_datatype(0), self.get_input_datatype(1), self.get_output_datatype()
        params = (f".PE({self.get_nodeattr('PE')}), .A_BITS({a.bitwidth()}), .B_BITS({b.bitwidth()}), "
                  f".O_BITS({o.bitwidth()}), .A_SIGNED({int(a.signed())}), .B_SIGNED({int(b.signed())})")
        return core_instance_text("add_streams", params, {"a": "in0", "b": "in1", "o": "out0"})
