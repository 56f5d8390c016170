"""samfpga.hw.synth.shells: a module's opaque shell keeps its header and replaces its logic by one opaque cell per
port bit, so Yosys counts the logic around it alone (bench/engine_path_glue_synth.py prices the engine's glue so)."""

from __future__ import annotations

import pytest

from samfpga.hw.synth.own_rtl import rtl_source
from samfpga.hw.synth.shells import OPAQUE, ports, shell, write_shells

#: a parent of byte_gearbox: 16 flip-flops of its own, fed by the gearbox's outputs
TOP = """module shell_top (
	input	logic  clk,
	input	logic  rst,
	input	logic [31:0]  a,
	input	logic  v,
	output	logic [15:0]  q
);
	uwire [15:0]  g;
	byte_gearbox #(.IN_B(4), .OUT_B(2)) gb (
		.clk, .rst, .s_axis_tdata(a), .s_axis_tkeep('1), .s_axis_tlast(1'b0), .s_axis_tvalid(v), .s_axis_tready(),
		.m_axis_tdata(g), .m_axis_tkeep(), .m_axis_tlast(), .m_axis_tvalid(), .m_axis_tready(1'b1)
	);
	always_ff @(posedge clk)  q <= g ^ a[15:0];
endmodule
"""


def test_shell_keeps_the_ports_and_refuses_what_it_cannot_read() -> None:
    text = rtl_source("byte_gearbox.sv").read_text()
    sh = shell(text, "byte_gearbox")
    assert [p for p in ports(sh) if p[0] == "output"] == [
        ("output", "s_axis_tready"), ("output", "m_axis_tdata"), ("output", "m_axis_tkeep"),
        ("output", "m_axis_tlast"), ("output", "m_axis_tvalid")]
    assert len(ports(sh)) == 12 and sh.count("opaque_in  sink") == 7 and sh.count("opaque_out  src") == 5
    assert "always_ff" not in sh and "gcd" not in sh  # the logic is gone
    with pytest.raises(ValueError, match="one port a line"):
        ports("module m (\n\tinput logic a, b,\n\toutput logic c\n);")
    with pytest.raises(ValueError, match="no module"):
        shell(text, "not_there")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_yosys_counts_the_parent_alone(tmp_path) -> None:
    """The parent's 16 flip-flops and its XORs stay (the shell's outputs are not constants), the gearbox's own
    buffer (more than 48 flip-flops) is gone, and an opaque cell stands for each of its port bits: 2 + 32 + 4 + 3
    input bits, 1 + 16 + 2 + 2 output bits."""
    from samfpga.hw.synth.yosys import synthesize

    top = tmp_path / "shell_top.sv"
    top.write_text(TOP)
    files = write_shells([rtl_source("byte_gearbox.sv"), top], ("byte_gearbox",), tmp_path / "shells")
    r = synthesize(files, ["shell_top"], tmp_path / "work", blackboxes=OPAQUE)[0]
    assert r.FF == 16 and r.LUT >= 16 and r.DSP == 0
    assert r.cells["opaque_in"] == 41 and r.cells["opaque_out"] == 21
    whole = synthesize([rtl_source("byte_gearbox.sv"), top], ["shell_top"], tmp_path / "whole")[0]
    assert whole.FF > 16 + 48
