"""cocotb test run inside the simulator for ``strip_writer_axil`` (the strip writer behind its AXI4-Lite register
block): configured, started and polled ONLY through AXI-Lite (AxiLiteMaster, random pauses on AW, W, AR), the
strips sent by an AXI-Stream source once ap_start is written, DDR = an AxiRamWrite filled with a background; the
DDR image is written out for the caller to compare.

Spec (JSON through ``SAMFPGA_AXILW_SPEC``): background, frames [{"writes": [[offset, value], ...] (the driver's
``UnitMap.writes``), "strips": [hex, ...]}], axil_pause, seed, timeout_cycles, image, result. Per frame as the
strip reader's AXI-Lite bench (``strip_reader_axil_bench``).
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
    AxiLiteBus,
    AxiLiteMaster,
    AxiRamWrite,
    AxiStreamBus,
    AxiStreamFrame,
    AxiStreamSource,
    AxiWriteBus,
)

from samfpga.hw.sim.bench_common import CLK_NS, set_pause, timed_out_within, write_result
from samfpga.hw.sim.strip_reader_axil_bench import AP_DONE, AP_START, CTRL, STATUS, _hs_monitor, _rd, _wr


async def _send(source: AxiStreamSource, strips: list[str]) -> None:
    for s in strips:
        await source.send(AxiStreamFrame(bytes.fromhex(s)))


async def _frames(m: AxiLiteMaster, source: AxiStreamSource, spec: dict, results: list[dict]) -> None:
    for f in spec["frames"]:
        r: dict = {"write_resp": [], "readback": [], "polls": 0}
        for off, val in f["writes"]:
            r["write_resp"].append(await _wr(m, off, val))
        for off, _ in f["writes"]:
            r["readback"].append(list(await _rd(m, off)))
        r["ctrl_before"] = (await _rd(m, CTRL))[0]
        r["start_resp"] = await _wr(m, CTRL, AP_START)
        tx = cocotb.start_soon(_send(source, f["strips"]))
        while True:
            ctrl, _ = await _rd(m, CTRL)
            r["polls"] += 1
            if ctrl & AP_DONE:
                break
        r["ctrl_done"] = ctrl
        r["ctrl_after"] = (await _rd(m, CTRL))[0]
        r["status"] = (await _rd(m, STATUS))[0]
        await tx
        r["source_empty"] = source.empty()
        results.append(r)


@cocotb.test()
async def strip_writer_axil_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_AXILW_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
    background = Path(spec["background"]).read_bytes()
    ram = AxiRamWrite(AxiWriteBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=len(background))
    ram.write(0, background)
    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    for log in (source.log, ram.log, master.write_if.log, master.read_if.log):
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
    task = cocotb.start_soon(_frames(master, source, spec, results))
    timed_out = await timed_out_within(task, spec["timeout_cycles"])
    Path(spec["image"]).write_bytes(ram.read(0, len(background)))
    write_result(spec, [{"frames": results, "timed_out": timed_out}])
