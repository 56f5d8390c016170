"""cocotb test run inside the simulator for ``rolled_stage``: one DDR (cocotbext-axi's memory, shared by an AXI RAM
on each of the stage's three masters), the host's loop in Python.

Spec (JSON through ``SAMFPGA_ROLLED_SPEC``, written by ``samfpga.hw.sim.rolled_stage.simulate``): ddr (the initial
image), frames [{"h", "w", "tiles", "n", "t", "wt_base", "stride", "buffers"}], passes [{"name", "ar_pause",
"r_pause", "aw_pause", "w_pause", "b_pause"}], seed, timeout_cycles, result, image_dir. Per frame the host does what
the board's driver would: it sets the body's registers (weights base, stride, N blocks, T = H*W tokens) and the map's,
then for each block i starts the reader on buffer i % 2 and the writer on buffer (i + 1) % 2 in the same cycle and
waits for the writer's done before block i + 1. Per pass the DDR image is written to image_dir/ddr_<name>.bin and the
result has per-block cycles, the bytes each port moved, and the units' error flags.
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


async def _frames(dut, frames: list[dict], blocks: list[int]) -> None:
    for f in frames:
        dut.cfg_h.value, dut.cfg_w.value, dut.cfg_tiles.value = f["h"], f["w"], f["tiles"]
        dut.wt_base.value, dut.wt_stride.value = f["wt_base"], f["stride"]
        dut.wt_iters.value, dut.wt_tokens.value = f["n"], f["t"]
        for i in range(f["n"]):
            t0 = now()
            dut.rd_base.value = f["buffers"][i % 2]
            dut.wr_base.value = f["buffers"][(i + 1) % 2]
            await pulse(dut, "rd_start", "wr_start")
            while not int(dut.wr_done.value):  # the block's output is in DDR: its last B response came back
                await RisingEdge(dut.clk)
            await RisingEdge(dut.clk)
            blocks.append(now() - t0)


@cocotb.test()
async def rolled_stage_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_ROLLED_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.rd_start.value = 0
    dut.wr_start.value = 0
    initial = Path(spec["ddr"]).read_bytes()
    ddr = SharedDdr(dut, len(initial), ["m_axi_rd", "m_axi_wt"], ["m_axi_wr"])
    rd, wt, wr = ddr.reads["m_axi_rd"], ddr.reads["m_axi_wt"], ddr.writes["m_axi_wr"]
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    results = []
    for p in spec["passes"]:
        ddr.start_pass(initial, p, rng)
        blocks: list[int] = []
        task = cocotb.start_soon(_frames(dut, spec["frames"], blocks))
        timed_out = await timed_out_within(task, spec["timeout_cycles"])
        await ClockCycles(dut.clk, 4)
        Path(spec["image_dir"], f"ddr_{p['name']}.bin").write_bytes(ddr.image())
        results.append({"name": p["name"], "block_cycles": blocks, "reader_bytes": rd.bytes_read,
                        "weight_bytes": wt.bytes_read, "writer_bytes": wr.bytes_written,
                        "err": {"reader": int(dut.rd_err.value), "body": int(dut.wt_err.value),
                                "writer": int(dut.wr_err.value)},
                        "busy": int(dut.rd_busy.value) | int(dut.wr_busy.value), "timed_out": timed_out})
        if timed_out:
            break
    write_result(spec, results)
