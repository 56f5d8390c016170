"""cocotb test run inside the simulator for ``byte_gearbox``: packets sent by an AXI-Stream source (tkeep on a
partial last beat), received by a sink (one packet per tlast, its bytes by tkeep) and written out as hex.

Spec (JSON through ``SAMFPGA_GEARBOX_SPEC``, written by ``samfpga.hw.sim.byte_gearbox.simulate``): packets [hex],
passes [{"name", "in_pause", "out_pause"}] (per cycle probabilities that the source withholds a beat, that the sink
refuses one), seed, timeout_cycles, result. Every packet is queued at once; per pass the packets received and the
cycles until the last arrived.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from samfpga.hw.sim.bench_common import CLK_NS, now, set_pause, timed_out_within, write_result


async def _packets(source: AxiStreamSource, sink: AxiStreamSink, packets: list[str], got: list[str]) -> None:
    for p in packets:
        await source.send(AxiStreamFrame(bytes.fromhex(p)))
    for _ in packets:
        got.append(bytes((await sink.recv()).tdata).hex())


@cocotb.test()
async def byte_gearbox_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_GEARBOX_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
    for log in (source.log, sink.log):
        log.setLevel("WARNING")
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    results = []
    for p in spec["passes"]:
        set_pause(source, rng, float(p.get("in_pause", 0)))
        set_pause(sink, rng, float(p.get("out_pause", 0)))
        got: list[str] = []
        start = now()
        task = cocotb.start_soon(_packets(source, sink, spec["packets"], got))
        timed_out = await timed_out_within(task, spec["timeout_cycles"])
        results.append({"name": p["name"], "packets": got, "cycles": now() - start, "timed_out": timed_out})
        await ClockCycles(dut.clk, 4)
        if timed_out:
            break
    write_result(spec, results)
