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
image_dir. Per pass the board's own host code runs (``samfpga.backends.rolled_host.run_loop``, in a cocotb bridge
thread whose register accesses are AXI-Lite transactions): for each block i and map k it starts the reader on the
map's buffer i % 2 and the writer on its buffer (i + 1) % 2, the reader of block i + 1 of a map only after the
writer's done (its last B response: the map's block i is in DDR). The body's layers pick block i's parameters
themselves (they count their passes). Per pass the DDR image is written to image_dir/ddr_<name>.bin; the
result has per-block cycles, the bytes each port moved and the error flags.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles

from samfpga.backends.rolled_host import run_loop
from samfpga.backends.unit_regs import (
    STATUS,
    STATUS_BUSY,
    STRIP_READER,
    STRIP_WRITER,
    UnitDriver,
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


class _Mmio:
    """A ``pynq.MMIO``-like register window for the host's code in a bridge thread: each access one AXI-Lite
    transaction of ``master`` (a refused access fails the bench, as a bus error would stop the board's CPU)."""

    def __init__(self, master, unit: str) -> None:
        self.master, self.unit = master, unit
        self.read = resume(self._read)
        self.write = resume(self._write)

    async def _read(self, off: int) -> int:
        val, resp = await axil_read(self.master, off)
        assert resp == 0, f"{self.unit}: read at {off:#x} refused"
        return val

    async def _write(self, off: int, val: int) -> None:
        assert await axil_write(self.master, off, val) == 0, f"{self.unit}: write at {off:#x} refused"


async def _blocks(dut, spec: dict, cycles: list[int], rd, wr) -> None:
    """One pass of the loop, run by the board's own host code (``samfpga.backends.rolled_host.run_loop``) in a
    bridge thread over the DMA engines' AXI-Lite (``rd``, ``wr``), polling CTRL every ``poll_cycles``; ``cycles``:
    the cycle each job's ap_done was seen, from the first start."""
    poll = spec["poll_cycles"]
    t0 = now()

    async def pause() -> None:
        await ClockCycles(dut.clk, poll)

    async def written(_job) -> None:
        cycles.append(now() - t0)

    reader, writer = (UnitDriver(_Mmio(m, regs.unit), regs) for m, regs in ((rd, STRIP_READER), (wr, STRIP_WRITER)))
    host = bridge(run_loop)
    await host(reader, writer, spec["blocks"], [tuple(b) for b in spec["buffers"]], spec["src"], spec["dst"],
               wait=resume(pause), timeout_s=None, on_written=resume(written))


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
                        "err": {"reader": STRIP_READER.err(rs), "writer": STRIP_WRITER.err(ws)},
                        "busy": int(bool((rs | ws) & STATUS_BUSY)),
                        "timed_out": timed_out})
        if timed_out:
            break
    write_result(spec, results)
