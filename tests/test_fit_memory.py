"""The fit search sees every memory it will cost, and chooses memory styles where the RTL has a knob.

Fast: a Shuffle is priced (fit table) and buffered (FIFO start-up) as the PagePermute_rtl the build makes of it, or as
FINN+'s InnerShuffle chain where ``page_view`` refuses it; Requant_rtl's parameter ROM takes ``ram_style`` (a per-node
copy of requant.sv with ``rom_style``, custom_ops.requant_rom), priced by the bits that vary between channels, and the
fit's memory styles reach it. Slow: on the 64x64 test encoder the fit's prediction for its choice equals the totals
of the build's report (every layer as built, FIFOs and width converters)."""

from __future__ import annotations

import pytest

from samfpga.hw.sim import nodes
from tests.support.graphs import shuffle_model as _shuffle_model


def _kv260():
    from samfpga.hw.boards import get_board

    return get_board("kv260")


def _cost_of(model, op_type):
    from samfpga.hw.resources import layer_costs

    return [c for c in layer_costs(model, _kv260()) if c.op_type == op_type]


@pytest.mark.parametrize("shape,perm,simd,reshape_to,built", [
    ((1, 64, 8), (0, 1, 3, 2, 4, 5), 2, (1, 2, 4, 2, 4, 8), {"PagePermute_rtl"}),  # window partition
    ((2, 8, 2, 4), (0, 2, 3, 1), 2, None, {"InnerShuffle_rtl"}),  # K^T at SIMD 2: FINN+'s chain
])
def test_shuffle_is_priced_as_what_it_becomes(shape, perm, simd, reshape_to, built):
    from samfpga.hw.sim.finn_boot import boot_finn

    boot_finn()
    import samfpga.hw.custom_ops  # noqa: F401
    from samfpga.hw.boards import RESOURCES
    from samfpga.hw.build.after_folding import after_folding, priced_as_built
    from samfpga.hw.build.fit import _Priced

    m = _shuffle_model(shape, perm, simd, reshape_to)
    shuffle = m.get_nodes_by_op_type("Shuffle")[0]
    whole = after_folding(m, _kv260().part)
    assert {n.op_type for n in whole.graph.node} == built
    expect = {r: sum(getattr(c, r) for c in _cost_of(whole, next(iter(built)))) for r in RESOURCES}
    assert expect["LUT"] > 0 and expect["FF"] > 0
    assert priced_as_built(m, shuffle, _kv260()) == expect
    # the fit table's pricing: the same figures under the Shuffle's own name, where FINN's estimate gave zeros
    assert _Priced(m, _kv260())([shuffle])[shuffle.name] == expect


