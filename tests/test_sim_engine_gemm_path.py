"""The engine's GEMM path as one design (hw/samfpga/hw/rtl/engine_gemm_path.sv: access reader -> widened
activations -> [LayerNorm + lanes] -> token_batch_mvu -> [residual reader, adder, requantiser lanes fed by a
parameter reader] -> access writer, and beside the GEMM unit the depthwise unit with its lanes, whose window alone
also feeds the GEMM unit for 3 x 3 convolutions) under Verilator + cocotb, DDR to DDR: the tiny build's program's
GEMM steps that need no table on the unit's input stream, its depthwise steps, its 3 x 3 convolutions but the
stem's first and its attention's steps (QK^T through raw_rows.sv and the softmax, the V transpose (a raw frame of
its sums' low bytes, straight to the writer) into AV's weight image, AV), each configured as the host's sequencer would, from one DDR image holding the program's
weight image, lane parameters and stored tensors; every output tensor in DDR byte for byte the program's (whose
stored tensors equal FINN's execution, tests/test_engine_program.py), tolerance 0."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from samfpga.hw.sim import engine_gemm_path as gp
from samfpga.hw.sim.requant_lanes import param_bytes

PASSES = [{"name": "stalls", "ar_pause": 0.2, "r_pause": 0.2, "aw_pause": 0.2, "w_pause": 0.2, "b_pause": 0.2},
          {"name": "free"}]


#: the committed engine host files of ``_program`` (tests/support/tiny_engine.py)
TINY_ENGINE = Path(__file__).parent / "runtime" / "data" / "tiny_engine"


def _program():
    from tests.test_engine_program import program_run

    _, prog, mem = program_run(3)
    return prog, mem


def _images(prog, mem, steps, lay):
    """``engine_gemm_path.ddr_images`` (start, expected end) and ``put(buf, name, bytes)``."""
    img, want = gp.ddr_images(prog, mem, steps, lay)
    assert want != img
    return img, want, lambda buf, t, data: gp.place(buf, lay, t, data)


def _assert_every_pass(res, want, prog, steps) -> None:
    """Every pass of ``res`` ended without error or timeout, left DDR equal to ``want`` and wrote every step's bytes."""
    assert not res.error, res.error
    for r, got in zip(res.passes, res.images, strict=True):
        assert not r["timed_out"] and r["err"] == 0, r
        assert got == bytes(want), r["name"]
        assert r["writer_bytes"] == sum(gp.written_bytes(prog, s) for s in steps)


def test_path_steps_and_refusal():
    """The tiny program's 8 plain GEMM steps (INT8 and UINT8 inputs, signed and unsigned outputs, one raw frame), 7
    with a residual adder (the MBConv's and the blocks' sums, one read in window rows), 6 with a LayerNorm before
    the unit (the blocks' qkv and fc1: 32, 48 and 64 channels), its 7 depthwise steps (stride 1 and 2, UINT8 and
    INT8 inputs, one read in window rows), the neck's last LayerNorm alone (on the neck conv's 3-byte raw sums) and
    2 convolutions behind the depthwise unit's window (the stem's second, 8 channels padded to a beat of 16, stride
    2; the neck's, its LayerNorm on raw sums before the window) and the 3 attention blocks' 9 steps (QK^T, the V
    transpose, AV: 16 keys of 16-dim heads) and the stem's first conv behind the image window (its table on the
    raw 64 x 64 x 3 image, 27 values a patch in 2 beats of SIMD 16); that conv at stride 1 is refused by name."""
    prog, _ = _program()
    steps = gp.path_steps(prog)
    plain = gp.plain_gemm_steps(prog)
    assert len(plain) == 8 and {s.in_dtype for s in plain} == {"INT8", "UINT8"}
    assert sum(s.layer.raw for s in plain) == 1 and {s.layer.out_signed for s in plain if not s.layer.raw} == {
        True, False}
    res = [s for s in steps if s.residual is not None]
    assert len(res) == 7 and {s.add_rq.out_signed for s in res} == {True, False}
    assert max(s.residual.access.levels for s in res) == 3
    lns = [s for s in steps if s.ln is not None and s.kind == "gemm" and s.window is None]  # every block's qkv and fc1
    assert len(lns) == 6 and {s.ln.channels for s in lns} == {32, 48, 64}
    dws = gp.dw_steps(prog)
    assert len(dws) == 7 and {s.window["stride"] for s in dws} == {(1, 1), (2, 2)}
    alone = [s for s in steps if s.kind == "layernorm"]  # the neck's last LayerNorm, on 3-byte raw sums
    assert [(s.name, prog.elem_bytes(s.input.tensor)) for s in alone] == [("IntLayerNorm_rtl_7", 3)]
    wins = gp.window_steps(prog)  # the stem's second conv (8 channels, padded to a beat) and the neck's (LayerNorm)
    assert [(s.name, s.window["stride"], s.ln is not None) for s in wins] == [
        ("MVAU_rtl_1", (2, 2), False), ("MVAU_rtl_29", (1, 1), True)]
    assert [gp.window_frame(prog, s).fmap.shape[-1] for s in wins] == [16, 32]
    assert [gp.window_layer(prog, s)[0].mw for s in wins] == [144, 288]  # 9 taps x C'
    att = gp.attention_steps(prog)
    assert [s.kind for s in att] == ["qk", "vt", "av"] * 3
    rc = gp.rows_config(prog)
    assert (rc["n"], rc["nf"], rc["pe"], rc["in_bits"], len(rc["sets"])) == (16, 2, 8, 23, 3)
    ims = gp.image_steps(prog)
    assert [(s.name, s.input.shape, s.mw, s.layer.mw) for s in ims] == [("MVAU_rtl_0", (1, 64, 64, 3), 27, 32)]
    assert (gp.rtl_params(prog)["IMG_W_MAX"], gp.rtl_params(prog)["IMG_C"]) == (64, 3)
    assert len(steps) == 8 + 7 + 6 + 7 + 1 + 2 + 9 + 1 and steps[0] is ims[0]
    assert gp.norm_config(prog).in_bits == 23  # its raw sums, the widest LayerNorm input
    assert {prog.dtypes[s.input.tensor] for s in dws} == {"INT8", "UINT8"}
    assert max(s.input.access.levels for s in dws) == 3
    assert gp.norm_config(prog).channels == 64
    dc = gp.dw_config(prog)
    assert (dc.pe, dc.w_max, dc.cb_max, dc.w_bits) == (16, 34, 4, 8)  # the stem's conv: a 32-column map whole
    lay = gp.layout(prog, steps)
    s1 = replace(prog.steps[0], window={**prog.steps[0].window, "stride": (1, 1)})
    with pytest.raises(ValueError, match=r"step MVAU_rtl_0 \(gemm\): not a GEMM step of whole folds without a table"):
        gp.step_config(prog, s1, lay)


