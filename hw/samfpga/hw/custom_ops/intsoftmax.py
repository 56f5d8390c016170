"""IntSoftmax: integer softmax over the last axis with the logit scale, an optional per-row additive bias table
(TinyViT's relative-position attention bias) and the output quantizer folded in.

``IntSoftmax`` is the HW abstraction; its python execution is ``samfpga.kernels.softmax.int_softmax`` (the one
home of the arithmetic). ``IntSoftmax_rtl`` wraps hw/samfpga/hw/rtl/int_softmax.sv.
Inputs: ``in0`` integers ``numInputVectors + [NumChannels]`` (the QK^T accumulator); optional ``in1`` an
initializer, the integer bias table ``(rows, NumChannels)`` (row r of the input uses table row ``r mod rows``).
Output: the same shape, ``outputDataType`` (unsigned) integers, the quantized softmax.
"""

from __future__ import annotations

import numpy as np
from finn.custom_op.fpgadataflow import register_custom_op as register_hw_op
from finn.custom_op.fpgadataflow.rtl import register_custom_op as register_rtl_op

from samfpga.hw.custom_ops.intlayernorm import _StreamShape, write_hex_table
from samfpga.hw.custom_ops.rtl_base import OwnRTLBackend, write_wrapper
from samfpga.kernels.softmax import ATTRS, IntSoftmaxParams, int_softmax, params_from_attrs


@register_hw_op
class IntSoftmax(_StreamShape):
    """Integer softmax of each vector of ``NumChannels`` integers (see module doc and the kernel)."""

    def get_nodeattr_types(self) -> dict:
        attrs = {
            "mult": ("i", True, 1),
            "pre_shift": ("i", True, 1),
            "out_num": ("i", True, 1),
            "recip_bits": ("i", True, 1),
            "exp_frac_bits": ("i", False, 6),
            "exp_bits": ("i", False, 16),
        }
        attrs.update(super().get_nodeattr_types())
        return attrs

    def bias_table(self, model=None) -> np.ndarray | None:
        """The (rows, n) int64 bias table from the node's second input (an initializer), or None."""
        if len(self.onnx_node.input) < 2 or not self.onnx_node.input[1]:
            return None
        if model is None:
            raise ValueError(f"{self.onnx_node.name}: the bias table needs the model")
        b = model.get_initializer(self.onnx_node.input[1])
        if b is None:
            raise ValueError(f"{self.onnx_node.name}: bias input {self.onnx_node.input[1]} is not an initializer")
        return np.asarray(b, dtype=np.int64)

    def params(self, bias: np.ndarray | None = None) -> IntSoftmaxParams:
        """The kernel's parameters, read from the node as ``samfpga.intexec`` reads it from graph.json."""
        return params_from_attrs({k: self.get_nodeattr(k) for k in ATTRS}, self.get_output_datatype().bitwidth(),
                                 bias)

    def div_bits(self) -> int:
        """Quotient bits of the per-row division (= bits of out_num): cycles of the RTL's divider."""
        return int(self.get_nodeattr("out_num")).bit_length()

    def get_exp_cycles(self) -> int:
        beats = self.get_nodeattr("NumChannels") // self.get_nodeattr("PE")
        return int(np.prod(self.get_nodeattr("numInputVectors"))) * (3 * beats + self.div_bits())

    def verify_node(self) -> list[str]:
        msgs = []
        idt, odt = self.get_input_datatype(), self.get_output_datatype()
        if not idt.is_integer():
            msgs.append(f"IntSoftmax needs an integer input, got {idt.name}")
        if not (odt.is_integer() and not odt.signed()):
            msgs.append(f"IntSoftmax needs an unsigned integer output, got {odt.name}")
        if self.div_bits() > 63:
            msgs.append(f"IntSoftmax: out_num needs {self.div_bits()} bits (at most 63)")
        return msgs

    def execute_node(self, context, graph) -> None:
        node = self.onnx_node
        bias = None
        if len(node.input) > 1 and node.input[1]:
            bias = np.asarray(context[node.input[1]])
        a = np.asarray(context[node.input[0]], dtype=np.float64).reshape(self.get_normal_input_shape())
        context[node.output[0]] = int_softmax(a, self.params(bias)).astype(np.float32)


