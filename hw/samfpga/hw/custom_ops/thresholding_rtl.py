"""FINN+'s ``Thresholding_rtl`` with per-iteration thresholds and output offsets, for a rolled body's activations.

In a rolled body one thresholding layer serves N blocks in turn (``samfpga.hw.custom_ops.looped``): the thresholds
(input 1) and the output offset ``ActVal`` may differ per block. FINN's thresholding core already holds several
threshold sets (``SETS``, one chosen per input beat on its set-select stream) but adds one ``BIAS`` for all of
them. This class generates FINN's wrapper and threshold files with the smallest offset as ``BIAS``, every set's
thresholds in the files (set s at address s << (clog2(CF) + stage) of stage ``stage``'s memory, as the core reads
them), and rewrites FINN's generated wrapper (``looped_wrapper``) so that it

- selects the set itself, counting input beats (``repeat`` per pass: tokens x channel folds),
- counts output beats the same way and adds the pass's ``ActVal - BIAS`` to every lane, widened from the core's
  ``O_BITS`` to the node's output datatype.

FINN's ``thresholding_axi`` sizes its AXI-Lite configuration address for one set, so runtime writes could reach
only set 0: a looped node gets a per-node copy (``<top>_thresholding_axi``, ``axi_patch``) whose address also
carries the set bits, the most significant, as the core reads them; ``runtime_words`` pads each set to its block.
Everything else is FINN's; a node with one iteration is FINN+'s Thresholding_rtl unchanged. The rewrites are
exact, must-match-once replacements: a changed template fails loudly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from finn.custom_op.fpgadataflow.rtl import register_custom_op as register_rtl_op
from finn.custom_op.fpgadataflow.rtl.thresholding_rtl import Thresholding_rtl as FinnThresholdingRTL

from samfpga.hw.custom_ops import looped


def _once(text: str, old: str, new: str, where: str) -> str:
    if text.count(old) != 1:
        raise ValueError(f"{where}: expected exactly one {old.strip()[:50]!r} in FINN's thresholding wrapper; "
                         "finn-rtllib changed, revisit samfpga.hw.custom_ops.thresholding_rtl")
    return text.replace(old, new)


def looped_wrapper(text: str, sets: int, repeat: int, offsets: list[int], out_bits: int, core_signed: bool,
                   where: str = "thresholding wrapper") -> str:
    """FINN's generated thresholding wrapper ``text`` (SETS = 1, BIAS = min ActVal) serving ``sets`` passes of
    ``repeat`` beats: set select and per-set output ``offsets`` (ActVal_i - BIAS, >= 0) counted inside;
    ``out_bits`` per output lane; ``core_signed``: the core's O_BITS lanes are signed (BIAS < 0)."""
    if sets < 2 or repeat < 1 or len(offsets) != sets or min(offsets) < 0:
        raise ValueError(f"{where}: a looped thresholding layer needs sets >= 2, repeat >= 1 and one offset >= 0 "
                         f"per set (got {sets}, {repeat}, {offsets})")
    if max(offsets) >= 1 << out_bits:
        raise ValueError(f"{where}: output offset {max(offsets)} does not fit {out_bits} bits")
    text = _once(text, "\tparameter  SETS = 1,", f"\tparameter  SETS = {sets},", where)
    text = _once(text, "\toutput [((PE*O_BITS+7)/8)*8-1:0]  out0_V_TDATA\n",
                 f"\toutput [((PE*{out_bits}+7)/8)*8-1:0]  out0_V_TDATA\n", where)
    ofs = sum(o << (out_bits * i) for i, o in enumerate(offsets))
    ext = "v[O_BITS-1]" if core_signed else "1'b0"  # the core's lanes sign- or zero-extended
    logic = (
        "\t// samfpga (custom_ops/thresholding_rtl.py): this layer serves SETS blocks of a rolled body in turn, one\n"
        "\t// pass of REPEAT beats each; the set is counted on the input, the output offset of the pass on the output\n"
        f"\tlocalparam  REPEAT = {repeat};\n"
        f"\tlocalparam  OB = {out_bits};\n"
        "\tlocalparam  RB = REPEAT > 1? $clog2(REPEAT) : 1;\n"
        "\tlocalparam  SB = SETS > 2? $clog2(SETS) : 1;\n"
        f"\tlocalparam [SETS*OB-1:0]  OFS = {sets * out_bits}'h{ofs:x};\n"
        "\treg [SB-1:0]  InSet = 0;\n\treg [RB-1:0]  InCnt = 0;\n"
        "\treg [SB-1:0]  OutSet = 0;\n\treg [RB-1:0]  OutCnt = 0;\n"
        "\talways @(posedge ap_clk) begin\n"
        "\t\tif(!ap_rst_n) begin\n\t\t\tInSet <= 0;\n\t\t\tInCnt <= 0;\n\t\t\tOutSet <= 0;\n\t\t\tOutCnt <= 0;\n\t\tend\n"
        "\t\telse begin\n"
        "\t\t\tif(in0_V_TVALID && in0_V_TREADY) begin\n"
        "\t\t\t\tif(InCnt == REPEAT-1) begin\n\t\t\t\t\tInCnt <= 0;\n"
        "\t\t\t\t\tInSet <= (InSet == SETS-1)? 0 : InSet + 1;\n\t\t\t\tend\n"
        "\t\t\t\telse  InCnt <= InCnt + 1;\n\t\t\tend\n"
        "\t\t\tif(out0_V_TVALID && out0_V_TREADY) begin\n"
        "\t\t\t\tif(OutCnt == REPEAT-1) begin\n\t\t\t\t\tOutCnt <= 0;\n"
        "\t\t\t\t\tOutSet <= (OutSet == SETS-1)? 0 : OutSet + 1;\n\t\t\t\tend\n"
        "\t\t\t\telse  OutCnt <= OutCnt + 1;\n\t\t\tend\n"
        "\t\tend\n\tend\n"
        "\tassign  in1_V_TREADY = 0;\n"
        "\twire [((PE*O_BITS+7)/8)*8-1:0]  core_tdata;\n"
        "\twire [OB-1:0]  ofs = OFS[OutSet*OB +: OB];\n"
        "\tgenvar  lane;\n"
        "\tfor(lane = 0; lane < PE; lane = lane + 1) begin : genOffset\n"
        "\t\twire [O_BITS-1:0]  v = core_tdata[lane*O_BITS +: O_BITS];\n"
        "\t\twire [OB-1:0]  x;\n"
        "\t\tif(OB > O_BITS) begin : genExt\n"
        "\t\t\tassign  x = {{(OB-O_BITS){" + ext + "}}, v};\n"
        "\t\tend\n"
        "\t\telse begin : genSame\n"
        "\t\t\tassign  x = v;\n"
        "\t\tend\n"
        "\t\tassign  out0_V_TDATA[lane*OB +: OB] = x + ofs;\n"
        "\tend\n"
        "\tif(((PE*OB+7)/8)*8 > PE*OB) begin : genPad\n"
        "\t\tassign  out0_V_TDATA[((PE*OB+7)/8)*8-1:PE*OB] = 0;\n"
        "\tend\n\n"
        "\tthresholding_axi #(\n"
    )
    text = _once(text, "\tthresholding_axi #(\n", logic, where)
    text = _once(text, ".s_axis_set_tready(in1_V_TREADY), .s_axis_set_tvalid(in1_V_TVALID), "
                       ".s_axis_set_tdata(in1_V_TDATA),",
                 ".s_axis_set_tready(), .s_axis_set_tvalid(1'b1), .s_axis_set_tdata(InSet),", where)
    return _once(text, ".m_axis_tdata(out0_V_TDATA)", ".m_axis_tdata(core_tdata)", where)


