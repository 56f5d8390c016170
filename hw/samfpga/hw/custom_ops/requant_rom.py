"""FINN+'s ``Requant_rtl`` with a memory style for its parameter ROM (node attribute ``ram_style``).

finn-rtllib's requant.sv holds each PE's per-channel parameters (scale, bias, shift) as a ``localparam`` array
read through a channel counter into a register: Vivado infers a ROM and places it as it likes (a 128 x ~70 bit
table lands in BRAM), and a localparam cannot carry a ``rom_style`` attribute. With ``ram_style`` "block" or
"distributed" this class writes, next to FINN's generated wrapper, per-node copies of requant.sv and requant_axi.sv
(modules ``<top>_requant`` / ``<top>_requant_axi``, so copies of different nodes never clash) in which the same
parameters sit in three ROM arrays (scale, bias, shift) initialised from FINN's ``PARAMS`` and marked
``(* rom_style = ... *)``; the datapath and its registers are FINN's, untouched. With ``mem_mode``
internal_decoupled (parameters decomposed in Python and streamed from FINN's memstream, which the build uses where
the parameters do not print exactly) the style goes to the memstream's ``RAM_STYLE`` parameter (memstream.sv puts it
on its memory as ``(* RAM_STYLE = ... *)``), which FINN+'s Requant_rtl leaves at "auto". "auto" (the default) keeps
FINN's sources and choices as they are.

The copies are made from the installed finn-rtllib at HDL generation by exact, must-match-once replacements
(``rom_patch``): a changed finn-rtllib fails loudly instead of building something else.

In a rolled body the requantiser may serve several blocks with their own scales and biases
(``samfpga.hw.custom_ops.looped``: inputs 1 and 2 per iteration). It then takes its parameters decoupled: every
iteration's words in one memstream (``samfpga.hw.custom_ops.looped_memstream``), one common shift window for the
core, the set chosen by counting tokens in the memstream's wrapper.
"""

from __future__ import annotations

import os
from pathlib import Path

from finn.custom_op.fpgadataflow.rtl import register_custom_op as register_rtl_op
from finn.custom_op.fpgadataflow.rtl.requant_rtl import Requant_rtl as FinnRequantRTL
from qonnx.util.basic import roundup_to_integer_multiple

from samfpga.hw.custom_ops import looped, looped_memstream

#: ROM styles the RTL can be told (no URAM: a ROM needs initial contents, which URAM cannot take from a bitstream)
ROM_STYLES = ("auto", "block", "distributed")

_READ = ("\t\t\t\tautomatic params_t  p = PARAMS[pe][cnl_sel];\n"
         "\t\t\t\tX1 <= K > MUL_WIDTHS.x? idat[pe][K-MUL_WIDTHS.x+:MUL_WIDTHS.x] : idat[pe];\n"
         "\t\t\t\tS1 <= p.scale;\n"
         "\t\t\t\tB1 <= p.bias;\n"
         "\t\t\t\tT1 <= p.shift - SHIFT_MINMAX.min;\n")
_ROM_READ = ("\t\t\t\tX1 <= K > MUL_WIDTHS.x? idat[pe][K-MUL_WIDTHS.x+:MUL_WIDTHS.x] : idat[pe];\n"
             "\t\t\t\tS1 <= RomS[cnl_sel];\n"
             "\t\t\t\tB1 <= RomB[cnl_sel];\n"
             "\t\t\t\tT1 <= RomT[cnl_sel];\n")
_DECL = "\t\tshift_t  T1 = 'x;\n"


