"""The engine's host sequencer: runs a program's steps on a unit behind its AXI-Lite register block
(``samfpga.backends.unit_regs``; the engine's GEMM path: ``ENGINE_GEMM_PATH``), one after another, from the board's
ARM over ``pynq.MMIO`` or, in simulation, over AXI-Lite transactions of a cocotb bench.

Per step: the configuration registers whose values differ from what this sequencer last wrote (all of them for its
first step: it knows nothing of the block's state before), ap_start, then CTRL polled until ap_done (STATUS read
then, and every ``UnitDriver.status_every`` polls while it runs; a nonzero err raises ``UnitError`` naming the
step). The registers are plain read-write words with no side
effects, so skipping an unchanged one leaves the block exactly as a full write would. Each step's record says how
many MMIO writes and polls it took and its wall time.

``overlap`` (a block built with CFG_LATCH = 1, ``UnitMap.latched``: it latches the configuration when a start
fires): ``run`` writes each step's registers and its ap_start while the step before it runs, then polls CTRL until
the start is taken (bit 0 reads 0: the step has latched its registers and begun), and after the last step until
ap_idle; STATUS is checked at the end and every ``status_every`` polls. The block starts each step the cycle its
predecessor ends, so the host's writes cost the engine nothing unless a step is shorter than them: the step launch
cost the engine's plan assumes (``EngineConfig.launch_cycles``) is this time on a board, hidden behind the step
before.

Importable without numpy / torch / pynq (the board runtime).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .unit_regs import AP_IDLE, AP_START, STATUS, UnitDriver, UnitError, UnitMap, UnitTimeout


@dataclass
class StepRecord:
    """One step as run: MMIO writes (configuration and ap_start), CTRL polls, wall seconds."""

    step: int
    name: str
    writes: int
    polls: int
    seconds: float


class StepSequencer:
    """Runs steps (``{register key: value}``, the unit's ``UnitMap`` keys) on ``mmio`` (``read(offset) -> int``,
    ``write(offset, value)``). ``only_changed``: write only the registers whose value changed since the last step
    (False: every register, as ``UnitDriver.run``). ``overlap``: ``run`` writes each step while the one before
    runs (module doc; ValueError for a block that does not latch its configuration)."""

    def __init__(self, mmio, unit: str | UnitMap, poll_s: float = 0.0, only_changed: bool = True,
                 overlap: bool = False) -> None:
        self.driver = UnitDriver(mmio, unit, poll_s=poll_s)
        if overlap and not self.driver.map.latched:
            raise ValueError(f"{self.driver.map.unit}: its register block does not latch its configuration "
                             "(CFG_LATCH = 0), so a step's registers cannot be written while another runs")
        self.mmio = mmio
        self.only_changed = only_changed
        self.overlap = overlap
        self._shadow: dict[int, int] = {}

    def _write(self, cfg: Mapping[str, int]) -> int:
        """The step's registers that differ from those last written (all when not ``only_changed``); how many."""
        writes = 0
        for off, val in self.driver.map.writes(cfg):  # ValueError for a bad value, before any write
            if self.only_changed and self._shadow.get(off) == val:
                continue
            self.mmio.write(off, val)
            self._shadow[off] = val
            writes += 1
        return writes

    def run_step(self, cfg: Mapping[str, int], name: str = "", index: int = 0, timeout_s: float = 1.0
                 ) -> StepRecord:
        """One step alone: its registers, ap_start, CTRL polled until ap_done."""
        t0 = time.monotonic()
        writes = self._write(cfg)
        self.driver.start()
        try:
            polls = self.driver.wait(timeout_s)
        except (UnitError, UnitTimeout) as exc:
            raise type(exc)(f"step {index} ({name or 'unnamed'}): {exc}") from exc
        return StepRecord(index, name, writes + 1, polls, time.monotonic() - t0)

    def run(self, steps: Sequence[Mapping[str, int]], names: Sequence[str] = (), timeout_s: float = 1.0
            ) -> list[StepRecord]:
        """Every step in order; the records of those run. ``names``: each step's name for messages. With
        ``overlap``, each step's registers and ap_start are written while the one before runs."""
        if not self.overlap:
            return [self.run_step(cfg, _name(names, i), i, timeout_s) for i, cfg in enumerate(steps)]
        recs = []
        for i, cfg in enumerate(steps):
            t0 = time.monotonic()
            writes = self._write(cfg)  # the block holds the running step's registers latched
            self.driver.start()  # pending until the step before ends
            polls = self._poll_until(lambda ctrl: not ctrl & AP_START, i - 1, names, timeout_s)
            recs.append(StepRecord(i, _name(names, i), writes + 1, polls, time.monotonic() - t0))
        if recs:
            last = len(recs) - 1
            recs[-1].polls += self._poll_until(lambda ctrl: ctrl & AP_IDLE, last, names, timeout_s)
            st = self.mmio.read(STATUS)
            if self.driver.map.err(st):
                raise UnitError(f"step {last} ({_name(names, last) or 'unnamed'}) or one before it "
                                f"ended with err: STATUS(0x04)={st:#x} ({self.driver.map.err_doc})")
        return recs

    def _poll_until(self, ok, running: int, names: Sequence[str], timeout_s: float) -> int:
        """CTRL polled until ``ok(ctrl)`` (``UnitDriver.poll_until``); ``running``: the step that runs meanwhile,
        named in errors. The number of polls."""
        step = "the first step's start" if running < 0 else f"step {running} ({_name(names, running) or 'unnamed'})"
        try:
            return self.driver.poll_until(ok, timeout_s, "not done")
        except (UnitError, UnitTimeout) as exc:
            raise type(exc)(f"{step}: {exc}") from exc


def _name(names: Sequence[str], i: int) -> str:
    """Step ``i``'s name ("" past the names given)."""
    return names[i] if i < len(names) else ""
