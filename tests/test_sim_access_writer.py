"""Access writer (hw/samfpga/hw/rtl/access_writer.sv, the engine's write DMA): the DDR image it must leave, then the
RTL under Verilator + cocotb (cocotbext-axi's AxiRamWrite as DDR over a random background, random stalls on the
input, AW, W and B) writing every tensor the tiny build's engine program stores, from the bytes its steps produce in
stream order: the DDR image byte for byte equal to the program's stored tensors, tolerance 0."""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.hw.sim import access_writer as aw
from samfpga.hw.sim.access_reader import AccessFrame, frame_config
from samfpga.hw.sim.dma_access import Access
from samfpga.hw.sim.strip_reader import ReaderConfig

CFG = ReaderConfig(axi_dw=64, stream_w=64, max_burst=8)
PASSES = [{"name": "stalls", "in_pause": 0.3, "aw_pause": 0.3, "w_pause": 0.3, "b_pause": 0.3}, {"name": "free"}]


def test_reference_by_hand():
    """Runs of 2 bytes at +1 + 6 i - 2 j (a negative stride): byte k of the stream lands at the k-th address."""
    f = AccessFrame(Access(1, 2, ((2, 6), (2, -2))), base=4)
    assert f.byte_access().indices().tolist() == [5, 6, 3, 4, 11, 12, 9, 10]
    img = aw.reference(bytes(16), [(f, bytes(range(1, 9)))])
    assert list(img) == [0, 0, 0, 3, 4, 1, 2, 0, 0, 7, 8, 5, 6, 0, 0, 0]
    with pytest.raises(ValueError, match="7 bytes sent for 8 addressed"):
        aw.reference(bytes(16), [(f, bytes(7))])
    bursts = aw.write_bursts(f, CFG)
    assert bursts[0] == (0, 1, 0b0110_0000, 0b0110_0000) and len(bursts) == 4


def _program_writes():
    """Every tensor the tiny program stores, as (frame, the bytes its step sends in stream order) on one DDR image
    (each tensor 37 bytes past a 64-byte boundary), and the bytes the program holds for it there."""
    from tests.test_engine_program import program_run

    streams = {}
    _, prog, mem = program_run(1, trace=lambda s, y: streams.__setitem__(s.output, np.ravel(y)))
    frames, want, base = [], [], 0
    for s in prog.steps:
        base += 37 + (-base) % 64
        y = streams[s.output]
        acc = s.write if s.write is not None else Access(0, y.size, ())
        frames.append((AccessFrame(acc, base, prog.elem_bytes(s.output)), prog.stored(s.output, y)))
        want.append((base, prog.stored(s.output, mem[s.output])))
        base += len(want[-1][1])
    return frames, want, base + 64


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("access_writer")
    aw.build(CFG, work)
    return work


@pytest.mark.timeout(900)
def test_rtl_writes_every_tensor_of_the_program(built):
    """The 41 tensors the tiny program stores (sequential runs of up to 16 KiB, the qkv layers' 4-level scatters of
    16-byte runs to the Q / K / V regions, raw sums of 3 bytes per element), back to back with a refused configuration (a count of 0) among
    them, under stalls and free-running: the DDR image equals the program's stored tensors at their places and the
    background everywhere else; each frame's done comes after its last B response; the bursts equal the model's."""
    frames, want, size = _program_writes()
    assert len(frames) == 41 and max(f.access.levels for f, _ in frames) == 4
    assert {f.elem_bytes for f, _ in frames} == {1, 3}
    background = bytes(np.random.default_rng(2).integers(0, 256, size, dtype=np.uint8))
    expected = bytearray(background)
    for b, data in want:
        expected[b:b + len(data)] = data
    assert aw.reference(background, frames) == bytes(expected)  # the model: the bytes sent land where stored
    bad = {**frame_config(frames[5][0]), "count5": 0}
    run = [*frames[:5], bad, *frames[5:]]
    res = aw.simulate(CFG, run, PASSES, background, built, seed=3, tag="program")
    assert not res.error, res.error
    for p, img in zip(res.passes, res.images, strict=True):
        assert not p["timed_out"] and not p["busy"], p["name"]
        assert p["err_at_done"] == [0] * 5 + [0b10] + [0] * 36, p["name"]
        assert p["b_pending_at_done"] == [0] * 42, p["name"]
        assert img == bytes(expected), p["name"]
        bursts = [b for f, _ in frames for b in aw.write_bursts(f, CFG)]
        assert [tuple(b) for b in p["aw_bursts"]] == [(a, n) for a, n, _, _ in bursts]
        assert [tuple(b) for b in p["w_bursts"]] == [(n, fs, ls) for _, n, fs, ls in bursts]


