"""cocotb test run inside the simulator for the project's write DMAs (``strip_writer``, ``access_writer``): DDR =
cocotbext-axi's AxiRamWrite filled with a background pattern, the packets sent by an AXI-Stream source, the DDR
image written out for the caller to compare.

Spec (JSON through ``SAMFPGA_WRITE_DMA_SPEC``, written by ``samfpga.hw.sim.strip_writer.simulate`` and
``samfpga.hw.sim.access_writer.simulate``): background, frames [{"cfg": {port: value}, "packets": [hex, ...]}],
passes [{"name", "in_pause", "aw_pause",
"w_pause", "b_pause", "fault"}] (per cycle probabilities that the source withholds a beat, that the RAM refuses an
AW / a W beat, that it withholds a B response; ``fault`` [lo, hi): W beats writing any byte there are dropped and
answered SLVERR), seed, timeout_cycles, image_dir, result. Frames run back to back: each is
started (a pulse on ``start``) as soon as ``busy`` falls, with its own configuration, and its packets queued on the
source at once (the writer takes them once it has sampled the configuration).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiRamWrite, AxiStreamBus, AxiStreamFrame, AxiStreamSource, AxiWriteBus

from samfpga.hw.sim.bench_common import CLK_NS, now, set_pause, timed_out_within, write_result


class FaultRam(AxiRamWrite):
    """AxiRamWrite that refuses (the slave model answers SLVERR) every write touching bytes [fault[0], fault[1])."""

    fault = (0, 0)

    async def _write(self, address, data):
        if address < self.fault[1] and address + len(data) > self.fault[0]:
            raise ValueError(f"write at {address:#x} in the fault range")
        await super()._write(address, data)


async def _monitor(dut, aw: list, w: list, b: list, done: list, start: list, pending: list, errs: list) -> None:
    """AW handshakes as (address, beats); W bursts as (beats, first WSTRB, last WSTRB); B responses (BRESP); cycles of
    ``done`` pulses (from start[0]) and, at each, the bursts accepted on AW whose B had not arrived (``pending``) and
    ``err`` (``errs``)."""
    beats, first = 0, 0
    while True:
        await RisingEdge(dut.clk)
        if int(dut.m_axi_awvalid.value) and int(dut.m_axi_awready.value):
            aw.append((int(dut.m_axi_awaddr.value), int(dut.m_axi_awlen.value) + 1))
        if int(dut.m_axi_wvalid.value) and int(dut.m_axi_wready.value):
            strb = int(dut.m_axi_wstrb.value)
            first = strb if beats == 0 else first
            beats += 1
            if int(dut.m_axi_wlast.value):
                w.append((beats, first, strb))
                beats = 0
        if int(dut.m_axi_bvalid.value) and int(dut.m_axi_bready.value):
            b.append(int(dut.m_axi_bresp.value))
        if int(dut.done.value):
            done.append(now() - start[0])
            pending.append(len(aw) - len(b))
            errs.append(int(dut.err.value))


async def _frames(dut, source: AxiStreamSource, frames: list[dict]) -> None:
    for f in frames:
        while int(dut.busy.value):
            await RisingEdge(dut.clk)
        for port, value in f["cfg"].items():
            getattr(dut, port).value = value
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        for s in f["packets"]:
            await source.send(AxiStreamFrame(bytes.fromhex(s)))
        await RisingEdge(dut.clk)  # busy is high from here until the frame's last B response
    while int(dut.busy.value) or not source.empty():
        await RisingEdge(dut.clk)


@cocotb.test()
async def write_dma_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_WRITE_DMA_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.start.value = 0
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
    background = Path(spec["background"]).read_bytes()
    ram = FaultRam(AxiWriteBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=len(background))
    for log in (source.log, ram.log):  # per-frame / per-burst INFO lines would dominate the log
        log.setLevel("WARNING")
    aw: list = []
    w: list = []
    done: list = []
    start = [0]
    b: list = []
    pending: list = []
    errs: list = []
    cocotb.start_soon(_monitor(dut, aw, w, b, done, start, pending, errs))
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    results = []
    for p in spec["passes"]:
        set_pause(source, rng, float(p.get("in_pause", 0)))
        set_pause(ram.aw_channel, rng, float(p.get("aw_pause", 0)))
        set_pause(ram.w_channel, rng, float(p.get("w_pause", 0)))
        set_pause(ram.b_channel, rng, float(p.get("b_pause", 0)))
        ram.write(0, background)
        aw.clear()
        w.clear()
        done.clear()
        pending.clear()
        errs.clear()
        b.clear()
        ram.fault = tuple(p.get("fault", (0, 0)))
        start[0] = now()
        task = cocotb.start_soon(_frames(dut, source, spec["frames"]))
        timed_out = await timed_out_within(task, spec["timeout_cycles"])
        await ClockCycles(dut.clk, 4)
        Path(spec["image_dir"], f"ddr_{p['name']}.bin").write_bytes(ram.read(0, len(background)))
        results.append({"name": p["name"], "aw_bursts": list(aw), "w_bursts": list(w), "frame_done_cycles": list(done),
                        "b_pending_at_done": list(pending), "err_at_done": list(errs),
                        "b_errors": sum(1 for r in b if r & 2),
                        "err": int(dut.err.value), "busy": int(dut.busy.value), "timed_out": timed_out})
        if timed_out:
            break
    write_result(spec, results)
