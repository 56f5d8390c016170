"""The host's sequence of a rolled part (samfpga.backends.rolled_host.run_loop) against a fake part: a strip reader
and a strip writer with the register protocol of docs/unit_regs.md (ap_start pending while busy, registers sampled
at the start, ap_done sticky and clear-on-read) around a body that adds one to every byte, on one memory; time
advances one tick per register access. The RTL simulation runs the same code (``rolled_loop_bench``); this checks
its order, its data hazards and its errors without a simulator."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from samfpga.backends.rolled_host import loop_jobs, run_loop
from samfpga.backends.unit_regs import (
    AP_DONE,
    AP_IDLE,
    AP_START,
    CTRL,
    STATUS,
    STRIP_READER,
    STRIP_WRITER,
    UnitDriver,
    UnitError,
    UnitTimeout,
)

pytestmark = pytest.mark.board

GEOM = {"h": 2, "w": 3, "c": 4}
NBYTES = 2 * 3 * 4


class FakePart:
    """Reader -> body (+1 per byte, in order) -> writer on ``mem``. The reader copies its buffer when its job ends
    (``read_ticks`` after it began), so a writer that overwrote the buffer first shows in the data; the writer ends
    ``write_ticks`` after it began and the body has a block for it. ``writer_err`` / ``reader_err``: the err a job
    ends with; ``body_stuck``: the body never delivers."""

    def __init__(self, mem: np.ndarray, read_ticks: int = 5, write_ticks: int = 7, writer_err: int = 0,
                 reader_err: int = 0, body_stuck: bool = False) -> None:
        self.mem, self.t = mem, 0
        self.fifo: deque = deque()
        self.body_stuck = body_stuck
        self.reader = _Unit(self, STRIP_READER, read_ticks, reader_err)
        self.writer = _Unit(self, STRIP_WRITER, write_ticks, writer_err)
        self.starts: list[tuple[str, int]] = []  # (unit, base) at each job's start

    def tick(self) -> None:
        self.t += 1
        for u in (self.reader, self.writer):
            u.step()


class _Unit:
    def __init__(self, part: FakePart, regmap, ticks: int, err: int) -> None:
        self.part, self.map, self.ticks, self.err_end = part, regmap, ticks, err
        self.regs: dict[int, int] = {}
        self.pending = self.done = False
        self.job: dict | None = None
        self.err = 0

    def _cfg(self) -> dict:
        out = {}
        for r in self.map.cfg_regs:
            key = next(k for k, p, _ in self.map.params if p == r.port)
            out[key] = out.get(key, 0) | (self.regs.get(r.offset, 0) << (32 * r.word))
        return out

    def step(self) -> None:
        if self.job is None and self.pending:
            self.pending = False
            self.job = {**self._cfg(), "t0": self.part.t}
            self.part.starts.append((self.map.unit, self.job["base"]))
        if self.job is None or self.part.t - self.job["t0"] < self.ticks:
            return
        base, n = self.job["base"], self.job["h"] * self.job["w"] * self.job["c"]
        if self.map is STRIP_READER:
            self.part.fifo.append(self.part.mem[base:base + n].copy())
        elif self.part.fifo and not self.part.body_stuck:
            self.part.mem[base:base + n] = self.part.fifo.popleft() + 1
        else:
            return
        self.job, self.done, self.err = None, True, self.err_end

    def read(self, off: int) -> int:
        self.part.tick()
        if off == CTRL:
            v = (AP_START if self.pending else 0) | (AP_DONE if self.done else 0)
            v |= AP_IDLE if self.job is None and not self.pending else 0
            self.done = False
            return v
        if off == STATUS:
            return self.err | (1 << 8 if self.job is not None else 0)
        return self.regs[off]

    def write(self, off: int, val: int) -> None:
        self.part.tick()
        if off == CTRL:
            self.pending = bool(val & AP_START)
        else:
            assert off in {r.offset for r in self.map.cfg_regs}, f"{self.map.unit}: write to {off:#x}"
            self.regs[off] = val


def _setup(maps: int, **kw):
    rng = np.random.default_rng(0)
    mem = rng.integers(0, 200, 4096, dtype=np.uint8)
    buffers = [(64 + 256 * k, 64 + 256 * k + 100) for k in range(maps)]
    x = [mem[b[0]:b[0] + NBYTES].copy() for b in buffers]
    part = FakePart(mem, **kw)
    rd = UnitDriver(part.reader, STRIP_READER, poll_s=0)
    wr = UnitDriver(part.writer, STRIP_WRITER, poll_s=0)
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
