"""cocotb test run inside the simulator for ``raw_rows``: the input beats through an AXI-Stream source, the output
beats collected by a sink and compared with the expected ones (tolerance 0).

Spec (JSON through ``SAMFPGA_RAW_ROWS_SPEC``, written by ``samfpga.hw.sim.raw_rows.simulate``): inputs, expected
(beats as decimal strings), passes [{"name", "pause"}] (per cycle probability that the source withholds / the sink
refuses a beat), seed, timeout_cycles, result.
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

from samfpga.hw.sim.bench_common import CLK_NS, stream_passes, write_result


async def _run(src: AxiStreamSource, sink: AxiStreamSink, inputs: list[int], count: int, words: list[int],
               in_bytes: int) -> None:
    for w in inputs:
        await src.send(AxiStreamFrame(w.to_bytes(in_bytes, "little")))
    while len(words) < count:
        frame = await sink.recv()
        words.append(int.from_bytes(bytes(frame.tdata), "little"))


@cocotb.test()
async def raw_rows_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_RAW_ROWS_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s"), dut.clk, dut.rst)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m"), dut.clk, dut.rst)
    for log in (src.log, sink.log):
        log.setLevel("WARNING")
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    inputs = [int(w) for w in spec["inputs"]]
    expected = [int(w) for w in spec["expected"]]
    in_bytes = len(dut.s_tdata.value) // 8
    results = await stream_passes(dut, (src, sink), spec["passes"], rng,
                                  lambda words: _run(src, sink, inputs, len(expected), words, in_bytes), expected,
                                  spec["timeout_cycles"])
    write_result(spec, results)
