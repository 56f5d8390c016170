"""A part of a rolled accelerator as a register-level model, for the host's code (``samfpga.backends.rolled_host``)
without a simulator or a board: a strip reader and a strip writer around a body given as a function, on one memory.
The simulated PYNQ device of a rolled build (``rolled_device.RolledSimDevice``) holds one per part; the board-
environment tests drive it directly. numpy only."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from samfpga.backends.unit_regs import (
    AP_DONE,
    AP_IDLE,
    AP_START,
    CTRL,
    STATUS,
    STRIP_READER,
    STRIP_WRITER,
    UnitDriver,
)


def add_one(_job: int, data: np.ndarray) -> np.ndarray:
    return data + 1


class SimPart:
    """Strip reader -> ``body`` -> strip writer on ``mem`` (uint8), with the register protocol of docs/unit_regs.md
    (ap_start pending while busy, registers sampled at the start, ap_done sticky and clear-on-read); time advances
    one tick per register access (or ``tick()``). The reader copies its buffer when its job ends (``read_ticks``
    after it began), so a writer that overwrote the buffer first shows in the data; ``body(j, data)`` turns the
    bytes of the reader's j-th job into the bytes of the writer's; the writer ends ``write_ticks`` after it began
    and the body has a block for it. ``writer_err`` / ``reader_err``: the err a job ends with; ``body_stuck``: the
    body never delivers; ``mem_base``: the address of ``mem[0]``; ``view(address, nbytes)``: the memory instead
    of ``mem`` (a writable uint8 view; raises ``MemoryError`` outside it); ``on_start(unit, cfg)``: called as a
    unit takes a job (its registers)."""

    def __init__(self, mem: np.ndarray | None, read_ticks: int = 5, write_ticks: int = 7, writer_err: int = 0,
                 reader_err: int = 0, body_stuck: bool = False,
                 body: Callable[[int, np.ndarray], np.ndarray] = add_one, mem_base: int = 0,
                 view: Callable[[int, int], np.ndarray] | None = None,
                 on_start: Callable[[str, dict], None] | None = None) -> None:
        self.mem, self.mem_base, self.t = mem, mem_base, 0
        self.view = view or (lambda addr, n: self.mem[addr - self.mem_base:addr - self.mem_base + n])
        self.on_start = on_start
        self.fifo: deque = deque()
        self.body_stuck, self.body, self.jobs_read = body_stuck, body, 0
        self.reader = _Unit(self, STRIP_READER, read_ticks, reader_err)
        self.writer = _Unit(self, STRIP_WRITER, write_ticks, writer_err)
        self.starts: list[tuple[str, int]] = []  # (unit, base) at each job's start

    def drivers(self) -> tuple[UnitDriver, UnitDriver]:
        """The host's (reader, writer) drivers of this part, polling without sleeping."""
        return UnitDriver(self.reader, STRIP_READER, poll_s=0), UnitDriver(self.writer, STRIP_WRITER, poll_s=0)

    def tick(self) -> None:
        self.t += 1
        for u in (self.reader, self.writer):
            u.step()


class _Unit:
    def __init__(self, part: SimPart, regmap, ticks: int, err: int) -> None:
        self.part, self.map, self.ticks, self.err_end = part, regmap, ticks, err
        self.regs: dict[int, int] = {}
        self.pending = self.done = False
        self.job: dict | None = None
        self.err = 0

    def step(self) -> None:
        if self.job is None and self.pending:
            self.pending = False
            cfg = self.map.config(lambda off: self.regs.get(off, 0))
            if self.part.on_start is not None:
                self.part.on_start(self.map.unit, cfg)
            self.job = {**cfg, "t0": self.part.t}
            self.part.starts.append((self.map.unit, self.job["base"]))
        if self.job is None or self.part.t - self.job["t0"] < self.ticks:
            return
        base, n = self.job["base"], self.job["h"] * self.job["w"] * self.job["c"]
        if self.map is STRIP_READER:
            part = self.part
            part.fifo.append(np.asarray(part.body(part.jobs_read, part.view(base, n).copy()), dtype=np.uint8))
            part.jobs_read += 1
        elif self.part.fifo and not self.part.body_stuck:
            out = self.part.fifo.popleft()
            if out.size != n:
                raise ValueError(f"the body gave {out.size} bytes, the strip writer's job is {n}")
            self.part.view(base, n)[:] = out
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
            if off not in {r.offset for r in self.map.cfg_regs}:  # SLVERR on the board
                raise MemoryError(f"{self.map.unit}: write to unmapped register offset {off:#x}")
            self.regs[off] = val
