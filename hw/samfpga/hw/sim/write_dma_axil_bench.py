"""cocotb test run inside the simulator for a write DMA behind its AXI4-Lite register block (``strip_writer_axil``,
``access_writer_axil``): configured, started and polled ONLY through AXI-Lite (AxiLiteMaster, random pauses on AW,
W, AR), the packets ("strips") sent by an AXI-Stream source once ap_start is written, DDR = an AxiRamWrite filled with a background; the
DDR image is written out for the caller to compare.

Spec (JSON through ``SAMFPGA_AXILW_SPEC``): background, frames [{"writes": [[offset, value], ...] (the driver's
``UnitMap.writes``), "strips": [hex, ...]}], axil_pause, seed, timeout_cycles, image, result. Per frame as the
read DMAs' AXI-Lite bench (``read_dma_axil_bench``).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotbext.axi import (
    AxiLiteMaster,
    AxiRamWrite,
    AxiStreamBus,
    AxiStreamFrame,
    AxiStreamSource,
    AxiWriteBus,
)

from samfpga.backends.unit_regs import AP_DONE, AP_START, CTRL, STATUS
from samfpga.hw.sim.bench_common import (
    CLK_NS,
    axil_handshakes,
    axil_master,
    axil_read,
    axil_write,
    timed_out_within,
    write_result,
)


async def _send(source: AxiStreamSource, strips: list[str]) -> None:
    for s in strips:
        await source.send(AxiStreamFrame(bytes.fromhex(s)))


async def _frames(m: AxiLiteMaster, source: AxiStreamSource, spec: dict, results: list[dict]) -> None:
    for f in spec["frames"]:
        r: dict = {"write_resp": [], "readback": [], "polls": 0}
        for off, val in f["writes"]:
            r["write_resp"].append(await axil_write(m, off, val))
        for off, _ in f["writes"]:
            r["readback"].append(list(await axil_read(m, off)))
        r["ctrl_before"] = (await axil_read(m, CTRL))[0]
        r["start_resp"] = await axil_write(m, CTRL, AP_START)
        tx = cocotb.start_soon(_send(source, f["strips"]))
        while True:
            ctrl, _ = await axil_read(m, CTRL)
            r["polls"] += 1
            if ctrl & AP_DONE:
                break
        r["ctrl_done"] = ctrl
        r["ctrl_after"] = (await axil_read(m, CTRL))[0]
        r["status"] = (await axil_read(m, STATUS))[0]
        await tx
        r["source_empty"] = source.empty()
        results.append(r)


@cocotb.test()
async def write_dma_axil_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_AXILW_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
    background = Path(spec["background"]).read_bytes()
    ram = AxiRamWrite(AxiWriteBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=len(background))
    ram.write(0, background)
    master = axil_master(dut, rng, float(spec["axil_pause"]))
    for log in (source.log, ram.log):
        log.setLevel("WARNING")
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    results: list[dict] = []
    aw: list[int] = []
    w: list[int] = []
    cocotb.start_soon(axil_handshakes(dut, aw, w))
    task = cocotb.start_soon(_frames(master, source, spec, results))
    timed_out = await timed_out_within(task, spec["timeout_cycles"])
    Path(spec["image"]).write_bytes(ram.read(0, len(background)))
    write_result(spec, [{"frames": results, "timed_out": timed_out}])
