"""Board table of the FINN flow (hw/samfpga/hw/boards.py)."""

import pytest

from samfpga.hw.boards import BOARDS, get_board


def test_required_boards_and_parts():
    parts = {name: b.part for name, b in BOARDS.items()}
    assert parts["kv260"] == "xck26-sfvc784-2LV-c"
    assert parts["zcu104"] == "xczu7ev-ffvc1156-2-e"
    assert parts["zcu102"] == "xczu9eg-ffvb1156-2-e"
    assert parts["pynq-z2"] == "xc7z020clg400-1"
    assert parts["vck190"] == "xcvc1902-vsva2197-2MP-e-S"


def test_parts_agree_with_finn_part_map():
    from finn.util.basic import part_map

    for b in BOARDS.values():
        assert part_map[b.finn_board] == b.part, b.name


def test_budgets_agree_with_finn_platform_models():
    # FINN's platform models count BRAM18 and DSPs; our BRAM36 x 2 must not exceed their BRAM18 figure
    from finn.util.platforms import platforms

    for b in BOARDS.values():
        if b.finn_board not in platforms:
            continue
        lut, ff, bram18, uram, dsp = platforms[b.finn_board]().compute_resources[0]
        assert dsp == b.dsp, b.name
        assert abs(lut - b.lut) / b.lut < 0.01, b.name
        assert 2 * b.bram36 >= bram18 >= 1.9 * b.bram36, b.name


def test_get_board_case_and_unknown():
    assert get_board("KV260") is BOARDS["kv260"]
    assert get_board("pynq_z2") is BOARDS["pynq-z2"]
    with pytest.raises(ValueError, match="unknown board 'zcu999'; known boards: kv260, zcu104"):
        get_board("zcu999")


def test_roofline_inputs():
    kv = get_board("kv260")
    assert kv.clock_period_ns == pytest.approx(5.0)
    assert kv.macs_per_dsp(8) == 2 and kv.macs_per_dsp(4) == 3
    assert set(kv.budget()) == {"LUT", "FF", "BRAM36", "URAM", "DSP"}
