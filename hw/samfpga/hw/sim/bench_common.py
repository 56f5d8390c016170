"""What the cocotb benches of the project's own RTL share (imported by the bench modules; holds no test): the
clock, cycle time, a DDR model that counts what it returns, random stalls on a channel, the monitor of read
requests, waiting for a pass with a cycle limit, and the result file the runner (``own_rtl.run_bench``) reads."""

from __future__ import annotations

import json
import os
import random

from cocotb.triggers import RisingEdge, SimTimeoutError, with_timeout
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiRamRead, AxiRamWrite, AxiReadBus, AxiWriteBus

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


class CountingWriteRam(AxiRamWrite):
    """AxiRamWrite that counts the bytes written (strobed bytes only reach ``_write``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.bytes_written = 0

    async def _write(self, address, data):
        self.bytes_written += len(data)
        await super()._write(address, data)


async def pulse(dut, *names: str) -> None:
    """Hold the 1-bit inputs ``names`` high for one clock cycle."""
    for n in names:
        getattr(dut, n).value = 1
    await RisingEdge(dut.clk)
    for n in names:
        getattr(dut, n).value = 0


def _pauses(rng: random.Random, p: float):
    while True:
        yield rng.random() < p


def set_pause(chan, rng: random.Random, p: float) -> None:
    """Stall ``chan`` (a cocotbext-axi channel, source or sink) with probability ``p`` per cycle; 0 stops stalling."""
    chan.set_pause_generator(_pauses(rng, p) if p > 0 else None)
    if p == 0:
        chan.pause = False  # removing the generator leaves its last state


class SharedDdr:
    """One DDR (cocotbext-axi's memory of ``size`` bytes) behind a counting AXI RAM on each read prefix (AR, R) and
    each write prefix (AW, W, B) of ``dut``; their per-burst logs quiet. ``start_pass`` restores the memory to
    ``image``, zeroes the byte counts and stalls every channel with the pass's probabilities (``ar_pause``,
    ``r_pause``, ``aw_pause``, ``w_pause``, ``b_pause``)."""

    def __init__(self, dut, size: int, reads: list[str], writes: list[str]) -> None:
        first = CountingRam(AxiReadBus.from_prefix(dut, reads[0]), dut.clk, dut.rst, size=size)
        self.reads = {reads[0]: first, **{p: CountingRam(AxiReadBus.from_prefix(dut, p), dut.clk, dut.rst,
                                                          mem=first.mem) for p in reads[1:]}}
        self.writes = {p: CountingWriteRam(AxiWriteBus.from_prefix(dut, p), dut.clk, dut.rst, mem=first.mem)
                       for p in writes}
        for ram in (*self.reads.values(), *self.writes.values()):
            ram.log.setLevel("WARNING")
        self.size = size

    def start_pass(self, image: bytes, p: dict, rng: random.Random) -> None:
        for ram in self.reads.values():
            set_pause(ram.ar_channel, rng, float(p.get("ar_pause", 0)))
            set_pause(ram.r_channel, rng, float(p.get("r_pause", 0)))
            ram.bytes_read = 0
        for ram in self.writes.values():
            for ch in ("aw", "w", "b"):
                set_pause(getattr(ram, f"{ch}_channel"), rng, float(p.get(f"{ch}_pause", 0)))
            ram.bytes_written = 0
        next(iter(self.reads.values())).write(0, image)

    def image(self) -> bytes:
        return next(iter(self.reads.values())).read(0, self.size)


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



# -- AXI4-Lite register access (the units' *_axil wrappers; register map in samfpga.backends.unit_regs) ------------
def axil_master(dut, rng: random.Random, pause: float, prefix: str = "s_axil"):
    """cocotbext-axi's AxiLiteMaster on ``prefix``, its per-transaction log quiet, its AW, W and AR channels stalled
    with probability ``pause`` per cycle."""
    from cocotbext.axi import AxiLiteBus, AxiLiteMaster

    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, prefix), dut.clk, dut.rst)
    for log in (master.write_if.log, master.read_if.log):
        log.setLevel("WARNING")
    for ch in (master.write_if.aw_channel, master.write_if.w_channel, master.read_if.ar_channel):
        set_pause(ch, rng, pause)
    return master


async def program_registers(dut, prefix: str, writes, reset, reset_active_level: bool = True) -> None:
    """Writes each (offset, 32-bit word) of ``writes`` in order through an AxiLiteMaster on ``prefix`` (a
    token-batched unit's ``<node>_s_axi_control``, a runtime-writeable layer's ``<node>_s_axilite``), as the
    board's driver programs it; every write must be answered OKAY (an assertion names the port, word and offset
    otherwise). ``reset``: the design's reset signal."""
    from cocotbext.axi import AxiLiteBus, AxiLiteMaster

    regs = AxiLiteMaster(AxiLiteBus.from_prefix(dut, prefix), dut.clk, reset, reset_active_level=reset_active_level)
    for log in (regs.write_if.log, regs.read_if.log):
        log.setLevel("WARNING")
    for addr, word in writes:
        resp = await regs.write(int(addr), int(word).to_bytes(4, "little"))
        assert int(resp.resp) == 0, f"{prefix}: write of {int(word):#x} at {int(addr):#x} answered {resp.resp}"


