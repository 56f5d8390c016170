"""The token-batched unit as a FINN node (samfpga.hw.custom_ops.token_batch): an MVAU (no activation) + Requant pair
fused by ``UseTokenBatchMVU`` computes exactly what the pair computes in FINN's python execution (tolerance 0);
the DDR image the node writes, read by the unit's own schedule model, gives the same outputs; pairs the unit cannot
compute are kept with the reason; the node's cycles are the unit's schedule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.graphs import hw_graph

HW = "finn.custom_op.fpgadataflow"


def _pair(mw: int, mh: int, simd: int, pe: int, t: int, seed: int, narrow: int = 0, acc: str = "INT24",
          scale_exp: tuple[int, int] = (6, 11)):
    """x (1, t, mw) INT8 -> MVAU (no activation, acc out) -> Requant (power-of-two scales) -> y INT8, FINN's HW
    layers before specialisation (their python execution is FINN's own)."""
    return _chain([(mw, mh, simd, pe)], t, seed, narrow, acc, scale_exp)


def _chain(layers: list[tuple[int, int, int, int]], t: int, seed: int, narrow: int = 0, acc: str = "INT24",
           scale_exp: tuple[int, int] = (6, 11)):
    """MVAU + Requant pairs in a row, one per (mw, mh, simd, pe); input "x", output "y"."""
    from onnx import helper

    from samfpga.hw.finn_env import boot

    boot(None)
    import samfpga.hw.custom_ops  # noqa: F401  (registers the ops)

    rng = np.random.default_rng(seed)
    nodes, shapes, inits, dtypes = [], {"x": [1, t, layers[0][0]]}, {}, {"x": "INT8"}
    src = "x"
    for i, (mw, mh, simd, pe) in enumerate(layers):
        out = "y" if i + 1 == len(layers) else f"y{i}"
        inits |= {f"w{i}": rng.integers(-128, 128, (mw, mh)),
                  f"s{i}": (2.0 ** -rng.integers(*scale_exp, mh)).astype(np.float32),
                  f"b{i}": (rng.integers(-40, 40, mh) + 0.5).astype(np.float32)}
        nodes.append(helper.make_node("MVAU", [src, f"w{i}"], [f"acc{i}"], name=f"MVAU_{i}", domain=HW,
                                      backend="fpgadataflow", MW=mw, MH=mh, SIMD=simd, PE=pe, inputDataType="INT8",
                                      weightDataType="INT8", outputDataType=acc, accDataType=acc, noActivation=1,
                                      numInputVectors=[1, t], mem_mode="internal_decoupled"))
        nodes.append(helper.make_node("Requant", [f"acc{i}", f"s{i}", f"b{i}"], [out], name=f"Requant_{i}",
                                      domain=HW, backend="fpgadataflow", NumChannels=mh, PE=1, inputDataType=acc,
                                      outputDataType="INT8", numInputVectors=[1, t], narrow=narrow))
        shapes |= {f"acc{i}": [1, t, mh], out: [1, t, mh]}
        dtypes |= {f"w{i}": "INT8", f"acc{i}": acc, out: "INT8"}
        src = out
    model = hw_graph(nodes, shapes, ["x"], ["y"], inits, dtypes)
    x = rng.integers(-128, 128, (1, t, layers[0][0])).astype(np.float32)
    return model, x


def _run(model, x) -> np.ndarray:
    from qonnx.core.onnx_exec import execute_onnx

    return execute_onnx(model, {"x": x})["y"]


@pytest.mark.parametrize(("mw", "mh", "simd", "pe", "t", "batch", "dot"),
                         [(32, 16, 8, 4, 10, 4, "chain"), (24, 12, 6, 2, 7, 8, "pack"), (16, 6, 4, 3, 5, 2, "tree")])
def test_fused_node_equals_mvau_and_requant(mw, mh, simd, pe, t, batch, dot):
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.custom_ops.token_batch import UseTokenBatchMVU, assign_ddr_offsets, ddr_image
    from samfpga.hw.sim import token_batch_mvu as tb

    model, x = _pair(mw, mh, simd, pe, t, seed=mw + t)
    want = _run(model, x)
    assert np.any(want == 127) or np.any(want == -128) or want.std() > 5  # not all-clipped, not all-zero
    fused = model.transform(UseTokenBatchMVU(batch=batch, dot=dot))
    assert [n.op_type for n in fused.graph.node] == ["TokenBatchMVU_rtl"]
    got = _run(fused, x)
    np.testing.assert_array_equal(got, want)
    # the DDR image the node writes, read by the unit's own schedule (one pass per batch of B tokens)
    fused, size = assign_ddr_offsets(fused)
    img = ddr_image(fused)
    op = getCustomOp(fused.graph.node[0])
    cfg = op.unit_config()
    assert len(img) <= size and cfg.batch == batch and cfg.dot == dot and cfg.requant
    y = tb.unit_model(x.astype(np.int64), img, cfg, base=op.get_nodeattr("ddr_offset"))
    np.testing.assert_array_equal(y.astype(np.float32), want)
    assert op.get_exp_cycles() == tb.schedule_cycles(cfg, 1, t)["total"] >= t * (mw // simd) * (mh // pe)


def test_two_nodes_get_their_own_ddr_offsets():
    """Two fused layers in a row: offsets on 4 KiB, the image holds each node's bytes at its offset, and the fused
    graph's output equals the pairs'."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.custom_ops.token_batch import UseTokenBatchMVU, assign_ddr_offsets, ddr_image

    model, x = _chain([(32, 16, 8, 4), (16, 32, 4, 8)], 6, seed=1)
    want = _run(model, x)
    fused = model.transform(UseTokenBatchMVU(batch=4))
    assert [n.op_type for n in fused.graph.node] == ["TokenBatchMVU_rtl"] * 2
    fused, size = assign_ddr_offsets(fused)
    ops = [getCustomOp(n) for n in fused.graph.node]
    offs = [op.get_nodeattr("ddr_offset") for op in ops]
    assert offs[0] == 0 and offs[1] % 4096 == 0 and offs[1] >= ops[0].unit_config().pass_bytes
    img = ddr_image(fused)
    assert len(img) <= size
    for op, off in zip(ops, offs):
        data = op.ddr_bytes(fused.graph)
        assert img[off:off + len(data)] == data
    np.testing.assert_array_equal(_run(fused, x), want)


def test_pairs_the_unit_cannot_compute_are_kept_with_the_reason():
    """A narrow-range Requant, and dot 'pack' with an odd PE: no node is fused, the reasons are in the model's
    metadata; an MVAU followed by something other than a Requant is not touched."""
    from samfpga.hw.custom_ops.token_batch import KEPT_KEY, UseTokenBatchMVU

    model, _ = _pair(16, 6, 4, 3, 5, seed=3, narrow=1)
    out = model.transform(UseTokenBatchMVU(batch=4))
    assert [n.op_type for n in out.graph.node] == ["MVAU", "Requant"]
    assert json.loads(out.get_metadata_prop(KEPT_KEY)) == {"MVAU_0": "narrow-range requantiser"}
    model, _ = _pair(16, 6, 4, 3, 5, seed=3)
    out = model.transform(UseTokenBatchMVU(batch=4, dot="pack"))
    assert "even PE" in json.loads(out.get_metadata_prop(KEPT_KEY))["MVAU_0"]
    with pytest.raises(ValueError, match="dot 'wide'"):
        UseTokenBatchMVU(batch=4, dot="wide")


def test_a_scale_the_unit_cannot_hold_is_kept():
    """A scale too large for the 8-bit output (FINN+'s decomposition refuses it): kept, the reason names it."""
    from samfpga.hw.custom_ops.token_batch import KEPT_KEY, UseTokenBatchMVU

    model, _ = _pair(16, 6, 4, 3, 5, seed=4, scale_exp=(-30, -29))
    out = model.transform(UseTokenBatchMVU(batch=4))
    assert [n.op_type for n in out.graph.node] == ["MVAU", "Requant"]
    assert "scale" in json.loads(out.get_metadata_prop(KEPT_KEY))["MVAU_0"]


@pytest.mark.slow
def test_generated_node_hdl_equals_python_execution(tmp_path):
    """The node's HDL generation (FINN's port names around token_batch_mvu_axil) under Verilator + cocotb: the
    registers written over s_axi_control from the register map, the graph's DDR image served on m_axi_gmem, two
    frames streamed through in0_V / out0_V with random stalls (streams and R) and free-running: every output equals
    the fused graph's python execution (tolerance 0), STATUS err = 0, every write OKAY, and the DDR bytes read are the
    unit's model (one pass per batch of 4 tokens per frame). Negative control: a weight byte flipped in DDR."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.backends.unit_regs import TOKEN_BATCH_MVU
    from samfpga.hw.custom_ops.token_batch import UseTokenBatchMVU, assign_ddr_offsets, ddr_image
    from samfpga.hw.sim import token_batch_mvu as tb
    from samfpga.hw.sim import token_batch_node as node

    t = 6
    model, x = _pair(16, 8, 4, 2, t, seed=5)
    fused, _ = assign_ddr_offsets(model.transform(UseTokenBatchMVU(batch=4, axi_dw=64)))
    op = getCustomOp(fused.graph.node[0])
    cfg = op.unit_config()
    x2 = np.random.default_rng(6).integers(-128, 128, x.shape).astype(np.float32)
    want = [_run(fused, v)[0] for v in (x, x2)]
    base = 0x1000
    writes = TOKEN_BATCH_MVU.writes({"base": base + op.get_nodeattr("ddr_offset"), "stride": cfg.min_stride,
                                     "iters": 1, "tokens": t})
    top, sources = node.generate(fused, fused.graph.node[0].name, tmp_path)
    assert top == fused.graph.node[0].name and any(s.endswith("token_batch_mvu_axil.sv") for s in sources)
    node.build(top, sources, tmp_path)
    passes = [{"name": "stalls", "in_pause": 0.3, "out_pause": 0.3, "r_pause": 0.3}, {"name": "free"}]
    res = node.simulate(top, cfg, [v[0].astype(np.int64) for v in (x, x2)], ddr_image(fused), base, writes, passes,
                        tmp_path)
    assert not res.error, res.error
    assert len(res.passes) == 2
    for p in res.passes:
        assert not p["timed_out"] and p["extra_beats"] == 0 and p["status"] & 0x3 == 0, p
        assert p["bresp"] == [0] * len(writes)
        for words, w in zip(p["outputs"], want):
            y = tb.unpack_outputs([int(v) for v in words], 1, t, cfg)[0]
            np.testing.assert_array_equal(y.astype(np.float32), w, err_msg=p["name"])
        assert p["ddr_bytes"] == 2 * tb.ddr_bytes_per_frame(cfg, 1, t)
    # negative control: one weight byte flipped in DDR (past fold 0's parameter words): the RTL's outputs change,
    # and equal the unit model's outputs for the flipped image
    bad = bytearray(ddr_image(fused))
    bad[cfg.param_words * cfg.word_bits // 8 + 4] ^= 0x80
    res = node.simulate(top, cfg, [x[0].astype(np.int64)], bytes(bad), base, writes, [{"name": "free"}], tmp_path,
                        tag="flipped")
    assert not res.error, res.error
    y = tb.unpack_outputs([int(v) for v in res.passes[0]["outputs"][0]], 1, t, cfg)
    assert not np.array_equal(y[0].astype(np.float32), want[0])
    np.testing.assert_array_equal(y, tb.unit_model(x.astype(np.int64), bytes(bad), cfg))


def test_cost_model_is_the_planners_price():
    """The node's resource figure (samfpga.hw.resources) is the planner's price of the same unit: its Yosys-fitted
    logic and DSPs (pricing.token_batch_logic) plus its four memories, labelled "own model"."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.boards import get_board
    from samfpga.hw.custom_ops.token_batch import UseTokenBatchMVU
    from samfpga.hw.plan import pricing
    from samfpga.hw.resources import layer_costs

    model, _ = _pair(64, 32, 16, 4, 20, seed=7)
    fused = model.transform(UseTokenBatchMVU(batch=8, dot="pack"))
    node = fused.graph.node[0]
    (cost,) = layer_costs(fused, get_board("kv260"))
    tbc = getCustomOp(node).unit_config()
    logic = pricing.token_batch_logic(tbc)
    assert cost.source == "own model" and cost.DSP == logic["DSP"] == 4 * 16 // 2 + 4
    assert cost.FF == logic["FF"] and cost.LUT > logic["LUT"]  # the memories add LUTRAM at these sizes
    assert set(cost.detail["memories"]) == {m[0] for m in pricing.token_batch_memories(tbc)}


@pytest.fixture(scope="module")
def vit_block_build(tmp_path_factory, tiny_int_norm_qonnx):
    """The first TinyViT block of the tiny integer encoder through the build's software steps with
    ``options.token_batch = 4``, folded once: (graph after ``minimize_bit_width``, the same after
    ``transpose_decomposition`` without and with the ``token_batch`` step, the build context, an input, out dir)."""
    import copy

    from qonnx.core.modelwrapper import ModelWrapper

    import samfpga.hw.custom_ops  # noqa: F401
    from samfpga.hw.build.config import BuildConfig, BuildOptions
    from samfpga.hw.build.steps import STEPS, BuildContext
    from samfpga.hw.build.verify import slice_qonnx
    from samfpga.hw.finn_env import boot
    from tests.support.tiny_encoder import INT_VIT_BLOCK

    tmp = tmp_path_factory.mktemp("tb_block")
    boot(tmp / "finn_build")
    sliced = slice_qonnx(tiny_int_norm_qonnx, tmp / "block.onnx", *INT_VIT_BLOCK)
    out = tmp / "work"
    out.mkdir()
    ctx = BuildContext(cfg=BuildConfig(board="kv260", output_dir=str(out), options=BuildOptions(token_batch=4)),
                       out=out)
    model = ModelWrapper(str(sliced))
    x = np.random.default_rng(7).normal(size=model.get_tensor_shape(INT_VIT_BLOCK[0][0])).astype(np.float32)
    for name in ("qonnx_to_finn", "tidy_up", "streamline", "convert_to_hw", "minimize_bit_width_initial",
                 "partition", "specialize", "fold", "minimize_bit_width"):
        model = STEPS[name](model, ctx)
    plain = STEPS["transpose_decomposition"](copy.deepcopy(model), ctx)
    # every pair, as the step converts without a fit choice (the fit search puts this small block's weights on chip)
    ctx.results.token_batch_choice = None
    batched = STEPS["transpose_decomposition"](STEPS["token_batch"](copy.deepcopy(model), ctx), ctx)
    return model, plain, batched, ctx, x, out


@pytest.mark.slow
def test_build_step_on_a_vit_block(vit_block_build):
    """The build's ``token_batch`` step (options.token_batch = 4) on the first TinyViT block of the tiny integer
    encoder, after folding: every MVAU with constant weights and a Requant after it becomes a TokenBatchMVU_rtl
    node; the graph after transpose_decomposition, in python execution, equals the same build without the step
    (tolerance 0); ddr_weights.bin holds each node's bytes at its offset; the estimates count every node with the
    own model, and the report lists the layers and their DDR traffic."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.package import python_view
    from samfpga.hw.build.report import build_report, report_markdown
    from samfpga.hw.build.steps import STEPS
    from samfpga.hw.build.verify import execute

    model, plain, batched, ctx, x, out = vit_block_build
    pairs = [n.name for n in model.graph.node if n.op_type == "MVAU_rtl"
             and model.get_initializer(n.input[1]) is not None
             and [c.op_type for c in model.find_consumers(n.output[0]) or []] == ["Requant_rtl"]]
    tb_nodes = [n for n in batched.graph.node if n.op_type == "TokenBatchMVU_rtl"]
    assert len(pairs) >= 3 and len(tb_nodes) == len(pairs)
    ref = execute(python_view(plain), x)
    assert np.unique(ref).size > 16
    np.testing.assert_array_equal(execute(python_view(batched), x), ref)
    # the DDR image and what the report says of it
    img = (out / "ddr_weights.bin").read_bytes()
    res = ctx.results.token_batch
    assert len(img) == res["image_bytes"] and set(res["layers"]) == {n.name for n in tb_nodes}
    for n in tb_nodes:
        op = getCustomOp(n)
        data = op.ddr_bytes(batched.graph)
        assert img[op.get_nodeattr("ddr_offset"):op.get_nodeattr("ddr_offset") + len(data)] == data
    est = STEPS["estimates"](batched, ctx)
    assert all(ctx.results.costs[n.name].source == "own model" for n in tb_nodes)
    rep = build_report(est, ctx.results, ctx.cfg.board_spec, ctx.cfg.clock, ctx.cfg.fit_limit)
    assert rep["token_batch"]["ddr_bytes_per_frame"] == sum(x["ddr_bytes_per_frame"] for x in res["layers"].values())
    assert rep["token_batch"]["ddr_gbps_at_fps"] > 0
    assert f"{len(tb_nodes)} MVAU + Requant pairs on the token-batched unit" in report_markdown(rep)
    # the package export: the image copied (checked against the graph's weights), driver.json's token_batch units
    from samfpga.hw.build.package import DDR_IMAGE, export_build

    (out / "intermediate").mkdir(exist_ok=True)
    est.save(str(out / "intermediate" / "12_estimates.onnx"))
    (out / "build_config.json").write_text(json.dumps({"board": "kv260"}))
    drv = export_build(out, out / "pkg")
    assert (out / "pkg" / DDR_IMAGE).read_bytes() == img
    assert [u["name"] for u in drv["token_batch"]["units"]] == [n.name for n in tb_nodes]
    (out / DDR_IMAGE).write_bytes(img[:-1] + bytes([img[-1] ^ 1]) if img[-1] else img[:-1] + b"\x01")
    with pytest.raises(ValueError, match="does not hold the final graph's token-batched weights"):
        export_build(out, out / "pkg2")


@pytest.mark.slow
def test_stitched_vit_block_with_token_batched_layers(vit_block_build, tmp_path):
    """The whole TinyViT block (attention with QK^T / softmax / AV, local conv, MLP, both residuals) stitched as
    one RTL design in Verilator with its four linear layers on token-batched units, each fetching its weights over
    AXI from its own RAM model (the node's DDR image) after its registers are written over AXI-Lite: every output
    word equals FINN's python execution (tolerance 0) under random backpressure (one frame) and free-running (three
    frames back to back), and the free-running frame interval is within the stitched benches' tolerance (15%) of
    the slowest node's expected cycles. Negative control: one weight byte of one unit's image flipped, the outputs
    differ."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.backends.unit_regs import TOKEN_BATCH_MVU
    from samfpga.hw.sim.nodes import ZYNQ_PART
    from samfpga.hw.sim.runner import run_bench
    from samfpga.hw.sim.stitch import token_batch_ports
    from samfpga.hw.sim.stitched import CYCLE_TOLERANCE, segment_graph, segment_inputs, stitched_model

    _, _, batched, _, x, _ = vit_block_build
    # the block's first layer takes the float input (a Thresholding); RTL streams start after it
    first = next(i for i, n in enumerate(batched.graph.node)
                 if not batched.get_tensor_datatype(n.input[0]).name.startswith("FLOAT"))
    seg = segment_graph(batched, first, len(batched.graph.node))
    xs = [x, *(np.random.default_rng(k).normal(size=x.shape).astype(np.float32) for k in (8, 9))]
    frames = [{seg.graph.input[0].name: f}
              for f in segment_inputs(batched, first, [{"hw_in": v} for v in xs], log=lambda m: None)]
    model, _, _ = stitched_model(seg, ZYNQ_PART, 5.0)
    names = token_batch_ports(model)
    assert len(names) == 4

    def images(flip: str | None = None) -> dict:
        ddr = {}
        for name in names:
            op = getCustomOp(model.get_node_from_name(name))
            cfg = op.unit_config()
            image = bytearray(op.ddr_bytes(model.graph))
            if name == flip:
                image[cfg.param_words * cfg.word_bits // 8 + 1] ^= 0x40
            ddr[name] = (bytes(image), TOKEN_BATCH_MVU.writes({"base": 0, "stride": cfg.min_stride, "iters": 1,
                                                                "tokens": op.tokens()}))
        return ddr

    b = run_bench("tb_block", model, frames, tmp_path / "sim", pause=0.3, seed=0, ddr=images(), bp_frames=1)
    assert b.passed and b.mismatches == 0 and b.words_compared == 4 * 2048, (b.error, b.first_mismatches)
    assert abs(b.frame_interval / b.finn_max_node_cycles - 1) <= CYCLE_TOLERANCE, (b.frame_interval,
                                                                                   b.finn_max_node_cycles)
    bad = run_bench("tb_block_flip", model, frames[:1], tmp_path / "flip", pause=0.3, seed=0, ddr=images(names[2]))
    assert bad.mismatches > 0


def test_committed_board_package_is_what_the_export_writes(tmp_path):
    """tests/runtime/data/tiny_token_batch (the board-environment driver tests' package) equals a fresh
    ``tests.support.token_batch_package`` export: graph.json, driver.json (with its token_batch section: register
    blocks after the two DMAs, 4 KiB-aligned offsets) and the DDR image byte for byte, the arrays equal; and the
    integer executor's TokenBatchMVU on that graph equals FINN's execution of the unfused pairs."""
    from samfpga.intexec import load_intgraph
    from tests.support.token_batch_package import write

    committed = Path(__file__).resolve().parent / "runtime" / "data" / "tiny_token_batch"
    write(tmp_path)
    for f in ("graph.json", "driver.json", "ddr_weights.bin"):
        assert (tmp_path / f).read_bytes() == (committed / f).read_bytes(), f
    for f in ("weights.npz", "expected.npz"):
        a, b = np.load(tmp_path / f), np.load(committed / f)
        assert set(a.files) == set(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files), f
    drv = json.loads((tmp_path / "driver.json").read_text())
    units = drv["token_batch"]["units"]
    assert [u["regs"] for u in units] == [drv["dma"]["odma0"]["base"] + (k + 1) * drv["dma"]["odma0"]["range"]
                                          for k in range(2)]
    assert [u["ddr_offset"] % 4096 for u in units] == [0, 0]
    exp = np.load(tmp_path / "expected.npz")
    np.testing.assert_array_equal(load_intgraph(tmp_path).run_accelerator(exp["x"]), exp["y"])
