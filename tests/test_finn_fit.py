"""Fit search of the FINN flow (hw/samfpga/hw/build/fit.py) on synthetic cost tables: no FINN graph, milliseconds.

Each table is small enough to check the answer by hand: the fastest configuration within the budget share, the
binding resource and its excess when nothing fits, memory moved off a scarce resource, the --target-fps cap, no URAM
on a board without it, and the advice naming a board that holds the design.
"""

from __future__ import annotations

import pytest

from samfpga.hw.boards import RESOURCES, get_board
from samfpga.hw.build.fit import Group, Option, advice, ladder, search


def res(**kw) -> dict[str, float]:
    return {r: float(kw.get(r, 0.0)) for r in RESOURCES}


def layer(name: str, *opts: tuple[int, dict], op: str = "MVAU_rtl") -> Group:
    """A one-layer group with options (cycles, resources)."""
    return Group((name,), (op,), [Option({name: {"PE": i}}, {name: c}, {name: r}) for i, (c, r) in enumerate(opts)])


BUDGET = {"LUT": 1000, "FF": 2000, "BRAM36": 10, "URAM": 0, "DSP": 100}


def pipeline() -> list[Group]:
    # faster options cost more LUT; layer b cannot go below 400 cycles
    return [
        layer("a", (1600, res(LUT=100)), (800, res(LUT=200)), (400, res(LUT=400)), (200, res(LUT=800))),
        layer("b", (1600, res(LUT=50, DSP=10)), (800, res(LUT=100, DSP=20)), (400, res(LUT=200, DSP=40))),
        layer("c", (1000, res(LUT=10)), (300, res(LUT=30))),
    ]


def test_fastest_that_fits() -> None:
    # 85% of 1000 LUT = 850: at 400 cycles a+b+c = 400+200+30 = 630 fits; 200 cycles is out of reach for b
    r = search(pipeline(), BUDGET, clock_mhz=100.0, limit=0.85)
    assert r.fits and r.cycles == 400 and r.min_cycles == 400
    assert r.choice == [2, 2, 1] and r.totals["LUT"] == 630 and r.totals["DSP"] == 40
    assert r.fps == pytest.approx(100e6 / 400)
    assert r.binding == "LUT" and r.over_by == pytest.approx(630 / 850)


def test_tighter_budget_slows_the_pipeline() -> None:
    # 85% of 500 LUT = 425: 400 cycles needs 630 (no); 800 cycles needs 200+100+30 = 330 (yes; c's slow option
    # takes 1000 cycles, so it runs at 300)
    r = search(pipeline(), {**BUDGET, "LUT": 500}, clock_mhz=100.0, limit=0.85)
    assert r.fits and r.cycles == 800 and r.totals["LUT"] == 330


def test_reserved_resources_count_against_the_budget() -> None:
    # 300 LUT reserved (the FIFOs): 400 cycles needs 630 + 300 > 850, 800 cycles 330 + 300 = 630 fits
    r = search(pipeline(), BUDGET, clock_mhz=100.0, limit=0.85, reserved={"LUT": 300.0})
    assert r.fits and r.cycles == 800 and r.totals["LUT"] == 630 and r.reserved == {"LUT": 300.0}
    # a reserve bigger than the budget leaves nothing that fits
    r = search(pipeline(), BUDGET, clock_mhz=100.0, limit=0.85, reserved={"LUT": 900.0})
    assert not r.fits and r.binding == "LUT"


def test_nothing_fits_names_the_binding_resource() -> None:
    # the smallest configuration needs 160 LUT and 10 DSP; with 8 DSP the DSP binds at 10 / (0.85 * 8)
    r = search(pipeline(), {**BUDGET, "DSP": 8}, clock_mhz=100.0, limit=0.85)
    assert not r.fits and r.binding == "DSP"
    assert r.over_by == pytest.approx(10 / (0.85 * 8))
    assert r.cycles == 1600 and r.totals["LUT"] == 160  # reported at the smallest configuration


