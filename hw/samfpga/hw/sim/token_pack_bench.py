"""cocotb test run inside the simulator for ``token_pack``: per frame its configuration and a start pulse, the
frame's byte count a few cycles later (as the writer's walk sizes it), its input beats from an AXI-Stream source, the
output frame (one tlast, its bytes by tkeep) from a sink, written out as hex.

Spec (JSON through ``SAMFPGA_PACK_SPEC``, written by ``samfpga.hw.sim.token_pack.simulate``): frames [{data (hex),
beats, keep, bytes}], passes [{"name", "in_pause", "out_pause"}], seed, timeout_cycles, result.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from samfpga.hw.sim.bench_common import CLK_NS, now, set_pause, timed_out_within, write_result


async def _frames(dut, source: AxiStreamSource, sink: AxiStreamSink, frames: list[dict], got: list[str]) -> None:
    for f in frames:
        dut.cfg_beats.value = f["beats"]
        dut.cfg_keep.value = f["keep"]
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        await source.send(AxiStreamFrame(bytes.fromhex(f["data"])))
        await ClockCycles(dut.clk, 5)  # the input waits for the count, as for the writer's walk
        dut.bytes.value = f["bytes"]
        dut.go.value = 1
        await RisingEdge(dut.clk)
        dut.go.value = 0
        got.append(bytes((await sink.recv()).tdata).hex())
        await source.wait()
        await ClockCycles(dut.clk, 2)


@cocotb.test()
async def token_pack_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_PACK_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    for s in (dut.start, dut.go, dut.cfg_beats, dut.cfg_keep, dut.bytes):
        s.value = 0
    dut.rst.value = 1
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s"), dut.clk, dut.rst)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m"), dut.clk, dut.rst)
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
        task = cocotb.start_soon(_frames(dut, source, sink, spec["frames"], got))
        timed_out = await timed_out_within(task, spec["timeout_cycles"])
        results.append({"name": p["name"], "frames": got, "cycles": now() - start, "timed_out": timed_out})
        await ClockCycles(dut.clk, 4)
        if timed_out:
            break
    write_result(spec, results)
