"""The engine's host sequencer (samfpga.backends.step_sequencer.StepSequencer) against the fake MMIO of the
register driver's tests: only changed registers written after the first step, every register otherwise, the step
named in errors, a bad value refused before any write. No pynq, no simulator (its run on the RTL path through
AXI-Lite: tests/test_sim_engine_gemm_path.py)."""

from __future__ import annotations

import pytest

from samfpga.backends.step_sequencer import StepSequencer
from samfpga.backends.unit_regs import AP_IDLE, AP_START, CTRL, STRIP_READER, UnitError, UnitTimeout
from tests.runtime.test_unit_regs import FakeMMIO

pytestmark = pytest.mark.board

A = {"base": 0x1000, "h": 64, "w": 64, "c": 32, "tiles": 4, "halo": 1}
B = {**A, "base": 0x2000, "tiles": 2}


def test_only_changed_registers_after_the_first_step():
    mmio = FakeMMIO(frame_reads=2)
    recs = StepSequencer(mmio, STRIP_READER).run([A, B, B], names=["a", "b", "b again"])
    writes = [e for e in mmio.log if e[0] == "w"]
    n = len(STRIP_READER.cfg_regs)
    assert [r.writes for r in recs] == [n + 1, 2 + 1, 0 + 1] and [r.polls for r in recs] == [3, 3, 3]
    assert writes[n] == ("w", CTRL, AP_START) and writes[n + 1:n + 4] == [("w", 0x10, 0x2000), ("w", 0x24, 2),
                                                                          ("w", CTRL, AP_START)]
    assert STRIP_READER.config(lambda off: mmio.regs.get(off, 0)) == B  # the block holds step b's configuration
    every = FakeMMIO(frame_reads=0)
    assert [r.writes for r in StepSequencer(every, STRIP_READER, only_changed=False).run([A, B, B])] == [n + 1] * 3


def test_errors_name_the_step_and_nothing_is_written_for_a_bad_value():
    with pytest.raises(UnitError, match=r"step 0 \(a\): strip_reader finished with err: .*STATUS\(0x04\)=0x2"):
        StepSequencer(FakeMMIO(frame_reads=1, err=2), STRIP_READER).run([A, B], names=["a", "b"])
    mmio = FakeMMIO(frame_reads=None)
    with pytest.raises(UnitTimeout, match=r"step 0 \(a\): no ap_done within 0.01 s: .*busy=1"):
        StepSequencer(mmio, STRIP_READER).run([A], names=["a"], timeout_s=0.01)
    mmio = FakeMMIO()
    with pytest.raises(ValueError, match="h = 65536 does not fit 16 bits"):
        StepSequencer(mmio, STRIP_READER).run([{**A, "h": 1 << 16}])
    assert mmio.log == []


class LatchedMMIO:
    """A block with CFG_LATCH = 1 (axil_regs.sv): ap_start is pending until the running frame ends, then the
    registers are latched and the frame runs for ``frame_reads`` CTRL reads; ``err``: STATUS's err once idle.
    ``started``: each frame's latched registers; ``log``: every access, with whether a frame was running."""

    def __init__(self, frame_reads: int = 3, err: int = 0) -> None:
        self.regs: dict[int, int] = {}
        self.pending, self.left, self.frame_reads, self.err = False, 0, frame_reads, err
        self.started: list[dict[int, int]] = []
        self.log: list[tuple] = []

    def _tick(self) -> None:
        if self.left:
            self.left -= 1
        if self.pending and not self.left:  # the pending start fires as the frame before ends
            self.pending, self.left = False, self.frame_reads
            self.started.append(dict(self.regs))

    def write(self, offset: int, value: int) -> None:
        self.log.append(("w", offset, value, self.left > 0))
        if offset == CTRL:
            self.pending = bool(value & AP_START)
            self._tick()
        else:
            self.regs[offset] = value

    def read(self, offset: int) -> int:
        self._tick()
        if offset == CTRL:
            v = int(self.pending) | (AP_IDLE if not (self.pending or self.left) else 0)
        else:
            v = 0 if self.left else self.err
        self.log.append(("r", offset, v, self.left > 0))
        return v


def test_overlap_writes_the_next_step_while_one_runs():
    """With ``overlap`` on a block that latches its configuration, each step's registers and ap_start are written
    while the step before runs, and every step starts with its own registers; the frame ends at ap_idle. Refused
    for a block without the latch; an err at the end names the last step."""
    from dataclasses import replace

    latched = replace(STRIP_READER, latched=True)
    C = {**B, "base": 0x3000, "h": 32}
    mmio = LatchedMMIO(frame_reads=40)
    recs = StepSequencer(mmio, latched, overlap=True).run([A, B, C], names=["a", "b", "c"])
    assert [latched.config(lambda off, r=r: r.get(off, 0)) for r in mmio.started] == [A, B, C]
    n = len(latched.cfg_regs)
    assert [r.writes for r in recs] == [n + 1, 2 + 1, 2 + 1]
    writes = [e for e in mmio.log if e[0] == "w"]
    assert not any(w[3] for w in writes[:n + 1])  # step a's on an idle block
    assert all(w[3] for w in writes[n + 1:])  # b's and c's (and their ap_start) while the step before runs
    assert mmio.log[-1][:3] == ("r", 0x04, 0) and not mmio.left
    with pytest.raises(ValueError, match="does not latch its configuration"):
        StepSequencer(LatchedMMIO(), STRIP_READER, overlap=True)
    with pytest.raises(UnitError, match=r"step 1 \(b\) or one before it ended with err: STATUS\(0x04\)=0x2"):
        StepSequencer(LatchedMMIO(err=2), latched, overlap=True).run([A, B], names=["a", "b"])
