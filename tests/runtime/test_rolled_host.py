"""The host's sequence of a rolled part (samfpga.backends.rolled_host.run_loop) against a fake part
(samfpga.pynq_sim.strip_units: a strip reader and a strip writer with the register protocol of docs/unit_regs.md
around a body that adds one to every byte, on one memory; time advances one tick per register access), and the
chain of parts (``run_parts``: buffer plan, byte formats, handoffs) on fake parts with numpy bodies. The RTL
simulation runs the same sequence (``rolled_loop_bench``); this checks its order, its data hazards and its errors
without a simulator."""

from __future__ import annotations

import json

import numpy as np
import pytest

from samfpga.backends.base import BackendError
from samfpga.backends.rolled_host import (
    BufferSide,
    PartSpec,
    decode,
    encode,
    loop_jobs,
    parts_to_json,
    plan_buffers,
    read_parts,
    run_loop,
    run_parts,
)
from samfpga.backends.unit_regs import UnitError, UnitTimeout
from samfpga.pynq_sim.strip_units import SimPart

pytestmark = pytest.mark.board

GEOM = {"h": 2, "w": 3, "c": 4}
NBYTES = 2 * 3 * 4


def _setup(maps: int, **kw):
    rng = np.random.default_rng(0)
    mem = rng.integers(0, 200, 4096, dtype=np.uint8)
    buffers = [(64 + 256 * k, 64 + 256 * k + 100) for k in range(maps)]
    x = [mem[b[0]:b[0] + NBYTES].copy() for b in buffers]
    part = SimPart(mem, **kw)
    rd, wr = part.drivers()
    return part, mem, buffers, x, rd, wr


@pytest.mark.parametrize("blocks,maps,read_ticks", [(1, 1, 5), (3, 1, 5), (4, 2, 5), (5, 3, 5), (3, 3, 40)])
def test_every_block_of_every_map_in_ddr(blocks, maps, read_ticks):
    """Each map's last two blocks in its two buffers, nothing else written, the reader started on the buffers of
    ``loop_jobs``' order; a slow reader (40 ticks, more than a job's register writes) has a start pending while
    the host would write the next job's registers."""
    part, mem, buffers, x, rd, wr = _setup(maps, read_ticks=read_ticks)
    before = mem.copy()
    seen = []
    done = run_loop(rd, wr, blocks, buffers, GEOM, GEOM, wait=part.tick, on_written=seen.append)
    assert done == seen == loop_jobs(blocks, maps)
    for (a, b), xk in zip(buffers, x):
        last, other = (a, b) if blocks % 2 == 0 else (b, a)
        np.testing.assert_array_equal(mem[last:last + NBYTES], xk + blocks)
        np.testing.assert_array_equal(mem[other:other + NBYTES], xk + blocks - 1)
        before[a:a + NBYTES], before[b:b + NBYTES] = mem[a:a + NBYTES], mem[b:b + NBYTES]
    np.testing.assert_array_equal(mem, before)  # nothing outside the buffers touched
    assert [s for s in part.starts if s[0] == "strip_reader"] == [
        ("strip_reader", buffers[k][i % 2]) for i, k in loop_jobs(blocks, maps)]


def test_reader_streams_the_next_map_while_the_writer_waits():
    """With two maps the reader's job (0, 1) starts before the writer has finished (0, 0): the body is never left
    without input while a map drains."""
    part, mem, buffers, x, rd, wr = _setup(2, read_ticks=2, write_ticks=30)
    run_loop(rd, wr, 2, buffers, GEOM, GEOM, wait=part.tick)
    order = [u for u, _ in part.starts]
    assert order[:3] == ["strip_writer", "strip_reader", "strip_reader"], order


def test_writer_err_names_the_block():
    part, mem, buffers, x, rd, wr = _setup(1, writer_err=0b01)
    with pytest.raises(UnitError, match=r"block 0 of map 0: strip_writer finished with err: .*STATUS\(0x04\)=0x1"):
        run_loop(rd, wr, 2, buffers, GEOM, GEOM, wait=part.tick)


def test_reader_err_raised_after_the_loop():
    part, mem, buffers, x, rd, wr = _setup(1, reader_err=0b10)
    with pytest.raises(UnitError, match=r"strip_reader holds err after the loop: STATUS\(0x04\)=0x2"):
        run_loop(rd, wr, 2, buffers, GEOM, GEOM, wait=part.tick)


def test_stuck_body_times_out_naming_both_units():
    part, mem, buffers, x, rd, wr = _setup(1, body_stuck=True)
    with pytest.raises(UnitTimeout, match=r"block 0 of map 0 not written within 0.05 s \(1 of 2 reads issued\): "
                                          r"writer strip_writer: CTRL\(0x00\)=0x0 .*busy=1\]; reader strip_reader"):
        run_loop(rd, wr, 2, buffers, GEOM, GEOM, timeout_s=0.05)


def test_bad_loop_refused():
    with pytest.raises(ValueError, match="at least one block and one map, got blocks=0"):
        loop_jobs(0, 1)


def test_buffer_formats():
    """Two's complement little-endian, narrower datatypes extended; a reader takes the low bits of its datatype."""
    int9 = BufferSide(1, 1, 4, 9, True, 2)
    assert encode(np.array([-1, -256, 255, 3]), int9) == bytes([0xFF, 0xFF, 0x00, 0xFF, 0xFF, 0x00, 3, 0])
    uint8_in_2 = BufferSide(1, 1, 4, 8, False, 2)
    np.testing.assert_array_equal(decode(bytes([0xFF, 0xFF, 0x00, 0xFF, 0xFF, 0x00, 3, 0]), (4,), uint8_in_2),
                                  [255, 0, 255, 3])
    two = BufferSide(1, 1, 2, 9, True, 2)
    np.testing.assert_array_equal(decode(encode(np.array([-256, 255]), two), (2,), two), [-256, 255])
    with pytest.raises(ValueError, match=r"outside the INT9 of the buffer \(range -257..0"):
        encode(np.array([-257, 0, 0, 0]), int9)
    with pytest.raises(ValueError, match="3 values for a buffer of 1 x 1 x 4"):
        encode(np.zeros(3), int9)


