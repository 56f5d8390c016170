"""The layer-sequential engine's program for a whole encoder (samfpga.hw.sim.engine_program), its address patterns
(samfpga.hw.sim.dma_access) and its requantisers (samfpga.hw.sim.lane_requant).

The program of the committed tiny build (tests/runtime/data/tiny_deploy: the 64² test encoder through
``samfpga build-hw --int-ops``) runs on the engine's unit models and equals the integer graph's own execution
(samfpga.intexec, equal to FINN's python execution by tests/test_backends_quant.py) in every tensor it stores,
tolerance 0. tests/test_backends_quant.py runs the same check against FINN on the session's fresh build."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

DEPLOY = Path(__file__).parent / "runtime" / "data" / "tiny_deploy"


def _graph():
    from samfpga.intexec.executor import load_intgraph

    return load_intgraph(DEPLOY)


def _program(g):
    from samfpga.hw.sim.engine_program import compile_program, engine_unit

    # PE 8 x SIMD 16 (= the tiny encoder's head dim), 16 tokens per pass: every layer is padded or split somewhere
    return compile_program(g, engine_unit(g, pe=8, simd=16, batch=16))


def requant_graph():
    """The tiny build's graph with a re-quantisation where vit_t's quantized encoder has one (between two MBConv
    blocks: the first block's ReLU output, UINT8, re-quantised for the next block's INT8 input): a Thresholding
    UINT8 -> INT8 (one threshold row for every channel, y = clip(round(0.6 x) - 20)) inserted on the stem stage's
    output before the patch merging's first conv (MVAU_rtl_4, which then takes INT8)."""
    import json

    from samfpga.intexec.executor import IntGraph

    spec = json.loads((DEPLOY / "graph.json").read_text())
    with np.load(DEPLOY / "weights.npz") as z:
        weights = {k: z[k] for k in z.files}
    t = next(n for n in spec["nodes"] if n["name"] == "MVAU_rtl_4")["inputs"][0]
    assert spec["tensors"][t]["dtype"] == "UINT8"
    c = spec["tensors"][t]["shape"][-1]
    u = np.arange(256)
    y = np.clip(np.round(0.6 * u) - 20, -128, 127)
    thr = np.array([[u[np.argmax(y >= k)] if (y >= k).any() else 256 for k in range(-127, 128)]], np.float32)
    weights["requant_thresholds"] = thr
    spec["tensors"]["requant_out"] = {"shape": spec["tensors"][t]["shape"], "dtype": "INT8"}
    spec["tensors"]["requant_thresholds"] = {"shape": list(thr.shape), "dtype": "UINT8"}
    at = next(i for i, n in enumerate(spec["nodes"]) if n["name"] == "MVAU_rtl_4")
    spec["nodes"][at]["inputs"][0] = "requant_out"
    spec["nodes"].insert(at, {"name": "Thresholding_requant", "op": "Thresholding", "on": "hw",
                              "inputs": [t, "requant_thresholds"], "outputs": ["requant_out"],
                              "attrs": {"ActVal": -128, "NumChannels": c, "PE": 1, "numSteps": 255,
                                        "inputDataType": "UINT8", "outputDataType": "INT8"}})
    return IntGraph(spec, weights, source="tiny_deploy + a re-quantisation")


def _inputs(g, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, g.shape(g.input)).astype(np.float32)


def program_run(seed: int, **run_kw):
    """The tiny program (``_program``) run on image ``_inputs(seed)``: (graph, program, every stored tensor);
    ``run_kw`` goes to ``run_program`` (trace, frames, lanes). The RTL tests of the engine's parts take their
    operands from here."""
    from samfpga.hw.sim.engine_program import run_program

    g = _graph()
    prog = _program(g)
    return g, prog, run_program(prog, g.run_host_pre(_inputs(g, seed)), **run_kw)


def check_program_equals(g, prog, ref: dict) -> int:
    """Every tensor the program stores equals ``ref``'s (the graph's execution); returns how many were compared."""
    from samfpga.hw.sim.engine_program import run_program

    x = ref[g.input] if g.input in ref else None
    mem = run_program(prog, g.run_host_pre(x) if x is not None else ref[prog.input])
    n = 0
    for s in prog.steps:
        if s.output in ref:
            np.testing.assert_array_equal(prog.graph_order(s.output, mem[s.output]), np.asarray(ref[s.output]).ravel().astype(np.int64),
                                          err_msg=f"step {s.name} ({s.kind}): {s.output}")
            n += 1
    np.testing.assert_array_equal(mem[prog.output], np.asarray(ref[prog.output]).ravel().astype(np.int64))
    return n