_IP_ADDR = "\tlocalparam int unsigned  IP_ADDR_WIDTH = $clog2(CF) + $clog2(PE) + $clog2(N),\n"


def axi_patch(text: str, prefix: str, where: str = "thresholding_axi.sv") -> str:
    """FINN's thresholding_axi.sv as module ``<prefix>_thresholding_axi`` with the set bits in its AXI-Lite
    configuration address (``$clog2(SETS)`` more bits above channel fold, PE and threshold index)."""
    text = _once(text, "module thresholding_axi #(", f"module {prefix}_thresholding_axi #(", where)
    text = _once(text, "endmodule : thresholding_axi", f"endmodule : {prefix}_thresholding_axi", where)
    return _once(text, _IP_ADDR, _IP_ADDR.replace("= $clog2(CF)", "= $clog2(SETS) + $clog2(CF)"), where)


@register_rtl_op
class Thresholding_rtl(looped.LoopedAttrs, FinnThresholdingRTL):  # noqa: N801 - FINN's op type name: this class takes its place
    """FINN+'s Thresholding_rtl plus per-iteration thresholds and output offsets (module doc)."""

    LOOP_ATTRS = ("ActVal",)
    LOOP_INPUTS = {"thresholds": 1}

    def _offsets(self) -> list[int]:
        n = looped.iterations(self)
        return [int(looped.iteration_attrs(self, i).get("ActVal", self.get_nodeattr("ActVal"))) for i in range(n)]

    def generate_hdl(self, model, fpgapart, clk) -> None:
        n = looped.iterations(self)
        if n == 1:
            return super().generate_hdl(model, fpgapart, clk)
        acts = self._offsets()
        bias = min(acts)
        code_dir = Path(self.get_nodeattr("code_gen_dir_ipgen"))
        with looped.iteration_of(self, model, 0):
            own = self.get_nodeattr("ActVal")
            self.set_nodeattr("ActVal", bias)  # FINN's wrapper with the smallest offset as its BIAS
            try:
                super().generate_hdl(model, fpgapart, clk)
            finally:
                self.set_nodeattr("ActVal", own)
        self._write_sets(model, code_dir)
        top = code_dir / f"{self.get_nodeattr('gen_top_module')}.v"
        from samfpga.hw.custom_ops.rtl_base import write_text_atomic

        repeat = looped.tokens_per_pass(self) * (self.get_nodeattr("NumChannels") // self.get_nodeattr("PE"))
        prefix = self.get_nodeattr("gen_top_module")
        text = looped_wrapper(top.read_text(), n, repeat, [a - bias for a in acts],
                              self.get_output_datatype().bitwidth(), bias < 0, where=str(top))
        write_text_atomic(top, _once(text, "\tthresholding_axi #(\n", f"\t{prefix}_thresholding_axi #(\n", str(top)))
        from samfpga.hw.sim.rtllib import finn_rtllib

        axi = finn_rtllib() / "thresholding" / "hdl" / "thresholding_axi.sv"
        write_text_atomic(self._axi_copy(), axi_patch(axi.read_text(), prefix, str(axi)))
        return None

    def _axi_copy(self) -> Path:
        return Path(self.get_nodeattr("code_gen_dir_ipgen")) / f"{self.get_nodeattr('gen_top_module')}_thresholding_axi.sv"

    def get_rtl_file_list(self, abspath: bool = False) -> list[str]:
        files = super().get_rtl_file_list(abspath=True)
        if looped.iterations(self) > 1:
            files = [str(self._axi_copy()) if Path(f).name == "thresholding_axi.sv" else f for f in files]
        return files if abspath else [Path(f).name for f in files]

    def runtime_words(self, model) -> list[str]:
        """FINN's ``decoupled_runtime`` words (hex) of every iteration's thresholds: the AXI-Lite address is
        {set, channel fold, PE, threshold}, so each set's words are padded to 2^(clog2 CF + clog2 PE + clog2 N)."""
        n = looped.iterations(self)
        pe, steps = self.get_nodeattr("PE"), int(self.get_nodeattr("numSteps"))
        shape = model.get_tensor_shape(self.onnx_node.input[1])
        cf = 1 if shape[0] == 1 else self.get_nodeattr("NumChannels") // pe
        block = (1 << (cf - 1).bit_length()) * (1 << (pe - 1).bit_length()) * (1 << (steps - 1).bit_length())
        words = []
        for i in range(n):
            with looped.iteration_of(self, model, i), tempfile.TemporaryDirectory() as d:
                path = Path(d) / "runtime.dat"
                self.make_weight_file(model.get_initializer(self.onnx_node.input[1]), "decoupled_runtime", str(path))
                w = path.read_text().split()
            if len(w) > block:
                raise ValueError(f"{self.onnx_node.name}: {len(w)} runtime words for a set of {block}")
            words += w + ["0" * len(w[0])] * (block - len(w))
        return words

    def _write_sets(self, model, code_dir: Path) -> None:
        """Every iteration's threshold files, set s at s << (clog2(CF) + stage) of each stage's memory."""
        n = looped.iterations(self)
        pe = self.get_nodeattr("PE")
        shape = model.get_tensor_shape(self.onnx_node.input[1])
        cf = 1 if shape[0] == 1 else self.get_nodeattr("NumChannels") // pe  # one row: broadcast, C = PE in the core
        # the core's stages: M = clog2(N + 1). FINN's file writer takes the stage count from the output datatype,
        # which a rolled body may have widened (the widest of its blocks'), so it is told M explicitly here
        stages = int(self.get_nodeattr("numSteps")).bit_length()
        name = self.onnx_node.name
        odt = self.get_nodeattr("outputDataType")
        per_set: list[dict[tuple[int, int], list[str]]] = []
        for i in range(n):
            with looped.iteration_of(self, model, i), tempfile.TemporaryDirectory() as d:
                self.set_nodeattr("outputDataType", f"UINT{stages}")
                try:
                    self.make_weight_file(model.get_initializer(self.onnx_node.input[1]), "internal_embedded",
                                          str(Path(d) / "memblock.dat"))
                finally:
                    self.set_nodeattr("outputDataType", odt)
                per_set.append({(p, s): (Path(d) / f"{name}_threshs_{p}_{s}.dat").read_text().split()
                                for p in range(pe) for s in range(stages)})
        cf_pow = 1 << max(0, (cf - 1).bit_length())
        for (p, s), first in per_set[0].items():
            block = cf_pow << s
            lines = []
            for k, sets in enumerate(per_set):
                words = sets[(p, s)]
                if len(words) > block:
                    raise ValueError(f"{name}: set {k} stage {s} has {len(words)} thresholds for {block} slots")
                lines += words + ["0" * len(first[0])] * (block - len(words))
            (code_dir / f"{name}_threshs_{p}_{s}.dat").write_text("\n".join(lines) + "\n")

