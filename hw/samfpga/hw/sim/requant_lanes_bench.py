"""cocotb test run inside the simulator for ``requant_lanes``, ``layernorm_lanes`` (the engine's LayerNorm ahead
of its lanes: the same ports, more cfg ones) and ``dw_core`` (the depthwise unit ahead of its lanes: its weights on
the parameter stream, its input in packets): parameters and inputs sent by AXI-Stream sources, the outputs received
by a sink (one frame per tlast) and written out as hex for the caller to compare.

Spec (JSON through ``SAMFPGA_LANES_SPEC``, written by ``samfpga.hw.sim.requant_lanes.simulate`` and its kin):
frames [{"cfg": {port: value}, "params": hex, "data": hex or a list of hex packets (one tlast each; "" for a
refused frame), "out": whether the frame sends outputs ("x": dw_core's windows on x_axis, "x_packets" packets)}],
passes [{"name", "p_pause", "in_pause", "out_pause"}] (per cycle probabilities that a source withholds a beat, that
the sink refuses one), seed, timeout_cycles, result. Frames run back to back: each
started (a pulse on ``start``) as soon as ``busy`` falls; its err is read when busy falls after it.
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


async def _frames(dut, psrc: AxiStreamSource, src: AxiStreamSource, sink: AxiStreamSink,
                  xsink: AxiStreamSink | None, frames: list[dict], got: list[str], done: list[int], errs: list[int],
                  start: int) -> None:
    for f in frames:
        while int(dut.busy.value):
            await RisingEdge(dut.clk)
        for port, value in f["cfg"].items():
            getattr(dut, port).value = value
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        if f["params"]:
            await psrc.send(AxiStreamFrame(bytes.fromhex(f["params"])))
        for packet in ([f["data"]] if isinstance(f["data"], str) else f["data"]) if f["data"] else []:
            await src.send(AxiStreamFrame(bytes.fromhex(packet)))
        if f["out"] == "x":  # dw_core's window alone: a packet per strip on x_axis
            got.append("".join([bytes((await xsink.recv()).tdata).hex() for _ in range(f["x_packets"])]))
        else:
            got.append(bytes((await sink.recv()).tdata).hex() if f["out"] else "")
        done.append(now() - start)
        await RisingEdge(dut.clk)
        # the frame ends when busy falls (a unit may still take input its outputs did not need, or refuse its
        # configuration only after working it out); err is sticky until the next start
        while int(dut.busy.value):
            await RisingEdge(dut.clk)
        errs.append(int(dut.err.value))


@cocotb.test()
async def requant_lanes_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_LANES_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.start.value = 0
    psrc = AxiStreamSource(AxiStreamBus.from_prefix(dut, "p_axis"), dut.clk, dut.rst)
    src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
    xsink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "x_axis"), dut.clk, dut.rst) \
        if hasattr(dut, "x_axis_tdata") else None
    for log in (psrc.log, src.log, sink.log, *([xsink.log] if xsink else [])):
        log.setLevel("WARNING")
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    results = []
    for p in spec["passes"]:
        set_pause(psrc, rng, float(p.get("p_pause", 0)))
        set_pause(src, rng, float(p.get("in_pause", 0)))
        set_pause(sink, rng, float(p.get("out_pause", 0)))
        if xsink:
            set_pause(xsink, rng, float(p.get("out_pause", 0)))
        got: list[str] = []
        done: list[int] = []
        errs: list[int] = []
        start = now()
        task = cocotb.start_soon(_frames(dut, psrc, src, sink, xsink, spec["frames"], got, done, errs, start))
        timed_out = await timed_out_within(task, spec["timeout_cycles"])
        await ClockCycles(dut.clk, 4)
        results.append({"name": p["name"], "outputs": got, "frame_done_cycles": done, "frame_err": errs,
                        "busy": int(dut.busy.value), "extra_beats": sink.count() + (xsink.count() if xsink else 0),
                        "timed_out": timed_out})
        if timed_out:
            break
    write_result(spec, results)
