"""cocotb test run inside the simulator for the project's read DMAs (``strip_reader``, ``access_reader``): DDR = an
AxiRamRead counting its bytes, the packets received by an AXI-Stream sink and written out as hex for the caller to
compare.

Spec (JSON through ``SAMFPGA_READ_DMA_SPEC``, written by ``samfpga.hw.sim.strip_reader.simulate`` and
``samfpga.hw.sim.access_reader.simulate``): ddr, frames [{"cfg": {port: value}, "packets"}] (the ``cfg_*`` ports
of the frame and the packets it emits), passes [{"name", "ar_pause", "r_pause", "out_pause"}] (per cycle
probabilities that the RAM refuses a request / withholds a beat, that the sink refuses a beat), seed,
timeout_cycles, result. Frames run back to back: each is started (a pulse on ``start``) as soon as ``busy`` falls,
with its own configuration.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiReadBus, AxiStreamBus, AxiStreamSink

from samfpga.hw.sim.bench_common import (
    CLK_NS,
    CountingRam,
    ar_monitor,
    now,
    set_pause,
    timed_out_within,
    write_result,
)


async def _frames(dut, sink: AxiStreamSink, frames: list[dict], got: list[list[str]], done: list[int],
                  errs: list[int], start: int) -> None:
    for f in frames:
        while int(dut.busy.value):
            await RisingEdge(dut.clk)
        for port, value in f["cfg"].items():
            getattr(dut, port).value = value
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        packets = []
        for _ in range(f["packets"]):
            frame = await sink.recv()  # compact: bytes whose tkeep is low dropped
            packets.append(bytes(frame.tdata).hex())
        got.append(packets)
        done.append(now() - start)
        await RisingEdge(dut.clk)
        errs.append(int(dut.err.value))  # an edge after the start's: a refused configuration is flagged


@cocotb.test()
async def read_dma_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_READ_DMA_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.start.value = 0
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
    ddr = Path(spec["ddr"]).read_bytes()
    ram = CountingRam(AxiReadBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=max(4096, len(ddr) + 4096))
    ram.write(0, ddr)
    for log in (sink.log, ram.log):  # per-frame / per-burst INFO lines would dominate the log
        log.setLevel("WARNING")
    bursts: list = []
    cocotb.start_soon(ar_monitor(dut, bursts))
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    results = []
    for p in spec["passes"]:
        set_pause(sink, rng, float(p.get("out_pause", 0)))
        set_pause(ram.ar_channel, rng, float(p.get("ar_pause", 0)))
        set_pause(ram.r_channel, rng, float(p.get("r_pause", 0)))
        ram.bytes_read = 0
        bursts.clear()
        got: list[list[str]] = []
        done: list[int] = []
        errs: list[int] = []
        start = now()
        task = cocotb.start_soon(_frames(dut, sink, spec["frames"], got, done, errs, start))
        timed_out = await timed_out_within(task, spec["timeout_cycles"])
        await ClockCycles(dut.clk, 4)
        results.append({"name": p["name"], "packets": got, "frame_done_cycles": done, "frame_err": errs, "ddr_bytes": ram.bytes_read,
                        "bursts": list(bursts), "err": int(dut.err.value), "busy": int(dut.busy.value),
                        "extra_beats": sink.count(), "timed_out": timed_out})
        if timed_out:
            break
    write_result(spec, results)