def test_program_of_the_tiny_build_equals_its_graph():
    g = _graph()
    prog = _program(g)
    kinds = [s.kind for s in prog.steps]
    # stem 2 convs, MBConv 3 + downsample 3 per stage, per attention block: qkv, QK^T + softmax, V transpose, AV,
    # proj + residual, local conv, fc1, fc2 + residual; the neck's two convs and its last LayerNorm
    assert kinds.count("qk") == kinds.count("av") == kinds.count("vt") == 3
    assert kinds.count("dw") == 7 and kinds.count("layernorm") == 1 and kinds.count("gemm") == 24
    assert sum(s.residual is not None for s in prog.steps) == 7
    # every node of the accelerator is in exactly one step, or is data movement the readers / writers do
    from samfpga.hw.sim.engine_program import MOVEMENT

    run = [n for s in prog.steps for n in s.nodes]
    assert len(run) == len(set(run))
    assert set(run) == {n.name for n in g.nodes if n.on == "hw" and n.op not in MOVEMENT}
    for seed in (0, 1):
        x = _inputs(g, seed)
        ref = g.run_all(x)
        ref[prog.input] = g.run_host_pre(x)
        assert np.unique(ref[prog.output]).size > 20  # a non-trivial embedding
        assert check_program_equals(g, prog, ref) == len(prog.steps) - 3  # all but the V transposes (no graph tensor)
    # what the graph asks of the engine beyond the built unit
    assert prog.needs["activation_bits"] == 9 and prog.needs["unit_inputs"] == ["INT8", "UINT8"]
    assert prog.needs["layernorm_in_bits"] == 23 and prog.needs["raw_bits"] == 23
    assert prog.needs["requant_scale_bits"] >= 18 and prog.needs["image_table"]


def test_transposes_written_and_read_back_become_sequential():
    """TinyViT's tokens -> NCHW -> depthwise conv: the graph stores each attention block's output channel-major and
    the local conv reads it back pixel-major (1-byte runs both ways). The program stores those three tensors in the
    producer's stream order instead (``EngineProgram.layouts``): the writer moves one sequential run and the
    depthwise reader whole window rows (the attention's tokens come in window order); every stored tensor still equals the graph's once put back in its order (``graph_order``:
    test_program_of_the_tiny_build_equals_its_graph). The only short runs left are the host's read of the
    accelerator's output (this older build ends in an NCHW transpose)."""
    g = _graph()
    prog = _program(g)
    dw_in = [s.input.tensor for s in prog.steps if s.kind == "dw" and s.input.tensor in prog.layouts]
    qkv = [s.weights.tensor for s in prog.steps if s.kind == "qk"]  # stored as Q / K / V regions (below)
    assert sorted(dw_in + qkv) == sorted(prog.layouts) and len(dw_in) == 3 and len(qkv) == 3
    for s in prog.steps:
        if s.output in dw_in:
            assert s.write is None
        for o in (s.input, s.residual, s.weights):
            if o is not None:
                assert o.access.run * prog.elem_bytes(o.tensor) >= 16, (s.name, o.access.describe())
                if o.tensor in prog.layouts:  # whole window rows of pixels (one run where one window is the map)
                    assert o.access.run >= 4 * g.shape(o.tensor)[-1], (s.name, o.access.describe())
        assert s.write is None or s.write.run >= 16, s.name
    assert prog.output_read.access.run == 1 and prog.needs["shortest_run_bytes"] == 1
    lay = prog.layouts[dw_in[0]]
    assert sorted(lay.tolist()) == list(range(lay.size)) and not (lay == np.arange(lay.size)).all()


