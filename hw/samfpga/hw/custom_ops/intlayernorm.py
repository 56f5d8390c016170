"""IntLayerNorm: integer LayerNorm over the last axis (integer statistics + reciprocal-square-root table).

``IntLayerNorm`` is the HW abstraction; its python execution is ``samfpga.kernels.layernorm.int_layernorm``
(the one home of the arithmetic). ``IntLayerNorm_rtl`` wraps hw/samfpga/hw/rtl/int_layernorm.sv.
Input ``numInputVectors + [NumChannels]`` integers; output the same shape, ``outputDataType`` (signed) integers
``~= 2^frac_bits * (x - mean) / sqrt(var + eps)``, negated on the channels flagged in ``negate`` (so a negative
LayerNorm gamma becomes a positive scale the following thresholds can absorb).
"""

from __future__ import annotations

import numpy as np
from finn.custom_op.fpgadataflow import register_custom_op as register_hw_op
from finn.custom_op.fpgadataflow.rtl import register_custom_op as register_rtl_op
from qonnx.core.datatype import DataType

from samfpga.hw.custom_ops import looped
from samfpga.hw.custom_ops.rtl_base import ChannelStreamOp, OwnRTLBackend, write_text_atomic, write_wrapper
from samfpga.kernels.layernorm import (
    ATTRS,
    IntLayerNormParams,
    int_layernorm,
    max_abs_input,
    params_from_attrs,
)


def write_hex_table(path, values: np.ndarray, bits: int, per_line: int = 1) -> None:
    """``values`` (integers, flattened) as $readmemh lines, two's complement in ``bits`` bits; written atomically.

    ``per_line`` > 1 packs that many consecutive entries into one memory word, entry j in bits ``[j*bits +: bits]``
    (a beat-wide RAM word); the number of values must be a multiple of it.
    """
    from pathlib import Path

    v = np.asarray(values, dtype=np.int64).ravel()
    if v.size % per_line:
        raise ValueError(f"{path}: {v.size} table entries do not pack {per_line} to a word")
    mask = (1 << bits) - 1
    digits = (bits * per_line + 3) // 4
    lines = []
    for word in v.reshape(-1, per_line):
        packed = 0
        for j, x in enumerate(word):
            packed |= (int(x) & mask) << (j * bits)
        lines.append(f"{packed:0{digits}x}\n")
    write_text_atomic(Path(path), "".join(lines))


class _StreamShape(ChannelStreamOp):
    """The single-input, shape-preserving integer layers here: ``ChannelStreamOp``'s shapes and widths, datatypes
    from the ``inputDataType`` / ``outputDataType`` attributes."""

    def get_nodeattr_types(self) -> dict:
        attrs = {"inputDataType": ("s", True, ""), "outputDataType": ("s", True, "")}
        attrs.update(super().get_nodeattr_types())  # NumChannels, PE, numInputVectors (ChannelStreamOp)
        return attrs

    def get_input_datatype(self, ind: int = 0) -> DataType:
        return DataType[self.get_nodeattr("inputDataType")]

    def get_output_datatype(self, ind: int = 0) -> DataType:
        return DataType[self.get_nodeattr("outputDataType")]

    def make_shape_compatible_op(self, model):
        return super().make_const_shape_op(self.get_normal_input_shape())

    def infer_node_datatype(self, model) -> None:
        # follow the producer (FINN's minimize_bit_width narrows accumulators after conversion)
        idt = model.get_tensor_datatype(self.onnx_node.input[0])
        if not idt.is_integer():
            raise ValueError(f"{self.onnx_node.name}: input {self.onnx_node.input[0]} is {idt.name}, not integer")
        self.set_nodeattr("inputDataType", idt.name)
        model.set_tensor_datatype(self.onnx_node.output[0], self.get_output_datatype())