def test_layernorms_of_several_widths_run_at_the_widest():
    """One build has one LayerNorm output width (``norm_config``): a narrower layer runs at the widest when its clip
    never acts (the bundled default's 12-bit LayerNorm of 64 channels beside 13-bit ones: ``max_abs_output`` 2,035
    < 2,048) or when its requantiser maps both clips alike; a layer whose outputs do reach its narrower clip and
    whose requantiser tells the clips apart is refused, named."""
    from types import SimpleNamespace

    from samfpga.hw.sim.lane_requant import LaneRequant
    from samfpga.kernels.layernorm import IntLayerNormParams, out_bits_for

    def step(name, c, bits, scale):
        rq = LaneRequant(np.full(c, scale), np.zeros(c, np.int64), np.full(c, 4), 8, True)
        return SimpleNamespace(name=name, ln=IntLayerNormParams(c, 5, out_bits=bits), ln_rq=rq)

    wide, ok = step("a", 128, out_bits_for(128, 8), 1), step("b", 64, out_bits_for(64, 8), 1)
    assert [x.out_bits for x in gp._widest_outputs([wide, ok])] == [13, 13]
    flat = step("c", 64, 11, 0)  # reaches its 11-bit clip, but the requantiser maps everything to 0
    assert [x.out_bits for x in gp._widest_outputs([wide, flat])] == [13, 13]
    with pytest.raises(ValueError, match="step d: its LayerNorm's 11-bit outputs differ from 13-bit ones"):
        gp._widest_outputs([wide, step("d", 64, 11, 1)])