def test_attention_operands_stored_as_regions():
    """Each block's qkv tensor is stored as three regions, Q, K and V, each (window x head, token, dim) in order
    (``_attention_regions``): the qkv layer's writer scatters its 16-byte runs (one head's dims) to them with four
    loops, and QK^T's K rows and the V transpose's V rows are then one sequential block per window and head, as the
    GEMM unit fetches a weight pass (base + iteration x stride). The queries, K and V are each one run; the
    tensors still equal the graph's in its order (test_program_of_the_tiny_build_equals_its_graph)."""
    prog = _program(_graph())
    qks = [s for s in prog.steps if s.kind == "qk"]
    assert len(qks) == 3
    for qk in qks:
        t = qk.weights.tensor
        vt = next(s for s in prog.steps if s.kind == "vt" and s.input.tensor == t)
        prod = next(s for s in prog.steps if s.output == t)
        n = qk.iters * qk.tokens * qk.mw  # one region: windows x heads x tokens x dims bytes
        assert [(o.access.offset, o.access.run, o.access.loops) for o in (qk.input, qk.weights, vt.input)] == [
            (0, n, ()), (n, n, ()), (2 * n, n, ())]
        assert prod.write is not None and prod.write.run == qk.mw and prod.write.levels <= 6
        lay = prog.layouts[t]
        assert sorted(lay.tolist()) == list(range(3 * n)) and not (lay == np.arange(3 * n)).all()


