"""The engine's host sequencer: runs a program's steps on a unit behind its AXI-Lite register block
(``samfpga.backends.unit_regs``; the engine's GEMM path: ``ENGINE_GEMM_PATH``), one after another, from the board's
ARM over ``pynq.MMIO`` or, in simulation, over AXI-Lite transactions of a cocotb bench.

Per step: the configuration registers whose values differ from what this sequencer last wrote (all of them for its
first step: it knows nothing of the block's state before), ap_start, then CTRL polled until ap_done (STATUS read
then, and every ``UnitDriver.status_every`` polls while it runs; a nonzero err raises ``UnitError`` naming the
step). The registers are plain read-write words with no side
effects, so skipping an unchanged one leaves the block exactly as a full write would. Each step's record says how
many MMIO writes and polls it took and its wall time: the step launch cost the engine's plan assumes
(``EngineConfig.launch_cycles``) is this on a board.

Importable without numpy / torch / pynq (the board runtime).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .unit_regs import UnitDriver, UnitError, UnitMap, UnitTimeout


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
    (False: every register, as ``UnitDriver.run``)."""

    def __init__(self, mmio, unit: str | UnitMap, poll_s: float = 0.0, only_changed: bool = True) -> None:
        self.driver = UnitDriver(mmio, unit, poll_s=poll_s)
        self.mmio = mmio
        self.only_changed = only_changed
        self._shadow: dict[int, int] = {}

    def run_step(self, cfg: Mapping[str, int], name: str = "", index: int = 0, timeout_s: float = 1.0
                 ) -> StepRecord:
        t0 = time.monotonic()
        writes = 0
        for off, val in self.driver.map.writes(cfg):  # ValueError for a bad value, before any write
            if self.only_changed and self._shadow.get(off) == val:
                continue
            self.mmio.write(off, val)
            self._shadow[off] = val
            writes += 1
        self.driver.start()
        try:
            polls = self.driver.wait(timeout_s)
        except (UnitError, UnitTimeout) as exc:
            raise type(exc)(f"step {index} ({name or 'unnamed'}): {exc}") from exc
        return StepRecord(index, name, writes + 1, polls, time.monotonic() - t0)

    def run(self, steps: Sequence[Mapping[str, int]], names: Sequence[str] = (), timeout_s: float = 1.0
            ) -> list[StepRecord]:
        """Every step in order; the records of those run. ``names``: each step's name for messages."""
        return [self.run_step(cfg, names[i] if i < len(names) else "", i, timeout_s) for i, cfg in enumerate(steps)]
