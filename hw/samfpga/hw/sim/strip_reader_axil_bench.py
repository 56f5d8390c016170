"""cocotb test run inside the simulator for ``strip_reader_axil`` (the strip reader behind its AXI4-Lite register
block): the reader is configured, started and polled ONLY through AXI-Lite (cocotbext-axi AxiLiteMaster, random
pauses on its AW, W, AR channels so that AW and W arrive in either order); DDR = the strip reader bench's
AxiRamRead; the strips received are written out as hex for the caller to compare.

Spec (JSON through ``SAMFPGA_AXIL_SPEC``): ddr, frames [{"writes": [[offset, value], ...] (the driver's
``UnitMap.writes``), "strips"}], probes [[op, offset, value]] (op "r" / "w", run after the frames),
driver_frames [{"cfg", "strips"}] (run last by the board driver itself, ``UnitDriver.run``, in a cocotb bridge
thread whose MMIO reads / writes are AXI-Lite transactions), axil_pause, seed, timeout_cycles, result. Per frame, as ``UnitDriver.run``: the writes, a read-back of each written register,
CTRL before the start, a write of ap_start to CTRL, CTRL polled until ap_done, then CTRL and STATUS once more.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiReadBus, AxiStreamBus, AxiStreamSink

from samfpga.backends.base import BackendError
from samfpga.backends.unit_regs import UnitDriver
from samfpga.hw.sim.bench_common import CLK_NS, CountingRam, set_pause, timed_out_within, write_result

CTRL, STATUS, AP_START, AP_DONE = 0x00, 0x04, 0x1, 0x2


async def _rd(m: AxiLiteMaster, off: int) -> tuple[int, int]:
    r = await m.read(off, 4)
    return int.from_bytes(r.data, "little"), int(r.resp)


async def _wr(m: AxiLiteMaster, off: int, val: int) -> int:
    return int((await m.write(off, val.to_bytes(4, "little"))).resp)


async def _recv(sink: AxiStreamSink, n: int, out: list[str]) -> None:
    for _ in range(n):
        out.append(bytes((await sink.recv()).tdata).hex())


async def _frames(m: AxiLiteMaster, sink: AxiStreamSink, spec: dict, results: list[dict]) -> None:
    for f in spec["frames"]:
        r: dict = {"write_resp": [], "readback": [], "polls": 0}
        for off, val in f["writes"]:
            r["write_resp"].append(await _wr(m, off, val))
        for off, _ in f["writes"]:
            r["readback"].append(list(await _rd(m, off)))
        r["ctrl_before"] = (await _rd(m, CTRL))[0]
        strips: list[str] = []
        rx = cocotb.start_soon(_recv(sink, f["strips"], strips))
        r["start_resp"] = await _wr(m, CTRL, AP_START)
        while True:
            ctrl, _ = await _rd(m, CTRL)
            r["polls"] += 1
            if ctrl & AP_DONE:
                break
        r["ctrl_done"] = ctrl
        r["ctrl_after"] = (await _rd(m, CTRL))[0]
        r["status"] = (await _rd(m, STATUS))[0]
        await rx
        r["strips"] = strips
        r["extra_beats"] = sink.count()
        results.append(r)
    probes = []
    for op, off, val in spec["probes"]:
        probes.append([op, off, *(await _rd(m, off))] if op == "r" else [op, off, val, await _wr(m, off, val)])
    results.append({"probes": probes})
    mmio = BridgeMMIO(m)
    drv = UnitDriver(mmio, "strip_reader", poll_s=0)
    for f in spec.get("driver_frames", []):
        strips = []
        rx = cocotb.start_soon(_recv(sink, f["strips"], strips))
        try:
            await bridge(drv.run)(f["cfg"], 60.0)
            outcome = "ok"
        except BackendError as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        await rx
        results.append({"driver": outcome, "strips": strips, "log": mmio.log})
        mmio.log = []


class BridgeMMIO:
    """pynq.MMIO's read / write as blocking AXI-Lite transactions (for code run by ``cocotb.task.bridge``); logs
    each access."""

    def __init__(self, m: AxiLiteMaster) -> None:
        self.m = m
        self.log: list[list] = []

    def read(self, offset: int) -> int:
        v = resume(_rd)(self.m, offset)[0]
        self.log.append(["r", offset, v])
        return v

    def write(self, offset: int, value: int) -> None:
        resume(_wr)(self.m, offset, value)
        self.log.append(["w", offset, value])


async def _hs_monitor(dut, aw: list[int], w: list[int]) -> None:
    """Cycle numbers of the AW and W handshakes (the k-th of each belong to write k)."""
    n = 0
    while True:
        await RisingEdge(dut.clk)
        n += 1
        if int(dut.s_axil_awvalid.value) and int(dut.s_axil_awready.value):
            aw.append(n)
        if int(dut.s_axil_wvalid.value) and int(dut.s_axil_wready.value):
            w.append(n)


@cocotb.test()
async def strip_reader_axil_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_AXIL_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
    ddr = Path(spec["ddr"]).read_bytes()
    ram = CountingRam(AxiReadBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=max(4096, len(ddr) + 4096))
    ram.write(0, ddr)
    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    for log in (sink.log, ram.log, master.write_if.log, master.read_if.log):
        log.setLevel("WARNING")
    p = float(spec["axil_pause"])
    for ch in (master.write_if.aw_channel, master.write_if.w_channel, master.read_if.ar_channel):
        set_pause(ch, rng, p)
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    results: list[dict] = []
    aw: list[int] = []
    w: list[int] = []
    cocotb.start_soon(_hs_monitor(dut, aw, w))
    idle = await _rd(master, CTRL)
    task = cocotb.start_soon(_frames(master, sink, spec, results))
    timed_out = await timed_out_within(task, spec["timeout_cycles"])
    order = [(a > b) - (a < b) for a, b in zip(aw, w)]  # -1 AW first, 0 together, 1 W first
    write_result(spec, [{"ctrl_reset": list(idle), "aw_w_order": [order.count(k) for k in (-1, 0, 1)],
                         "frames": results, "ddr_bytes": ram.bytes_read, "timed_out": timed_out}])
