"""AddStreams: integer element-wise add of two equally shaped streams (the encoder's residual add).

``AddStreams`` is the HW abstraction (python execution: exact integer sum); ``AddStreams_rtl`` generates a
wrapper around hw/samfpga/hw/rtl/add_streams.sv. Input layout: ``numInputVectors + [NumChannels]``, folded by ``PE``.
"""

from __future__ import annotations

import numpy as np
from finn.custom_op.fpgadataflow import register_custom_op as register_hw_op
from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp
from finn.custom_op.fpgadataflow.rtl import register_custom_op as register_rtl_op
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend
from onnx import helper
from qonnx.core.datatype import DataType

from samfpga.hw.custom_ops._rtlgen import ipi_commands, rtl_source, write_wrapper


def sum_datatype(a: DataType, b: DataType) -> DataType:
    """Smallest FINN integer datatype holding every a + b."""
    lo = int(a.min()) + int(b.min())
    hi = int(a.max()) + int(b.max())
    if lo >= 0:
        return DataType.get_smallest_possible(hi)
    return DataType.get_smallest_possible(min(lo, -hi - 1))


@register_hw_op
class AddStreams(HWCustomOp):
    """out[..., c] = in0[..., c] + in1[..., c] on integers; both inputs share shape and folding."""

    def get_nodeattr_types(self) -> dict:
        attrs = {
            "NumChannels": ("i", True, 0),
            "PE": ("i", True, 0),
            "inputDataTypes": ("strings", True, [""]),
            "outputDataType": ("s", False, ""),
            "numInputVectors": ("ints", False, [1]),
        }
        attrs.update(super().get_nodeattr_types())
        return attrs

    def get_normal_input_shape(self, ind: int = 0) -> tuple[int, ...]:
        return (*self.get_nodeattr("numInputVectors"), self.get_nodeattr("NumChannels"))

    def get_folded_input_shape(self, ind: int = 0) -> tuple[int, ...]:
        ch, pe = self.get_nodeattr("NumChannels"), self.get_nodeattr("PE")
        if ch % pe:
            raise ValueError(f"{self.onnx_node.name}: PE={pe} does not divide NumChannels={ch}")
        return (*self.get_nodeattr("numInputVectors"), ch // pe, pe)

    def get_normal_output_shape(self, ind: int = 0) -> tuple[int, ...]:
        return self.get_normal_input_shape()

    def get_folded_output_shape(self, ind: int = 0) -> tuple[int, ...]:
        return self.get_folded_input_shape()

    def get_input_datatype(self, ind: int = 0) -> DataType:
        return DataType[self.get_nodeattr("inputDataTypes")[ind]]

    def get_output_datatype(self, ind: int = 0) -> DataType:
        odt = self.get_nodeattr("outputDataType")
        return DataType[odt] if odt else sum_datatype(self.get_input_datatype(0), self.get_input_datatype(1))

    def get_instream_width(self, ind: int = 0) -> int:
        return self.get_nodeattr("PE") * self.get_input_datatype(ind).bitwidth()

    def get_outstream_width(self, ind: int = 0) -> int:
        return self.get_nodeattr("PE") * self.get_output_datatype().bitwidth()

    def get_number_output_values(self) -> int:
        return int(np.prod(self.get_folded_output_shape()[:-1]))

    def get_exp_cycles(self) -> int:
        return int(np.prod(self.get_folded_output_shape()[:-1]))

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
        a = np.asarray(context[node.input[0]], dtype=np.float64)
        b = np.asarray(context[node.input[1]], dtype=np.float64)
        if a.shape != b.shape:
            raise ValueError(f"{node.name}: input shapes differ {a.shape} vs {b.shape}")
        out = a + b
        odt = self.get_output_datatype()
        if out.min() < odt.min() or out.max() > odt.max():
            raise ValueError(f"{node.name}: sum range [{out.min()}, {out.max()}] exceeds {odt.name}")
        context[node.output[0]] = out.astype(np.float32).reshape(self.get_normal_output_shape())


@register_rtl_op
class AddStreams_rtl(AddStreams, RTLBackend):
    """RTL variant: hw/samfpga/hw/rtl/add_streams.sv, one output register, full throughput (one beat per cycle)."""

    def get_nodeattr_types(self) -> dict:
        attrs = {}
        attrs.update(AddStreams.get_nodeattr_types(self))
        attrs.update(RTLBackend.get_nodeattr_types(self))
        return attrs

    def execute_node(self, context, graph) -> None:
        if self.get_nodeattr("exec_mode") == "rtlsim":
            RTLBackend.execute_node(self, context, graph)
        else:
            AddStreams.execute_node(self, context, graph)

    def generate_hdl(self, model, fpgapart: str, clk: float) -> None:
        a, b, o = self.get_input_datatype(0), self.get_input_datatype(1), self.get_output_datatype()
        pe = self.get_nodeattr("PE")
        wa, wb, wo = (self.get_instream_width_padded(0), self.get_instream_width_padded(1),
                      self.get_outstream_width_padded())
        top = self.get_verilog_top_module_name()
        text = (
            f"// generated by samfpga.hw.custom_ops for node {self.onnx_node.name}\n"
            f"module {top} (\n"
            "\tinput  ap_clk,\n\tinput  ap_rst_n,\n"
            f"\tinput  [{wa - 1}:0] in0_V_TDATA,\n\tinput  in0_V_TVALID,\n\toutput in0_V_TREADY,\n"
            f"\tinput  [{wb - 1}:0] in1_V_TDATA,\n\tinput  in1_V_TVALID,\n\toutput in1_V_TREADY,\n"
            f"\toutput [{wo - 1}:0] out0_V_TDATA,\n\toutput out0_V_TVALID,\n\tinput  out0_V_TREADY\n);\n"
            f"\tadd_streams #(.PE({pe}), .A_BITS({a.bitwidth()}), .B_BITS({b.bitwidth()}), "
            f".O_BITS({o.bitwidth()}), .A_SIGNED({int(a.signed())}), .B_SIGNED({int(b.signed())})) core (\n"
            "\t\t.clk(ap_clk), .rst(!ap_rst_n),\n"
            "\t\t.a_tdata(in0_V_TDATA), .a_tvalid(in0_V_TVALID), .a_tready(in0_V_TREADY),\n"
            "\t\t.b_tdata(in1_V_TDATA), .b_tvalid(in1_V_TVALID), .b_tready(in1_V_TREADY),\n"
            "\t\t.o_tdata(out0_V_TDATA), .o_tvalid(out0_V_TVALID), .o_tready(out0_V_TREADY)\n\t);\nendmodule\n"
        )
        write_wrapper(self, text)

    def get_rtl_file_list(self, abspath: bool = False) -> list[str]:
        top = self.get_nodeattr("gen_top_module") or self.get_verilog_top_module_name()
        if abspath:
            return [str(rtl_source("add_streams.sv")), f"{self.get_nodeattr('code_gen_dir_ipgen')}/{top}.v"]
        return ["add_streams.sv", f"{top}.v"]

    def code_generation_ipi(self) -> list[str]:
        return ipi_commands(self)