def test_program_negative_controls():
    """A flipped weight byte in the DDR image, a requantiser bias off by one output step and a residual read from
    the wrong place each change the result."""
    from samfpga.hw.sim.engine_program import run_program
    from samfpga.hw.sim.lane_requant import LaneRequant

    g = _graph()
    prog = _program(g)
    x = g.run_host_pre(_inputs(g, 0))
    want = run_program(prog, x)[prog.output]
    k = next(i for i, s in enumerate(prog.steps) if s.kind == "gemm" and s.name == "MVAU_rtl_6")  # stage 1's qkv
    s = prog.steps[k]
    bad = copy.copy(prog)
    img = bytearray(prog.image)
    img[s.offset + s.layer.param_words * s.layer.word_bits // 8] ^= 0x55  # output 0's first weights
    bad.image = bytes(img)
    assert not np.array_equal(run_program(bad, x)[prog.output], want)
    r = next(i for i, s in enumerate(prog.steps) if s.add_rq is not None)
    bad = copy.copy(prog)
    bad.steps = list(prog.steps)
    rq = prog.steps[r].add_rq
    bad.steps[r] = copy.copy(prog.steps[r])
    bad.steps[r].add_rq = LaneRequant(rq.scale, rq.bias + (np.int64(1) << rq.shift), rq.shift, rq.out_bits,
                                      rq.out_signed)
    assert not np.array_equal(run_program(bad, x)[prog.output], want)
    from samfpga.hw.sim.dma_access import Access

    bad.steps = list(prog.steps)
    bad.steps[r] = copy.copy(prog.steps[r])
    res = prog.steps[r].residual
    assert res.access.levels == 0  # MBConv's residual: one sequential read; read it backwards instead
    bad.steps[r].residual = type(res)(res.tensor, Access(res.access.offset + res.access.run - 1, 1,
                                                         ((res.access.run, -1),)), res.shape)
    assert not np.array_equal(run_program(bad, x)[prog.output], want)


def test_program_refuses_thresholds_no_requantiser_reproduces():
    from samfpga.hw.sim.engine_program import EngineProgramError, engine_unit
    from samfpga.intexec.executor import IntGraph

    g = _graph()
    node = next(n for n in g.nodes if n.op == "Thresholding" and n.inputs[0] != g.nodes[0].inputs[0])
    w = dict(g.weights)
    t = np.asarray(w[node.inputs[1]], np.float64)
    rng = np.random.default_rng(0)
    # thresholds of an arbitrary monotone function: steps of 1 .. 4000 at random
    w[node.inputs[1]] = (t[..., :1] + np.cumsum(rng.integers(1, 4000, t.shape), axis=-1)).astype(np.float32)
    spec = {"format": "samfpga-intgraph", "version": 1, "tensors": g.tensors, "input": g.input, "output": g.output,
            "accelerator": g.accel,
            "nodes": [{"name": n.name, "op": n.op, "inputs": n.inputs, "outputs": n.outputs, "attrs": n.attrs,
                       "on": n.on} for n in g.nodes]}
    with pytest.raises(EngineProgramError, match=node.name):
        engine_unit(IntGraph(spec, w, "mutated"), pe=8, simd=16, batch=16)


def test_program_matches_the_plans_steps():
    """The plan (samfpga.hw.plan.engine.schedule) prices the steps the program runs: the same kinds, in the same
    order, with the same MACs."""
    from samfpga.hw.plan import engine as E
    from samfpga.models.build import variant_config
    from samfpga.models.quant.source import TINY_STUDENT

    prog = _program(_graph())
    cfg = E.EngineConfig(image_size=64, window_sizes=None, pe=8, simd=16, batch=16, mw_cap=288, sm_lanes=4, dw_pe=4,
                         encoder_config=variant_config("vit_t", **TINY_STUDENT).encoder_config)
    plan = E.schedule(cfg, E.encoder_units(cfg))
    kind = {"gemm": "gemm", "dw": "dw", "qk": "attention", "vt": "attention", "av": "attention",
            "layernorm": "layernorm"}

    def macs(s) -> int:
        if s.kind == "vt":
            return 0  # the plan counts the transposes' cycles, not model MACs
        if s.kind == "dw":
            return int(s.dw_weights.size * np.prod(s.out_shape[:-1]))
        if s.kind == "layernorm":
            return 0
        return s.iters * s.tokens * s.mw * s.mh

    assert [(kind[s.kind], macs(s)) for s in prog.steps] == [(p.engine, p.macs) for p in plan]


# --- address patterns ---------------------------------------------------------------------------------------

def test_factor_finds_window_partition_and_refuses_a_shuffle():
    from samfpga.hw.sim.dma_access import Access, factor

    x = np.arange(8 * 8 * 4).reshape(8, 8, 4)  # an 8x8 map of 4 channels, HWC
    win = x.reshape(2, 4, 2, 4, 4).transpose(0, 2, 1, 3, 4).ravel()  # 4x4 windows, row-major
    assert factor(win) == Access(0, 16, ((2, 128), (2, 16), (4, 32)))
    assert factor(np.arange(100) + 7) == Access(7, 100, ())
    assert factor(x.transpose(2, 0, 1).ravel()) == Access(0, 1, ((4, 1), (64, 4)))  # to CHW: single elements
    rng = np.random.default_rng(0)
    assert factor(rng.permutation(64)) is None


@pytest.mark.parametrize("seed", range(5))
def test_factor_round_trips_random_nests(seed: int):
    from samfpga.hw.sim.dma_access import factor

    rng = np.random.default_rng(seed)
    dims = rng.integers(2, 5, rng.integers(1, 5))
    t = np.arange(int(np.prod(dims)) * 3).reshape(*dims, 3)
    order = t.transpose(*rng.permutation(len(dims)), len(dims)).ravel()  # runs of 3, loops in any order
    acc = factor(order)
    assert acc is not None and np.array_equal(acc.indices(), order) and acc.run % 3 == 0


# --- requantisers -------------------------------------------------------------------------------------------

def test_lane_requant_reproduces_a_non_power_of_two_quantizer_on_every_input():
    from samfpga.hw.sim.lane_requant import from_thresholds, min_scale_bits

    # y = clip(round(x / 511.9955 + 3.3)) to UINT8 on 20-bit inputs: the steps are 512 with one of 511, as the
    # build kept for the tiny encoder's stage-3 convs (no float32 Requant reproduces them)
    d, lo, hi = 511.9955, -(1 << 19), (1 << 19) - 1
    k = np.arange(255)
    t = np.ceil((k + 0.5 - 3.3) * d)[None, :]
    rq = from_thresholds(t, 0, lo, hi, "UINT8", scale_bits=24)
    x = np.arange(lo, hi + 1)
    want = (x[:, None] >= t[0][None, :]).sum(axis=1)
    np.testing.assert_array_equal(rq.apply(x[:, None])[:, 0], want)  # every one of the 2^20 inputs
    assert 18 < min_scale_bits(t, 0, lo, hi, "UINT8") <= 24  # beyond the unit's default 18-bit scales
    with pytest.raises(ValueError, match="channel 0"):
        from_thresholds(t, 0, lo, hi, "UINT8", scale_bits=12)


def test_lane_requant_of_a_requant_node_is_finns():
    from samfpga.hw.sim.lane_requant import from_requant
    from samfpga.kernels.requant import requant_spec

    rng = np.random.default_rng(1)
    scale = (2.0 ** -rng.integers(4, 9, 16)).astype(np.float32)
    bias = (rng.integers(-64, 64, 16) / 4).astype(np.float32)
    rq = from_requant(scale, bias, 16, 14, "INT8")
    x = rng.integers(-(1 << 13), 1 << 13, (500, 16))
    np.testing.assert_array_equal(rq.apply(x), requant_spec(x, scale, bias, 8, True))


@pytest.mark.timeout(1200)
def test_program_frames_on_the_rtl_unit(tmp_path):
    """Every frame the GEMM unit runs in the tiny build's program (24 layers, 3 QK^T raw frames, 3 V transposes, 3
    AV: 33 frames with 9-bit activations, UINT8 and INT8 outputs, 20-bit requantiser scales, 23-bit raw sums) back
    to back on token_batch_mvu.sv built as the program's unit (Verilator + cocotb, cocotbext-axi's AXI RAM as DDR,
    a free pass and one with stalls on every stream and AXI channel): every output word equal to the unit model's,
    tolerance 0 (the model's outputs are the program's, whose stored tensors equal FINN's execution)."""
    from samfpga.hw.sim.engine_program import run_program
    from samfpga.hw.sim.token_batch_mvu import whole_folds
    from samfpga.hw.sim.token_batch_runner import Frame, Pass, build, simulate

    g = _graph()
    prog = _program(g)
    frames = []
    run_program(prog, g.run_host_pre(_inputs(g, 0)), frames=frames)
    assert len(frames) == 33 and {f.cfg.out_signed for f in frames if f.cfg.requantises} == {True, False}
    assert sum(f.cfg.raw for f in frames) == 5  # QK^T x 3 and the neck's two convs
    rtl, expected, base = [], [], 0
    for f in frames:
        rtl.append(Frame(f.x, f.w, base=base, rq=f.rq, shape=f.cfg))
        expected.append(f.y)
        base += whole_folds(f.cfg.min_stride * f.x.shape[0], 4096)
    build(prog.unit, tmp_path)
    res = simulate(prog.unit, rtl, [Pass("free"), Pass("stalls", 0.2, 0.2, 0.2)], tmp_path, seed=3,
                   expected=expected)
    assert res.passed, res.error or res.passes
    from samfpga.hw.sim.token_batch_mvu import pack_outputs

    words = sum(len(pack_outputs(f.y, f.cfg)) for f in frames)
    assert [p["words_compared"] for p in res.passes] == [words, words]
    # negative control: the stem's UINT8 frame (outputs up to 255) run with the signed clip (cfg_unsigned = 0)
    k = next(i for i, f in enumerate(frames) if f.cfg.requantises and not f.cfg.out_signed and f.y.max() > 127)
    signed = Frame(rtl[k].x, rtl[k].w, base=0, rq=rtl[k].rq, shape=replace(frames[k].cfg, out_signed=True))
    bad = simulate(prog.unit, [signed], [Pass("free")], tmp_path, expected=[expected[k]], tag="signed")
    assert not bad.passed and bad.passes[0]["mismatches"] > 0


def test_program_of_token_batched_nodes_and_refusal_of_float_graphs():
    """The build's token-batched nodes (TokenBatchMVU: MVAU and Requant fused, tests/runtime/data/tiny_token_batch)
    run as GEMM steps too, equal to the graph's execution; a graph with float tensors on the accelerator (the
    float-input package) is refused, naming the node and the tensor."""
    from samfpga.hw.sim.engine_program import EngineProgramError, compile_program, engine_unit, run_program
    from samfpga.intexec.executor import load_intgraph

    g = load_intgraph(DEPLOY.parent / "tiny_token_batch")
    prog = compile_program(g, engine_unit(g, pe=8, simd=16, batch=4))
    assert [s.kind for s in prog.steps] == ["gemm", "gemm"] and all(s.layer.requantises for s in prog.steps)
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, g.shape(g.input)).astype(np.float32)
    ref = g.run_all(x)
    mem = run_program(prog, g.run_host_pre(x))
    for s in prog.steps:
        np.testing.assert_array_equal(prog.graph_order(s.output, mem[s.output]), ref[s.output].ravel().astype(np.int64), err_msg=s.name)
    assert np.unique(ref[prog.output]).size > 10
    g = load_intgraph(DEPLOY.parent / "tiny_float_input")
    with pytest.raises(EngineProgramError, match=r"Thresholding_rtl_0 .*FLOAT32"):
        engine_unit(g, pe=8, simd=16, batch=16)


