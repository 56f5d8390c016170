"""The engine's host sequencer (samfpga.backends.step_sequencer.StepSequencer) against the fake MMIO of the
register driver's tests: only changed registers written after the first step, every register otherwise, the step
named in errors, a bad value refused before any write. No pynq, no simulator (its run on the RTL path through
AXI-Lite: tests/test_sim_engine_gemm_path.py)."""

from __future__ import annotations

import pytest

from samfpga.backends.step_sequencer import StepSequencer
from samfpga.backends.unit_regs import AP_START, CTRL, STRIP_READER, UnitError, UnitTimeout
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
