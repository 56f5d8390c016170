"""cocotb test run inside the simulator for ``rolled_loop_top``: one DDR (cocotbext-axi's memory, shared by an AXI
RAM on the reader's and the writer's masters), the host's loop in Python.

Spec (JSON through ``SAMFPGA_ROLLED_LOOP_SPEC``, written by ``samfpga.hw.sim.rolled_loop.simulate``): ddr (the
initial image), src, dst ({h, w, c}: the part's input and output tensors in DDR, c bytes per pixel), blocks,
buffers (per map in the loop, its two buffers' base addresses: K maps interleaved, ``loop_frames``), units [{"name",
"writes"}] (the part's token-batched units: an AXI RAM on ``<name>_m_axi_gmem`` reading the same DDR, and the
register writes [offset, word] made once through an AXI-Lite master on ``<name>_s_axi_control`` after reset),
passes [{"name", "ar_pause", "r_pause", "aw_pause", "w_pause", "b_pause"}], seed, timeout_cycles, result,
image_dir. Per pass the host does what the board's driver would (``_blocks``): for each block i and map k it starts
the reader on the map's buffer i % 2 and the writer on its buffer (i + 1) % 2, the reader of block i + 1 of a map
only after the writer's done (its last B response: the map's block i is in DDR). The body's layers pick block i's
parameters themselves (they count their passes). Per pass the DDR image is written to image_dir/ddr_<name>.bin; the
result has per-block cycles, the bytes each port moved and the error flags.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, RisingEdge

from samfpga.hw.sim.bench_common import (
    CLK_NS,
    SharedDdr,
    now,
    program_registers,
    pulse,
    timed_out_within,
    write_result,
)


async def _blocks(dut, spec: dict, cycles: list[int]) -> None:
    """The host's loop over ``blocks`` blocks of ``len(buffers)`` maps, block after block and, within a block, map
    after map: the writer takes job (i, k) as soon as job before it is done; the reader starts job (i, k) once it
    is idle and the writer has finished (i - 1, k), the map's previous block. ``cycles``: the cycle each job's
    output was in DDR, from the first start."""
    jobs = [(i, k) for i in range(spec["blocks"]) for k in range(len(spec["buffers"]))]
    written = {job: Event() for job in jobs}
    t0 = now()

    async def writer() -> None:
        for i, k in jobs:
            dut.wr_base.value = spec["buffers"][k][(i + 1) % 2]
            await pulse(dut, "wr_start")
            while not int(dut.wr_done.value):  # the job's output is in DDR: its last B response came back
                await RisingEdge(dut.clk)
            cycles.append(now() - t0)
            written[(i, k)].set()
            await RisingEdge(dut.clk)

    async def reader() -> None:
        for i, k in jobs:
            if i:
                await written[(i - 1, k)].wait()
            while int(dut.rd_busy.value):
                await RisingEdge(dut.clk)
            dut.rd_base.value = spec["buffers"][k][i % 2]
            await pulse(dut, "rd_start")
            await RisingEdge(dut.clk)  # busy is up from here on

    for unit, side in (("rd", spec["src"]), ("wr", spec["dst"])):
        for d in "hwc":
            getattr(dut, f"{unit}_{d}").value = side[d]
    w = cocotb.start_soon(writer())
    await reader()
    await w


@cocotb.test()
async def rolled_loop_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_ROLLED_LOOP_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.rd_start.value = 0
    dut.wr_start.value = 0
    initial = Path(spec["ddr"]).read_bytes()
    gmem = [f"{u['name']}_m_axi_gmem" for u in spec["units"]]
    ddr = SharedDdr(dut, len(initial), ["m_axi_rd", *gmem], ["m_axi_wr"])
    rd, wr = ddr.reads["m_axi_rd"], ddr.writes["m_axi_wr"]
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    for u in spec["units"]:
        await program_registers(dut, f"{u['name']}_s_axi_control", u["writes"], dut.rst)
    results = []
    for p in spec["passes"]:
        ddr.start_pass(initial, p, rng)
        cycles: list[int] = []
        task = cocotb.start_soon(_blocks(dut, spec, cycles))
        timed_out = await timed_out_within(task, spec["timeout_cycles"])
        await ClockCycles(dut.clk, 4)
        Path(spec["image_dir"], f"ddr_{p['name']}.bin").write_bytes(ddr.image())
        results.append({"name": p["name"], "done_cycles": cycles, "reader_bytes": rd.bytes_read,
                        "writer_bytes": wr.bytes_written, "weight_bytes": {k[:-len("_m_axi_gmem")]: ddr.reads[k].bytes_read for k in gmem},
                        "err": {"reader": int(dut.rd_err.value), "writer": int(dut.wr_err.value)},
                        "busy": int(dut.rd_busy.value) | int(dut.wr_busy.value), "timed_out": timed_out})
        if timed_out:
            break
    write_result(spec, results)