def _rom_decl(style: str) -> str:
    # the widths and truncations of the registers they feed (S1, B1, T1), so the values are FINN's
    return (f"\t\t// samfpga: the parameters as ROMs with a memory style (custom_ops/requant_rom.py)\n"
            f"\t\t(* rom_style = \"{style}\" *) logic signed [MUL_WIDTHS.s-1:0]  RomS[CF];\n"
            f"\t\t(* rom_style = \"{style}\" *) logic signed [MUL_WIDTHS.s+MUL_WIDTHS.x-1:0]  RomB[CF];\n"
            f"\t\t(* rom_style = \"{style}\" *) shift_t  RomT[CF];\n"
            "\t\tinitial begin\n"
            "\t\t\tfor(int unsigned  cf = 0; cf < CF; cf++) begin\n"
            "\t\t\t\tRomS[cf] = PARAMS[pe][cf].scale;\n"
            "\t\t\t\tRomB[cf] = PARAMS[pe][cf].bias;\n"
            "\t\t\t\tRomT[cf] = PARAMS[pe][cf].shift - SHIFT_MINMAX.min;\n"
            "\t\t\tend\n"
            "\t\tend\n")


def _once(text: str, old: str, new: str, what: str) -> str:
    if text.count(old) != 1:
        raise ValueError(f"finn-rtllib {what}: expected exactly one {old.strip()[:60]!r}; finn-rtllib changed, "
                         "revisit samfpga.hw.custom_ops.requant_rom")
    return text.replace(old, new)


def rom_patch(core: str, axi: str, impl: str, prefix: str, style: str) -> tuple[str, str, str]:
    """(requant.sv, requant_axi.sv, <top>_impl.sv) texts with the modules renamed ``<prefix>_requant`` /
    ``<prefix>_requant_axi`` and the parameter ROMs marked ``rom_style = style``."""
    if style not in ROM_STYLES[1:]:
        raise ValueError(f"ROM style {style!r}: one of {ROM_STYLES[1:]}")
    core = _once(core, "module requant #(", f"module {prefix}_requant #(", "requant.sv")
    core = _once(core, "endmodule : requant\n", f"endmodule : {prefix}_requant\n", "requant.sv")
    core = _once(core, _DECL, _DECL + _rom_decl(style), "requant.sv")
    core = _once(core, _READ, _ROM_READ, "requant.sv")
    axi = _once(axi, "module requant_axi #(", f"module {prefix}_requant_axi #(", "requant_axi.sv")
    axi = _once(axi, "\trequant #(", f"\t{prefix}_requant #(", "requant_axi.sv")
    axi = _once(axi, "endmodule : requant_axi", f"endmodule : {prefix}_requant_axi", "requant_axi.sv")
    impl = _once(impl, "\trequant_axi #(", f"\t{prefix}_requant_axi #(", "requant wrapper")
    return core, axi, impl


