"""Access reader (hw/samfpga/hw/rtl/access_reader.sv, the engine's read DMA): its configuration from an address
pattern and the bytes it must emit, then the RTL under Verilator + cocotb (cocotbext-axi's AxiRamRead as DDR, random
stalls on AR, R and the output) reading every operand of the tiny build's engine program from one DDR image
holding the program's stored tensors: byte for byte equal to the operand values the program's steps consume,
tolerance 0."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from samfpga.hw.sim import access_reader as ar
from samfpga.hw.sim.access_reader import AccessFrame
from samfpga.hw.sim.dma_access import Access, gather
from samfpga.hw.sim.strip_reader import ReaderConfig

CFG = ReaderConfig(axi_dw=64, stream_w=64, max_burst=8)
PASSES = [{"name": "stalls", "ar_pause": 0.3, "r_pause": 0.3, "out_pause": 0.3}, {"name": "free"}]
DEPLOY = Path(__file__).parent / "runtime" / "data" / "tiny_deploy"


def test_config_of_an_access():
    """The loops take the innermost levels (outer ones count 1); strides and offsets scale with the element's bytes;
    a negative stride is written in two's complement; the reference is the access's gather of the DDR bytes."""
    f = AccessFrame(Access(3, 2, ((4, 10), (2, -3))), base=100, elem_bytes=2)
    c = ar.frame_config(f)
    assert (c["base"], c["run"]) == (106, 4)
    assert [c[f"count{k}"] for k in range(6)] == [1, 1, 1, 1, 4, 2]
    assert [c[f"stride{k}"] for k in range(4)] == [0] * 4 and c["stride4"] == 20 and c["stride5"] == (1 << 32) - 6
    assert ar.segments(f)[:3] == [(106, 4), (100, 4), (126, 4)]
    ddr = bytes(range(256))
    want = np.frombuffer(ddr, np.uint8)[[a + k for a, n in ar.segments(f) for k in range(n)]].tobytes()
    assert ar.reference(f, ddr) == want and len(want) == f.access.size * 2
    for a, b in ar.bursts(f, CFG):
        assert a % 8 == 0 and 1 <= b <= CFG.max_burst and a // 4096 == (a + 8 * b - 1) // 4096


def test_accesses_the_reader_cannot_walk_are_refused():
    with pytest.raises(ValueError, match="7 loop levels"):
        ar.frame_config(AccessFrame(Access(0, 1, tuple((2, 1 << k) for k in range(7)))))
    with pytest.raises(ValueError, match="loop count 70000"):
        ar.frame_config(AccessFrame(Access(0, 1, ((70000, 1),))))
    with pytest.raises(ValueError, match="reads before address 0"):
        ar.frame_config(AccessFrame(Access(4, 1, ((3, -3),))))


def _program_reads():
    """Every operand the tiny program's steps read (input, residual, K / V rows) and the read of the accelerator's
    output (this older build ends in an NCHW transpose: 1-byte runs) as frames on one DDR image of the program's
    stored tensors (one image's values), each tensor at an odd byte address; and the bytes of each
    operand as the step consumes it (``EngineProgram.stored`` of its gathered values)."""
    from tests.test_engine_program import program_run

    _, prog, mem = program_run(0)
    ops = [o for s in prog.steps for o in (s.input, s.residual, s.weights) if o is not None] + [prog.output_read]
    img, bases = bytearray(), {}
    for t in dict.fromkeys(o.tensor for o in ops):
        img += bytes(37 + (-len(img)) % 64)  # every tensor 37 bytes past a 64-byte boundary
        bases[t] = len(img)
        img += prog.stored(t, mem[t])
    frames = [AccessFrame(o.access, bases[o.tensor], prog.elem_bytes(o.tensor)) for o in ops]
    want = [prog.stored(o.tensor, gather(mem[o.tensor], o.access)) for o in ops]
    return frames, bytes(img), want, ops


def test_the_programs_dma_fits_the_aligned_units_as_the_plan_prices():
    """The layer-sequential engine's plan prices its readers and writer as the ALIGNED access DMAs (no realignment
    buffers) when ``engine.dma_on_whole_beats`` holds for the encoder; for the tiny build's encoder it holds, and
    every read and every store of the compiled program (tensors on 16-byte boundaries, the plan's beat) is on whole
    beats; an encoder whose attention heads are 8 channels wide does not qualify."""
    import json

    from samfpga.hw.plan.engine import PORT_BYTES, dma_on_whole_beats
    from samfpga.hw.plan.layers import encoder_layers
    from samfpga.models.image_encoder.tiny_vit import TinyViTConfig
    from tests.test_sim_access_writer import _program_writes

    enc = json.loads((DEPLOY / "bundle" / "bundle.json").read_text())["model_config"]["encoder_config"]
    assert dma_on_whole_beats(encoder_layers(TinyViTConfig(**enc)))
    beat = ReaderConfig(axi_dw=8 * PORT_BYTES, stream_w=8 * PORT_BYTES, aligned=True)
    frames, _, _, ops = _program_reads()
    for f, o in zip(frames[:-1], ops[:-1], strict=True):  # the last: the host's read of the output
        assert ar.fits_aligned(replace(f, base=0), beat), (o.tensor, o.access.describe())
    assert not ar.fits_aligned(replace(frames[-1], base=0), beat)
    stores = [f for f, _ in _program_writes()[0]]
    assert len(stores) == 41 and all(ar.fits_aligned(replace(f, base=0), beat) for f in stores)
    assert not dma_on_whole_beats(encoder_layers(TinyViTConfig(**{**enc, "num_heads": [1, 4, 6, 8]})))
    # the path's own check of a compiled program (what engine_gemm_path.sv is built by: DMA_ALIGNED) agrees with the
    # plan's rule: at PE 8 every read is on whole beats, at PE 10 the residuals read past each token are not
    from samfpga.hw.sim import engine_gemm_path as gp
    from samfpga.hw.sim.engine_program import compile_program, engine_unit
    from tests.test_engine_program import _graph

    g, units = _graph(), encoder_layers(TinyViTConfig(**enc))
    for pe in (8, 10):
        prog = compile_program(g, engine_unit(g, pe=pe, simd=16, batch=16))
        assert gp.dma_aligned(prog) == dma_on_whole_beats(units, pe) == (pe == 8), pe
        assert gp.rtl_params(prog)["DMA_ALIGNED"] == (pe == 8)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("access_reader")
    ar.build(CFG, work)
    return work


@pytest.mark.timeout(900)
def test_rtl_reads_every_operand_of_the_program(built):
    """All 52 reads of the tiny program (up to 3 loop levels, runs of 1 byte to 16 KiB, raw sums of 3 bytes per
    element), back to back with a refused configuration (a count of 0) among them, under stalls and
    free-running: every packet equals the operand's bytes; the AXI bytes and bursts equal the model's."""
    frames, ddr, want, ops = _program_reads()
    assert len(frames) == 52 and max(f.access.levels for f in frames) == 3
    assert {f.elem_bytes for f in frames} == {1, 3} and min(f.access.run for f in frames) == 1
    for f, w in zip(frames, want, strict=True):
        assert ar.reference(f, ddr) == w  # the model's bytes are the operand's values
    bad = {**ar.frame_config(frames[1]), "count5": 0}
    run = [*frames[:2], bad, *frames[2:]]
    res = ar.simulate(CFG, run, PASSES, built, ddr, seed=1, tag="program")
    assert not res.error, res.error
    for p in res.passes:
        assert not p["timed_out"] and not p["busy"] and p["extra_beats"] == 0, p["name"]
        got = [bytes.fromhex(k[0]) if k else None for k in p["packets"]]
        assert got[2] is None and p["frame_err"][2] == 0b10 and p["frame_err"][3] == 0
        assert got[:2] + got[3:] == want, p["name"]
        assert p["ddr_bytes"] == sum(ar.axi_bytes(f, CFG) for f in frames)
        assert [tuple(b) for b in p["bursts"]] == [b for f in frames for b in ar.bursts(f, CFG)]


@pytest.mark.timeout(300)
def test_rtl_flipped_ddr_byte_mismatches_where_predicted(built):
    """Negative control: one byte flipped in DDR under an access that reads it twice (a 3-level nest with an
    overlapping stride): the packet differs exactly where the access reads that byte."""
    f = AccessFrame(Access(5, 3, ((3, 40), (4, 2))), base=0x1FF3)
    ddr = bytes(np.random.default_rng(7).integers(0, 256, 0x2100, dtype=np.uint8))
    idx = f.byte_access().indices()
    vals, counts = np.unique(idx, return_counts=True)
    hit = int(vals[counts == 2][1])  # a byte read twice (runs of 3 at a stride of 2 overlap)
    bad = bytearray(ddr)
    bad[hit] ^= 0xA5
    res = ar.simulate(CFG, [f], [{"name": "free"}], built, bytes(bad), seed=2, tag="corrupt")
    assert not res.error, res.error
    got = np.frombuffer(bytes.fromhex(res.passes[0]["packets"][0][0]), np.uint8)
    ref = np.frombuffer(ar.reference(f, ddr), np.uint8)
    assert np.flatnonzero(got != ref).tolist() == np.flatnonzero(idx == hit).tolist() and (idx == hit).sum() == 2


CFG_ALIGNED = ReaderConfig(axi_dw=64, stream_w=64, max_burst=4, aligned=True)


@pytest.mark.timeout(300)
def test_rtl_aligned_variant(tmp_path_factory):
    """ALIGNED = 1 (beats pass straight through): accesses on whole beats (a negative stride, a page crossing)
    equal the model's bytes and bursts; a run that is not whole beats is refused (err[1], no packet)."""
    work = tmp_path_factory.mktemp("access_reader_aligned")
    ar.build(CFG_ALIGNED, work)
    frames = [AccessFrame(Access(0, 16, ((3, 64), (2, -32))), base=0x1000 - 0x48),
              AccessFrame(Access(8, 40, ((5, 48),)), base=0x200)]
    ddr = bytes(np.random.default_rng(3).integers(0, 256, 0x1400, dtype=np.uint8))
    refused = AccessFrame(Access(0, 12, ((2, 16),)), base=0x100)
    assert all(ar.fits_aligned(f, CFG_ALIGNED) for f in frames) and not ar.fits_aligned(refused, CFG_ALIGNED)
    bad = ar.frame_config(refused)
    res = ar.simulate(CFG_ALIGNED, [frames[0], bad, frames[1]], PASSES, work, ddr, seed=4, tag="aligned")
    assert not res.error, res.error
    for p in res.passes:
        assert not p["timed_out"] and not p["busy"] and p["extra_beats"] == 0, p["name"]
        assert p["packets"][1] == [] and p["frame_err"] == [0, 0b10, 0], p["name"]
        assert [bytes.fromhex(p["packets"][k][0]) for k in (0, 2)] == [ar.reference(f, ddr) for f in frames]
        assert [tuple(b) for b in p["bursts"]] == [b for f in frames for b in ar.bursts(f, CFG_ALIGNED)]


@pytest.mark.timeout(300)
def test_rtl_reader_driven_only_over_axi_lite(tmp_path):
    """access_reader_axil (the generated AXI4-Lite wrapper, docs/unit_regs.md): two operand reads of the program
    configured with the register map's writes, started by ap_start and polled for ap_done around a refused one
    (a count of 0: err[1], no packet, done all the same); then the board driver itself (``UnitDriver.run`` over
    AXI-Lite) runs a read. Every packet equals the operand's bytes; read-backs equal the writes."""
    from samfpga.backends.unit_regs import ACCESS_READER, AP_DONE, AP_IDLE
    from samfpga.hw.sim import strip_reader as sr

    okay = 0  # AXI response OKAY
    frames, ddr, want, _ = _program_reads()
    ar.build_axil(CFG, tmp_path)
    k = [i for i, f in enumerate(frames) if f.access.levels == 3 and f.elem_bytes == 1][0]
    bad = {**ar.frame_config(frames[k]), "count2": 0}
    cfgs = [ar.frame_config(frames[k]), bad, ar.frame_config(frames[-1])]
    axil = [{"writes": ACCESS_READER.writes(c), "strips": n} for c, n in zip(cfgs, (1, 0, 1), strict=True)]
    res = sr.simulate_axil(axil, [], tmp_path, ddr, seed=5, driver_frames=[{"cfg": cfgs[0], "strips": 1}],
                           unit="access_reader")
    assert not res.error, res.error
    p = res.passes[0]
    assert not p["timed_out"]
    *got, _, drv = p["frames"]
    for r, c, w, err in zip(got, cfgs, (want[k], None, want[-1]), (0, 0b10, 0), strict=True):
        writes = ACCESS_READER.writes(c)
        assert r["write_resp"] == [okay] * len(writes) and r["readback"] == [[v, okay] for _, v in writes]
        assert r["ctrl_done"] == AP_DONE | AP_IDLE and r["status"] == err and r["extra_beats"] == 0
        assert [bytes.fromhex(s) for s in r["strips"]] == ([] if w is None else [w])
    assert drv["driver"] == "ok" and [bytes.fromhex(s) for s in drv["strips"]] == [want[k]]
