"""The rolled build's pure parts (``samfpga.hw.build.rolling``): tying a stage's blocks in the fit table, the price
of the iterations' parameters, the DDR strides of token-batched bodies. The build with ``roll`` on a reduced
encoder is in tests/test_rolled.py (slow)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from samfpga.hw.boards import RESOURCES
from samfpga.hw.build.fit import Group, Option, search
from samfpga.hw.build.rolling import param_bits, param_extra, tie
from samfpga.hw.rolled import LoopInput, Role


def _res(lut: float, bram: float = 0.0) -> dict[str, float]:
    return {**dict.fromkeys(RESOURCES, 0.0), "LUT": lut, "BRAM36": bram}


def _group(name: str, options: list[tuple[int, int, float]]) -> Group:
    """One layer; options (PE, cycles, LUT)."""
    return Group((name,), ("MVAU_rtl",), [Option({name: {"PE": pe}}, {name: c}, {name: _res(lut)})
                                           for pe, c, lut in options])


def _model_with(names: list[str]):
    return SimpleNamespace(graph=SimpleNamespace(node=[SimpleNamespace(name=n) for n in names]))


def _plan(columns: list[tuple[str, ...]], inputs=(), attr_params=None):
    n = len(columns[0])
    return SimpleNamespace(columns=columns, stage=SimpleNamespace(iterations=n, name="s"), inputs=list(inputs),
                           attr_params=attr_params or {})


def test_tie_counts_the_body_once_with_n_times_its_cycles() -> None:
    opts = [(1, 4000, 100.0), (2, 2000, 180.0), (4, 1000, 330.0)]
    groups = [_group("pre", [(1, 3000, 50.0)]), _group("a0", opts), _group("a1", opts), _group("a2", opts)]
    plan = _plan([("a0", "a1", "a2")])
    extra = {"a0": {"": _res(0.0, 2.0)}}
    tied = tie(groups, [plan], _model_with(["pre", "a0", "a1", "a2"]), extra)
    assert [g.names for g in tied] == [("pre",), ("a0",)]
    body = tied[1]
    assert [o.cycles["a0"] for o in body.options] == [12000, 6000, 3000]
    assert [o.res["a0"]["LUT"] for o in body.options] == [100.0, 180.0, 330.0]
    assert all(o.res["a0"]["BRAM36"] == 2.0 for o in body.options)
    # one choice sets every block's node
    assert body.options[1].attrs == {"a0": {"PE": 2}, "a1": {"PE": 2}, "a2": {"PE": 2}}
    # the search now sees the stage as 3 x the body: to beat the 3000-cycle layer before it, the body takes PE 4
    budget = {"LUT": 10_000, "FF": 10_000, "BRAM36": 100, "URAM": 0, "DSP": 100}
    r = search(tied, budget, 100.0, 1.0)
    assert r.cycles == 3000 and body.options[r.choice[1]].attrs["a1"] == {"PE": 4}
    # untied, the three layers reach 3000 cycles at PE 2 each: three copies of the hardware
    untied = search(groups, budget, 100.0, 1.0)
    assert untied.cycles == 3000 and untied.totals["LUT"] == 50.0 + 3 * 180.0
    assert r.totals["LUT"] == 50.0 + 330.0 + 0.0


def test_search_chooses_the_variant_that_fits() -> None:
    """A layer group with options on chip and as the token-batched unit: the search takes the unit where the
    on-chip weights break the budget, and ``chosen`` names it; ``only_variant`` imposes the unit."""
    from samfpga.hw.build.fit import chosen, only_variant

    def opts(name: str, bram: float) -> list[Option]:
        return [Option({name: {"PE": 2}}, {name: 1000}, {name: _res(100.0, bram)}),
                Option({name: {"PE": 2}}, {name: 1200}, {name: _res(300.0, 1.0)}, variant="token_batch")]

    groups = [Group(("a",), ("MVAU_rtl",), opts("a", 50.0)), Group(("b",), ("MVAU_rtl",), opts("b", 0.5))]
    budget = {"LUT": 10_000, "FF": 10_000, "BRAM36": 40, "URAM": 0, "DSP": 100}
    r = search(groups, budget, 100.0, 1.0)
    assert r.fits and chosen(groups, r.choice, "token_batch") == ["a"]
    forced = only_variant(groups, "token_batch")
    r2 = search(forced, budget, 100.0, 1.0)
    assert chosen(forced, r2.choice, "token_batch") == ["a", "b"]
    assert [len(g.options) for g in forced] == [1, 1]


def test_tie_refuses_a_group_mixing_body_and_other_nodes() -> None:
    g = Group(("a0", "x"), ("A", "B"), [Option({"a0": {}, "x": {}}, {"a0": 1, "x": 1},
                                                {"a0": _res(1.0), "x": _res(1.0)})])
    with pytest.raises(ValueError, match="mixes"):
        tie([g, _group("a1", [(1, 1, 1.0)])], [_plan([("a0", "a1")])], _model_with(["a0", "a1", "x"]), {})


def test_tie_skips_names_the_graph_lacks() -> None:
    """A column of an identity node the comparison made for a later block (not in the graph) ties what exists."""
    groups = [_group("t0", [(1, 10, 1.0)])]
    tied = tie(groups, [_plan([("t0", "identity_in_block1")])], _model_with(["t0"]), {})
    assert tied[0].options[0].attrs == {"t0": {"PE": 1}} and tied[0].options[0].cycles == {"t0": 20}


def test_param_bits_and_extra() -> None:
    w = LoopInput("m", "MVAU_rtl", 1, "W", Role.PARAMETER, [np.zeros((64, 32))] * 3, "INT8")
    c = LoopInput("m", "MVAU_rtl", 2, "C", Role.CONSTANT, [np.zeros(100)] * 3, "INT8")
    s = LoopInput("r", "Requant_rtl", 1, "S", Role.PARAMETER, [np.zeros(32)] * 3, "FLOAT32")
    plan = _plan([("m", "m1", "m2"), ("r", "r1", "r2")], [w, c, s],
                 {("n", "eps_int"): [1, 2, 3], ("n", "negate"): [[0] * 48] * 3, ("n", "mult"): [1, 2**40, 3]})
    assert param_bits(plan, "m") == 64 * 32 * 8  # the CONSTANT is shared: not per iteration
    assert param_bits(plan, "m", in_ddr=True) == 0
    assert param_bits(plan, "r") == 32 * 32
    assert param_bits(plan, "n") == 32 + 48 + 64
    # the token-batched unit's per-iteration address is its BASE + i x STRIDE registers, not a parameter memory
    plan.attr_params[("t", "ddr_offset")] = [0, 4096, 8192]
    assert param_bits(plan, "t", in_ddr=True) == 0
    assert param_extra(16384, 1) == dict.fromkeys(RESOURCES, 0.0)
    big = param_extra(64 * 32 * 8, 7)  # 6 more iterations of 16 Kbit: 96 Kbit in 72-bit words -> block RAM
    assert big["BRAM36"] >= 3 and big["LUT"] == 0
    small = param_extra(32 * 32, 3)  # 2 Kbit: distributed RAM
    assert small["BRAM36"] == 0 and small["LUT"] > 0


def test_strides_must_be_even() -> None:
    from samfpga.hw.build.rolling import _strides

    plan = _plan([("t", "t1", "t2")], attr_params={("t", "ddr_offset"): [0, 8192, 16384]})
    assert _strides(None, plan, {"t"}) == {"t": 8192}
    plan.attr_params[("t", "ddr_offset")] = [0, 8192, 12288]
    with pytest.raises(ValueError, match="not evenly spaced"):
        _strides(None, plan, {"t"})


def test_pair_variants_never_prices_half_a_pair() -> None:
    """An MVAU and the Requant the token-batched unit absorbs become one group: every combination of their plain
    options, and the MVAU's unit options with the Requant priced as absorbed (nothing); never the unit with a
    priced Requant, nor an on-chip MVAU with a free Requant."""
    from samfpga.hw.build.fit import pair_variants

    mv = Group(("m",), ("MVAU_rtl",), [Option({"m": {"PE": p}}, {"m": c}, {"m": _res(lut)}) for p, c, lut in
                                        ((1, 400, 10.0), (2, 200, 20.0))]
               + [Option({"m": {"PE": 1}}, {"m": 500}, {"m": _res(30.0)}, variant="token_batch")])
    rq = Group(("r",), ("Requant_rtl",), [Option({"r": {"PE": 1}}, {"r": 300}, {"r": _res(5.0)}),
                                          Option({"r": {"PE": 1}}, {"r": 0}, {"r": _res(0.0)}, variant="token_batch")])
    other = _group("x", [(1, 100, 1.0)])
    (g, x) = pair_variants([mv, rq, other], {"m": "r"}, "token_batch")
    assert g.names == ("m", "r") and x is other
    plain = [o for o in g.options if not o.variant]
    unit = [o for o in g.options if o.variant == "token_batch"]
    assert len(plain) == 2 and all(o.res["r"]["LUT"] == 5.0 for o in plain)
    assert len(unit) == 1 and unit[0].res["r"]["LUT"] == 0.0 and unit[0].res["m"]["LUT"] == 30.0
    assert unit[0].max_cycles == 500
