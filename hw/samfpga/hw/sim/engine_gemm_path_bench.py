"""cocotb test run inside the simulator for ``engine_gemm_path``: one DDR (cocotbext-axi's memory, shared by an AXI
RAM on each of the path's three masters), the host's step sequence in Python.

Spec (JSON through ``SAMFPGA_GEMM_PATH_SPEC``, written by ``samfpga.hw.sim.engine_gemm_path.simulate``): ddr (the
initial image), steps [{port: value}] (every configuration port of a step), passes [{"name", "ar_pause", "r_pause",
"aw_pause", "w_pause", "b_pause"}], seed, timeout_cycles, result, image_dir. Per step the host does what the board's
sequencer would: it sets the readers', the unit's, the lanes' and the writer's registers, starts the reader and
the writer (and for a residual step the residual and parameter readers and the lanes) in one cycle and waits for
the writer's done. Per pass the DDR image is written to image_dir/ddr_<name>.bin and the
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
        for port, value in s.items():
            getattr(dut, port).value = value
        starts = (["rd_start", "wr_start"] + (["rs_start", "pm_start", "ln_start"] if s.get("cfg_residual") else [])
                  + (["pm_start", "nm_start"] if s.get("cfg_layernorm") else []))
        await pulse(dut, *starts)
        while not int(dut.wr_done.value):  # the step's output is in DDR: its last B response came back
            await RisingEdge(dut.clk)
        await RisingEdge(dut.clk)
        cycles.append(now() - t0)


@cocotb.test()
async def engine_gemm_path_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_GEMM_PATH_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    for name in ("rd_start", "wr_start", "rs_start", "pm_start", "ln_start", "nm_start"):
        getattr(dut, name).value = 0
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
                        "err": {"reader": int(dut.rd_err.value), "unit": int(dut.wt_err.value),
                                "writer": int(dut.wr_err.value), "residual": int(dut.rs_err.value),
                                "params": int(dut.pm_err.value), "lanes": int(dut.ln_err.value),
                                "layernorm": int(dut.nm_err.value)},
                        "busy": int(dut.rd_busy.value) | int(dut.wr_busy.value) | int(dut.rs_busy.value)
                        | int(dut.pm_busy.value) | int(dut.ln_busy.value) | int(dut.nm_busy.value),
                        "timed_out": timed_out})
        if timed_out:
            break
    write_result(spec, results)
