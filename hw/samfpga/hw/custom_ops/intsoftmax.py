"""IntSoftmax: integer softmax over the last axis with the logit scale, an optional per-row additive bias table
(TinyViT's relative-position attention bias) and the output quantizer folded in.

``IntSoftmax`` is the HW abstraction; its python execution is ``samfpga.kernels.softmax.int_softmax`` (the one
home of the arithmetic). ``IntSoftmax_rtl`` wraps hw/samfpga/hw/rtl/int_softmax.sv.
Inputs: ``in0`` integers ``numInputVectors + [NumChannels]`` (the QK^T accumulator); optional ``in1`` an
initializer, the integer bias table ``(rows, NumChannels)`` (row r of the input uses table row ``r mod rows``).
Output: the same shape, ``outputDataType`` (unsigned) integers, the quantized softmax.
"""

from __future__ import annotations

from pathlib import Path

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


def rtl_widths(in_bits: int, mult: int, pre_shift: int, exp_bits: int, kb: int, bias: np.ndarray | None
               ) -> dict[str, int]:
    """int_softmax.sv's widths: MB (mult), BB (bias entries), UB (u and the row buffer), KB (out_num, given)."""
    mb = int(mult).bit_length()
    bb = 2 if bias is None else max(int(np.abs(bias).max(initial=0)).bit_length() + 1, 2)
    ub = max(max(in_bits + mb + 1, bb) + 2 - pre_shift, exp_bits + 2)
    return {"MB": mb, "BB": bb, "UB": ub, "KB": kb}


def common_shift(sets: list[IntSoftmaxParams]) -> tuple[int, list[int], list[np.ndarray | None]]:
    """One pre-shift for every parameter set of ``sets``: P = the largest P_i, with M_i and the bias table scaled by
    2^(P - P_i). Exact: (a M 2^d + B 2^d + 2^(P-1)) >> P = (a M + B + 2^(P_i-1)) >> P_i for d = P - P_i. Returns
    (P, the scaled M_i, the scaled tables)."""
    p = max(q.pre_shift for q in sets)
    mults = [q.mult << (p - q.pre_shift) for q in sets]
    tables = [None if q.bias is None else q.bias << (p - q.pre_shift) for q in sets]
    return p, mults, tables


def quote_table_files(params: dict, code_dir: Path) -> dict:
    """``params`` (``rtl_parameters``') with EXP_FILE / BIAS_FILE as quoted absolute paths under ``code_dir`` (a
    simulator runs elsewhere), or ``""`` for a table the parameters have none of."""
    return {**params, **{k: f'"{Path(code_dir).resolve() / params[k]}"' if params[k] else '""'
                         for k in ("EXP_FILE", "BIAS_FILE")}}