@register_rtl_op
class IntSoftmax_rtl(IntSoftmax, OwnRTLBackend):
    """RTL variant: hw/samfpga/hw/rtl/int_softmax.sv (four phases per row; see the SV header)."""

    RTL_SOURCES = ("int_softmax.sv",)

    def widths(self, bias: np.ndarray | None) -> dict[str, int]:
        """RTL widths: MB (mult), BB (bias entries), UB (u and the row buffer), KB (out_num)."""
        idt = self.get_input_datatype()
        mb = int(self.get_nodeattr("mult")).bit_length()
        bb = 2 if bias is None else max(int(np.abs(bias).max(initial=0)).bit_length() + 1, 2)
        p = self.get_nodeattr("pre_shift")
        ub = max(idt.bitwidth() + mb + 1, bb) + 2 - p
        ub = max(ub, self.get_nodeattr("exp_bits") + 2)
        return {"MB": mb, "BB": bb, "UB": ub, "KB": self.div_bits()}

    def generate_hdl(self, model, fpgapart: str, clk: float) -> None:
        from pathlib import Path

        bias = self.bias_table(model)
        p = self.params(bias)
        w = self.widths(bias)
        idt, odt = self.get_input_datatype(), self.get_output_datatype()
        top = self.get_verilog_top_module_name()
        code_dir = Path(self.get_nodeattr("code_gen_dir_ipgen"))
        code_dir.mkdir(parents=True, exist_ok=True)
        exp_file = f"{top}_exp.dat"
        write_hex_table(code_dir / exp_file, p.table, p.exp_bits + 1)
        rows = 0
        bias_file = ""
        if bias is not None:
            rows = bias.shape[0]
            bias_file = f"{top}_bias.dat"
            write_hex_table(code_dir / bias_file, bias, w["BB"])
        wi, wo = self.get_instream_width_padded(), self.get_outstream_width_padded()
        text = (
            f"// generated by samfpga.hw.custom_ops for node {self.onnx_node.name}\n"
            f"module {top} (\n"
            "\tinput  ap_clk,\n\tinput  ap_rst_n,\n"
            f"\tinput  [{wi - 1}:0] in0_V_TDATA,\n\tinput  in0_V_TVALID,\n\toutput in0_V_TREADY,\n"
            f"\toutput [{wo - 1}:0] out0_V_TDATA,\n\toutput out0_V_TVALID,\n\tinput  out0_V_TREADY\n);\n"
            f"\tint_softmax #(.N({p.n}), .PE({self.get_nodeattr('PE')}), .IN_BITS({idt.bitwidth()}), "
            f".IN_SIGNED({int(idt.signed())}), .OUT_BITS({odt.bitwidth()}), .MULT(64'd{p.mult}), .MB({w['MB']}), "
            f".P({p.pre_shift}), .ROWS({rows}), .BB({w['BB']}), .G({p.exp_frac_bits}), .E({p.exp_bits}), "
            f".W({p.recip_bits}), .K(64'd{p.out_num}), .KB({w['KB']}), .UB({w['UB']}), "
            f".EXP_FILE(\"{exp_file}\"), .BIAS_FILE(\"{bias_file}\")) core (\n"
            "\t\t.clk(ap_clk), .rst(!ap_rst_n),\n"
            "\t\t.i_tdata(in0_V_TDATA), .i_tvalid(in0_V_TVALID), .i_tready(in0_V_TREADY),\n"
            "\t\t.o_tdata(out0_V_TDATA), .o_tvalid(out0_V_TVALID), .o_tready(out0_V_TREADY)\n\t);\nendmodule\n"
        )
        write_wrapper(self, text)