def _fused_chain(t: int = 9):
    """A chain of MVAU + Requant pairs whose shapes are not whole folds of PE 8 x SIMD 8 (20 -> 12 -> 44 -> 6), fused
    into token-batched nodes, as an integer graph; its input and FINN's python execution of the unfused chain."""
    from samfpga.hw.build.package import intgraph_spec
    from samfpga.hw.custom_ops.token_batch import UseTokenBatchMVU
    from samfpga.intexec.executor import IntGraph
    from tests.test_token_batch_op import _chain, _run

    model, x = _chain([(20, 12, 4, 3), (12, 44, 4, 4), (44, 6, 4, 2)], t, seed=5)
    want = _run(model, x)
    fused = model.transform(UseTokenBatchMVU(batch=4))
    assert [n.op_type for n in fused.graph.node] == ["TokenBatchMVU_rtl"] * 3
    spec, weights = intgraph_spec(fused, None)
    return IntGraph(spec, weights, "fused chain"), x, want


def _small_unit(**kw):
    from samfpga.hw.sim import token_batch_mvu as tb

    # PE 8 x SIMD 8, batch 4, buffers for 32 -> 32: the 44-wide layer runs with fewer tokens per pass
    return tb.TokenBatchConfig(**{**dict(mw=32, mh=32, simd=8, pe=8, batch=4, acc_bits=24, requant=True, dot="pack",
                                         rt_shape=True), **kw})