def rtl_parameters(sets: list[IntSoftmaxParams], *, pe: int, in_bits: int, in_signed: bool, out_bits: int,
                   code_dir: Path, name: str, tokens: int = 1, pipelined: int = 0, div_step_bits: int = 2,
                   bias_ram: int = 0) -> dict[str, int | str]:
    """int_softmax.sv's parameters for the parameter sets ``sets`` (one per iteration of a rolled body, or per layer
    of the engine's softmax with RT_SET), MULT / K as ``W'h..`` literals; the tables written to ``code_dir`` as
    ``<name>_exp.dat`` / ``<name>_bias.dat`` (EXP_FILE / BIAS_FILE hold the file names). Sets share n, G, E, W
    and the output width; their bias tables are all None, all whole tables of one shape, or all compact (TinyViT
    window tables of one side) with any number of heads each (SET_HEADS then gives each set's)."""
    p = sets[0]
    if any((q.n, q.exp_frac_bits, q.exp_bits, q.recip_bits) != (p.n, p.exp_frac_bits, p.exp_bits, p.recip_bits)
           for q in sets):
        raise ValueError("IntSoftmax RTL: parameter sets differ in n, exp_frac_bits, exp_bits or recip_bits")
    if len({q.bias is None for q in sets}) > 1:
        raise ValueError("IntSoftmax RTL: some parameter sets have a bias table and some do not")
    shift, mults, tables = common_shift(sets)
    bias = None if tables[0] is None else np.concatenate(tables)
    w = rtl_widths(in_bits, max(mults), shift, p.exp_bits, max(int(q.out_num).bit_length() for q in sets), bias)
    code_dir.mkdir(parents=True, exist_ok=True)
    exp_file = f"{name}_exp.dat"
    write_hex_table(code_dir / exp_file, p.table, p.exp_bits + 1)
    rows = side = set_heads = 0
    bias_file = ""
    if bias is not None:
        rows = max(t.shape[0] for t in tables)
        bias_file = f"{name}_bias.dat"
        # each set's table, one after the other (the compact form only when every table has it)
        compact = compact_tables(tables)
        if compact is not None:
            side = compact[0]
            heads = [t.shape[0] // p.n for t in tables]
            if len(set(heads)) > 1:
                if max(heads) > 255:
                    raise ValueError(f"IntSoftmax RTL: at most 255 heads a set, got {max(heads)}")
                set_heads = sum(h << (8 * i) for i, h in enumerate(heads))
            write_hex_table(code_dir / bias_file, np.concatenate(compact[1]), w["BB"])
        elif len({t.shape for t in tables}) > 1:
            raise ValueError("IntSoftmax RTL: whole bias tables of different shapes (only compact window tables "
                             "may differ in heads)")
        else:
            write_hex_table(code_dir / bias_file, bias, w["BB"], per_line=pe)
    n_it = len(sets)
    mult_word = sum(m << (64 * i) for i, m in enumerate(mults))
    k_word = sum(q.out_num << (64 * i) for i, q in enumerate(sets))
    return {"N": p.n, "PE": pe, "IN_BITS": in_bits, "IN_SIGNED": int(in_signed), "OUT_BITS": out_bits,
            "ITERS": n_it, "TOKENS": tokens, "MULT": f"{64 * n_it}'h{mult_word:x}", "MB": w["MB"], "P": shift,
            "ROWS": rows, "BB": w["BB"], "SIDE": side, "G": p.exp_frac_bits, "E": p.exp_bits, "W": p.recip_bits,
            "K": f"{64 * n_it}'h{k_word:x}", "KB": w["KB"], "UB": w["UB"], "EXP_FILE": exp_file,
            "BIAS_FILE": bias_file, "PIPELINED": int(pipelined), "DSB": int(div_step_bits),
            "BIAS_RAM": int(bias_ram) if side else 0, "SET_HEADS": f"{8 * n_it}'h{set_heads:x}"}


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
            # compact (TinyViT window) bias tables read through a register from block RAM, a copy per two lanes
            # (one priming cycle per row), instead of per-lane LUT ROMs; ignored for other tables
            "bias_ram": ("i", False, 0, {0, 1}),
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

    def quotient_bits(self) -> int:
        """Quotient bits the pipelined architecture's divider finds (int_softmax.sv QN): those that can be non-zero,
        K / S with S >= 2^exp_bits, so div_bits - exp_bits of them."""
        kb, e = self.div_bits(), self.get_nodeattr("exp_bits")
        return kb - e if kb > e else kb

    def div_stages(self) -> int:
        """Stages of the pipelined architecture's divider (int_softmax.sv DS): div_step_bits quotient bits each."""
        return -(-self.quotient_bits() // self.get_nodeattr("div_step_bits"))

    def row_slots(self) -> int:
        """Rows of e the pipelined architecture holds (int_softmax.sv NS): a row takes a slot from its exponent
        phase to its last output, 2 N/PE + DS + 1 cycles, and a row arrives every N/PE."""
        beats = self.get_nodeattr("NumChannels") // self.get_nodeattr("PE")
        return -(-(2 * beats + self.div_stages() + 1) // beats) + 1

    def row_cycles(self, model=None) -> int:
        """Cycles between rows in a long run of rows (input always valid, output always ready): N/PE beats per
        phase, plus one cycle priming the registered read of a whole bias table (or of compact ones with
        ``bias_ram``); the serial architecture adds its other two phases and its divider's quotient bits. Compact
        (head, |dy|, |dx|) tables in LUT ROMs need no priming, but only the bias initializer tells: without
        ``model`` a bias input counts the priming cycle."""
        beats = self.get_nodeattr("NumChannels") // self.get_nodeattr("PE")
        prime = 0
        if len(self.onnx_node.input) > 1 and self.onnx_node.input[1]:
            prime = 1
            if model is not None and not self.get_nodeattr("bias_ram"):
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
        """RTL widths (``rtl_widths``) of this node; ``mult`` and ``pre_shift`` default to the node's."""
        return rtl_widths(self.get_input_datatype().bitwidth(), self.get_nodeattr("mult") if mult is None else mult,
                          self.get_nodeattr("pre_shift") if pre_shift is None else pre_shift,
                          self.get_nodeattr("exp_bits"), self.div_bits(), bias)

    def hdl_parameters(self, model, code_dir: Path, name: str) -> dict[str, int | str]:
        """int_softmax.sv's parameters for this node (``rtl_parameters`` of its iterations' parameter sets)."""
        sets = self.iteration_params(model)
        return rtl_parameters(sets, pe=self.get_nodeattr("PE"), in_bits=self.get_input_datatype().bitwidth(),
                              in_signed=self.get_input_datatype().signed(),
                              out_bits=self.get_output_datatype().bitwidth(), code_dir=code_dir, name=name,
                              tokens=looped.tokens_per_pass(self) if len(sets) > 1 else 1,
                              pipelined=self.get_nodeattr("pipelined"), div_step_bits=self.get_nodeattr("div_step_bits"),
                              bias_ram=self.get_nodeattr("bias_ram"))

    def generate_hdl(self, model, fpgapart: str, clk: float) -> None:
        top = self.get_verilog_top_module_name()
        params = self.hdl_parameters(model, Path(self.get_nodeattr("code_gen_dir_ipgen")), top)
        wi, wo = self.get_instream_width_padded(), self.get_outstream_width_padded()
        plist = ", ".join(f'.{k}("{v}")' if k.endswith("_FILE") else f".{k}({v})" for k, v in params.items())
        text = (
            f"// generated by samfpga.hw.custom_ops for node {self.onnx_node.name}\n"
            f"module {top} (\n"
            "\tinput  ap_clk,\n\tinput  ap_rst_n,\n"
            f"\tinput  [{wi - 1}:0] in0_V_TDATA,\n\tinput  in0_V_TVALID,\n\toutput in0_V_TREADY,\n"
            f"\toutput [{wo - 1}:0] out0_V_TDATA,\n\toutput out0_V_TVALID,\n\tinput  out0_V_TREADY\n);\n"
            f"\tint_softmax #({plist}) core (\n"
            "\t\t.clk(ap_clk), .rst(!ap_rst_n), .cfg_set('0),\n"
            "\t\t.i_tdata(in0_V_TDATA), .i_tvalid(in0_V_TVALID), .i_tready(in0_V_TREADY),\n"
            "\t\t.o_tdata(out0_V_TDATA), .o_tvalid(out0_V_TVALID), .o_tready(out0_V_TREADY)\n\t);\nendmodule\n"
        )
        write_wrapper(self, text)