@pytest.mark.timeout(300)
def test_rtl_corrupted_input_byte_lands_where_predicted(built):
    """Negative control: one byte of the stream flipped: the image differs from the good one at exactly the address
    the access gives that byte (a 3-level nest with a negative stride, over a page boundary)."""
    f = AccessFrame(Access(40, 5, ((3, 50), (4, -9))), base=0xFC0)
    n = f.access.size
    data = bytes(np.random.default_rng(4).integers(0, 256, n, dtype=np.uint8))
    bad = bytearray(data)
    bad[11] ^= 0x3C
    background = bytes(np.random.default_rng(5).integers(0, 256, 0x1200, dtype=np.uint8))
    res = aw.simulate(CFG, [(f, bytes(bad))], [{"name": "free"}], background, built, seed=6, tag="corrupt")
    assert not res.error, res.error
    got = np.frombuffer(res.images[0], np.uint8)
    good = np.frombuffer(aw.reference(background, [(f, data)]), np.uint8)
    assert np.flatnonzero(got != good).tolist() == [int(f.byte_access().indices()[11])]


@pytest.mark.timeout(300)
def test_rtl_writer_driven_only_over_axi_lite(tmp_path):
    """access_writer_axil (the generated AXI4-Lite wrapper, docs/unit_regs.md): two of the program's stores (the
    qkv writer's 3-level nest, a raw frame's sums) configured with the register map's writes, started by ap_start
    and polled for ap_done around a refused configuration (a count of 0: err[1], no input taken, done all the
    same): the DDR image equals the model's, every other byte the background; read-backs equal the writes."""
    from samfpga.backends.unit_regs import ACCESS_WRITER, AP_DONE, AP_IDLE
    from samfpga.hw.sim import strip_writer as sw

    okay = 0  # AXI response OKAY
    frames, _, size = _program_writes()
    nest = next(x for x in frames if x[0].access.levels == 3)
    raw = next(x for x in frames if x[0].elem_bytes == 3)
    bad = {**frame_config(nest[0]), "count3": 0}
    cfgs = [frame_config(nest[0]), bad, frame_config(raw[0])]
    axil = [{"writes": ACCESS_WRITER.writes(c), "strips": s} for c, s in zip(cfgs, ([nest[1]], [], [raw[1]]),
                                                                             strict=True)]
    background = bytes(np.random.default_rng(8).integers(0, 256, size, dtype=np.uint8))
    aw.build_axil(CFG, tmp_path)
    res = sw.simulate_axil(axil, background, tmp_path, seed=9, unit="access_writer")
    assert not res.error, res.error
    p = res.passes[0]
    assert not p["timed_out"] and len(p["frames"]) == 3
    for r, c, err in zip(p["frames"], cfgs, (0, 0b10, 0), strict=True):
        writes = ACCESS_WRITER.writes(c)
        assert r["write_resp"] == [okay] * len(writes) and r["readback"] == [[v, okay] for _, v in writes]
        assert r["ctrl_done"] == AP_DONE | AP_IDLE and r["status"] == err and r["source_empty"]
    ref = aw.reference(background, [nest, raw])
    assert ref != background and res.images == [ref]