def test_program_pads_and_splits_layers_on_a_small_unit():
    """The fused chain on a unit narrower than its widest layer: each layer padded to whole folds (zero weights and
    requantisation parameters on padded channels), the 44-wide one at fewer tokens per pass, every weight image on
    its own page of one DDR image: equal to FINN's execution of the unfused chain (tolerance 0); a flipped weight
    byte in DDR changes the result; a unit whose buffers or sums cannot hold a layer is refused."""
    from samfpga.hw.sim.engine_program import PAGE, EngineProgramError, compile_program, run_program

    g, x, want = _fused_chain()
    assert want.std() > 5  # not all clipped
    prog = compile_program(g, _small_unit())
    assert [(s.layer.mw, s.layer.mh, s.layer.batch) for s in prog.steps] == [(24, 16, 4), (16, 48, 2), (48, 8, 2)]
    assert all(s.offset % PAGE == 0 for s in prog.steps) and len({s.offset for s in prog.steps}) == 3
    np.testing.assert_array_equal(run_program(prog, x)[prog.output], want.ravel().astype(np.int64))
    bad = copy.copy(prog)
    img = bytearray(prog.image)
    s = prog.steps[1]
    img[s.offset + s.layer.param_words * s.layer.word_bits // 8] ^= 0x7F  # output 0's weight of input 0
    bad.image = bytes(img)
    assert not np.array_equal(run_program(bad, x)[prog.output], want.ravel())
    with pytest.raises(EngineProgramError, match="beyond the unit's buffers"):
        compile_program(g, _small_unit(mw=16, mh=16, batch=1))  # 48 outputs at batch 1 need 6 folds, banks hold 2
    with pytest.raises(EngineProgramError, match="sums"):
        compile_program(g, _small_unit(mh=48, acc_bits=12))


def test_program_runs_a_requantisation_on_the_unit():
    """A Thresholding on a computed 8-bit tensor (``requant_graph``: what vit_t's quantized encoder has between two
    MBConv blocks) becomes a GEMM step of identity weights whose requantiser reproduces the thresholds, on PE 8 and
    on PE 10 (where its 16 outputs are padded to 20); the program equals the graph's execution in every stored
    tensor, tolerance 0. Thresholds no requantiser reproduces are refused by name."""
    from samfpga.hw.sim import token_batch_mvu as tb
    from samfpga.hw.sim.engine_program import EngineProgramError, compile_program, engine_unit

    g = requant_graph()
    ref = g.run_all(_inputs(g, 4))
    for pe in (8, 10):
        prog = compile_program(g, engine_unit(g, pe=pe, simd=16, batch=16))
        s = next(s for s in prog.steps if s.identity)
        assert (s.name, s.kind, s.mw, s.mh, s.layer.mh, s.tokens) == ("Thresholding_requant", "gemm", 16, 16,
                                                                       16 if pe == 8 else 20, 256)
        w = tb.unpack_weights(prog.image, 1, s.layer, base=s.offset)[0]
        assert np.array_equal(w[:16, :16], np.eye(16)) and not w[16:].any()
        assert check_program_equals(g, prog, ref) >= 39
    bad = requant_graph()
    bad.weights["requant_thresholds"] = np.sort(np.random.default_rng(0).integers(0, 256, (1, 255))).astype(np.float32)
    with pytest.raises(EngineProgramError, match="Thresholding_requant.*no requantiser"):
        compile_program(bad, engine_unit(bad, pe=8, simd=16, batch=16))