def test_shuffle_memory_style_reaches_its_page_permute():
    """A Shuffle has no memory attribute, so the fit's memory styles reach the PagePermute it becomes through the
    model's metadata (``memory.SHUFFLE_STYLE_KEY``, keyed by its output tensor): each style is priced as that
    PagePermute in that style (URAM for ``ultra``), ``fit.apply`` records the chosen one and ``ShuffleToPagePermute``
    builds it; a Shuffle without a recorded style keeps the transformation's default."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.sim.finn_boot import boot_finn

    boot_finn()
    import samfpga.hw.custom_ops  # noqa: F401
    from samfpga.hw.build import fit, memory
    from samfpga.hw.build.after_folding import after_folding, priced_as_built

    m = _shuffle_model((1, 512, 64), (0, 1, 3, 2, 4, 5), 2, (1, 8, 64, 8, 8, 64))
    shuffle = m.get_nodes_by_op_type("Shuffle")[0]
    assert memory.apply_style(m, "ultra", _kv260()) == [shuffle.name]
    assert memory.shuffle_styles(m) == {shuffle.output[0]: "ultra"}
    uram = priced_as_built(m, shuffle, _kv260())
    assert fit._Priced(m, _kv260())([shuffle])[shuffle.name] == uram and uram["URAM"] > 0 and uram["BRAM36"] == 0
    memory.apply_style(m, "block", _kv260())
    block = fit._Priced(m, _kv260())([shuffle])[shuffle.name]
    assert block["BRAM36"] > 0 and block["URAM"] == 0
    group = fit.Group((shuffle.name,), ("Shuffle",), [fit.Option({shuffle.name: {"ram_style": "ultra"}},
                                                                 {shuffle.name: 1}, {shuffle.name: uram})])
    fit.apply(m, [group], [0])
    assert memory.shuffle_styles(m)[shuffle.output[0]] == "ultra"
    (pp,) = [n for n in after_folding(m, _kv260().part).graph.node if n.op_type == "PagePermute_rtl"]
    assert getCustomOp(pp).get_nodeattr("ram_style") == "ultra"
    m.set_metadata_prop(memory.SHUFFLE_STYLE_KEY, "{}")
    (pp,) = [n for n in after_folding(m, _kv260().part).graph.node if n.op_type == "PagePermute_rtl"]
    assert getCustomOp(pp).get_nodeattr("ram_style") == "auto"


def test_shuffle_word_widths_let_a_window_buffer_pack_into_uram():
    """FINN's folding leaves a Shuffle at the slowest SIMD that meets a target, 1 at slow targets: a window
    partition's buffer is then one INT8 element per word, and a 72-bit URAM word holds 8 bits of it. The fit table
    also prices every word width ``shuffle_simds`` allows, so where BRAM is short the search takes a wide word in
    URAM; a Shuffle whose innermost axis moves (K^T) has SIMD 1 only."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.sim.finn_boot import boot_finn

    boot_finn()
    import samfpga.hw.custom_ops  # noqa: F401
    from samfpga.hw.build import fit, memory

    kt = _shuffle_model((2, 8, 2, 4), (0, 2, 3, 1), 1)
    assert fit.shuffle_simds(getCustomOp(kt.get_nodes_by_op_type("Shuffle")[0])) == [1]
    # window partition of a 64-wide map, 8-row windows, 64 channels (a page: 8 rows x 64 columns x 64 channels)
    m = _shuffle_model((1, 4096, 64), (0, 1, 3, 2, 4, 5), 1, (1, 8, 8, 8, 8, 64))
    (shuffle,) = m.get_nodes_by_op_type("Shuffle")
    assert fit.shuffle_simds(getCustomOp(shuffle)) == [1, 2, 4, 8, 16]
    table = fit.build_table(m, _kv260(), 200.0, styles=memory.styles_for(_kv260()))
    (group,) = table.groups
    uram = {o.attrs[shuffle.name]["SIMD"]: o.res[shuffle.name]["URAM"] for o in group.options if o.style == "ultra"}
    assert set(uram) == {1, 2, 4, 8, 16}
    assert uram[8] * 4 <= uram[1]  # 64-bit words fill URAM's 72-bit words
    # no BRAM, LUTs for the logic but not for the buffer, URAM for the wide word only: the search must take it
    budget = {"LUT": 4000, "FF": 10**6, "BRAM36": 0, "URAM": int(uram[8] / 0.85) + 1, "DSP": 10}
    r = fit.search(table.groups, budget, 200.0)
    chosen = group.options[r.choice[0]]
    assert r.fits and chosen.style == "ultra" and chosen.attrs[shuffle.name]["SIMD"] >= 8
    fit.apply(m, table.groups, r.choice)
    assert getCustomOp(shuffle).get_nodeattr("SIMD") == chosen.attrs[shuffle.name]["SIMD"]


def test_fit_ladder_reaches_a_rolled_body_n_times_faster():
    """A body node run N times per frame needs foldings N x faster than the rest of the pipeline: with ``repeats``
    the ladder goes on down to the fastest frame time / N. Here an MVAU whose SIMD FINN caps (64 inputs, INT4
    weights, 36 weight bits per PE: SIMD 8) sets the fastest frame at 8 cycles per vector; the Thresholding after it
    reaches 1 cycle per vector alone, but without ``repeats`` no ladder target asks for under 8."""
    import numpy as np
    from onnx import helper
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw import HW_DOMAIN
    from samfpga.hw.sim.finn_boot import boot_finn
    from tests.support.graphs import hw_graph

    boot_finn()
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    from samfpga.hw.build import fit

    vecs, mw, mh = [1, 16], 64, 8
    nodes_ = [helper.make_node("MVAU", ["x", "w"], ["acc"], name="mvau", domain=HW_DOMAIN, backend="fpgadataflow",
                               MW=mw, MH=mh, SIMD=1, PE=1, inputDataType="INT4", weightDataType="INT4",
                               outputDataType="INT12", accDataType="INT12", noActivation=1, binaryXnorMode=0,
                               ActVal=0, numInputVectors=vecs, mem_mode="internal_decoupled"),
              helper.make_node("Thresholding", ["acc", "t"], ["y"], name="thr", domain=HW_DOMAIN,
                               backend="fpgadataflow", NumChannels=mh, PE=1, numSteps=3, inputDataType="INT12",
                               weightDataType="INT8", outputDataType="UINT2", numInputVectors=vecs, ActVal=0)]
    rng = np.random.default_rng(0)
    m = hw_graph(nodes_, {"x": [*vecs, mw], "acc": [*vecs, mh], "y": [*vecs, mh]}, ["x"], ["y"],
                 {"w": rng.integers(-8, 8, size=(mw, mh)), "t": np.sort(rng.integers(-60, 60, size=(mh, 3)), axis=1)},
                 {"x": "INT4", "w": "INT4", "acc": "INT12", "t": "INT8", "y": "UINT2"})
    m = m.transform(SpecializeLayers(_kv260().part))
    thr = next(n.name for n in m.graph.node if n.op_type.startswith("Thresholding"))

    def fastest(repeats):
        table = fit.build_table(m, _kv260(), 200.0, repeats=repeats)
        return min(o.cycles[thr] for g in table.groups if thr in g.names for o in g.options)

    per_vector = vecs[1]
    assert fastest(None) == 8 * per_vector
    assert fastest({thr: 4}) == 2 * per_vector  # the MVAU's 8 cycles per vector over 4 iterations
    assert getCustomOp(m.get_nodes_by_op_type(m.graph.node[0].op_type)[0]).get_nodeattr("SIMD") <= 8
    # the cap is the build's ``mvau_wwidth_max``: at 64 x 4 bits the MVAU takes SIMD 64, one cycle per vector
    wide = fit.build_table(m, _kv260(), 200.0, mvau_wwidth_max=256)
    mvau = next(g for g in wide.groups if thr not in g.names)
    assert min(o.max_cycles for o in mvau.options) == per_vector


