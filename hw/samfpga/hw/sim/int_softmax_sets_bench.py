"""cocotb test run inside the simulator for ``int_softmax`` built with RT_SET = 1: steps of rows, each with the
parameter set its ``cfg_set`` selects, streamed through an AXI-Stream source and sink, every output word compared
(tolerance 0).

Spec (JSON through ``SAMFPGA_SM_SETS_SPEC``, written by ``samfpga.hw.sim.int_softmax_sets.simulate``): steps
[{"set", "inputs": [words], "expected": [words]}] (words of in_bits / out_bits), passes [{"name", "pause"}] (per
cycle probability that the source withholds / the sink refuses a beat), in_bits, out_bits, seed, timeout_cycles,
result. The bench changes ``cfg_set`` between steps only once the previous step's outputs are all out, as the
engine's host would.
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


async def _steps(dut, src: AxiStreamSource, sink: AxiStreamSink, steps: list[dict], words: list[int]) -> None:
    for s in steps:
        dut.cfg_set.value = int(s["set"])
        await src.send(AxiStreamFrame([int(w) for w in s["inputs"]]))
        want = len(words) + len(s["expected"])
        while len(words) < want:
            frame = await sink.recv(compact=False)
            words.extend(int(w) for w in frame.tdata)


@cocotb.test()
async def int_softmax_sets_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_SM_SETS_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.cfg_set.value = 0
    src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "i"), dut.clk, dut.rst, byte_size=int(spec["in_bits"]))
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "o"), dut.clk, dut.rst, byte_size=int(spec["out_bits"]))
    for log in (src.log, sink.log):
        log.setLevel("WARNING")
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    expected = [int(w) for s in spec["steps"] for w in s["expected"]]
    results = await stream_passes(dut, (src, sink), spec["passes"], rng,
                                  lambda words: _steps(dut, src, sink, spec["steps"], words), expected,
                                  spec["timeout_cycles"], mask=(1 << int(spec["out_bits"])) - 1)
    write_result(spec, results)
