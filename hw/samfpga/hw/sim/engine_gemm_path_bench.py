"""cocotb test run inside the simulator for ``engine_gemm_path``: one DDR (cocotbext-axi's memory, shared by an AXI
RAM on each of the path's three masters), the host's step sequence in Python.

Spec (JSON through ``SAMFPGA_GEMM_PATH_SPEC``, written by ``samfpga.hw.sim.engine_gemm_path.simulate``): ddr (the
initial image), steps [{key: value}] (a step's configuration, ``step_config``: port ``cfg_<key>``), passes [{"name",
"ar_pause", "r_pause", "aw_pause", "w_pause", "b_pause"}], seed, timeout_cycles, result, image_dir. Per step the
host does what the board's sequencer does through the AXI-Lite block (``engine_gemm_path_axil_bench``): it sets the
configuration, pulses start and waits for done. Per pass the DDR image is written to image_dir/ddr_<name>.bin and the
result has each step's cycles, the bytes each port moved and the units' error flags.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from samfpga.hw.sim.bench_common import CLK_NS, SharedDdr, now, pulse, timed_out_within, write_result


async def _steps(dut, steps: list[dict], cycles: list[int]) -> None:
    for s in steps:
        t0 = now()
        for key, value in s.items():
            getattr(dut, f"cfg_{key}").value = value
        await pulse(dut, "start")
        while not int(dut.done.value):  # the step's output is in DDR: its last B response came back
            await RisingEdge(dut.clk)
        await RisingEdge(dut.clk)
        cycles.append(now() - t0)


@cocotb.test()
async def engine_gemm_path_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_GEMM_PATH_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.start.value = 0
    initial = Path(spec["ddr"]).read_bytes()
    ddr = SharedDdr(dut, len(initial), ["m_axi_rd", "m_axi_wt", "m_axi_rs", "m_axi_pm"], ["m_axi_wr"])
    rd, wt, wr = ddr.reads["m_axi_rd"], ddr.reads["m_axi_wt"], ddr.writes["m_axi_wr"]
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    results = []
    for p in spec["passes"]:
        ddr.start_pass(initial, p, rng)
        cycles: list[int] = []
        task = cocotb.start_soon(_steps(dut, spec["steps"], cycles))
        timed_out = await timed_out_within(task, spec["timeout_cycles"])
        await ClockCycles(dut.clk, 4)
        Path(spec["image_dir"], f"ddr_{p['name']}.bin").write_bytes(ddr.image())
        results.append({"name": p["name"], "step_cycles": cycles, "reader_bytes": rd.bytes_read,
                        "weight_bytes": wt.bytes_read, "writer_bytes": wr.bytes_written,
                        "residual_bytes": ddr.reads["m_axi_rs"].bytes_read,
                        "err": int(dut.err.value), "busy": int(dut.busy.value), "timed_out": timed_out})
        if timed_out:
            break
    write_result(spec, results)
