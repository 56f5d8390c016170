"""cocotb test run inside the simulator for ``image_window``: per step the image's size, a start pulse, the table
(t_axis) and the image (s_axis, 4 pixels a beat) from AXI-Stream sources, the output collected by a sink until
tlast, written out as hex with the cycles from the start.

Spec (JSON through ``SAMFPGA_IMAGE_WINDOW_SPEC``, written by ``samfpga.hw.sim.image_window.simulate``): steps [{h, w,
table hex, image hex}], passes [{"name", "in_pause", "out_pause"}] (per cycle probabilities that the sources withhold
a beat, that the sink refuses one), seed, timeout_cycles, result. A step whose size the window refuses (err) is
recorded as refused with no output, and nothing is sent.
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

from samfpga.hw.sim.bench_common import CLK_NS, now, pulse, set_pause, timed_out_within, write_result


async def _steps(dut, tsrc, ssrc, sink, steps: list[dict], got: list[dict]) -> None:
    for st in steps:
        dut.cfg_h.value = st["h"]
        dut.cfg_w.value = st["w"]
        t0 = now()
        await pulse(dut, "start")
        await RisingEdge(dut.clk)
        if int(dut.err.value):
            got.append({"refused": True, "busy": int(dut.busy.value), "out": "", "cycles": 0})
            continue
        await tsrc.send(AxiStreamFrame(bytes.fromhex(st["table"])))
        await ssrc.send(AxiStreamFrame(bytes.fromhex(st["image"])))
        out = bytes((await sink.recv()).tdata)
        cycles = now() - t0
        while int(dut.busy.value):
            await RisingEdge(dut.clk)
        got.append({"refused": False, "out": out.hex(), "cycles": cycles})


@cocotb.test()
async def image_window_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_IMAGE_WINDOW_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.start.value = 0
    tsrc = AxiStreamSource(AxiStreamBus.from_prefix(dut, "t_axis"), dut.clk, dut.rst)
    ssrc = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
    for log in (tsrc.log, ssrc.log, sink.log):
        log.setLevel("WARNING")
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    results = []
    for p in spec["passes"]:
        for src in (tsrc, ssrc):
            set_pause(src, rng, float(p.get("in_pause", 0)))
        set_pause(sink, rng, float(p.get("out_pause", 0)))
        got: list[dict] = []
        task = cocotb.start_soon(_steps(dut, tsrc, ssrc, sink, spec["steps"], got))
        timed_out = await timed_out_within(task, spec["timeout_cycles"])
        results.append({"name": p["name"], "steps": got, "timed_out": timed_out})
        await ClockCycles(dut.clk, 4)
        if timed_out:
            break
    write_result(spec, results)
