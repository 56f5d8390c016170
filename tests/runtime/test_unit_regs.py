"""The unit register driver (samfpga.backends.unit_regs.UnitDriver) against a fake MMIO that models the register
block's protocol (docs/unit_regs.md: ap_start pending until the unit is free, ap_done sticky and clear-on-read):
write order, start, polling, the named timeout and err errors. No pynq, no simulator."""

from __future__ import annotations

import pytest

from samfpga.backends.unit_regs import (
    AP_DONE,
    AP_IDLE,
    AP_START,
    CTRL,
    STATUS,
    STRIP_READER,
    UnitDriver,
    UnitError,
    UnitTimeout,
)

pytestmark = pytest.mark.board

CFG = {"base": 0x8_0000_1000, "h": 64, "w": 64, "c": 32, "tiles": 4, "halo": 1}


class FakeMMIO:
    """A unit that is busy for ``frame_reads`` CTRL reads after a start (None: never finishes), then ends with
    ``err``; ``busy_err``: its err while busy. Logs every access."""

    def __init__(self, frame_reads: int | None = 3, err: int = 0, busy_err: int = 0) -> None:
        self.log: list[tuple] = []
        self.regs: dict[int, int] = {}
        self.frame_reads, self.err, self.busy_err = frame_reads, err, busy_err
        self.left: float | None = None
        self.done = False

    def write(self, offset: int, value: int) -> None:
        self.log.append(("w", offset, value))
        if offset == CTRL:
            if value & AP_START:
                self.left = self.frame_reads if self.frame_reads is not None else float("inf")
        else:
            self.regs[offset] = value

    def read(self, offset: int) -> int:
        if offset == CTRL:
            if self.left is not None:
                if self.left == 0:
                    self.done, self.left = True, None
                else:
                    self.left -= 1
            v = (AP_DONE if self.done else 0) | (AP_IDLE if self.left is None else 0)
            self.done = False  # clear-on-read
        else:
            v = (self.err if self.left is None else self.busy_err | 1 << 8)
        self.log.append(("r", offset, v))
        return v


def test_configure_start_wait_in_order():
    mmio = FakeMMIO(frame_reads=3)
    drv = UnitDriver(mmio, "strip_reader", poll_s=0)
    drv.run(CFG)
    writes = [(o, v) for op, o, v in mmio.log if op == "w"]
    assert writes == [*STRIP_READER.writes(CFG), (CTRL, AP_START)]
    assert writes[:2] == [(0x10, 0x1000), (0x14, 0x8)]  # 64-bit base as LO, HI
    reads = [(o, v) for op, o, v in mmio.log if op == "r"]
    assert reads == [(CTRL, 0)] * 3 + [(CTRL, AP_DONE | AP_IDLE), (STATUS, 0)]  # polled until done, then err
    # a second frame: done was cleared by the read that saw it
    mmio.log.clear()
    drv.run({**CFG, "tiles": 2})
    assert ("w", 0x24, 2) in mmio.log and mmio.log[-1] == ("r", STATUS, 0)


def test_timeout_names_the_registers():
    mmio = FakeMMIO(frame_reads=None)
    drv = UnitDriver(mmio, STRIP_READER, poll_s=0.001)
    drv.configure(CFG)
    drv.start()
    with pytest.raises(UnitTimeout, match=r"no ap_done within 0.02 s: strip_reader: CTRL\(0x00\)=0x0 .*"
                                          r"STATUS\(0x04\)=0x100 \[err=0x0 busy=1\]"):
        drv.wait(timeout_s=0.02)


def test_err_raises_with_status():
    drv = UnitDriver(FakeMMIO(frame_reads=1, err=0b10), "strip_reader", poll_s=0)
    with pytest.raises(UnitError, match=r"STATUS\(0x04\)=0x2 .*bad configuration"):
        drv.run(CFG)


def test_err_while_running_raises_without_waiting_for_the_timeout():
    """A unit that set err and stays busy (a part refused its configuration, another waits for its data) is
    reported from STATUS while polling, every status_every polls, not after the timeout; a busy unit without err is
    polled on."""
    mmio = FakeMMIO(frame_reads=None, busy_err=0b10)
    drv = UnitDriver(mmio, "strip_reader", poll_s=0, status_every=8)
    drv.start()
    with pytest.raises(UnitError, match=r"err while running .*STATUS\(0x04\)=0x102 \[err=0x2 busy=1\]"):
        drv.wait(timeout_s=60)
    assert sum(1 for op, o, _ in mmio.log if op == "r" and o == CTRL) == 8
    drv = UnitDriver(FakeMMIO(frame_reads=20), "strip_reader", poll_s=0, status_every=8)
    drv.start()
    assert drv.wait() == 21


def test_bad_config_is_refused_before_any_write():
    mmio = FakeMMIO()
    with pytest.raises(ValueError, match="tiles = 65536 does not fit 16 bits"):
        UnitDriver(mmio, "strip_reader").configure({**CFG, "tiles": 1 << 16})
    assert mmio.log == []