def test_fifo_startup_of_a_shuffle_is_that_of_its_page_permute():
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.resources.fifo import startup_fraction
    from samfpga.hw.sim.finn_boot import boot_finn

    boot_finn()
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    from samfpga.hw.custom_ops.transforms import ShuffleToPagePermute

    m = _shuffle_model((1, 64, 8), (0, 1, 3, 2, 4, 5), 2, (1, 2, 4, 2, 4, 8))
    pp = m.transform(ShuffleToPagePermute()).transform(SpecializeLayers(nodes.ZYNQ_PART))
    s = startup_fraction(getCustomOp(m.get_nodes_by_op_type("Shuffle")[0]))
    p = startup_fraction(getCustomOp(pp.get_nodes_by_op_type("PagePermute_rtl")[0]))
    assert s == p > 0


def test_varying_bits_by_hand():
    from samfpga.hw.resources.models import _varying_bits

    assert _varying_bits([5, 5, 5], 8) == 0
    assert _varying_bits([0b0101, 0b0111], 8) == 1
    assert _varying_bits([-1, 0], 4) == 4  # two's complement: every bit differs
    assert _varying_bits([-2, -1], 8) == 1


@pytest.fixture(scope="module")
def requant_graphs():
    """C=128 PE=1 INT20 -> INT8 requantizers (power-of-two scales, as InferExactRequant makes them) with the
    parameter ROM in each style, after PrepareIP."""
    return {s: nodes.build_hw_graph([nodes.requant(ch=128, pe=1, n=2, ram_style=s)])
            for s in ("auto", "block", "distributed")}


def test_requant_rom_style_is_in_the_hdl(requant_graphs):
    from pathlib import Path

    from qonnx.custom_op.registry import getCustomOp

    for style, m in requant_graphs.items():
        op = getCustomOp(m.graph.node[0])
        files = [Path(f) for f in op.get_rtl_file_list(abspath=True)]
        names = [f.name for f in files]
        top = op.get_nodeattr("gen_top_module")
        if style == "auto":  # FINN's sources as they are
            assert "requant.sv" in names and not any(n.endswith("_requant.sv") for n in names)
            continue
        assert "requant.sv" not in names and "requant_axi.sv" not in names, names
        core = next(f for f in files if f.name == f"{top}_requant.sv").read_text()
        axi = next(f for f in files if f.name == f"{top}_requant_axi.sv").read_text()
        impl = next(f for f in files if f.name == f"{top}_impl.sv").read_text()
        assert core.count(f'(* rom_style = "{style}" *)') == 3  # scale, bias and shift ROMs
        assert f"module {top}_requant #(" in core and f"\t{top}_requant #(" in axi
        assert f"\t{top}_requant_axi #(" in impl


def test_requant_rom_priced_by_style(requant_graphs):
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.resources.memory import lutram
    from samfpga.hw.resources.models import requant_rom_bits

    costs = {s: _cost_of(m, "Requant_rtl")[0] for s, m in requant_graphs.items()}
    m = requant_graphs["block"]
    declared, varying, depth = requant_rom_bits(getCustomOp(m.graph.node[0]), m, _kv260())
    # power-of-two scales: the scale mantissa is the same in every channel, so fewer bits vary than are declared
    assert depth == 128 and 0 < varying < declared
    assert costs["block"].BRAM36 >= 0.5 and costs["distributed"].BRAM36 == 0
    assert costs["distributed"].LUT - costs["block"].LUT == lutram(depth, varying)
    assert costs["distributed"].detail["terms"]["parameters_bias"]["kind"] == "LUTRAM"
    # scale, bias and shift are three arrays, so three memories in BRAM (Yosys: one RAMB18 each that varies)
    assert costs["block"].BRAM36 == 0.5 * sum(k.startswith("parameters_") for k in costs["block"].detail["terms"])