@pytest.mark.timeout(900)
def test_rtl_runs_the_programs_gemm_steps_ddr_to_ddr(tmp_path):
    """The program's 41 steps back to back on engine_gemm_path.sv built as the program's unit (PE 8 x SIMD 16, 9-bit
    activations, RT_SHAPE, RAW_OUT) with its access DMAs, the residual lanes, the LayerNorm with its lanes (64
    channels at 8 lanes, 23-bit inputs: the blocks' bytes and the neck's raw sums) and the depthwise unit with its
    lanes (16 channels per beat, strips of up to 32 columns, 64 channels; its window alone before the GEMM unit for
    the 2 convolutions, their weight rows in the window's order; the neck's after its LayerNorm) and the attention's
    rows (raw_rows.sv at 8 lanes, 16 keys; the softmax with the 3 layers' parameter sets) and the image window (the
    stem's first conv on the raw image, its table streamed by the parameter reader), under stalls on every AXI
    channel and free-running: each output tensor in DDR equals the program's stored bytes, every other byte keeps its value.
    Negative controls: a step run with the input's sign flipped (UINT8 read as INT8), a residual step whose lanes'
    biases in DDR are one output step high, a LayerNorm step with every channel negated, a depthwise step with its
    centre tap's weights negated in DDR, the neck's LayerNorm reading its raw sums as bytes, and a convolution whose
    weights keep FINN's row order (not the window's), a QK^T with another layer's softmax set, a V transpose
    reading K's rows for V's and the image step with one channel's table shifted, each write a different tensor;
    the image step alone rewrites its outputs over marked bytes. The depthwise steps and the convolutions launched
    strip by strip again equal the program's."""
    prog, mem = _program()
    steps = gp.path_steps(prog)
    wins = gp.window_steps(prog)
    lay = gp.layout(prog, steps)
    img, want, put = _images(prog, mem, steps, lay)
    gp.build(prog, tmp_path)
    cfgs = [gp.step_config(prog, s, lay) for s in steps]
    res = gp.simulate(cfgs, bytes(img), PASSES, tmp_path, seed=5, tag="steps")
    assert not res.error, res.error
    for p, got in zip(res.passes, res.images, strict=True):
        assert not p["timed_out"] and not p["busy"] and p["err"] == 0, p
        for s in steps:
            b, n = lay.bases[s.output], len(gp.output_bytes(prog, mem, s))
            assert got[b:b + n] == want[b:b + n], (p["name"], s.name)
        assert got == bytes(want), p["name"]
        assert p["writer_bytes"] == sum(gp.written_bytes(prog, s) for s in steps)
    # free-running, a step takes the unit's schedule plus the DMAs' start and drain (measured: 26-94 cycles; a
    # residual step 31 more than its last batch's drain through the lanes, whose parameters load while the unit
    # starts); a LayerNorm step also waits for
    # its lanes' parameters (a beat per channel) and for its first batch of tokens through the LayerNorm, which
    # takes max(C/SIMD, 5) cycles per token where the unit would take C/SIMD (measured: 104-128 cycles in all)
    cycles = res.passes[1]["step_cycles"]
    # a window step takes the unit's schedule of the window's layer plus the window's fill and the DMAs'; with a
    # LayerNorm also its lanes' parameters and the rows the window needs first (measured: 197 and 120 cycles over it)
    for c, s in zip(cycles, steps, strict=True):
        if s in wins:
            assert gp.model_cycles(prog, s) < c <= gp.model_cycles(prog, s) + 250, (s.name, c)
    # the image step takes the image window's rows (its table a byte a cycle, then 2 beats of SIMD 16 a patch: it
    # binds here, not the unit) plus the DMAs' start and drain (measured alone: 104 cycles over it) and, its
    # consumer reading 16 channels a pixel (the window's padded map), a cycle per 8-byte run its writer writes
    # (1,024 runs; measured: 1,072 over the model)
    runs = gp.image_write(prog, steps[0]).loops[0][0]
    assert gp.model_cycles(prog, steps[0]) > steps[0].unit_cycles and runs == 1024
    assert gp.model_cycles(prog, steps[0]) < cycles[0] <= gp.model_cycles(prog, steps[0]) + runs + 150, cycles[0]
    # an attention step takes its frame's schedule (the V transpose's raw frame of low bytes: a beat a fold) plus the
    # rows' and the softmax's latency and the DMAs' (measured alone: 41-137 cycles over it)
    for c, s in zip(cycles, steps, strict=True):
        if s.kind in ("qk", "vt", "av"):
            assert gp.model_cycles(prog, s) < c <= gp.model_cycles(prog, s) + 200, (s.name, c)
    gemm = [(c, s) for c, s in zip(cycles, steps, strict=True) if s.kind == "gemm" and s.window is None]
    over = [c - s.unit_cycles for c, s in gemm]
    lanes = gp.ln_pe(prog)
    assert lanes == 8  # the LayerNorm at half the unit's SIMD: its beats re-cut from and to the unit's
    # a qkv layer's writer scatters one head's 16 bytes a run to the Q / K / V regions: up to half a cycle a run
    # more (measured: 0-64 cycles over the LayerNorm's wait)
    # a residual step's last batch drains through the residual lanes (RL = 4 of PE 8), PE / RL times slower than
    # the unit sends it (the plan's term: engine.step_of)
    rl, pe = gp.res_lanes(prog), prog.unit.pe
    assert rl == 4
    drain = [gp.residual_drain(prog, s) for _, s in gemm]
    assert all(d == (-(-min(s.tokens, s.layer.batch) * s.mh // rl) - min(s.tokens, s.layer.batch) * s.mh // pe
                     if s.residual is not None else 0) for d, (_, s) in zip(drain, gemm, strict=True))
    # measured: 31 cycles over the schedule and the drain on each of the 7 residual steps (drains of 32-128)
    res_over = [o - d for (_, s), o, d in zip(gemm, over, drain, strict=True) if s.residual is not None]
    assert len(res_over) == 7 and all(20 <= o <= 40 for o in res_over), res_over
    ln_wait = [(s.ln.channels + min(s.tokens, s.layer.batch) * max(s.ln.channels // lanes, 5) if s.ln else 0)
               + (s.write.size // s.write.run // 2 if s.write is not None and s.write.run < 64 else 0) + d
               for (_, s), d in zip(gemm, drain, strict=True)]
    assert all(0 < o <= 120 + w for o, w in zip(over, ln_wait, strict=True)), [
        (s.name, s.residual is not None, s.mw, o, w) for (_, s), o, w in zip(gemm, over, ln_wait, strict=True)
        if not 0 < o <= 120 + w]
    assert all(o >= s.ln.channels for o, (_, s) in zip(over, gemm, strict=True) if s.ln is not None), over
    # a depthwise step takes the larger of its padded input's beats (one a cycle into the window) and the writer's
    # beats (PE bytes a cycle), plus its parameter beats (weights, then the lanes': they precede its first output)
    # and the DMAs' start (measured: 30-138 cycles over the larger, -72-132 over it plus the parameters)
    for c, s in zip(cycles, steps, strict=True):
        if s.kind in ("dw", "layernorm"):  # the LayerNorm alone: its reader's beats or rows, its lanes' parameters
            bound = gp.model_cycles(prog, s)
            params = len(gp.lane_params(prog, s)) // param_bytes(gp.dw_config(prog).lanes)
            assert bound < c <= bound + params + 150, (s.name, c, bound, params)

    # the depthwise steps stored in order, launched strip by strip (2 strips each, their interior sides open: the
    # reader takes a strip's columns and halos, the writer its output columns) over an image whose outputs of them
    # are overwritten: each output tensor equals the program's again
    split = [s for s in steps if s.kind == "dw" and not s.input.access.loops and s.write is None]
    assert len(split) == 6
    strips = [c for s in split + wins for c in gp.strip_configs(prog, s, lay, 2)]
    assert {(c["dw_open_l"], c["dw_open_r"]) for c in strips} == {(0, 1), (1, 0)}
    blank = bytearray(want)
    for s in split + wins:
        put(blank, s.output, bytes([0xA5]) * len(prog.stored(s.output, mem[s.output])))
    r = gp.simulate(strips, bytes(blank), [{"name": "free"}], tmp_path, seed=8, tag="strips")
    assert not r.error and not r.passes[0]["timed_out"] and r.passes[0]["err"] == 0, r.error
    assert r.images[0] == bytes(want)

    def output_of(k: int, cfg: dict, image: bytes, tag: str) -> bytes:
        r = gp.simulate([cfg], image, [{"name": "free"}], tmp_path, seed=6, tag=tag)
        b, n = lay.bases[steps[k].output], len(gp.output_bytes(prog, mem, steps[k]))
        assert not r.error, r.error
        return r.images[0][b:b + n], want[b:b + n]

    k = next(i for i, s in enumerate(steps) if s.in_dtype == "UINT8" and s.residual is None)
    got, good = output_of(k, {**gp.step_config(prog, steps[k], lay), "in_unsigned": 0}, bytes(img), "sign")
    assert got != good
    k = next(i for i, s in enumerate(steps) if s.residual is not None)
    s = steps[k]
    off = replace(s, add_rq=replace(s.add_rq, bias=s.add_rq.bias + (np.int64(1) << s.add_rq.shift)))
    bad = bytearray(img)
    put(bad, f"{s.name}.lanes", gp.stored_params(prog, gp.lane_params(prog, off)))
    got, good = output_of(k, gp.step_config(prog, s, lay), bytes(bad), "bias")
    assert got != good
    k = next(i for i, s in enumerate(steps) if s.ln is not None)  # every channel of the LayerNorm negated
    got, good = output_of(k, {**gp.step_config(prog, steps[k], lay), "nm_neg": (1 << steps[k].ln.channels) - 1},
                          bytes(img), "negate")
    assert got != good
    k = next(i for i, s in enumerate(steps) if s.kind == "layernorm")  # raw sums read as bytes
    got, good = output_of(k, {**gp.step_config(prog, steps[k], lay), "nm_raw": 0}, bytes(img), "raw")
    assert got != good
    k = next(i for i, s in enumerate(steps) if s.kind == "dw")  # the centre tap's weights negated in DDR
    s = steps[k]
    bad = bytearray(img)
    put(bad, f"{s.name}.lanes", gp.stored_params(prog, gp.lane_params(prog, replace(s, dw_weights=s.dw_weights * np.where(
        np.arange(9) == 4, -1, 1)))))
    got, good = output_of(k, gp.step_config(prog, s, lay), bytes(bad), "taps")
    assert got != good
    from samfpga.hw.sim import token_batch_mvu as tb

    k = next(i for i, s in enumerate(steps) if s is wins[0])  # the window's layer with FINN's weight order unpermuted
    s = steps[k]
    layer, _ = gp.window_layer(prog, s)
    w = tb.unpack_weights(prog.image, 1, s.layer, base=s.offset)
    bad = bytearray(img)
    put(bad, f"{s.name}.weights", tb.pack_weights(np.pad(w, ((0, 0), (0, 0), (0, layer.mw - w.shape[2]))), layer,
                                                  rq=tb.unpack_requant(prog.image, 1, s.layer, base=s.offset)))
    got, good = output_of(k, gp.step_config(prog, s, lay), bytes(bad), "order")
    assert got != good
    k = next(i for i, s in enumerate(steps) if s.kind == "qk")  # the softmax's set of the next layer
    got, good = output_of(k, {**gp.step_config(prog, steps[k], lay), "sm_set": 1}, bytes(img), "set")
    assert got != good
    k = next(i for i, s in enumerate(steps) if s.kind == "vt")  # K's blocks for V's (K precedes V in the regions)
    s, cfg = steps[k], gp.step_config(prog, steps[k], lay)
    got, good = output_of(k, {**cfg, "wt_base": cfg["wt_base"] - s.iters * s.mh * s.mw}, bytes(img), "kv")
    assert got != good
    # the image step alone from an image whose output bytes read 0xA5 (the next conv's padded map: its padding
    # zero, which the step does not write) leaves its outputs; with channel 0's table shifted by one entry, others
    s = steps[0]
    w = gp.padded_consumer(prog, s)
    marked = gp.window_frame(prog, w, np.full(w.input.shape[-3:], 0xA5)).fmap
    blank = bytearray(img)
    put(blank, s.output, (marked & 0xFF).astype(np.uint8).tobytes())
    got, good = output_of(0, gp.step_config(prog, s, lay), bytes(blank), "image")
    assert got == good
    shifted = s.table.copy()
    shifted[0] = np.roll(shifted[0], 1)
    put(blank, f"{s.name}.table", gp.stored_params(prog, gp.image_table(prog, replace(s, table=shifted))))
    got, good = output_of(0, gp.step_config(prog, s, lay), bytes(blank), "table")
    assert got != good


@pytest.mark.timeout(900)
def test_rtl_aligned_writer_takes_the_recut_beats(tmp_path):
    """The writer built ALIGNED (WR_ALIGNED = 1: no realignment buffer) behind the re-cut of the unit side's PE bytes
    to its port beats (token_pack.sv, the frame ended at the writer's own byte count): the tiny program's 40 steps whose writes are whole 16-byte beats (all but the stem's first conv, 8 bytes
    a token) under stalls and free-running leave DDR byte for byte the program's. The stem's conv on that build is
    refused by the writer (err bit 3: its frame is not whole beats) and writes nothing. The program's own build is
    not aligned (``wr_aligned``)."""
    prog, mem = _program()
    steps = gp.path_steps(prog)
    lay = gp.layout(prog, steps)
    assert not gp.rtl_params(prog)["WR_ALIGNED"]
    cfgs = [gp.step_config(prog, s, lay) for s in steps]
    odd = [i for i, c in enumerate(cfgs) if not gp._on_beats(c, "wr", 16)]
    assert [steps[i].name for i in odd] == ["MVAU_rtl_0"] and odd == [0]
    img, want, _ = _images(prog, mem, steps[1:], lay)
    gp.build(prog, tmp_path, extra={"WR_ALIGNED": 1})
    res = gp.simulate(cfgs[1:], bytes(img), PASSES, tmp_path, seed=7, tag="aligned")
    _assert_every_pass(res, want, prog, steps[1:])
    start, _ = gp.ddr_images(prog, mem, steps[:1], lay)
    r = gp.simulate(cfgs[:1], bytes(start), [{"name": "free"}], tmp_path, tag="refused")
    b, n = lay.bases[steps[0].output], len(gp.output_bytes(prog, mem, steps[0]))
    assert r.passes[0]["err"] & 8 and r.images[0][b:b + n] == bytes(start)[b:b + n]


def test_host_sequencer_runs_the_steps_through_axi_lite(tmp_path):
    """The board's own host sequencer (samfpga.backends.step_sequencer.StepSequencer, in a cocotb bridge thread
    whose MMIO reads and writes are AXI-Lite transactions) runs the 41 steps on engine_gemm_path_axil.sv, the path
    behind its generated register block: per step the registers, ap_start, CTRL polled until ap_done. From reset,
    writing only the registers that changed since the last step (AXI-Lite channels stalled 0.3 of the cycles): the
    DDR image the program's, byte for byte. Built as the
    engine's plan prices it, without configuration read-back (CFG_READ = 0: the sequencer never reads a register it
    wrote): the last step's registers read as 0, OKAY.
    The first step writes all 119 registers either way; later steps need far fewer when only changes are written.
    A plain step the reader and the writer both refuse raises UnitError naming it and STATUS's err bits 1 and 3; a
    window step refused alike leaves the path busy (its window waits for data) and raises UnitError from STATUS
    read while polling, not a timeout.
    A second pass is the board's frame as the host runs it, from the committed host files of this program
    (tests/runtime/data/tiny_engine, what a deployment package carries: their steps at buffer address 0 are these
    41 steps' registers): the host's code zeroes the DDR and writes host.json's regions, writes the accelerator
    input and runs ``engine_host.run_frame`` with the sequencer's overlap, as the board's driver does (the block
    latches its configuration when a step starts, CFG_LATCH = 1), here writing every register of each step while
    the step before runs; the output it reads back equals the integer graph's accelerator output (tolerance 0).
    Two more such frames, free-running, writing only changed registers: one a step at a time, one overlapped; the
    overlapped one takes fewer cycles (the writes hidden behind the running step), with the same output."""
    from samfpga.backends.engine_host import read_engine_host, relocated
    from samfpga.backends.unit_regs import ENGINE_GEMM_PATH

    prog, mem = _program()
    steps = gp.path_steps(prog)
    lay = gp.layout(prog, steps)
    img, want, _ = _images(prog, mem, steps, lay)
    cfgs = [gp.step_config(prog, s, lay) for s in steps]
    host = read_engine_host(TINY_ENGINE)
    assert relocated(host, 0) == cfgs and host.ddr_bytes == len(img)
    exp = np.load(TINY_ENGINE / "expected.npz")
    np.save(tmp_path / "x.npy", exp["x"])
    gp.build_axil(prog, tmp_path, cfg_read=False)
    k = next(i for i, s in enumerate(steps) if s in gp.plain_gemm_steps(prog))
    bad = {**cfgs[k], "rd_count0": 0, "wr_count0": 0}  # a plain step: nothing else starts to wait for input
    # a window step refused alike: the depthwise unit's window started and waits for the reader's data forever
    hung = {**cfgs[next(i for i, s in enumerate(steps) if s in gp.window_steps(prog))], "rd_count0": 0,
            "wr_count0": 0}
    # the DDR's stalls are the direct test's (above): here the AXI-Lite channels stall
    frame = {"host": str(TINY_ENGINE), "x": str(tmp_path / "x.npy")}
    passes = [{"name": "changed", "axil_pause": 0.3},
              {"name": "host", **frame, "only_changed": False, "overlap": True, "r_pause": 0.2, "w_pause": 0.2},
              {"name": "host_sequential", **frame}, {"name": "host_overlap", **frame, "overlap": True}]
    res = gp.simulate_axil(cfgs, [s.name for s in steps], bytes(img), passes, tmp_path, bad_steps=[bad, hung],
                           seed=7)
    assert not res.error, res.error
    assert [p["name"] for p in res.passes] == ["changed", "host", "host_sequential", "host_overlap"]
    n_regs = len(ENGINE_GEMM_PATH.cfg_regs)
    assert n_regs == 119
    p, got = res.passes[0], res.images[0]
    assert not p["timed_out"] and len(p["steps"]) == len(steps)
    assert got == bytes(want), p["name"]
    rb = p["readback"]  # [offset, written, read, RRESP]
    assert any(v for _, v, _, _ in rb) and all(r == 0 and resp == 0 for _, _, r, resp in rb), rb
    assert p["steps"][0]["writes"] == n_regs + 1
    assert len(p["bad"]) == 2 and all(f"UnitError: step {len(steps)} (bad)" in b for b in p["bad"])
    assert "finished with err" in p["bad"][0] and "STATUS(0x04)=0xa" in p["bad"][0]
    assert "err while running" in p["bad"][1] and "STATUS(0x04)=0x10a [err=0xa busy=1]" in p["bad"][1]
    assert max(s["writes"] for s in p["steps"][1:]) < n_regs // 2
    for h in res.passes[1:]:  # the board's frame: the graph's output
        assert not h["timed_out"] and len(h["steps"]) == len(steps), h["name"]
        np.testing.assert_array_equal(np.array(h["output"]).reshape(exp["y"].shape), exp["y"], err_msg=h["name"])
    assert all(s["writes"] == n_regs + 1 for s in res.passes[1]["steps"])  # every register, while a step runs
    seq, over = res.passes[2], res.passes[3]
    assert [s["writes"] for s in seq["steps"]] == [s["writes"] for s in over["steps"]]
    assert over["cycles"] < seq["cycles"], (over["cycles"], seq["cycles"])
    assert np.array_equal(exp["y"], _graph_output(prog, mem))


def _graph_output(prog, mem) -> np.ndarray:
    """The program's output (the accelerator's, in the graph's order and shape) as ``run_program`` stored it."""
    from tests.test_engine_program import _graph

    g = _graph()
    return np.asarray(mem[prog.output]).reshape(g.shape(prog.output))


@pytest.mark.timeout(600)
def test_rtl_attention_at_padded_folds(tmp_path):
    """The attention's steps when neither the keys nor the head's dims are whole PE folds: the tiny graph's program
    compiled for PE 24 (16 keys and 16 dims -> a fold of 24; the 2-fold case, PE 10, is the test below). QK^T: each
    iteration's pass reads its K block and 8 rows of the next (V's first rows for the last), raw_rows.sv keeps each
    row's first 16 sums for the softmax. The V transpose, as vit_t's at PE 40 (32 dims in a fold of 40): 16 one-hot
    inputs (V^T's rows within one fold of AV's image; its 8 padded rows zero, written with the image) against V's
    blocks, a raw frame of the sums' low bytes, each row's 8 padded keys' bytes dropped by the writer's pack
    (token_pack.sv: tokens of one beat keeping 16 bytes; the last block's are read past V's region, whatever is
    there). AV: each token's 24 outputs, its 8 padded ones dropped by the pack the same way (its output's stored
    pattern as it is, no overlap or slack
    the tensor). The probabilities of two blocks (3 x 16 x 16 and 4 x 16 x 16 bytes) are not whole beats of 24: the
    step's last row (register sm_rows) ends the writer's stream with a partial beat. DDR afterwards byte for byte the
    program's (which pads with zero rows and drops outputs), under stalls and free-running."""
    from samfpga.hw.sim.engine_program import compile_program, engine_unit, run_program
    from tests.test_engine_program import _graph, _inputs

    g = _graph()
    prog = compile_program(g, engine_unit(g, pe=24, simd=16, batch=16))
    mem = run_program(prog, g.run_host_pre(_inputs(g, 3)))
    at = gp.attention_steps(prog)
    assert [(s.kind, s.mh, s.layer.mh) for s in at] == [("qk", 16, 24), ("vt", 16, 24), ("av", 16, 24)] * 3
    assert gp.vt_layer(prog, at[1]).mh == 24 and gp.vt_tokens(prog, at[1]) == 16
    assert gp.vt_layer(prog, at[1]).raw_low
    assert [(gp.writer_pattern(prog, s).beats, gp.writer_pattern(prog, s).keep) for s in at[1:3]] == [(1, 16)] * 2
    assert sorted((s.iters * s.tokens * s.mh) % 24 for s in at if s.kind == "qk") == [0, 8, 16]
    lay = gp.layout(prog, at)
    img, want, _ = _images(prog, mem, at, lay)
    gp.build(prog, tmp_path)
    res = gp.simulate([gp.step_config(prog, s, lay) for s in at], bytes(img), PASSES, tmp_path, seed=3)
    assert not res.error, res.error
    for p, got in zip(res.passes, res.images, strict=True):
        assert not p["timed_out"] and p["err"] == 0, p
        assert got == bytes(want), p["name"]


def test_rtl_runs_every_step_with_outputs_padded_to_pe_folds_at_narrow_side_lanes(tmp_path):
    """What the engine's plans build for vit_t, on the tiny program with a re-quantisation between blocks
    (``requant_graph``: a GEMM step of identity weights):
    - compiled for PE 10, so 25 of its 42 steps have outputs padded to whole PE folds (16 -> 20, 32 -> 40,
      96 -> 100, ...). The writer's pack (token_pack.sv) drops each token's padding: tokens of 2 to 10 beats of
      PE bytes (outputs 16 -> 20 to 96 -> 100), the qkv's written to its Q / K / V regions as before. A residual is
      read past each token, and the lanes zero the padded channels. The V transposes' padded keys are dropped too;
    - with side units narrower than the unit (``engine_gemm_path.with_lanes``; the KV260 plan's: depthwise 16 of
      SIMD 32, LayerNorm 4): here the depthwise unit at 8 channels a beat (the stem's 8-channel conv map padded to
      16 channels a pixel for the window, ``window_channels``), the LayerNorm at 4 lanes, the softmax at 4 of 16 keys.
    All 42 steps under stalls leave DDR byte for byte the program's (free-running: the PE 8 program's test above, the
    same steps but the re-quantisation, without padding). A padded step run with its pack off (every byte of the unit's tokens
    to the writer) writes other bytes."""
    from samfpga.hw.sim.engine_program import compile_program, engine_unit, run_program
    from tests.test_engine_program import _inputs, requant_graph

    g = requant_graph()
    prog = gp.with_lanes(compile_program(g, engine_unit(g, pe=10, simd=16, batch=16)),
                         {"dw_pe": 8, "ln_pe": 4, "sm_pe": 4})
    mem = run_program(prog, g.run_host_pre(_inputs(g, 3)))
    steps = gp.path_steps(prog)
    assert len(steps) == len(prog.steps) == 42
    p = gp.rtl_params(prog)
    assert (p["DW_PE"], p["LN_PE"], p["SM_PE"], p["SIMD"], p["PE"]) == (8, 4, 4, 16, 10)
    stem = gp.window_steps(prog)[0]
    assert stem.input.shape[-1] == 8 and gp.window_frame(prog, stem).fmap.shape[-1] == 16
    padded = [s for s in steps if s.kind == "gemm" and s.layer.mh > s.mh]
    assert len(padded) == 25 and any(s.identity for s in padded)
    packs = [(gp.writer_pattern(prog, s).beats, gp.writer_pattern(prog, s).keep, prog.elem_bytes(s.output))
             for s in padded]
    assert all(b * 10 == s.layer.mh * e and k == s.mh * e for (b, k, e), s in zip(packs, padded, strict=True))
    assert {(2, 16, 1), (10, 96, 1)} <= set(packs) and any(e > 1 for *_, e in packs)  # the neck's raw sums too
    # the V transposes: 16 dims in two folds of 10 rows, so 20 one-hot inputs (the last 4 write AV's zero rows), and
    # each row's 16 keys of 20 kept
    vts = [s for s in steps if s.kind == "vt"]
    assert len(vts) == 3 and all(gp.vt_tokens(prog, s) == 20 and (gp.writer_pattern(prog, s).beats,
                                                                   gp.writer_pattern(prog, s).keep) == (2, 16)
                                 for s in vts)
    lay = gp.layout(prog, steps)
    img, want, _ = _images(prog, mem, steps, lay)
    gp.build(prog, tmp_path)
    cfgs = [gp.step_config(prog, s, lay) for s in steps]
    res = gp.simulate(cfgs, bytes(img), PASSES[:1], tmp_path, seed=11)
    _assert_every_pass(res, want, prog, steps)
    k = steps.index(next(s for s in padded if s.identity))
    r = gp.simulate([{**cfgs[k], "wr_pk_beats": 0}], bytes(want), [{"name": "free"}], tmp_path, tag="no_pack")
    b, n = lay.bases[steps[k].output], len(gp.output_bytes(prog, mem, steps[k]))
    assert r.images[0][b:b + n] != want[b:b + n]


#: the wide-heads tiny build (tests/support/tiny_deploy.py --wide-heads): the bundled default's attention shape
WIDE_HEADS = Path(__file__).parent / "runtime" / "data" / "tiny_wide_heads"


@pytest.mark.timeout(600)
def test_rtl_attention_with_keys_padded_to_simd_folds(tmp_path):
    """The bundled default's attention shape (heads of 32 dims over 4 x 4 windows: 16 keys, fewer than a SIMD fold of
    the head's dims) on the tiny build with wide heads, compiled for PE 24 x SIMD 32. QK^T: each head's dims one SIMD
    fold, keys padded to a PE fold as before. AV: its weight rows are padded to a SIMD fold (16 keys -> 32): V^T's
    16 keys fill the first half of each row of AV's image (the V transpose writes them there, ``av_rows_write``:
    runs of 16 bytes 32 apart), the second half zero (written once with the image); the reader reads each token's
    probabilities with the next token's 16 (``av_read``: runs of 32 bytes 16 apart; the last token's past the
    tensor, the slack ``layout`` leaves), which the zero weights cancel; its dims padded 32 -> 48 and dropped by
    the pack. The program equals the graph's execution; DDR after the RTL byte for byte the program's, under stalls
    and free-running, with random bytes in the slack. Negative control: a nonzero byte in AV's padded weight
    columns changes its output."""
    from samfpga.hw.sim.engine_program import compile_program, engine_unit, run_program
    from samfpga.intexec.executor import load_intgraph
    from tests.test_engine_program import _inputs, check_program_equals

    g = load_intgraph(WIDE_HEADS)
    prog = compile_program(g, engine_unit(g, pe=24, simd=32, batch=16))
    x = _inputs(g, 3)
    ref = g.run_all(x)
    ref[prog.input] = g.run_host_pre(x)
    assert check_program_equals(g, prog, ref) == len(prog.steps) - 3  # all but the V transposes (no graph tensor)
    mem = run_program(prog, ref[prog.input])
    at = gp.attention_steps(prog)
    assert [(s.kind, s.mw, s.mh, s.layer.mw, s.layer.mh) for s in at] == [
        ("qk", 32, 16, 32, 24), ("vt", 32, 16, 32, 24), ("av", 16, 32, 32, 48)] * 3
    # the qkv layers' writers: a run per head's 32 dims a token (what the plan prices at 3 cycles a run)
    for q in (s for s in at if s.kind == "qk"):
        w = gp.writer_access(prog, next(s for s in prog.steps if s.output == q.input.tensor))
        assert w.run == 32
    av = at[2]
    rd = gp.av_read(av)
    assert (rd.run, rd.loops[-1]) == (32, (av.iters * av.tokens, 16))
    wr = gp.av_rows_write(prog, av)
    assert wr.run == 16 and gp.vt_tokens(prog, at[1]) == 48  # 32 dims in two folds of 24 rows: 48 one-hot inputs
    lay = gp.layout(prog, at)
    sizes = {t: lay.bases[t] for t in lay.bases}
    assert all(b % 4096 == 0 for b in sizes.values())
    img, want, _ = _images(prog, mem, at, lay)
    gp.build(prog, tmp_path)
    cfgs = [gp.step_config(prog, s, lay) for s in at]
    res = gp.simulate(cfgs, bytes(img), PASSES, tmp_path, seed=5)
    _assert_every_pass(res, want, prog, at)
    # a nonzero weight in the first AV's padded key columns (the image the host writes) shows in its output
    k = 2
    bad = bytearray(want)
    z = gp.av_image(prog, av, np.zeros((av.iters, av.mh, av.mw), np.int64))
    ones = np.zeros((av.iters, av.layer.mh, av.layer.mw), np.int64)
    ones[:, :av.mh, av.mw:] = 1
    from samfpga.hw.sim import token_batch_mvu as tb

    pad = np.flatnonzero(np.frombuffer(tb.pack_weights(ones, av.layer, rq=av.rq_params), np.uint8)
                         != np.frombuffer(z, np.uint8))
    bad[lay.bases[av.vt_of] + int(pad[0])] ^= 0x01
    r = gp.simulate([cfgs[k]], bytes(bad), [{"name": "free"}], tmp_path, tag="pad_weight")
    b, n = lay.bases[av.output], len(gp.output_bytes(prog, mem, av))
    assert not r.error and r.images[0][b:b + n] != want[b:b + n]