async def axil_read(m, off: int) -> tuple[int, int]:
    """(value, RRESP) of one 32-bit register read."""
    r = await m.read(off, 4)
    return int.from_bytes(r.data, "little"), int(r.resp)


async def axil_write(m, off: int, val: int) -> int:
    """BRESP of one 32-bit register write."""
    return int((await m.write(off, val.to_bytes(4, "little"))).resp)


async def axil_handshakes(dut, aw: list[int], w: list[int], prefix: str = "s_axil") -> None:
    """Cycle numbers of the AW and W handshakes on ``prefix`` (the k-th of each belong to write k)."""
    awv, awr = getattr(dut, f"{prefix}_awvalid"), getattr(dut, f"{prefix}_awready")
    wv, wr = getattr(dut, f"{prefix}_wvalid"), getattr(dut, f"{prefix}_wready")
    n = 0
    while True:
        await RisingEdge(dut.clk)
        n += 1
        if int(awv.value) and int(awr.value):
            aw.append(n)
        if int(wv.value) and int(wr.value):
            w.append(n)


async def stream_passes(dut, channels: tuple, passes: list[dict], rng: random.Random, run, expected: list[int],
                        timeout_cycles: int, mask: int | None = None) -> list[dict]:
    """One result per pass of ``passes`` ({"name", "pause"}): every channel of ``channels`` (sources and sinks)
    stalled with the pass's probability, ``run(words)`` (a coroutine that streams the inputs and appends the output
    words to ``words``) given ``timeout_cycles``, the words compared with ``expected`` (under ``mask`` when given).
    Stops after a pass that timed out (a stuck design would only time out again)."""
    import cocotb
    from cocotb.triggers import ClockCycles

    results = []
    for p in passes:
        for chan in channels:
            set_pause(chan, rng, float(p["pause"]))
        words: list[int] = []
        start = now()
        task = cocotb.start_soon(run(words))
        timed_out = await timed_out_within(task, timeout_cycles)
        got = words if mask is None else [w & mask for w in words]
        mism = [i for i, (g, e) in enumerate(zip(got, expected)) if g != e]
        results.append({"name": p["name"], "words_compared": min(len(got), len(expected)),
                        "mismatches": len(mism) + abs(len(got) - len(expected)),
                        "first_mismatches": [{"index": i, "got": hex(got[i]), "expected": hex(expected[i])}
                                             for i in mism[:5]],
                        "cycles": now() - start, "timed_out": timed_out})
        if timed_out:
            break
        await ClockCycles(dut.clk, 4)
    return results