@register_hw_op
class IntLayerNorm(_StreamShape):
    """Integer LayerNorm of each vector of ``NumChannels`` integers (see module doc and the kernel)."""

    def get_nodeattr_types(self) -> dict:
        attrs = {
            "eps_int": ("i", True, 0),
            "frac_bits": ("i", False, 8),
            "lut_bits": ("i", False, 10),
            "r_bits": ("i", False, 16),
            # channels whose output is negated (0/1 per channel; empty: none)
            "negate": ("ints", False, []),
            **looped.NODE_ATTRS,  # per-iteration eps_int / negate in a rolled body (samfpga.hw.custom_ops.looped)
        }
        attrs.update(super().get_nodeattr_types())
        return attrs

    def params(self) -> IntLayerNormParams:
        """The kernel's parameters, read from the node as ``samfpga.intexec`` reads it from graph.json."""
        return params_from_attrs({k: self.get_nodeattr(k) for k in ATTRS}, self.get_output_datatype().bitwidth())

    # what the RTL takes per iteration of a rolled body (one EPS and one NEG per set)
    LOOP_ATTRS = ("eps_int", "negate")

    def iteration_params(self) -> list[IntLayerNormParams]:
        """The kernel's parameters of each iteration (one entry when the layer is not looped)."""
        base = {k: self.get_nodeattr(k) for k in ATTRS}
        return [params_from_attrs({**base, **looped.iteration_attrs(self, i)}, self.get_output_datatype().bitwidth())
                for i in range(looped.iterations(self))]

    def get_exp_cycles(self) -> int:
        beats = self.get_nodeattr("NumChannels") // self.get_nodeattr("PE")
        return int(np.prod(self.get_nodeattr("numInputVectors"))) * (2 * beats + 5)

    def verify_node(self) -> list[str]:
        msgs = []
        idt, odt = self.get_input_datatype(), self.get_output_datatype()
        if not idt.is_integer():
            msgs.append(f"IntLayerNorm needs an integer input, got {idt.name}")
        if not (odt.is_integer() and odt.signed()):
            msgs.append(f"IntLayerNorm needs a signed integer output, got {odt.name}")
        try:
            lim = max_abs_input(self.params())
            if idt.is_integer() and max(-int(idt.min()), int(idt.max())) > lim:
                msgs.append(f"IntLayerNorm: {idt.name} inputs can exceed {lim}, the largest magnitude whose "
                            f"statistics stay exact in int64 for {self.get_nodeattr('NumChannels')} channels")
        except ValueError as exc:
            msgs.append(str(exc))
        return msgs

    def execute_node(self, context, graph) -> None:
        node = self.onnx_node
        x = np.asarray(context[node.input[0]], dtype=np.float64).reshape(self.get_normal_input_shape())
        context[node.output[0]] = int_layernorm(x, self.params()).astype(np.float32)


@register_rtl_op
class IntLayerNorm_rtl(IntLayerNorm, OwnRTLBackend):
    """RTL variant: hw/samfpga/hw/rtl/int_layernorm.sv (three phases per vector; see the SV header)."""

    RTL_SOURCES = ("int_layernorm.sv",)

    def stats_bits(self) -> int:
        """Width of the signed statistics registers: C^2 * max|x|^2 + the largest eps_int, plus sign."""
        sets = self.iteration_params()
        p = sets[0]
        idt = self.get_input_datatype()
        xmax = max(abs(int(idt.min())), abs(int(idt.max())))
        return int(p.channels * p.channels * xmax * xmax + max(q.eps_int for q in sets)).bit_length() + 2

    def generate_hdl(self, model, fpgapart: str, clk: float) -> None:
        from pathlib import Path

        sets = self.iteration_params()
        p = sets[0]
        idt, odt = self.get_input_datatype(), self.get_output_datatype()
        top = self.get_verilog_top_module_name()
        code_dir = Path(self.get_nodeattr("code_gen_dir_ipgen"))
        code_dir.mkdir(parents=True, exist_ok=True)
        table = f"{top}_rsqrt.dat"
        write_hex_table(code_dir / table, p.table, p.r_bits)
        n = len(sets)
        # iteration i in bits [i*C +: C] (NEG) and [i*64 +: 64] (EPS), channel 0 in the LSB
        neg_bits = "".join(str(int(b)) for q in reversed(sets) for b in reversed(q.negate or (0,) * p.channels))
        eps = sum(q.eps_int << (64 * i) for i, q in enumerate(sets))
        tokens = looped.tokens_per_pass(self) if n > 1 else 1
        wi, wo = self.get_instream_width_padded(), self.get_outstream_width_padded()
        text = (
            f"// generated by samfpga.hw.custom_ops for node {self.onnx_node.name}\n"
            f"module {top} (\n"
            "\tinput  ap_clk,\n\tinput  ap_rst_n,\n"
            f"\tinput  [{wi - 1}:0] in0_V_TDATA,\n\tinput  in0_V_TVALID,\n\toutput in0_V_TREADY,\n"
            f"\toutput [{wo - 1}:0] out0_V_TDATA,\n\toutput out0_V_TVALID,\n\tinput  out0_V_TREADY\n);\n"
            f"\tint_layernorm #(.C({p.channels}), .PE({self.get_nodeattr('PE')}), .IN_BITS({idt.bitwidth()}), "
            f".IN_SIGNED({int(idt.signed())}), .OUT_BITS({odt.bitwidth()}), .ITERS({n}), .TOKENS({tokens}), "
            f".EPS({64 * n}'h{eps:x}), "
            f".T({p.lut_bits}), .RB({p.r_bits}), .SHIFT_BIAS({p.shift_bias}), .SB({self.stats_bits()}), "
            f".NEG({p.channels * n}'b{neg_bits}), .RSQRT_FILE(\"{table}\")) core (\n"
            "\t\t.clk(ap_clk), .rst(!ap_rst_n), .cfg_beats('0), .cfg_eps('0), .cfg_neg('0),\n"
            "\t\t.i_tdata(in0_V_TDATA), .i_tvalid(in0_V_TVALID), .i_tready(in0_V_TREADY),\n"
            "\t\t.o_tdata(out0_V_TDATA), .o_tvalid(out0_V_TVALID), .o_tready(out0_V_TREADY)\n\t);\nendmodule\n"
        )
        write_wrapper(self, text)