U8 = BufferSide(2, 3, 4, 8, False, 1)
I9 = BufferSide(2, 3, 4, 9, True, 2)
CHAIN = [PartSpec("stem", 1, U8, I9, (1, 2, 3, 4), (1, 2, 3, 4)),
         PartSpec("loop", 3, I9, I9, (1, 2, 3, 4), (1, 2, 3, 4)),
         PartSpec("neck", 1, I9, U8, (1, 2, 3, 4), (1, 2, 3, 4))]


def _i16(data: np.ndarray) -> np.ndarray:
    return data.view("<i2").astype(np.int64)


BODIES = [lambda j, d: (d.astype(np.int64) - 100).astype("<i2").view(np.uint8),  # UINT8 -> INT9 in two bytes
          lambda j, d: (_i16(d) + 1).astype("<i2").view(np.uint8),  # +1 per block
          lambda j, d: (_i16(d) + 97).astype(np.uint8)]  # INT9 -> UINT8: x - 100 + 3 + 97 = x


def test_plan_buffers_chains_the_output_buffers():
    pairs, size = plan_buffers(CHAIN)
    assert pairs == [(0, 4096), (4096, 8192), (8192, 12288)]  # the loop (3 blocks) ends in its second buffer
    assert size == 16384
    even = [CHAIN[0], PartSpec("loop", 2, I9, I9, (1, 2, 3, 4), (1, 2, 3, 4)), CHAIN[2]]
    assert plan_buffers(even)[0][2][0] == 4096  # two blocks: back in the loop's first buffer
    with pytest.raises(ValueError, match="neck writes .* but neck reads"):
        plan_buffers([CHAIN[2], CHAIN[2]])


def _chain(base: int, **kw):
    mem = np.zeros(20000, dtype=np.uint8)
    fakes = [SimPart(mem, body=b, mem_base=base, **(kw if j == 1 else {})) for j, b in enumerate(BODIES)]
    drivers = [f.drivers() for f in fakes]

    def tick() -> None:
        for f in fakes:
            f.tick()
    return mem, fakes, drivers, tick


def test_run_parts_hands_each_output_to_the_next_part():
    mem, fakes, drivers, tick = _chain(0x4000_0000)
    x = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4) * 10
    y = run_parts(CHAIN, drivers, mem, 0x4000_0000, x, wait=tick)
    np.testing.assert_array_equal(y, x)
    assert y.dtype == np.float32 and y.shape == (1, 2, 3, 4)
    assert [f.jobs_read for f in fakes] == [1, 3, 1]
    assert fakes[1].starts[:2] == [("strip_writer", 0x4000_0000 + 8192), ("strip_reader", 0x4000_0000 + 4096)]


def test_run_parts_ending_in_a_loop_of_even_blocks():
    """A last part with N = 2 leaves its output in the first buffer of its pair."""
    mem = np.zeros(20000, dtype=np.uint8)
    fakes = [SimPart(mem, body=b) for b in BODIES[:2]]
    drivers = [f.drivers() for f in fakes]
    parts = [CHAIN[0], PartSpec("loop", 2, I9, I9, (1, 2, 3, 4), (1, 2, 3, 4))]
    x = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    y = run_parts(parts, drivers, mem, 0, x, wait=lambda: [f.tick() for f in fakes])
    np.testing.assert_array_equal(y, x - 100 + 2)


def test_run_parts_names_the_failing_part_and_checks_the_region():
    mem, fakes, drivers, tick = _chain(0, writer_err=1)
    x = np.zeros((1, 2, 3, 4), dtype=np.float32)
    with pytest.raises(UnitError, match="part loop: block 0 of map 0: strip_writer finished with err"):
        run_parts(CHAIN, drivers, mem, 0, x, wait=tick)
    with pytest.raises(BackendError, match="at least 16,384 bytes, got uint8 \\(100,\\)"):
        run_parts(CHAIN, drivers, np.zeros(100, dtype=np.uint8), 0, x, wait=tick)
    with pytest.raises(BackendError, match="3 parts but 2"):
        run_parts(CHAIN, drivers[:2], mem, 0, x, wait=tick)


def test_parts_description_round_trip_and_errors(tmp_path):
    d = parts_to_json(CHAIN)
    assert d["ddr_bytes"] == 16384
    f = tmp_path / "host.json"
    f.write_text(json.dumps(d))
    assert read_parts(f) == CHAIN
    f.write_text('{"format": "x"}')
    with pytest.raises(BackendError, match=f"{f}: not a samfpga-rolled-host version 1"):
        read_parts(f)
    bad = {**d, "parts": [{**d["parts"][0], "src": {"h": 2}}]}
    with pytest.raises(BackendError, match="here: part 0 lacks or mangles 'w'"):
        read_parts(bad, "here")
    with pytest.raises(BackendError, match="part stem: blocks 0"):
        read_parts({**d, "parts": [{**d["parts"][0], "blocks": 0}]})
    with pytest.raises(BackendError, match="loop writes .* but stem reads"):
        read_parts({**d, "parts": [d["parts"][1], d["parts"][0]]})
    with pytest.raises(BackendError, match="missing.json: cannot read"):
        read_parts(tmp_path / "missing.json")