def test_memory_moves_off_the_scarce_resource() -> None:
    # two memory styles at the same speed: LUTRAM is cheaper by weight at first, but LUT is short; BRAM is free
    g = [layer(f"t{i}", (100, res(LUT=300)), (100, res(BRAM36=2)), op="Thresholding_rtl") for i in range(4)]
    r = search(g, {**BUDGET, "LUT": 700}, clock_mhz=100.0, limit=0.85)
    assert r.fits
    assert r.totals["LUT"] <= 0.85 * 700 and r.totals["BRAM36"] <= 0.85 * 10
    assert sorted(r.choice) != [0, 0, 0, 0]


def test_target_fps_caps_the_search() -> None:
    # 100 MHz / 100,000 fps = 1000 cycles: the search stops there (a, b at 800, c at 1000), not at 400
    r = search(pipeline(), BUDGET, clock_mhz=100.0, limit=0.85, max_fps=100_000)
    assert r.fits and r.capped and r.cycles == 1000 and r.choice == [1, 1, 0]
    assert r.totals["LUT"] == 200 + 100 + 10


def test_no_uram_on_a_board_without_it() -> None:
    g = [layer("w", (100, res(URAM=1)), (100, res(BRAM36=4)))]
    r = search(g, BUDGET, clock_mhz=100.0)
    assert r.fits and r.choice == [1] and r.totals["URAM"] == 0
    with pytest.raises(ValueError, match="need a resource this board lacks"):
        search([layer("u", (100, res(URAM=1)))], BUDGET, clock_mhz=100.0)


def test_advice_names_a_bigger_board() -> None:
    kv = get_board("kv260")
    lut = 1.5 * kv.lut  # over the KV260, within 85% of a ZCU102 (274k) and a VCK190
    lines = advice(res(LUT=lut, BRAM36=10, DSP=50), {"Thresholding_rtl": res(LUT=0.9 * lut)}, kv, 0.85)
    assert lines[0].startswith(f"LUT binds: {lut:,.0f} LUT needed, {lut / (0.85 * kv.lut):.2f}x")
    assert any(x.startswith("Lower bit widths") for x in lines)
    bigger = next(x for x in lines if x.startswith("A bigger board"))
    assert "zcu102" in bigger and "vck190" in bigger and "pynq-z2" not in bigger
    huge = advice(res(LUT=1e8), {"Thresholding_rtl": res(LUT=1e8)}, kv, 0.85)
    assert "none of" in huge[-1]
    assert advice(res(LUT=10), {}, kv, 0.85) == []
    assert not any(x.startswith("Lower weight bit widths") for x in lines)  # LUT binds, not weight memory


def test_advice_names_weight_bits_when_weights_bind_memory() -> None:
    pz = get_board("pynq-z2")
    bram = 3 * pz.bram36
    lines = advice(res(BRAM36=bram, LUT=10), {"MVAU_rtl": res(BRAM36=0.7 * bram), "PagePermute_rtl": res(BRAM36=0.3 * bram)},
                   pz, 0.85)
    assert lines[0].startswith("BRAM36 binds")
    assert any(x.startswith("Lower weight bit widths: weight memories take 70% of BRAM36") for x in lines)


def test_ladder() -> None:
    assert ladder(1000, 100, 2.0) == [1000, 500, 250, 125, 100]
    assert ladder(100, 100, 2.0) == [100]


def test_without_origin_drops_only_that_origin() -> None:
    from samfpga.hw.build.fit import WORD_WIDTH, without_origin

    ladder_opt = Option({"s": {"SIMD": 1}}, {"s": 100}, {"s": res(BRAM36=4)})
    wide = Option({"s": {"SIMD": 8}}, {"s": 13}, {"s": res(URAM=1)}, origin=WORD_WIDTH)
    only_wide = Option({"t": {"SIMD": 8}}, {"t": 13}, {"t": res(URAM=1)}, origin=WORD_WIDTH)
    groups = [Group(("s",), ("Shuffle",), [ladder_opt, wide]), Group(("t",), ("Shuffle",), [only_wide])]
    out = without_origin(groups, WORD_WIDTH)
    assert out[0].options == [ladder_opt] and out[1].options == [only_wide]
    # a search over the wide options may take them; without them it cannot
    assert search(groups, {**BUDGET, "URAM": 4}, 100.0).cycles == 13
    assert search(out, {**BUDGET, "URAM": 4}, 100.0).cycles == 100
