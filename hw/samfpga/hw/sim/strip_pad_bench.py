"""cocotb test run inside the simulator for ``strip_pad``: the input strips sent by an AXI-Stream source, the output
packets received by a sink and written out as hex for the caller to compare.

Spec (JSON through ``SAMFPGA_PAD_SPEC``, written by ``samfpga.hw.sim.strip_pad.simulate``): frames [{"h", "w",
"tiles", "halo", "cb", "pad", "strips": [hex, ...]}], passes [{"name", "in_pause", "out_pause"}] (per cycle
probabilities that the source withholds a beat, that the sink refuses one), seed, beat_bytes, timeout_cycles,
result. Frames run back to back: each is started (a pulse on ``start``) as soon as ``busy`` falls, its input strips
queued on the source at once; the sink collects one packet per padded strip (``tiles`` of them, or ``expect``
where a frame gives it: 0 for a refused configuration).
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


async def _frames(dut, source: AxiStreamSource, sink: AxiStreamSink, frames: list[dict], got: list, errs: list,
                  done: list, start: int) -> None:
    for f in frames:
        while int(dut.busy.value):
            await RisingEdge(dut.clk)
        for k in ("h", "w", "tiles", "halo", "cb", "pad"):
            getattr(dut, f"cfg_{k}").value = f[k]
        for k in ("open_l", "open_r"):  # a strip of a wider map sent on its own: no padding on that side
            getattr(dut, f"cfg_{k}").value = f.get(k, 0)
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        await RisingEdge(dut.clk)  # busy as the unit set it on the start edge
        for s in f["strips"]:
            await source.send(AxiStreamFrame(bytes.fromhex(s)))
        strips = []
        for _ in range(f.get("expect", f["tiles"])):
            frame = await sink.recv()
            strips.append(bytes(frame.tdata).hex())
        while int(dut.busy.value):
            await RisingEdge(dut.clk)
        got.append(strips)
        errs.append(int(dut.err.value))
        done.append(now() - start)
        await RisingEdge(dut.clk)


@cocotb.test()
async def strip_pad_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_PAD_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.start.value = 0
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
    for log in (source.log, sink.log):  # per-frame INFO lines would dominate the log
        log.setLevel("WARNING")
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    results = []
    for p in spec["passes"]:
        set_pause(source, rng, float(p.get("in_pause", 0)))
        set_pause(sink, rng, float(p.get("out_pause", 0)))
        got: list = []
        errs: list = []
        done: list = []
        start = now()
        task = cocotb.start_soon(_frames(dut, source, sink, spec["frames"], got, errs, done, start))
        timed_out = await timed_out_within(task, spec["timeout_cycles"])
        await ClockCycles(dut.clk, 4)
        results.append({"name": p["name"], "strips": got, "err": errs, "frame_done_cycles": done,
                        "busy": int(dut.busy.value), "extra_beats": sink.count(), "input_left": not source.empty(),
                        "timed_out": timed_out})
        if timed_out:
            break
    write_result(spec, results)
