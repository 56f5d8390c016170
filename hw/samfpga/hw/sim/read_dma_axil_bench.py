"""cocotb test run inside the simulator for a read DMA behind its AXI4-Lite register block (``strip_reader_axil``,
``access_reader_axil``): the reader is configured, started and polled ONLY through AXI-Lite (cocotbext-axi AxiLiteMaster, random
pauses on its AW, W, AR channels so that AW and W arrive in either order); DDR = the strip reader bench's
AxiRamRead; the packets received are written out as hex for the caller to compare.

Spec (JSON through ``SAMFPGA_AXIL_SPEC``): unit (the register map's name), ddr, frames [{"writes": [[offset, value], ...] (the driver's
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
from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiLiteMaster, AxiReadBus, AxiStreamBus, AxiStreamSink

from samfpga.backends.base import BackendError
from samfpga.backends.unit_regs import AP_DONE, AP_START, CTRL, STATUS, UnitDriver
from samfpga.hw.sim.bench_common import (
    CLK_NS,
    CountingRam,
    axil_handshakes,
    axil_master,
    axil_read,
    axil_write,
    timed_out_within,
    write_result,
)


async def _recv(sink: AxiStreamSink, n: int, out: list[str]) -> None:
    for _ in range(n):
        out.append(bytes((await sink.recv()).tdata).hex())


async def _frames(m: AxiLiteMaster, sink: AxiStreamSink, spec: dict, results: list[dict]) -> None:
    for f in spec["frames"]:
        r: dict = {"write_resp": [], "readback": [], "polls": 0}
        for off, val in f["writes"]:
            r["write_resp"].append(await axil_write(m, off, val))
        for off, _ in f["writes"]:
            r["readback"].append(list(await axil_read(m, off)))
        r["ctrl_before"] = (await axil_read(m, CTRL))[0]
        strips: list[str] = []
        rx = cocotb.start_soon(_recv(sink, f["strips"], strips))
        r["start_resp"] = await axil_write(m, CTRL, AP_START)
        while True:
            ctrl, _ = await axil_read(m, CTRL)
            r["polls"] += 1
            if ctrl & AP_DONE:
                break
        r["ctrl_done"] = ctrl
        r["ctrl_after"] = (await axil_read(m, CTRL))[0]
        r["status"] = (await axil_read(m, STATUS))[0]
        await rx
        r["strips"] = strips
        r["extra_beats"] = sink.count()
        results.append(r)
    probes = []
    for op, off, val in spec["probes"]:
        probes.append([op, off, *(await axil_read(m, off))] if op == "r" else [op, off, val, await axil_write(m, off, val)])
    results.append({"probes": probes})
    mmio = BridgeMMIO(m)
    drv = UnitDriver(mmio, spec["unit"], poll_s=0)
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
        v = resume(axil_read)(self.m, offset)[0]
        self.log.append(["r", offset, v])
        return v

    def write(self, offset: int, value: int) -> None:
        resume(axil_write)(self.m, offset, value)
        self.log.append(["w", offset, value])


@cocotb.test()
async def read_dma_axil_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_AXIL_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
    ddr = Path(spec["ddr"]).read_bytes()
    ram = CountingRam(AxiReadBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=max(4096, len(ddr) + 4096))
    ram.write(0, ddr)
    master = axil_master(dut, rng, float(spec["axil_pause"]))
    for log in (sink.log, ram.log):
        log.setLevel("WARNING")
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    results: list[dict] = []
    aw: list[int] = []
    w: list[int] = []
    cocotb.start_soon(axil_handshakes(dut, aw, w))
    idle = await axil_read(master, CTRL)
    task = cocotb.start_soon(_frames(master, sink, spec, results))
    timed_out = await timed_out_within(task, spec["timeout_cycles"])
    order = [(a > b) - (a < b) for a, b in zip(aw, w)]  # -1 AW first, 0 together, 1 W first
    write_result(spec, [{"ctrl_reset": list(idle), "aw_w_order": [order.count(k) for k in (-1, 0, 1)],
                         "frames": results, "ddr_bytes": ram.bytes_read, "timed_out": timed_out}])