def test_decoupled_requant_memstream_takes_the_style():
    """Where the build streams the parameters from FINN's memstream (mem_mode internal_decoupled), the style is
    the memstream's RAM_STYLE, and the model prices its memory (every declared bit: an init file) in that style."""
    import re
    from pathlib import Path

    from qonnx.custom_op.registry import getCustomOp

    costs = {}
    for style in ("block", "distributed"):
        m = nodes.build_hw_graph([nodes.requant(ch=128, pe=1, n=2, mem_mode="internal_decoupled", ram_style=style)])
        op = getCustomOp(m.graph.node[0])
        code = Path(op.get_nodeattr("code_gen_dir_ipgen"))
        wrapper = next(f for f in code.iterdir() if f.name.endswith("_memstream_wrapper.v")).read_text()
        assert re.findall(r'RAM_STYLE = "(\w+)"', wrapper) == [style]
        costs[style] = _cost_of(m, "Requant_rtl")[0]
        width = op._derive_decoupled_widths(m, _kv260().part)["params_stream_width"]
        assert costs[style].detail["terms"]["parameters"]["shape"] == f"1x 128x{width}"
    assert costs["block"].BRAM36 >= 0.5 and costs["distributed"].BRAM36 == 0
    assert costs["distributed"].LUT > costs["block"].LUT


def test_fit_styles_reach_requant(requant_graphs):
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.memory import MEMORY_ATTRS, apply_style

    m = requant_graphs["auto"]
    op = getCustomOp(m.graph.node[0])
    assert "ram_style" in MEMORY_ATTRS
    for style in ("block", "distributed"):
        assert apply_style(m, style, _kv260()) == [m.graph.node[0].name]
        assert op.get_nodeattr("ram_style") == style
    assert apply_style(m, "ultra", _kv260()) == []  # a ROM needs initial contents: no URAM
    assert op.get_nodeattr("ram_style") == "distributed"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_fit_prediction_equals_the_report(tiny_int_ops_build):
    """The 64x64 test encoder through ``samfpga build-hw`` (build-hw's default options: --int-ops, --pixel-input,
    fit search; every software step but HDL generation, which the report does not read: it is written from the
    graph after ``estimates``): the fit's prediction for its choice (layers as built + FIFOs + width converters)
    equals the report's totals. The build is the session's (tests/conftest.py ``tiny_int_ops_build``, shared with
    test_backends_quant)."""
    import json

    rep = json.loads((tiny_int_ops_build[0] / "report.json").read_text())
    fit, total = rep["fit_search"], rep["total"]["resources"]
    assert fit["predicted"] and fit["streams"]["LUT"] > 0
    for r, v in total.items():
        assert fit["predicted"][r] == pytest.approx(v, rel=0.02, abs=1.0), (r, fit["predicted"], total)
    # the layers the fit priced as what they become are there in the report
    assert "Shuffle" in fit["by_op_type"] and fit["by_op_type"]["Shuffle"]["BRAM36"] + \
        fit["by_op_type"]["Shuffle"]["LUT"] > 0
    assert any(t.startswith(("PagePermute", "InnerShuffle")) for t in rep["op_types"])


@pytest.mark.parametrize("spec", [nodes.requant(ch=16, pe=1), nodes.int_layernorm(ch=16, pe=1),
                                  nodes.int_softmax(n=16, pe=1)], ids=["requant", "layernorm", "softmax"])
def test_fold_unknown_folds_what_setfolding_leaves_at_pe_1(spec):
    """FINN's SetFolding does not fold Requant_rtl nor the integer LayerNorm / softmax: ``fold_unknown`` takes the
    smallest PE (dividing the channels) that meets the target, so no ladder target leaves them the slowest layer."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.sim.finn_boot import boot_finn

    boot_finn()
    import samfpga.hw.custom_ops  # noqa: F401
    from samfpga.hw.build import fit

    model = nodes.build_hw_graph([spec])
    op = getCustomOp(model.graph.node[0])
    slow = op.get_exp_cycles()
    op.set_nodeattr("PE", 16)
    target = (slow + op.get_exp_cycles()) // 2  # a softmax row has a fixed divider latency: not slow / 3
    op.set_nodeattr("PE", 1)
    fit.fold_unknown(model, target)
    pe = op.get_nodeattr("PE")
    assert op.get_exp_cycles() <= target and pe > 1 and 16 % pe == 0
    op.set_nodeattr("PE", max(d for d in range(1, pe) if 16 % d == 0))
    assert op.get_exp_cycles() > target  # the smallest such PE
