"""cocotb test run inside the simulator for ``rolled_loop_top``: one DDR (cocotbext-axi's memory, shared by an AXI
RAM on the reader's and the writer's masters), the host's loop in Python.

Spec (JSON through ``SAMFPGA_ROLLED_LOOP_SPEC``, written by ``samfpga.hw.sim.rolled_loop.simulate``): ddr (the
initial image), src, dst ({h, w, c}: the part's input and output tensors in DDR, c bytes per pixel), blocks,
buffers (per map in the loop, its two buffers' base addresses: K maps interleaved, ``loop_frames``), units [{"name",
"writes"}] (the part's token-batched units: an AXI RAM on ``<name>_m_axi_gmem`` reading the same DDR, and the
register writes [offset, word] made once through an AXI-Lite master on ``<name>_s_axi_control`` after reset),
runtime [{"name", "writes"}] (the part's runtime-writeable layers: their words [byte address, word] written once
through ``<name>_s_axilite`` after reset, as the board's driver loads URAM the bitstream cannot initialise),
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
from cocotb.triggers import ClockCycles, Event

from samfpga.backends.unit_regs import (
    AP_DONE,
    AP_START,
    CTRL,
    STATUS,
    STATUS_BUSY,
    STRIP_READER,
    STRIP_WRITER,
)
from samfpga.hw.sim.bench_common import (
    CLK_NS,
    SharedDdr,
    axil_master,
    axil_read,
    axil_write,
    now,
    program_registers,
    timed_out_within,
    write_result,
)


async def _blocks(dut, spec: dict, cycles: list[int], rd, wr) -> None:
    """The host's loop over ``blocks`` blocks of ``len(buffers)`` maps, block after block and, within a block, map
    after map, through the DMA engines' registers only (``rd``, ``wr``: AXI-Lite masters; ``unit_regs``), as the
    board's driver does: the writer's job (i, k) is configured and started, then CTRL polled every
    ``poll_cycles`` until ap_done (its last B response: the map's block is in DDR), then the next; the reader's job
    (i, k) is configured and started once the writer has finished (i - 1, k) and no start of the reader is pending
    (the unit samples its registers at the start, so they may be written while it runs a job). ``cycles``: the
    cycle each job's ap_done was seen, from the first start."""
    jobs = [(i, k) for i in range(spec["blocks"]) for k in range(len(spec["buffers"]))]
    written = {job: Event() for job in jobs}
    poll = spec["poll_cycles"]
    t0 = now()

    async def job(master, regs, cfg: dict) -> None:
        for off, val in regs.writes({**cfg, "tiles": 1, "halo": 0}):
            assert await axil_write(master, off, val) == 0, f"{regs.unit}: write at {off:#x} refused"
        assert await axil_write(master, CTRL, AP_START) == 0

    async def writer() -> None:
        for i, k in jobs:
            await job(wr, STRIP_WRITER, {"base": spec["buffers"][k][(i + 1) % 2], **spec["dst"]})
            while not (await axil_read(wr, CTRL))[0] & AP_DONE:
                await ClockCycles(dut.clk, poll)
            cycles.append(now() - t0)
            written[(i, k)].set()

    async def reader() -> None:
        for i, k in jobs:
            if i:
                await written[(i - 1, k)].wait()
            while (await axil_read(rd, CTRL))[0] & AP_START:  # the previous job has not started yet
                await ClockCycles(dut.clk, poll)
            await job(rd, STRIP_READER, {"base": spec["buffers"][k][i % 2], **spec["src"]})

    w = cocotb.start_soon(writer())
    await reader()
    await w


@cocotb.test()
async def rolled_loop_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_ROLLED_LOOP_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    initial = Path(spec["ddr"]).read_bytes()
    gmem = [f"{u['name']}_m_axi_gmem" for u in spec["units"]]
    ddr = SharedDdr(dut, len(initial), ["m_axi_rd", *gmem], ["m_axi_wr"])
    rd, wr = ddr.reads["m_axi_rd"], ddr.writes["m_axi_wr"]
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    for u in spec["units"]:
        await program_registers(dut, f"{u['name']}_s_axi_control", u["writes"], dut.rst)
    for r in spec["runtime"]:
        await program_registers(dut, f"{r['name']}_s_axilite", r["writes"], dut.rst)
    rd_regs, wr_regs = (axil_master(dut, rng, 0.0, f"{u}_s_axil") for u in ("rd", "wr"))
    results = []
    for p in spec["passes"]:
        ddr.start_pass(initial, p, rng)
        cycles: list[int] = []
        task = cocotb.start_soon(_blocks(dut, spec, cycles, rd_regs, wr_regs))
        timed_out = await timed_out_within(task, spec["timeout_cycles"])
        await ClockCycles(dut.clk, 4)
        rs, ws = (await axil_read(rd_regs, STATUS))[0], (await axil_read(wr_regs, STATUS))[0]
        Path(spec["image_dir"], f"ddr_{p['name']}.bin").write_bytes(ddr.image())
        results.append({"name": p["name"], "done_cycles": cycles, "reader_bytes": rd.bytes_read,
                        "writer_bytes": wr.bytes_written, "weight_bytes": {k[:-len("_m_axi_gmem")]: ddr.reads[k].bytes_read for k in gmem},
                        "err": {"reader": rs & ((1 << STRIP_READER.err_bits) - 1),
                                "writer": ws & ((1 << STRIP_WRITER.err_bits) - 1)},
                        "busy": int(bool((rs | ws) & STATUS_BUSY)),
                        "timed_out": timed_out})
        if timed_out:
            break
    write_result(spec, results)
