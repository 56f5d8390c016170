"""What the cocotb benches of the project's own RTL share (imported by the bench modules; holds no test): the
clock, cycle time, a DDR model that counts what it returns, random stalls on a channel, the monitor of read
requests, waiting for a pass with a cycle limit, and the result file the runner (``own_rtl.run_bench``) reads."""

from __future__ import annotations

import json
import os
import random

from cocotb.triggers import RisingEdge, SimTimeoutError, with_timeout
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiRamRead

CLK_NS = 10


def now() -> int:
    """Simulation time in clock cycles."""
    return int(get_sim_time(unit="ns")) // CLK_NS


class CountingRam(AxiRamRead):
    """AxiRamRead that counts the bytes it returns and the bursts it serves."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.bytes_read = 0
        self.beats_read = 0

    async def _read(self, address, length):
        self.bytes_read += length
        self.beats_read += 1
        return await super()._read(address, length)


def _pauses(rng: random.Random, p: float):
    while True:
        yield rng.random() < p


def set_pause(chan, rng: random.Random, p: float) -> None:
    """Stall ``chan`` (a cocotbext-axi channel, source or sink) with probability ``p`` per cycle; 0 stops stalling."""
    chan.set_pause_generator(_pauses(rng, p) if p > 0 else None)
    if p == 0:
        chan.pause = False  # removing the generator leaves its last state


async def ar_monitor(dut, bursts: list, prefix: str = "m_axi") -> None:
    """Record (address, beats) of every read request accepted on ``prefix``'s AR channel."""
    valid, ready = getattr(dut, f"{prefix}_arvalid"), getattr(dut, f"{prefix}_arready")
    addr, length = getattr(dut, f"{prefix}_araddr"), getattr(dut, f"{prefix}_arlen")
    while True:
        await RisingEdge(dut.clk)
        if int(valid.value) and int(ready.value):
            bursts.append((int(addr.value), int(length.value) + 1))


async def timed_out_within(task, timeout_cycles: int) -> bool:
    """Wait for ``task`` at most ``timeout_cycles``; cancel it if it runs over. Returns whether it timed out (the
    bench stops its passes then: a stuck unit would only time out again)."""
    try:
        await with_timeout(task, int(timeout_cycles) * CLK_NS, "ns")
        return False
    except SimTimeoutError:
        task.cancel()
        return True


def write_result(spec: dict, passes: list[dict]) -> None:
    """Write the passes to ``spec["result"]`` atomically (the runner reads them even when the bench then fails) and
    fail the cocotb test if a pass timed out."""
    tmp = spec["result"] + ".tmp"
    with open(tmp, "w") as fh:
        json.dump({"passes": passes}, fh)
    os.replace(tmp, spec["result"])
    assert not any(r["timed_out"] for r in passes), f"timed out in pass {passes[-1].get('name', len(passes) - 1)}"

