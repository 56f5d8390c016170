"""Rolled execution (``samfpga.hw.rolled``): one body per repeated stage, run N times with per-iteration
parameters, against the unrolled graph at tolerance 0 (FINN python execution).

- a hand-built chain of 3 blocks (MVAU -> Thresholding) whose threshold tables, step counts, offsets and datatypes
  differ per block: one body serves them (tables padded, datatypes widened, offsets per iteration), bit-exact;
- the reduced TinyViT encoder (64², the default student family, depths [2, 1, 3, 1]: a stage of 2 MBConv blocks
  with the depthwise conv and a stage of 3 transformer blocks) through the build's real steps to ``specialize``,
  quantized as ``samfpga build-hw`` does (integer LayerNorm/softmax, integer biases): the stages found, the
  two stages rolled and executed, output identical (0 differing values); one parameter from the wrong
  iteration changes the output; blocks made to differ structurally are refused with the node named.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from samfpga.hw import HW_DOMAIN
from tests.support.graphs import hw_graph

C, VECS = 4, [1, 4]  # channels, input vectors: each block maps [1, 4, C] -> [1, 4, C]


def _hw(op, ins, outs, name, **attrs):
    return helper.make_node(op, ins, outs, name=name, domain=HW_DOMAIN, backend="fpgadataflow", **attrs)


def _chain(blocks: list[dict]):
    """x (INT4) -> per block: MVAU (C x C INT4 weights) -> Thresholding (``steps`` steps, per-channel or shared
    table, offset ``act``) -> ... -> y. Block spec: seed, steps, act, shared, out (output datatype)."""
    nodes, inits, dts, cur, cur_dt = [], {}, {"x": "INT4"}, "x", "INT4"
    for k, b in enumerate(blocks):
        rng = np.random.default_rng(b["seed"])
        w, acc, t, out = f"w{k}", f"acc{k}", f"thr{k}", ("y" if k == len(blocks) - 1 else f"a{k}")
        inits[w] = rng.integers(-8, 8, size=(C, C))
        dts[w], dts[acc] = "INT4", "INT12"
        nodes.append(_hw("MVAU", [cur, w], [acc], f"mvau{k}", MW=C, MH=C, SIMD=1, PE=1, inputDataType=cur_dt,
                         weightDataType="INT4", outputDataType="INT12", accDataType="INT12", noActivation=1,
                         binaryXnorMode=0, ActVal=0, numInputVectors=VECS, mem_mode="internal_decoupled"))
        # a shared table: evenly spread steps (so the chain's output takes several values)
        inits[t] = np.linspace(-20, 20, b["steps"]).round()[None] if b["shared"] else \
            np.sort(rng.integers(-60, 60, size=(C, b["steps"])), axis=1)
        dts[t] = "INT8"
        nodes.append(_hw("Thresholding", [acc, t], [out], f"thr{k}", NumChannels=C, PE=1, numSteps=b["steps"],
                         inputDataType="INT12", weightDataType="INT8", outputDataType=b["out"],
                         numInputVectors=VECS, ActVal=b["act"]))
        cur, cur_dt = out, b["out"]
        dts[out] = b["out"]
        if b.get("extra"):  # a second Thresholding in this block only
            t2, out2 = f"thr{k}b", f"a{k}b"
            inits[t2] = np.array([[1.0]])
            dts[t2], dts[out2] = "INT8", "UINT1"
            nodes[-1].output[0] = f"{out}_pre"
            dts[f"{out}_pre"] = b["out"]
            nodes.append(_hw("Thresholding", [f"{out}_pre", t2], [out], f"thr{k}b", NumChannels=C, PE=1, numSteps=1,
                             inputDataType=b["out"], weightDataType="INT8", outputDataType="UINT1",
                             numInputVectors=VECS, ActVal=0))
            cur_dt = dts[out] = "UINT1"
    shapes = {"x": [*VECS, C], **{t: [*VECS, C] for n in nodes for t in n.output}}
    return hw_graph(nodes, shapes, ["x"], ["y"], inits, dts, "chain")


CHAIN = [dict(seed=1, steps=3, act=-2, shared=False, out="INT2"),
         dict(seed=2, steps=7, act=0, shared=False, out="UINT3"),
         dict(seed=3, steps=3, act=0, shared=True, out="UINT2")]


def test_widest_datatype() -> None:
    from samfpga.hw.rolled import widest

    assert widest(["INT8", "INT8"]) == "INT8"
    assert widest(["INT8", "UINT8"]) == "INT9"
    assert widest(["UINT3", "INT2", "INT4"]) == "INT4"
    assert widest(["INT19", "INT21", "UINT20"]) == "INT21"
    assert widest(["INT8", "FLOAT32"]) is None


def test_chain_with_differing_thresholds_rolls_bit_exact() -> None:
    """Three blocks whose thresholds differ in values, step count (3/7), sharing (per channel / one row) and offset
    (-2/0): one body (7-step per-channel table, widest datatypes, per-iteration offset), output identical."""
    from samfpga.hw.rolled import Role, execute_rolled, execute_unrolled, find_stages, roll

    model = _chain(CHAIN)
    stages = find_stages(model)
    assert [s.iterations for s in stages] == [3] and stages[0].exact
    rolled = roll(model, strict=True)
    (loop,) = rolled.loops
    assert len(rolled.parts) == 1 and len(loop.body.graph.node) == 2
    plan = loop.plan
    unified = "\n".join(str(d) for d in plan.unified)
    assert "attribute numSteps: 3, 7, 3 -> thresholds padded to 7 steps" in unified
    assert "attribute ActVal: -2, 0, 0 -> per-iteration parameter" in unified
    assert "widest: INT4" in unified  # the MVAU input datatype: INT4 (x), INT2, UINT3
    assert loop.params["thr0"].shape == (3, C, 7) and loop.params["w0"].shape == (3, C, C)
    assert {i.tensor: i.role for i in plan.inputs} == {"w0": Role.PARAMETER, "thr0": Role.PARAMETER}
    rng = np.random.default_rng(0)
    outs = []
    for _ in range(8):
        x = rng.integers(-8, 8, size=(*VECS, C)).astype(np.float32)
        ref = execute_unrolled(model, x)
        np.testing.assert_array_equal(execute_rolled(rolled, x), ref)
        outs.append(ref)
    assert np.unique(np.concatenate(outs)).size >= 3  # outputs vary


def test_chain_structural_difference_refused() -> None:
    """A block whose Thresholding has another channel count in its table layout (2-d table of 5 rows) cannot share
    the body: refused, naming the node, the input and the shapes."""
    from samfpga.hw.rolled import NotRollable, roll

    model = _chain(CHAIN)
    model.set_initializer("thr1", np.zeros((C + 1, 7), dtype=np.float32))
    with pytest.raises(NotRollable, match=r"block 1: thr0 \(= thr1\): input 1 \(thr0\) shape: \(4, 3\), \(5, 7\)"):
        roll(model, strict=True)


def test_chain_node_in_one_block_refused() -> None:
    """A block with a layer the others lack (a second Thresholding in block 1, after its first): the comparison
    names the extra node; with ``strict`` the stage is refused. (Structure alone cannot tell this chain's
    Thresholdings apart, so the stage is given: MVAU-first blocks.)"""
    from samfpga.hw.rolled import Block, NotRollable, RepeatedStage, compare_blocks, roll

    model = _chain([CHAIN[0], {**CHAIN[1], "extra": True}, CHAIN[2]])
    stage = RepeatedStage((Block(0, ("mvau0", "thr0"), "x", "a0"), Block(1, ("mvau1", "thr1", "thr1b"), "a0", "a1"),
                           Block(2, ("mvau2", "thr2"), "a1", "y")), exact=False, units=(0, 7))
    plan = compare_blocks(model, stage)
    assert [str(d) for d in plan.refused if d.item == "node"] == ["block 1: thr1b: node: Thresholding in block 1 only"]
    with pytest.raises(NotRollable, match="thr1b: node: Thresholding in block 1 only"):
        roll(model, stages=[stage], strict=True)


# ---- the reduced TinyViT encoder through the real build steps ----

@pytest.fixture(scope="module")
def reduced_graphs(tmp_path_factory) -> dict:
    """The reduced encoder's HW graphs (``samfpga.hw.rolled.reduced``: blocks per stage 2, 1, 3, 1) after
    ``convert_to_hw`` and after ``specialize`` (the build's steps, kv260, default options), by step name."""
    from samfpga.hw.finn_env import boot
    from samfpga.hw.rolled import reduced

    d = tmp_path_factory.mktemp("rolled")
    boot(d / "finn_build")
    return reduced.hw_graphs(d, keep=("convert_to_hw", "specialize"))


@pytest.fixture(scope="module")
def reduced_hw(reduced_graphs):
    return reduced_graphs["specialize"]


def _pixels(model, seed: int) -> np.ndarray:
    name = model.graph.input[0].name
    assert model.get_tensor_datatype(name).name == "UINT8"  # pixel input
    return np.random.default_rng(seed).integers(0, 256, size=model.get_tensor_shape(name)).astype(np.float32)


@pytest.mark.slow
def test_reduced_encoder_stages(reduced_hw) -> None:
    """The repeated stages found by structure: the 2 MBConv blocks (with the depthwise conv) and the 3 transformer
    blocks, both served by one body each. The MBConv blocks differ as the flow leaves them (measured: block 0 ends
    in a Thresholding after its residual Requant, clipping the ReLU output to the next block's signed input, which
    block 1, followed by PatchMerging, does not have): the body carries it, block 1 with identity thresholds."""
    from samfpga.hw.rolled import compare_blocks, find_stages

    stages = find_stages(reduced_hw)
    assert [s.iterations for s in stages] == [2, 3], [s.name for s in stages]
    ops = {n.name: n.op_type for n in reduced_hw.graph.node}
    mbconv, vit = (compare_blocks(reduced_hw, s) for s in stages)
    assert any(ops[n].startswith("VVAU") for n in stages[0].blocks[0].nodes)  # the depthwise conv
    assert sum(ops[n].startswith("IntSoftmax") for n in stages[1].blocks[0].nodes) == 1
    assert vit.rollable and mbconv.rollable, (vit.refused, mbconv.refused)
    (ident,) = [d for d in mbconv.unified if d.item == "node"]
    assert ops[ident.node] == "Thresholding_rtl" and ident.block == 1
    assert "in block 0 only -> identity thresholds in block 1 (255 steps over UINT8, offset 0)" in str(ident)


@pytest.mark.slow
def test_reduced_encoder_blocks_match_torch_scopes(reduced_graphs) -> None:
    """After ``convert_to_hw`` a few nodes still carry PyTorch's name scopes (node metadata; none do after
    ``specialize``): the transformer blocks found by structure are ``layers.2.blocks.0/1/2``, one each, in order.
    The rolled graph there is bit-exact too."""
    from samfpga.hw.rolled import block_scopes, execute_rolled, execute_unrolled, find_stages, roll

    model = reduced_graphs["convert_to_hw"]
    stages = find_stages(model)
    assert [s.iterations for s in stages] == [2, 3]
    assert [block_scopes(model, b) for b in stages[1].blocks] == [[f"layers.2.blocks.{i}"] for i in range(3)]
    assert not any(block_scopes(reduced_graphs["specialize"], b) for s in find_stages(reduced_graphs["specialize"])
                   for b in s.blocks)
    rolled = roll(model)
    assert [lp.iterations for lp in rolled.loops] == [2, 3]
    x = _pixels(model, 2)
    ref = execute_unrolled(model, x)
    assert np.unique(ref).size > 16 and int((execute_rolled(rolled, x) != ref).sum()) == 0


@pytest.mark.slow
def test_reduced_encoder_rolled_bit_exact(reduced_hw) -> None:
    """The MBConv stage as one body run twice and the transformer stage as one body run 3 times (weights, Requant
    scale/bias, thresholds, LayerNorm/softmax constants per iteration), between unrolled pieces: output identical
    to the unrolled graph on two seeded images (0 differing values)."""
    from samfpga.hw.rolled import Role, execute_rolled, execute_unrolled, roll

    rolled = roll(reduced_hw)
    mb, loop = rolled.loops
    assert (mb.iterations, loop.iterations) == (2, 3) and len(rolled.parts) == 5
    assert len(loop.body.graph.node) == len(loop.plan.stage.blocks[0].nodes)
    assert mb.param_bytes()["thresholds"] == 255  # block 0's clip table / block 1's identity, UINT8
    roles = [i.role for i in loop.plan.inputs]
    assert roles.count(Role.PARAMETER) >= 8  # qkv, proj, fc1, fc2, local conv weights at least
    assert loop.param_bytes()["weights"] > 0
    for seed in (0, 1):
        x = _pixels(reduced_hw, seed)
        ref = execute_unrolled(reduced_hw, x)
        out = execute_rolled(rolled, x)
        assert np.unique(ref).size > 16  # a non-trivial output
        assert out.shape == ref.shape and int((out != ref).sum()) == 0


@pytest.mark.slow
def test_reduced_encoder_loops_in_column_strips(reduced_hw) -> None:
    """Column strips of rolled bodies in the FINN graph (``samfpga.hw.rolled.strips``). The MBConv loop's body
    restriped to each strip's width, every block run strip by strip with its halo (1: one 3 x 3 depthwise conv)
    from the whole map the block before wrote, equals the loop on the whole map (FINN python execution, tolerance 0)
    at 2 and 4 strips on two images; without the halo it differs; by the build's layer costs the strips' sliding
    window is smaller. The transformer body, whose one window is the whole 4 x 4 map, is refused."""
    from samfpga.hw.boards import BOARDS
    from samfpga.hw.rolled import roll
    from samfpga.hw.rolled.execute import _python, run_loop, run_once
    from samfpga.hw.rolled.strips import execute_loop_strips, execute_strips, halo, restripe, strip_costs

    rolled = roll(reduced_hw)
    mb, tf = rolled.loops
    assert halo(mb.body) == 1
    for seed in (0, 1):
        x = run_once(_python(rolled.parts[0]), _pixels(reduced_hw, seed))
        want = run_loop(mb, x)
        assert x.shape == (1, 16, 16, 16) and np.unique(want).size > 16
        for tiles in (2, 4):
            got = execute_loop_strips(mb, x, tiles)
            assert got.shape == want.shape and int((got != want).sum()) == 0
        assert int((execute_strips(_python(mb.body), x, 4, h=0) != run_once(_python(mb.body), x)).sum()) > 0
    cost = strip_costs(mb.body, BOARDS["kv260"], 4)
    assert cost["strip_widths"] == [5, 6, 6, 5]
    swg = [t for t in cost["full"]["by_type"] if t.startswith("ConvolutionInputGenerator")]
    assert swg and all(cost["strips"]["by_type"][t]["LUT"] < cost["full"]["by_type"][t]["LUT"] for t in swg)
    assert cost["strips"]["cycles"] > cost["full"]["cycles"]  # the halo columns are computed too

    # this encoder's transformer stage is one 4 x 4 window: attention over the whole map, which strips cannot cut
    # (windowed bodies in strips: bench/conv_strips.py at 256 and 1024, 0 differing values)
    with pytest.raises(ValueError, match="IntSoftmax_rtl_\\d+: attention over the whole map"):
        restripe(tf.body, 2)


@pytest.mark.slow
def test_rolled_build_prices_column_strips(reduced_hw, rolled_build, tmp_path) -> None:
    """``BuildOptions(roll=True, roll_strips=2)``: the fit search and the report price the MBConv body as built for
    2 column strips (``rolling.StripTwins`` / ``rolled_costs``): its rows are the body restriped to the strips'
    width (9 of 16 columns: halo 1) with the cycles summed over both strips and N blocks, its sliding window smaller
    than the same folded body a map wide, its loop reader reading the halo columns again (DMA cycles and DDR bytes);
    the one-window transformer body stays a map wide with the reason recorded; the fit's prediction equals the
    report as it does without strips (BRAM36, URAM, DSP exactly); HDL generation refuses strips. In the token-batched
    build's MBConv body, each unit's extra weight passes for the strips' halo tokens."""
    import copy
    import math

    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.config import BuildConfig, BuildOptions
    from samfpga.hw.build.report import build_report
    from samfpga.hw.build.speedups import installed
    from samfpga.hw.build.steps import STEPS as BUILD_STEPS
    from samfpga.hw.build.steps import BuildContext
    from samfpga.hw.resources import layer_costs
    from samfpga.hw.rolled import roll
    from samfpga.hw.rolled.strips import restripe

    with pytest.raises(ValueError, match="roll_strips 2 needs roll"):
        BuildOptions(roll_strips=2)
    cfg = BuildConfig(board="kv260", output_dir=str(tmp_path),
                      options=BuildOptions(roll=True, roll_strips=2, roll_verify=False))
    ctx = BuildContext(cfg=cfg, out=tmp_path)
    model = copy.deepcopy(reduced_hw)
    with installed():
        for name in ("fold", "minimize_bit_width", "token_batch", "transpose_decomposition", "estimates", "roll"):
            model = BUILD_STEPS[name](model, ctx)
    rep = build_report(model, ctx.results, cfg.board_spec, cfg.clock, cfg.fit_limit)
    r = ctx.results.rolled
    mb, tf = r["stages"]
    assert mb["strips"]["widths"] == [9, 9] and mb["strips"]["map_width"] == 16
    assert tf["strips"]["widths"] == [] and "attention over the whole map" in tf["strips"]["refused"]
    assert r["at_folding"]["strips"][mb["name"]]["widths"] == [9, 9]

    loop = roll(model).loops[0]
    strip = restripe(loop.body, 9)
    rows = {x["name"]: x for x in rep["layers"]}
    n = loop.iterations
    for node in strip.graph.node:
        if node.name in rows and rows[node.name]["cycles"]:
            assert rows[node.name]["cycles"] == n * 2 * getCustomOp(node).get_exp_cycles(), node.name
    whole = {c.name: c for c in layer_costs(loop.body, cfg.board_spec)}
    swg = [x for x in whole if x.startswith("ConvolutionInputGenerator")]
    assert swg and all(rows[x]["LUT"] + rows[x]["BRAM36"] * 1000 < whole[x].LUT + whole[x].BRAM36 * 1000 for x in swg)
    # the loop reader reads 18 of 16 columns per pass; the writers write the map once
    b = mb["map_bytes"]
    beats = math.ceil(b / 16)
    assert mb["ddr_bytes_per_frame"] == (beats + math.ceil(b * 18 / 16 / 16)) * 16 * n
    reader = next(x for x in rep["layers"] if x["name"] == f"{mb['name']}.loop_reader")
    assert reader["cycles"] == n * math.ceil(beats * 18 / 16)

    pred, tot = ctx.results.fit.predicted, rep["total"]["resources"]
    for res in ("BRAM36", "URAM", "DSP"):
        assert pred[res] == tot[res], (res, pred, tot)
    assert pred["LUT"] == pytest.approx(tot["LUT"], rel=0.01)
    with pytest.raises(ValueError, match="column strips are priced only"):
        BUILD_STEPS["hw_codegen"](model, ctx)

    # one count per rolled stage, in graph order: (2, 1) prices the MBConv body as 2 does, (1, 2) leaves it whole
    from samfpga.hw.build.rolling import rolled_costs

    per_stage = {t: rolled_costs(model, cfg.board_spec, strips=t)[1] for t in ((2, 1), (1, 2))}
    assert per_stage[(2, 1)].stages[0]["strips"] == mb["strips"]
    assert per_stage[(2, 1)].loop_ddr_bytes == r["loop_ddr_bytes"]
    assert per_stage[(1, 2)].stages[0]["strips"]["widths"] == [] and per_stage[(1, 2)].stages[0]["strips"]["strips"] == 1
    assert per_stage[(1, 2)].stages[1]["strips"]["refused"] == tf["strips"]["refused"]
    with pytest.raises(ValueError, match=re.escape(f"3 counts for 2 rolled stages ({mb['name']}, {tf['name']})")):
        rolled_costs(model, cfg.board_spec, strips=(2, 2, 2))
    for bad in ((), (2, 0)):
        with pytest.raises(ValueError, match="roll_strips must be >= 1"):
            BuildOptions(roll=True, roll_strips=bad)
    assert not BuildOptions(roll_strips=(1, 1)).strips and BuildOptions(roll=True, roll_strips=(1, 3)).strips

    # a token-batched body layer in strips reads its weights once per batch of each strip's tokens: the MBConv body
    # of the token-batched build (B = 4) in 2 strips of 9 columns, 16 rows: 2 x ceil(144 / 4) = 72 passes, 64 whole
    from samfpga.hw.build.rolling import body_in_strips

    tb_loop = roll(rolled_build["model"]).loops[0]
    cut = body_in_strips(tb_loop.body, 2)
    units = [x for x in tb_loop.body.graph.node if x.op_type == "TokenBatchMVU_rtl"]
    assert units and cut.widths == [9, 9]
    for x in units:
        op = getCustomOp(x)
        assert op.tokens() == 256 and op.get_nodeattr("batch") == 4
        assert cut.extra_weight_bytes(x.name) == (72 - 64) * op.unit_config().pass_bytes


@pytest.mark.slow
def test_reduced_encoder_wrong_iteration_parameter_differs(reduced_hw) -> None:
    """One parameter from the wrong iteration (iteration 1's fc1 weights replaced by iteration 0's) changes the
    output; so does running every iteration with iteration 0's parameters."""
    import copy

    from samfpga.hw.rolled import execute_rolled, execute_unrolled, roll

    rolled = roll(reduced_hw)
    x = _pixels(reduced_hw, 0)
    ref = execute_unrolled(reduced_hw, x)
    loop = rolled.loops[-1]
    mvau_weights = [i.tensor for i in loop.plan.inputs if i.node.startswith("MVAU") and i.slot == 1
                    and i.tensor in loop.params]
    assert len(mvau_weights) >= 4
    wrong = copy.deepcopy(rolled)
    wl = wrong.loops[-1]
    t = mvau_weights[2]
    assert not np.array_equal(wl.params[t][1], wl.params[t][0])
    wl.params[t][1] = wl.params[t][0]
    assert int((execute_rolled(wrong, x) != ref).sum()) > 0
    frozen = copy.deepcopy(rolled)
    for fl in frozen.loops:
        for t in fl.params:
            fl.params[t][:] = fl.params[t][0]
    assert int((execute_rolled(frozen, x) != ref).sum()) > 0


@pytest.mark.slow
def test_reduced_encoder_structural_difference_refused(reduced_hw) -> None:
    """The third transformer block made to differ from the others (its output Requant set to narrow range; its
    local conv's padding changed) is refused, naming block 0's node, the block's own node and the attribute."""
    import copy

    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.rolled import NotRollable, find_stages, roll

    (_, vit) = find_stages(reduced_hw)
    ops = {n.name: n.op_type for n in reduced_hw.graph.node}
    for attr, value, op in (("narrow", 1, "Requant_rtl"), ("Padding", [2, 2, 2, 2], "FMPadding_rtl")):
        model = copy.deepcopy(reduced_hw)
        k = max(i for i, n in enumerate(vit.blocks[2].nodes) if ops[n] == op)
        target = vit.blocks[2].nodes[k]
        ref = vit.blocks[0].nodes[[i for i, n in enumerate(vit.blocks[0].nodes) if ops[n] == op][-1]]
        getCustomOp(model.get_node_from_name(target)).set_nodeattr(attr, value)
        with pytest.raises(NotRollable, match=rf"block 2: {ref} \(= {target}\): attribute {attr}"):
            roll(model, stages=[vit], strict=True)


@pytest.fixture(scope="module")
def rolled_build(reduced_hw, tmp_path_factory) -> dict:
    """The build's steps from ``fold`` to ``roll`` on the reduced encoder with ``roll`` and ``token_batch`` 4
    (kv260): the model, the context and the report."""
    import copy

    from samfpga.hw.build.config import BuildConfig, BuildOptions
    from samfpga.hw.build.report import build_report
    from samfpga.hw.build.speedups import installed
    from samfpga.hw.build.steps import STEPS as BUILD_STEPS
    from samfpga.hw.build.steps import BuildContext

    d = tmp_path_factory.mktemp("rolled_build")
    cfg = BuildConfig(board="kv260", output_dir=str(d), options=BuildOptions(roll=True, token_batch=4))
    ctx = BuildContext(cfg=cfg, out=d)
    model = copy.deepcopy(reduced_hw)
    with installed():
        for name in ("fold", "minimize_bit_width"):
            model = BUILD_STEPS[name](model, ctx)
        fit_choice = ctx.results.token_batch_choice
        # the token-batched unit in every rolled body: the fit search keeps this small encoder's weights on chip
        from samfpga.hw.build.rolling import TokenBatchPricer, present_columns, rollable

        pairs = TokenBatchPricer(cfg.board_spec, 4, "chain", None).pairs(model)
        body = {x for col in present_columns(model, rollable(model)[0]) for x in col}
        ctx.results.token_batch_choice = sorted(set(pairs) & body)
        for name in ("token_batch", "transpose_decomposition", "estimates", "roll"):
            model = BUILD_STEPS[name](model, ctx)
    rep = build_report(model, ctx.results, cfg.board_spec, cfg.clock, cfg.fit_limit)
    return {"model": model, "ctx": ctx, "report": rep, "fit_choice": fit_choice}


@pytest.mark.slow
def test_rolled_build_counts_each_body_once(rolled_build) -> None:
    """``BuildOptions(roll=True, token_batch=4)``: both stages rolled; the rolled graph equals the unrolled one on a
    random image (python execution, 0 differing values); every block's node got the body's folding; the report
    counts each body once (no row for a later block's node) with N x its cycles, the iterations' parameters and the
    loop DMA engines; the transformer body's weight layers are token-batched in every block with evenly spaced DDR
    offsets; the frame rate is the slower of the slowest row's and the DDR's."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.rolled import roll

    model, ctx, rep = rolled_build["model"], rolled_build["ctx"], rolled_build["report"]
    assert isinstance(rolled_build["fit_choice"], list)  # the fit search chose (whatever it chose)
    r = ctx.results.rolled
    assert [s["iterations"] for s in r["stages"]] == [2, 3], r.get("refused")
    v = r["verify"]
    assert v["differing"] == 0 and v["values"] > 0
    plans = [p for p in roll(model).plans if p.rollable]
    nodes = {n.name: n for n in model.graph.node}
    later = set()
    for p in plans:
        for col in p.columns:
            present = [x for x in col if x in nodes]
            later.update(present[1:])
            for attr in ("PE", "SIMD"):
                ops = [getCustomOp(nodes[x]) for x in present]
                if attr in ops[0].get_nodeattr_types():
                    assert len({o.get_nodeattr(attr) for o in ops}) == 1, (col, attr)
    rows = {x["name"]: x for x in rep["layers"]}
    assert later and not later & set(rows)
    body = plans[1].columns
    for col in body:
        x = col[0]
        if x in rows and rows[x]["cycles"]:
            assert rows[x]["iterations"] == 3
            assert rows[x]["cycles"] == 3 * getCustomOp(nodes[x]).get_exp_cycles()
    vit = r["stages"][1]
    assert len(vit["token_batched"]) >= 4  # qkv, proj, fc1, fc2
    assert all(s > 0 for s in vit["ddr_stride"].values()) and vit["ddr_stride"]
    assert all(nodes[x].op_type == "TokenBatchMVU_rtl" for col in body for x in col
               if col[0] in vit["token_batched"] and x in nodes)
    # which body layers hold every iteration's parameters (the token-batched units by their STRIDE registers)
    hdl = r["hdl"][1]
    assert set(vit["token_batched"]) <= set(hdl["looped"])
    assert not set(vit["token_batched"]) & {m["node"] for m in hdl["missing"]}
    types = rep["op_types"]
    assert types["rolled parameters (on chip)"]["layers"] > 0
    assert sum(types[k]["layers"] for k in types if k.startswith("strip_reader")) == 2
    t = rep["total"]
    assert t["bottleneck_cycles"] == max(x["cycles"] for x in rep["layers"])
    assert t["ddr"]["bytes_per_frame"] == r["loop_ddr_bytes"] + ctx.results.token_batch["ddr_bytes_per_frame"]
    assert t["fps"] == pytest.approx(min(t["compute_fps"], t["ddr"]["fps_limit"]))
    assert t["resources"]["LUT"] == pytest.approx(sum(x["LUT"] for x in rep["layers"]))


@pytest.mark.slow
def test_rolled_build_generates_each_parts_hdl(rolled_build) -> None:
    """``hw_codegen`` of the rolled build: every part's HDL generated (pieces run once and the two loop bodies with
    every iteration's parameters), listed in rolled/parts.json with graphs pointing at their code; then the build
    stops before IP generation, naming what is not generated yet (the stitched IP for Vivado)."""
    import copy
    import json

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw import HW_DOMAIN
    from samfpga.hw.build.memory import mark_runtime_writeable
    from samfpga.hw.build.steps import STEPS as BUILD_STEPS
    from samfpga.hw.build.steps import BuildStopped
    from samfpga.hw.custom_ops.looped import iterations
    from samfpga.hw.rolled import roll
    from samfpga.hw.rolled.graph import Loop

    ctx = rolled_build["ctx"]
    model = copy.deepcopy(rolled_build["model"])
    # a weight memory of a piece that runs once put in URAM, as the build's memory step does for large ones
    candidates = [(j, n.name) for j, p in enumerate(roll(model).parts) if not isinstance(p, Loop)
                  for n in p.graph.node if n.op_type == "MVAU_rtl"
                  and getCustomOp(n).get_nodeattr("mem_mode") == "internal_decoupled"]
    part_index, uram = candidates[-1]
    assert mark_runtime_writeable(model, [uram]) == [uram]
    with pytest.raises(BuildStopped, match=r"HDL of the rolled graph generated .* Vivado design linted .* the "
                                           r"bitstream needs Vivado: vivado -mode batch -source .*project.tcl"):
        BUILD_STEPS["hw_codegen"](model, ctx)
    index = json.loads((ctx.out / "rolled" / "parts.json").read_text())
    assert index == ctx.results.rolled["codegen"]
    bodies = [p for p in index["parts"] if p["kind"] == "body"]
    assert [p["iterations"] for p in bodies] == [2, 3] and all(p["looped"] > 0 for p in bodies)
    seq = 0
    for p in index["parts"]:
        g = ModelWrapper(str(ctx.out / p["file"]))
        hw = [n for n in g.graph.node if n.domain.startswith(HW_DOMAIN)]
        assert p["layers"] == len(hw) > 0
        for n in hw:
            op = getCustomOp(n)
            code = Path(op.get_nodeattr("code_gen_dir_ipgen"))
            assert code.is_dir() and code.is_relative_to(ctx.out / "hdl" / "rolled"), (n.name, code)
            assert any(code.glob("*.v")) or any(code.glob("*.sv")) or any(code.glob("*.cpp")), n.name
            looped = "loop_iterations" in op.get_nodeattr_types() and iterations(op) > 1
            assert not looped or (p["kind"] == "body" and iterations(op) == p["iterations"])
            if looped and n.op_type in ("MVAU_rtl", "Requant_rtl"):
                seq += sum("SeqSet" in f.read_text() for f in code.glob("*memstream_wrapper.v"))
    assert seq > 0  # the looped memstreams count their own sets
    # the host's description: each part's blocks and buffers as the RTL chain takes them
    from samfpga.backends.rolled_host import read_parts
    from samfpga.hw.sim.rolled_parts import host_parts

    specs = read_parts(ctx.out / "rolled" / "host.json")
    graphs = [ModelWrapper(str(ctx.out / p["file"])) for p in index["parts"]]
    assert specs == host_parts(graphs, [Path(p["file"]).stem for p in index["parts"]])
    assert [s.blocks for s in specs] == [p["iterations"] for p in index["parts"]]
    # the URAM layer's words, in its part's entry, as the RTL benches write them over AXI-Lite
    from samfpga.hw.build.package import runtime_words

    host = json.loads((ctx.out / "rolled" / "host.json").read_text())
    rw = [(j, e) for j, p in enumerate(host["parts"]) for e in p["runtime_weights"]]
    assert [(j, e["name"]) for j, e in rw] == [(part_index, uram)], rw
    e, g = rw[0][1], graphs[part_index]
    want = runtime_words(getCustomOp(g.get_node_from_name(uram)), g)
    got = [int(w, 16) for w in (ctx.out / "rolled" / e["file"]).read_text().split()]
    assert e["words"] == len(want) == len(got) > 0 and got == want.tolist()
    # the address map (samfpga.hw.rolled.board): every slave on its own aligned range from the KV260's PL base
    from samfpga.hw.rolled.board import masters, slaves

    sl = slaves(host)
    assert sl[0][2] == 0xA000_0000 and all(a % r == 0 for _, _, a, r in sl)
    assert all(a + r <= b for (_, _, a, r), (_, _, b, _) in zip(sl, sl[1:]))
    assert len(sl) == 2 * len(specs) + sum(len(p["token_batch"]) + len(p["runtime_weights"]) for p in host["parts"])
    assert len(masters(host)) == 2 * len(specs) + sum(len(p["token_batch"]) for p in host["parts"])
    assert host["board"] == "kv260"
    # each block's tensors in the unrolled graph, chained: what a package's pynq-sim runs block by block
    chain = [t for p in host["parts"] for t in p["tensors"]]
    assert chain[0][0] == model.graph.input[0].name and chain[-1][1] == model.graph.output[0].name
    assert all(a[1] == b[0] for a, b in zip(chain, chain[1:])) and len(chain) == sum(s.blocks for s in specs)
    # the transformer body's token-batched units: every block's weights, STRIDE apart, as the RTL benches load them
    from samfpga.hw.custom_ops.token_batch import looped_image

    units = [(j, u) for j, p in enumerate(host["parts"]) for u in p["token_batch"]]
    assert units and all(u["iters"] == specs[j].blocks for j, u in units)
    for j, u in units:
        image, stride = looped_image(getCustomOp(graphs[j].get_node_from_name(u["name"])), graphs[j])
        assert (ctx.out / "rolled" / u["file"]).read_bytes() == image and u["stride"] == stride
    # the Vivado design (samfpga.hw.rolled.design): linted together (else hw_codegen raised), the script's address
    # map is host.json's, every master on a SmartConnect, every part a module reference of its wrapper, every
    # memory init file pinned to the design's folder, the URAM layer's memory left empty for the driver
    import re

    from samfpga.hw.rolled.design import DESIGN_DIR

    viv = index["vivado"]
    tcl = (ctx.out / viv["script"]).read_text()
    hdl = ctx.out / DESIGN_DIR / "hdl"
    cells = {p["name"]: p["cell"] for p in host["parts"]}
    segs = re.findall(r"-offset (0x[0-9a-f]+) -range (\d+)K \[get_bd_addr_segs -of_objects \[get_bd_intf_pins "
                      r"(\w+)/(\w+)\]\]", tcl)
    assert sorted((int(a, 16), int(k) * 1024, c, q) for a, k, c, q in segs) == \
        sorted((a, r, cells[p], q) for p, q, a, r in sl)
    mem = re.findall(r"\[get_bd_intf_pins (\w+)/(\w+)\] \[get_bd_intf_pins axi_mem\d/S\d\d_AXI\]", tcl)
    assert sorted(mem) == sorted((cells[p], q) for p, q in masters(host))
    for c in cells.values():
        assert f"create_bd_cell -type module -reference {c} {c}" in tcl
        wrapper = (hdl / f"{c}.v").read_text()
        assert f"module {c} (" in wrapper and 'POLARITY ACTIVE_HIGH' in wrapper
    for part, port, _, _ in sl:  # every AXI-Lite port the address map names is a port of its part's wrapper
        assert re.search(rf"input wire (\[\d+:0\] )?{port}_awaddr\b", (hdl / f"{cells[part]}.v").read_text()), port
    # host.json's master_addr_bits (the driver's DDR bound) is the narrowest master address of the wrappers
    widths = [int(w) + 1 for c in cells.values()
              for w in re.findall(r"output wire \[(\d+):0\] \w*m_axi_\w*a[rw]addr\b", (hdl / f"{c}.v").read_text())]
    assert len(widths) == len(masters(host)) and min(widths) == host["master_addr_bits"] == 32
    texts = [f.read_text() for f in hdl.glob("*.*v")]
    assert not [m for t in texts for m in re.findall(r'"([^"/%\n]*\.dat)"', t)]  # no relative init file left
    assert not [m for t in texts for m in re.findall(r'PATH\s*=\s*"(\.[^"\n]*)"', t)]  # nor a relative prefix
    pinned = {m for t in texts for m in re.findall(r'"(/[^"\n]*\.dat)"', t)}
    assert pinned and all(Path(m).is_file() and Path(m).parent == hdl.resolve() for m in pinned)
    # the design copied elsewhere (built here, Vivado on another machine): project.tcl sources relocate.tcl first,
    # which re-pins every init file and prefix to the copy (run by tkinter's Tcl, as Vivado's Tcl would run it)
    import shutil
    import tkinter

    from samfpga.hw.vivado.module_design import RELOCATABLE_PRELUDE

    assert tcl.splitlines()[2:4] == list(RELOCATABLE_PRELUDE) and '"$here/hdl/' in tcl
    moved = ctx.out.parent / f"{ctx.out.name}_moved_design"
    shutil.copytree(ctx.out / DESIGN_DIR, moved)
    tkinter.Tcl().eval(f"source {{{moved / 'relocate.tcl'}}}")
    texts = [f.read_text() for f in (moved / "hdl").glob("*.*v")]
    there = {m for t in texts for m in re.findall(r'"(/[^"\n]*\.dat)"', t)}
    prefixes = {m for t in texts for m in re.findall(r'PATH\s*=\s*"(/[^"\n]*)"', t)}
    assert len(there) == len(pinned) and all(Path(m).is_file() and Path(m).parent == (moved / "hdl").resolve()
                                             for m in there)
    assert all(Path(m).parent == (moved / "hdl").resolve() for m in prefixes)
    shutil.rmtree(moved)
    stitched = e["axilite_port"][:-len("_s_axilite")]
    assert stitched.startswith(cells[specs[part_index].name])
    assert re.search(r'INIT_FILE\s*=\s*""', (hdl / f"{stitched}_memstream_wrapper.v").read_text())
    # the board's driver on the simulated board of this build (board environment: pynq), each part's blocks answered
    # from their python execution here; tolerance 0 against the unrolled graph; the URAM layer's words and the units'
    # weights checked where the board would use them, one flush frame of zeros
    import subprocess

    from samfpga.hw.rolled.execute import execute_unrolled, part_body

    x = _pixels(model, 3)
    table = {"x": x}
    for k, v in enumerate((x, np.zeros_like(x))):
        for j, g in enumerate(graphs):
            for i in range(specs[j].blocks):
                table[f"in_{j}_{i}_{k}"], v = v, part_body(g)(i, v)
                table[f"out_{j}_{i}_{k}"] = v
    np.savez(ctx.out / "table.npz", **table)
    board = Path(__file__).parent.parent / ".venv-board" / "bin" / "python"
    run = subprocess.run([str(board), "tests/support/rolled_board_run.py", str(ctx.out / "rolled"),
                          str(ctx.out / "table.npz"), str(ctx.out / "board.npz")], capture_output=True, text=True,
                         cwd=Path(__file__).parent.parent, env={**os.environ, "PYTHONPATH": "sw:."}, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    got = np.load(ctx.out / "board.npz")
    np.testing.assert_array_equal(got["y"], execute_unrolled(model, x))
    assert int(got["stale_runs"]) == 1 and got["jobs_read"].tolist() == [2 * s.blocks for s in specs]


def _last_stage_passes(model):
    """(looped body of ``model``'s last rolled stage, its 3 pass inputs): the rolled graph run in python up to that
    stage, then the body at iterations 0 and 1; checks the third pass's output is the rolled loop's."""
    from samfpga.hw.build.package import python_view
    from samfpga.hw.custom_ops.looped import at_iteration
    from samfpga.hw.rolled import roll
    from samfpga.hw.rolled.execute import run_loop, run_once
    from samfpga.hw.rolled.hdl import looped_body

    rolled = roll(model)
    loop = rolled.loops[-1]
    body, res = looped_body(loop)
    assert loop.iterations == 3 and not res.missing, res.missing
    x = run_once(python_view(rolled.parts[0]), _pixels(model, 0))
    x = run_loop(rolled.parts[1], x)
    xs = [run_once(python_view(rolled.parts[2]), x)]
    for i in range(loop.iterations - 1):
        at_iteration(body, i)
        xs.append(run_once(python_view(body), xs[-1]))
    at_iteration(body, loop.iterations - 1)
    np.testing.assert_array_equal(run_once(python_view(body), xs[-1]), run_loop(loop, xs[0]))
    at_iteration(body, 0)
    return body, xs


@pytest.mark.slow
def test_reduced_encoder_body_layers_hold_every_iteration(reduced_hw) -> None:
    """``looped_body`` on the transformer stage: the layers that support it (the integer LayerNorms, whose eps
    differs per block, the matrix units and requantisers, whose weights and parameters do) hold all 3 parameter
    sets, and running the body with only ``at_iteration`` selecting their sets (the others set as ``run_loop``
    does) gives the rolled loop's output exactly; left at iteration 0 it does not."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.package import python_view
    from samfpga.hw.custom_ops.looped import at_iteration, iterations
    from samfpga.hw.rolled import roll
    from samfpga.hw.rolled.execute import run_loop, run_once
    from samfpga.hw.rolled.hdl import looped_body

    rolled = roll(reduced_hw)
    loop = rolled.loops[-1]
    body, res = looped_body(loop)
    ops = {n.name: n for n in body.graph.node}
    # this model's blocks differ in two LayerNorms' eps_int (its softmax has nothing per iteration), and in every
    # matrix unit's weights and requantiser's parameters
    kinds = sorted(ops[n].op_type for n in res.looped)
    assert kinds.count("IntLayerNorm_rtl") == 2 and "MVAU_rtl" in kinds and "Requant_rtl" in kinds, kinds
    assert all(iterations(getCustomOp(ops[n])) == 3 for n in res.looped)
    assert all(getCustomOp(ops[n]).get_nodeattr("mem_mode") == "internal_decoupled"
               for n in res.looped if ops[n].op_type in ("MVAU_rtl", "Requant_rtl"))
    assert not any(m["op_type"] in ("MVAU_rtl", "Requant_rtl", "IntLayerNorm_rtl") for m in res.missing), res.missing
    assert len(res.looped) + len(res.shared) + len(res.missing) == len(body.graph.node)

    x0 = run_once(python_view(rolled.parts[0]), _pixels(reduced_hw, 0))
    x0 = run_loop(rolled.parts[1], x0)
    x0 = run_once(python_view(rolled.parts[2]), x0)
    want = run_loop(loop, x0)
    looped_inputs = {t for n in res.looped for t in ops[n].input}

    def run(select: bool):
        at_iteration(body, 0)
        x = x0
        for i in range(loop.iterations):
            if select:  # on the HW body, whose looped layers know their sets; python_view maps them to FINN's
                at_iteration(body, i)
            pb = python_view(body)
            nodes = {n.name: n for n in pb.graph.node}
            for t, stacked in loop.params.items():
                if t not in looped_inputs:
                    pb.set_initializer(t, np.asarray(stacked[i], dtype=np.float32))
            for (node, attr), vals in loop.attr_params.items():
                if node not in res.looped:
                    getCustomOp(nodes[node]).set_nodeattr(attr, vals[i])
            x = run_once(pb, x)
        return x

    assert int((run(True) != want).sum()) == 0
    assert int((run(False) != want).sum()) > 0


@pytest.fixture(scope="module")
def rolled_folded(reduced_hw, tmp_path_factory):
    """The reduced encoder through ``fold``, ``minimize_bit_width`` and ``transpose_decomposition`` with ``roll``
    (``reduced.rolled_folded``: each rolled stage's blocks folded alike; kv260, no token-batched unit): the graph the
    rolled body's HDL is generated from."""
    from samfpga.hw.rolled import reduced

    return reduced.rolled_folded(reduced_hw, tmp_path_factory.mktemp("rolled_folded"))


def _loop_rtl(model, tmp_path, k: int) -> list[dict]:
    """The last rolled stage of ``model`` as a loop in RTL (``rolled_loop.run_loop_rtl``): its stitched looped body
    between the strip reader and the strip writer on one DDR (an AXI RAM) with ``k`` maps interleaved (the first
    the rolled graph's block input on seeded pixels, the others seeded INT8 maps), the host starting each map's
    reads and writes, the body's layers picking each block's parameters themselves (token-batched units reading
    theirs from the same DDR). Checks, under random stalls on every AXI channel and free-running, tolerance 0: the
    whole DDR image after the loop equals the rolled loop's python execution (each map's x3 and x2 in its two
    buffers, every other byte as before), no unit flagged an error, the writer wrote exactly 3 k maps and each unit
    read its weights once per token batch of each block. Block 2 run with block 0's parameters gives another map,
    so the image tells the sets apart. Returns the bench's passes."""
    from samfpga.hw.build.package import python_view
    from samfpga.hw.custom_ops.looped import at_iteration
    from samfpga.hw.rolled.execute import run_once
    from samfpga.hw.sim import rolled_loop as rl

    body, xs = _last_stage_passes(model)
    rng = np.random.default_rng(5)
    maps = [xs[0]] + [rng.integers(-128, 128, xs[0].shape).astype(np.float32) for _ in range(k - 1)]
    r = rl.run_loop_rtl(body, maps, tmp_path, [rl.Pass("stall", 0.3, 0.3, 0.3, 0.3, 0.3), rl.Pass("free")])
    assert r.error == "" and r.blocks == 3 and len(r.passes) == 2, r.error
    np.testing.assert_array_equal(r.expected[0][2], xs[2])  # the rolled graph's own block-2 input
    at_iteration(body, 0)
    assert int((run_once(python_view(body), xs[2]) != r.expected[0][3]).sum()) > 0  # block 0's set on block 2
    n = r.geometry.src.nbytes
    for p, equal, bad in zip(r.passes, r.equal, r.mismatches):
        assert not p["timed_out"] and p["err"] == {"reader": 0, "writer": 0} and not p["busy"], p
        assert p["writer_bytes"] == 3 * k * n and p["reader_bytes"] >= 3 * k * n, p
        assert p["weight_bytes"] == r.want_weight_bytes and len(p["done_cycles"]) == 3 * k, p
        assert bad == [0] * k and equal, (p["name"], bad)
    return r.passes


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_reduced_encoder_rolled_loop_rtl_bit_exact(rolled_folded, tmp_path) -> None:
    """The transformer stage's loop in RTL (``_loop_rtl``, one map), every per-block parameter in the body's own
    memories."""
    passes = _loop_rtl(rolled_folded, tmp_path, 1)
    assert all(p["weight_bytes"] == {} for p in passes)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_rolled_build_token_batched_loop_rtl_bit_exact(rolled_build, tmp_path) -> None:
    """The rolled build's transformer stage (token batch 4) as a loop in RTL (``_loop_rtl``) with two maps
    interleaved: its linear layers on token-batched units reading block i's weights from the same DDR as the loop
    buffers. The second map's block is in DDR less than one block time after the first's (the body fills with one
    map while the other drains)."""
    passes = _loop_rtl(rolled_build["model"], tmp_path, 2)
    for p in passes:
        assert len(p["weight_bytes"]) >= 4  # qkv, proj, fc1, fc2
        d = p["done_cycles"]
        assert d[1] - d[0] < d[0] and d[3] - d[2] < d[0], d


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_reduced_encoder_mbconv_int9_loop_rtl_bit_exact(rolled_folded, tmp_path) -> None:
    """The MBConv stage's loop in RTL: the roll widens its UINT8 / INT8 loop tensor to INT9, which the DDR buffers
    hold as two little-endian bytes per element and the top rewires between the strip units' 16-bit lanes and
    FINN's 9-bit packing (``rolled_loop.lanes_text``). The body's first and last layers at PE 4, so each beat holds
    four 9-bit elements (36 of 40 bits); two maps interleaved (the rolled graph's block input on seeded pixels, and
    seeded INT8 values), under random stalls and free-running, tolerance 0: the whole DDR image after the loop is
    the python execution's, two bytes per element; the first map holds negative values, whose ninth bit only
    the high byte carries."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.package import python_view
    from samfpga.hw.rolled import roll
    from samfpga.hw.rolled.execute import run_loop, run_once
    from samfpga.hw.rolled.hdl import looped_body
    from samfpga.hw.sim import rolled_loop as rl

    rolled = roll(rolled_folded)
    loop = rolled.loops[0]
    body, res = looped_body(loop)
    assert loop.iterations == 2 and not res.missing, res.missing
    i, o = body.graph.input[0].name, body.graph.output[0].name
    assert body.get_tensor_datatype(i).name == "INT9"
    for node in body.graph.node:
        if i in node.input or o in node.output:
            getCustomOp(node).set_nodeattr("PE", 4)
    x = run_once(python_view(rolled.parts[0]), _pixels(rolled_folded, 0))
    assert (x < 0).any()
    maps = [x, np.random.default_rng(5).integers(-128, 128, x.shape).astype(np.float32)]
    r = rl.run_loop_rtl(body, maps, tmp_path, [rl.Pass("stall", 0.3, 0.3, 0.3, 0.3, 0.3), rl.Pass("free")])
    g = r.geometry
    assert r.error == "" and g.src == g.dst, (r.error, g)
    assert (g.src.bits, g.src.elem_bytes, g.src.pe, g.src.width) == (9, 2, 4, 40), g
    np.testing.assert_array_equal(r.expected[0][-1], run_loop(loop, x))
    for p, equal, bad in zip(r.passes, r.equal, r.mismatches):
        assert not p["timed_out"] and p["err"] == {"reader": 0, "writer": 0} and not p["busy"], p
        assert p["writer_bytes"] == 2 * 2 * x.size * 2 and len(p["done_cycles"]) == 4, p
        assert bad == [0, 0] and equal, (p["name"], bad)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_reduced_encoder_all_parts_rtl_bit_exact(rolled_folded, tmp_path) -> None:
    """The whole rolled reduced encoder in RTL as the host runs it (``rolled_parts.run_parts_rtl``): its five parts
    (stem, the MBConv loop, the piece between, the transformer loop, the rest) one after the other, each between the
    strip reader and writer under random stalls on every AXI channel, each reading the bytes the part before it
    wrote. The buffers' formats agree between neighbours: the INT9 loop's two bytes per element also for the stem's
    INT8 output and the next piece's UINT8 input (``layouts``). Some layers are marked runtime-writeable, as the
    build marks layers it puts in URAM: the MBConv body's looped thresholds and a looped weight memory, a weight
    memory of the piece between, one of the transformer body, and every layer the fold put in URAM. Their memories start empty and the host writes every
    block's words over each layer's AXI-Lite (``runtime_words``), then drops one pass (the memstreams prefetch
    words before the writes land; on the MBConv body, whose thresholds were empty, that pass is wrong). Tolerance 0:
    every part's DDR image is its python execution's, and the last part's output is the unrolled graph's python
    execution on the same pixels."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.memory import mark_runtime_writeable
    from samfpga.hw.rolled import roll
    from samfpga.hw.rolled.execute import execute_unrolled
    from samfpga.hw.sim import rolled_loop as rl
    from samfpga.hw.sim import rolled_parts as rp

    parts = rp.hw_parts(roll(rolled_folded))
    assert [rp.is_loop(p) for p in parts] == [False, True, False, True, False]
    assert rp.layouts(parts) == [1, 2, 2, 1, 1, 1]
    mvaus = [[n.name for n in p.graph.node if n.op_type == "MVAU_rtl"
              and getCustomOp(n).get_nodeattr("mem_mode") == "internal_decoupled"] for p in parts]
    thresholds = [n.name for n in parts[1].graph.node if n.op_type == "Thresholding_rtl"]
    marked = {1: [thresholds[0], mvaus[1][0]], 2: [mvaus[2][0]], 3: [mvaus[3][0]]}
    for j, p in enumerate(parts):  # and every layer the fold put in URAM, which the build marks too (build.steps)
        types = [(n.name, getCustomOp(n)) for n in p.graph.node if n.op_type.endswith("_rtl")]
        uram = [name for name, op in types if "ram_style" in op.get_nodeattr_types()
                and op.get_nodeattr("ram_style") == "ultra"]
        marked.setdefault(j, []).extend(x for x in uram if x not in marked.get(j, []))
    marked = {j: names for j, names in marked.items() if names}
    for j, names in marked.items():
        assert sorted(mark_runtime_writeable(parts[j], names)) == sorted(names)
    x = _pixels(rolled_folded, 0)
    runs, y = rp.run_parts_rtl(parts, x, tmp_path, [rl.Pass("stall", 0.3, 0.3, 0.3, 0.3, 0.3)])
    assert len(runs) == 5, [(r.index, r.check.error, r.check.mismatches) for r in runs]
    for r in runs:
        p = r.check.passes[0]
        assert r.bit_exact and r.handoff, (r.index, r.check.error, r.check.mismatches)
        assert not p["timed_out"] and p["err"] == {"reader": 0, "writer": 0} and not p["busy"], p
        assert p["writer_bytes"] == r.check.blocks * r.check.geometry.dst.nbytes, p
        assert len(r.check.runtime_words) == len(marked.get(r.index, [])), r.check.runtime_words
        # a marked part drops one pass, whose memstreams prefetched words before the writes landed; the MBConv
        # body's empty thresholds make that pass wrong, which shows the memories did start empty
        assert (r.check.flush_equal is None) == (r.index not in marked), (r.index, r.check.flush_equal)
        if r.index == 1:
            assert r.check.flush_equal is False
        hdl, run = tmp_path / f"part{r.index}" / "hdl", tmp_path / f"part{r.index}" / "run"
        for name in r.check.runtime_words:  # empty until written: no init file, thresholds all zero
            wrappers = list(hdl.glob(f"{name}_memstream_wrapper.v"))
            assert all('INIT_FILE = ""' in f.read_text() for f in wrappers), name
            dats = list(run.glob(f"{name}_threshs_*.dat"))
            assert wrappers or dats, name
            assert all(set(f.read_text().split()) <= {"0" * len(f.read_text().split()[0])} for f in dats), name
    assert runs[1].check.geometry.src.elem_bytes == 2 and runs[0].check.geometry.dst.elem_bytes == 2
    np.testing.assert_array_equal(y, execute_unrolled(rolled_folded, x))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_reduced_encoder_host_chain(rolled_folded) -> None:
    """The board's host code for a whole rolled encoder (``rolled_host.run_parts``: buffer plan, byte formats,
    the register sequence of every part) on the reduced encoder's five parts as ``rolled_parts.host_parts``
    describes them, each part a fake pair of DMA engines (samfpga.pynq_sim.strip_units) around its own python
    execution (block i with iteration i's parameters), on one memory at a board-like address. Tolerance 0: the
    output equals the unrolled graph's python execution on the same pixels; the loops ran their blocks."""
    from samfpga.backends.rolled_host import decode, encode, run_parts
    from samfpga.hw.build.package import python_view
    from samfpga.hw.custom_ops.looped import at_iteration, looped_ops
    from samfpga.hw.rolled import roll
    from samfpga.hw.rolled.execute import execute_unrolled, run_once
    from samfpga.hw.sim import rolled_parts as rp
    from samfpga.pynq_sim.strip_units import SimPart

    parts = rp.hw_parts(roll(rolled_folded))
    specs = rp.host_parts(parts)
    assert [s.blocks for s in specs] == [1, 2, 1, 3, 1]
    assert [(s.src.elem_bytes, s.dst.elem_bytes) for s in specs] == [(1, 2), (2, 2), (2, 1), (1, 1), (1, 1)]

    def body(part, spec):
        def run(j: int, data: np.ndarray) -> np.ndarray:
            if looped_ops(part):
                at_iteration(part, j % spec.blocks)
            y = run_once(python_view(part), decode(data.tobytes(), spec.in_shape, spec.src))
            return np.frombuffer(encode(y, spec.dst), dtype=np.uint8)
        return run

    base = 0x8_0000_0000
    mem = np.zeros(4 << 20, dtype=np.uint8)
    fakes = [SimPart(mem, body=body(p, s), mem_base=base) for p, s in zip(parts, specs)]
    drivers = [f.drivers() for f in fakes]
    x = _pixels(rolled_folded, 1)
    y = run_parts(specs, drivers, mem, base, x, wait=lambda: [f.tick() for f in fakes])
    for p in parts:
        if looped_ops(p):
            at_iteration(p, 0)
    assert [f.jobs_read for f in fakes] == [1, 2, 1, 3, 1]
    np.testing.assert_array_equal(y, execute_unrolled(rolled_folded, x))


def test_ddr_element_formats() -> None:
    """Buffer bytes as the strip units and the top's lanes move them: a side's values in ``elem_bytes`` little-endian
    bytes, sign- or zero-extended (``to_bytes``), read back as the low ``bits`` bits of each element, sign-extended
    for a signed datatype (``from_bytes``): INT9 round-trips in two bytes, INT8 written in two bytes is the same
    value to an INT9 reader, an INT9 producer's non-negative values are UINT8 to a UINT8 reader; UINT8 in one byte
    is not INT8."""
    from samfpga.hw.sim.rolled_loop import Side, from_bytes, to_bytes

    def side(bits: int, signed: bool, nbytes: int) -> Side:
        return Side(h=1, w=1, c=512, bits=bits, signed=signed, pe=1, width=16, elem_bytes=nbytes)

    int9 = np.arange(-256, 256, dtype=np.float32).reshape(1, 1, 1, 512)
    data = to_bytes(int9, side(9, True, 2))
    assert len(data) == 1024 and data[:2] == b"\x00\xff"  # -256 sign-extended
    np.testing.assert_array_equal(from_bytes(data, int9.shape, side(9, True, 2)), int9)
    int8 = (np.arange(512, dtype=np.float32) % 256 - 128).reshape(int9.shape)
    np.testing.assert_array_equal(from_bytes(to_bytes(int8, side(8, True, 2)), int8.shape, side(9, True, 2)), int8)
    u = np.abs(int8) + 100
    np.testing.assert_array_equal(from_bytes(to_bytes(u, side(9, True, 2)), u.shape, side(8, False, 2)), u)
    assert (from_bytes(to_bytes(u, side(8, False, 1)), u.shape, side(8, True, 1)) != u).any()