@register_rtl_op
class Requant_rtl(looped.LoopedAttrs, FinnRequantRTL):  # noqa: N801 - FINN's op type name: this class takes its place
    """FINN+'s Requant_rtl plus ``ram_style`` for the parameter ROM and per-iteration parameters (module doc)."""

    # what the HDL takes per iteration of a rolled body (samfpga.hw.custom_ops.looped): scale and bias
    LOOP_ATTRS = ()
    LOOP_INPUTS = {"scale": 1, "bias": 2}

    def get_nodeattr_types(self) -> dict:
        attrs = super().get_nodeattr_types()
        attrs["ram_style"] = ("s", False, "auto", set(ROM_STYLES))
        return attrs

    def adapt_to_loop(self) -> None:
        """Per-iteration parameters live in the decoupled memstream (one set per iteration)."""
        self.set_nodeattr("mem_mode", "internal_decoupled")

    def _iteration_infos(self, model, fpgapart) -> list[dict]:
        """FINN's decoupled layout of each iteration's parameters, with one shift window (the union of theirs) and
        the widths it implies, so one core and one word format serve every iteration."""
        n = looped.iterations(self)
        infos = []
        for i in range(n):
            with looped.iteration_of(self, model, i):
                infos.append(super()._derive_decoupled_widths(model, fpgapart))
        lo, hi = min(f["shift_min"] for f in infos), max(f["shift_max"] for f in infos)
        rng = hi - lo + 1
        shift_width = max(1, (rng - 1).bit_length()) if rng > 1 else 1  # as FINN+: clog2 of the window
        for f in infos:
            lane = f["s_width"] + shift_width + f["bias_width"]
            f.update(shift_min=lo, shift_max=hi, shift_width=shift_width, params_lane_width=lane,
                     params_stream_width=roundup_to_integer_multiple(self.get_nodeattr("PE") * lane, 8))
        return infos

    def _derive_decoupled_widths(self, model, fpgapart):
        if looped.iterations(self) == 1:
            return super()._derive_decoupled_widths(model, fpgapart)
        return self._iteration_infos(model, fpgapart)[0]

    def generate_params(self, model, path, fpgapart=None):
        if looped.iterations(self) == 1:
            return super().generate_params(model, path, fpgapart)
        if fpgapart is None:
            raise ValueError(f"{self.onnx_node.name}: generate_params needs the FPGA part")
        infos = self._iteration_infos(model, fpgapart)
        words = []
        for i, info in enumerate(infos):
            with looped.iteration_of(self, model, i):
                words += self._pack_param_words(info)
        self._write_memblock(os.path.join(path, "params_memblock.dat"), words, infos[0]["params_stream_width"])
        return words

    def _rom_copies(self) -> bool:
        return self.get_nodeattr("ram_style") != "auto" and self.get_nodeattr("mem_mode") == "internal_embedded"

    def _copy_paths(self) -> tuple[Path, Path]:
        top = self.get_nodeattr("gen_top_module") or self.get_verilog_top_module_name()
        d = Path(self.get_nodeattr("code_gen_dir_ipgen"))
        return d / f"{top}_requant.sv", d / f"{top}_requant_axi.sv"

    def generate_hdl(self, model, fpgapart, clk) -> None:
        if looped.iterations(self) > 1 and self.get_nodeattr("mem_mode") != "internal_decoupled":
            raise ValueError(f"{self.onnx_node.name}: a looped Requant_rtl streams its parameter sets; set "
                             f"mem_mode=internal_decoupled (got {self.get_nodeattr('mem_mode')})")
        super().generate_hdl(model, fpgapart, clk)
        if not self._rom_copies():
            return
        from samfpga.hw.custom_ops.rtl_base import write_text_atomic
        from samfpga.hw.sim.rtllib import finn_rtllib

        lib = finn_rtllib() / "requant" / "hdl"
        top = self.get_nodeattr("gen_top_module")
        impl_path = Path(self.get_nodeattr("code_gen_dir_ipgen")) / f"{top}_impl.sv"
        core, axi, impl = rom_patch((lib / "requant.sv").read_text(), (lib / "requant_axi.sv").read_text(),
                                    impl_path.read_text(), top, self.get_nodeattr("ram_style"))
        core_path, axi_path = self._copy_paths()
        write_text_atomic(core_path, core)
        write_text_atomic(axi_path, axi)
        write_text_atomic(impl_path, impl)

    def generate_hdl_memstream(self, fpgapart, *args, **kwargs) -> None:
        # decoupled mode: FINN+ passes ram_style="auto" for the parameter memstream; the node's style instead
        if self.get_nodeattr("ram_style") != "auto":
            kwargs["ram_style"] = self.get_nodeattr("ram_style")
        super().generate_hdl_memstream(fpgapart, *args, **kwargs)
        n = looped.iterations(self)
        if n > 1:
            # FINN sized the memstream for one set (depth CF); this requantiser's holds every iteration's CF words
            # and streams one set per token
            name = kwargs.get("name") or self.onnx_node.name
            looped_memstream.patch_wrapper(Path(self.get_nodeattr("code_gen_dir_ipgen")) / f"{name}_memstream_wrapper.v",
                                           n, looped.tokens_per_pass(self))

    def get_rtl_file_list(self, abspath: bool = False) -> list[str]:
        files = super().get_rtl_file_list(abspath=True)
        if self._rom_copies():
            core_path, axi_path = self._copy_paths()
            swap = {"requant.sv": str(core_path), "requant_axi.sv": str(axi_path)}
            files = [swap.get(os.path.basename(f), f) for f in files]
        return files if abspath else [os.path.basename(f) for f in files]
