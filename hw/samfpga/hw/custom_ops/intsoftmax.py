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

from samfpga.hw.custom_ops import looped
from samfpga.hw.custom_ops.intlayernorm import _StreamShape, write_hex_table
from samfpga.hw.custom_ops.rtl_base import OwnRTLBackend, write_wrapper
from samfpga.kernels.softmax import ATTRS, IntSoftmaxParams, int_softmax, params_from_attrs


def compact_bias(bias: np.ndarray) -> tuple[int, np.ndarray] | None:
    """TinyViT's attention bias depends only on the head and the absolute offset (|dy|, |dx|) of query and key in
    a ``side`` x ``side`` window. For a ``(heads * n, n)`` table with that structure (n = side^2, side a power of
    two >= 2) return ``(side, t)`` with ``t`` the ``heads * n`` entries ``t[h*n + |dy|*side + |dx|]`` the RTL
    stores (int_softmax.sv, SIDE > 0); None when the table has another structure (it is then stored whole)."""
    rows, n = bias.shape
    side = int(round(n ** 0.5))
    if side < 2 or side * side != n or side & (side - 1) or rows % n:
        return None
    y, x = np.divmod(np.arange(n), side)
    idx = np.abs(y[:, None] - y[None, :]) * side + np.abs(x[:, None] - x[None, :])  # (n queries, n keys)
    full = bias.reshape(rows // n, n, n)
    t = np.zeros((rows // n, n), dtype=np.int64)
    t[:, idx] = full  # last write wins; the check below rejects a table where writes to one entry differ
    if not np.array_equal(t[:, idx], full):
        return None
    return side, t.reshape(-1)


def compact_tables(tables: list[np.ndarray]) -> tuple[int, list[np.ndarray]] | None:
    """The compact form of every iteration's bias table (``compact_bias``), or None unless each has one and all
    share one window side: the RTL stores either every table compact or every table whole."""
    compact = [compact_bias(t) for t in tables]
    if any(c is None for c in compact) or len({c[0] for c in compact}) != 1:
        return None
    return compact[0][0], [c[1] for c in compact]


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
            # RTL architecture (the arithmetic is the same): 0 = phases one after another, a bit-serial divider
            # (small; 3 N/PE + quotient bits cycles per row); 1 = rows overlapped, a pipelined divider finding
            # div_step_bits quotient bits per stage (N/PE cycles per row)
            "pipelined": ("i", False, 0, {0, 1}),
            "div_step_bits": ("i", False, 2),
            **looped.NODE_ATTRS,  # per-iteration mult / pre_shift / out_num / bias in a rolled body
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

    # what the RTL takes per iteration of a rolled body (samfpga.hw.custom_ops.looped); the bias table is input 1
    LOOP_ATTRS = ("mult", "pre_shift", "out_num")
    LOOP_INPUTS = {"bias": 1}

    def iteration_params(self, model=None) -> list[IntSoftmaxParams]:
        """The kernel's parameters of each iteration (one entry when the layer is not looped)."""
        base = {k: self.get_nodeattr(k) for k in ATTRS}
        bias = self.bias_table(model)
        sets = []
        for i in range(looped.iterations(self)):
            over = looped.iteration_attrs(self, i)
            b = np.asarray(over.pop("bias"), dtype=np.int64) if "bias" in over else bias
            sets.append(params_from_attrs({**base, **over}, self.get_output_datatype().bitwidth(), b))
        return sets

    def div_bits(self) -> int:
        """Quotient bits of the per-row division (= bits of the largest out_num): cycles of the RTL's divider."""
        nums = [self.get_nodeattr("out_num")] + looped.loop_values(self).get("out_num", [])
        return max(int(k).bit_length() for k in nums)

    def div_stages(self) -> int:
        """Stages of the pipelined architecture's divider: the quotient bits that can be non-zero (K / S with
        S >= 2^exp_bits, so div_bits - exp_bits of them), div_step_bits per stage."""
        kb, e = self.div_bits(), self.get_nodeattr("exp_bits")
        qn = kb - e if kb > e else kb
        return -(-qn // self.get_nodeattr("div_step_bits"))

    def row_cycles(self, model=None) -> int:
        """Cycles between rows in a long run of rows (input always valid, output always ready): N/PE beats per
        phase, plus one cycle priming the registered read of a whole bias table; the serial architecture adds its
        other two phases and its divider's quotient bits. The compact (head, |dy|, |dx|) table needs no priming,
        but only the bias initializer tells: without ``model`` a bias input counts the priming cycle."""
        beats = self.get_nodeattr("NumChannels") // self.get_nodeattr("PE")
        prime = 0
        if len(self.onnx_node.input) > 1 and self.onnx_node.input[1]:
            prime = 1
            if model is not None:
                prime = int(compact_tables([q.bias for q in self.iteration_params(model)]) is None)
        if self.get_nodeattr("pipelined"):
            return beats + prime
        return 3 * beats + self.div_bits() + prime

    def latency_cycles(self) -> int:
        """Cycles the pipelined architecture adds to a run of rows (the last row's exponent phase, divider and
        output phase); 0 for the serial one, whose row cycles include them."""
        if not self.get_nodeattr("pipelined"):
            return 0
        beats = self.get_nodeattr("NumChannels") // self.get_nodeattr("PE")
        return 2 * beats + self.div_stages() + 2

    def get_exp_cycles(self) -> int:
        rows = int(np.prod(self.get_nodeattr("numInputVectors")))
        return rows * self.row_cycles() + self.latency_cycles()

    def verify_node(self) -> list[str]:
        msgs = []
        idt, odt = self.get_input_datatype(), self.get_output_datatype()
        if not idt.is_integer():
            msgs.append(f"IntSoftmax needs an integer input, got {idt.name}")
        if not (odt.is_integer() and not odt.signed()):
            msgs.append(f"IntSoftmax needs an unsigned integer output, got {odt.name}")
        if self.div_bits() > 63:
            msgs.append(f"IntSoftmax: out_num needs {self.div_bits()} bits (at most 63)")
        if self.get_nodeattr("div_step_bits") < 1:
            msgs.append(f"IntSoftmax: div_step_bits must be >= 1, got {self.get_nodeattr('div_step_bits')}")
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
    """RTL variant: hw/samfpga/hw/rtl/int_softmax.sv (its two architectures: see the SV header)."""

    RTL_SOURCES = ("int_softmax.sv",)

    def widths(self, bias: np.ndarray | None, mult: int | None = None, pre_shift: int | None = None
               ) -> dict[str, int]:
        """RTL widths: MB (mult), BB (bias entries), UB (u and the row buffer), KB (out_num); ``mult`` and
        ``pre_shift`` default to the node's."""
        idt = self.get_input_datatype()
        mb = int(self.get_nodeattr("mult") if mult is None else mult).bit_length()
        bb = 2 if bias is None else max(int(np.abs(bias).max(initial=0)).bit_length() + 1, 2)
        p = self.get_nodeattr("pre_shift") if pre_shift is None else pre_shift
        ub = max(idt.bitwidth() + mb + 1, bb) + 2 - p
        ub = max(ub, self.get_nodeattr("exp_bits") + 2)
        return {"MB": mb, "BB": bb, "UB": ub, "KB": self.div_bits()}

    @staticmethod
    def common_shift(sets: list[IntSoftmaxParams]) -> tuple[int, list[int], list[np.ndarray | None]]:
        """One pre-shift for every iteration's parameters ``sets``: P = the largest P_i, with M_i and the bias
        table scaled by 2^(P - P_i). Exact: (a M 2^d + B 2^d + 2^(P-1)) >> P = (a M + B + 2^(P_i-1)) >> P_i for
        d = P - P_i. Returns (P, the scaled M_i, the scaled tables)."""
        p = max(q.pre_shift for q in sets)
        mults = [q.mult << (p - q.pre_shift) for q in sets]
        tables = [None if q.bias is None else q.bias << (p - q.pre_shift) for q in sets]
        return p, mults, tables

    def generate_hdl(self, model, fpgapart: str, clk: float) -> None:
        from pathlib import Path

        sets = self.iteration_params(model)
        p = sets[0]
        shift, mults, tables = self.common_shift(sets)
        bias = None if tables[0] is None else np.concatenate(tables)
        w = self.widths(bias, max(mults), shift)
        n_it = len(sets)
        idt, odt = self.get_input_datatype(), self.get_output_datatype()
        top = self.get_verilog_top_module_name()
        code_dir = Path(self.get_nodeattr("code_gen_dir_ipgen"))
        code_dir.mkdir(parents=True, exist_ok=True)
        exp_file = f"{top}_exp.dat"
        write_hex_table(code_dir / exp_file, p.table, p.exp_bits + 1)
        rows = side = 0
        bias_file = ""
        if bias is not None:
            rows = tables[0].shape[0]
            bias_file = f"{top}_bias.dat"
            # each iteration's table, one after the other (the compact form only when every table has it)
            compact = compact_tables(tables)
            if compact is not None:
                side = compact[0]
                write_hex_table(code_dir / bias_file, np.concatenate(compact[1]), w["BB"])
            else:
                write_hex_table(code_dir / bias_file, bias, w["BB"], per_line=self.get_nodeattr("PE"))
        tokens = looped.tokens_per_pass(self) if n_it > 1 else 1
        mult_word = sum(m << (64 * i) for i, m in enumerate(mults))
        k_word = sum(q.out_num << (64 * i) for i, q in enumerate(sets))
        wi, wo = self.get_instream_width_padded(), self.get_outstream_width_padded()
        text = (
            f"// generated by samfpga.hw.custom_ops for node {self.onnx_node.name}\n"
            f"module {top} (\n"
            "\tinput  ap_clk,\n\tinput  ap_rst_n,\n"
            f"\tinput  [{wi - 1}:0] in0_V_TDATA,\n\tinput  in0_V_TVALID,\n\toutput in0_V_TREADY,\n"
            f"\toutput [{wo - 1}:0] out0_V_TDATA,\n\toutput out0_V_TVALID,\n\tinput  out0_V_TREADY\n);\n"
            f"\tint_softmax #(.N({p.n}), .PE({self.get_nodeattr('PE')}), .IN_BITS({idt.bitwidth()}), "
            f".IN_SIGNED({int(idt.signed())}), .OUT_BITS({odt.bitwidth()}), .ITERS({n_it}), .TOKENS({tokens}), "
            f".MULT({64 * n_it}'h{mult_word:x}), .MB({w['MB']}), .P({shift}), .ROWS({rows}), .BB({w['BB']}), .SIDE({side}), .G({p.exp_frac_bits}), .E({p.exp_bits}), "
            f".W({p.recip_bits}), .K({64 * n_it}'h{k_word:x}), .KB({w['KB']}), .UB({w['UB']}), "
            f".PIPELINED({self.get_nodeattr('pipelined')}), .DSB({self.get_nodeattr('div_step_bits')}), "
            f".EXP_FILE(\"{exp_file}\"), .BIAS_FILE(\"{bias_file}\")) core (\n"
            "\t\t.clk(ap_clk), .rst(!ap_rst_n),\n"
            "\t\t.i_tdata(in0_V_TDATA), .i_tvalid(in0_V_TVALID), .i_tready(in0_V_TREADY),\n"
            "\t\t.o_tdata(out0_V_TDATA), .o_tvalid(out0_V_TVALID), .o_tready(out0_V_TREADY)\n\t);\nendmodule\n"
        )
        write_wrapper(self, text)

