"""cocotb test run inside the simulator for a generated ``TokenBatchMVU_rtl`` node wrapper (FINN's port names):
AXI-Lite register writes on ``s_axi_control``, an AxiRamRead (counting bytes) with the DDR image on
``m_axi_gmem``, frames sent on ``in0_V`` and output beats collected on ``out0_V``.

Spec (JSON through ``SAMFPGA_TBNODE_SPEC``, written by ``samfpga.hw.sim.token_batch_node.simulate``): ddr, writes
[[offset, value]], frames [[beat as decimal string]], out_beats [per frame], in_bytes, out_bytes, passes [{"name",
"in_pause", "out_pause", "r_pause"}], seed, timeout_cycles, result. The registers are written once; every pass then
sends every frame, the next frame queued as soon as the previous one is, and waits for each frame's outputs.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotbext.axi import (
    AxiLiteBus,
    AxiLiteMaster,
    AxiReadBus,
    AxiStreamBus,
    AxiStreamFrame,
    AxiStreamSink,
    AxiStreamSource,
)

from samfpga.hw.sim.bench_common import CLK_NS, CountingRam, now, set_pause, timed_out_within, write_result


async def _frames(source: AxiStreamSource, sink: AxiStreamSink, spec: dict, got: list, done: list, start: int
                  ) -> None:
    ib, ob = spec["in_bytes"], spec["out_bytes"]
    for beats in spec["frames"]:
        await source.send(AxiStreamFrame(b"".join(int(v).to_bytes(ib, "little") for v in beats)))
    for n in spec["out_beats"]:
        data = b""
        while len(data) < n * ob:
            data += bytes((await sink.recv()).tdata)
        got.append([str(int.from_bytes(data[k * ob:(k + 1) * ob], "little")) for k in range(n)])
        done.append(now() - start)


@cocotb.test()
async def token_batch_node_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_TBNODE_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.ap_clk, CLK_NS, unit="ns").start())
    dut.ap_rst_n.value = 0
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "in0_V"), dut.ap_clk, dut.ap_rst_n,
                             reset_active_level=False)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "out0_V"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False)
    ddr = Path(spec["ddr"]).read_bytes()
    ram = CountingRam(AxiReadBus.from_prefix(dut, "m_axi_gmem"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False,
                      size=max(4096, len(ddr) + 4096))
    ram.write(0, ddr)
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi_control"), dut.ap_clk, dut.ap_rst_n,
                         reset_active_level=False)
    for log in (source.log, sink.log, ram.log, axil.write_if.log, axil.read_if.log):
        log.setLevel("WARNING")
    await ClockCycles(dut.ap_clk, 8)
    dut.ap_rst_n.value = 1
    await ClockCycles(dut.ap_clk, 4)
    bresp = [int((await axil.write(off, int(val).to_bytes(4, "little"))).resp) for off, val in spec["writes"]]
    results = []
    for p in spec["passes"]:
        set_pause(source, rng, float(p.get("in_pause", 0)))
        set_pause(sink, rng, float(p.get("out_pause", 0)))
        set_pause(ram.r_channel, rng, float(p.get("r_pause", 0)))
        ram.bytes_read = 0
        got: list = []
        done: list = []
        task = cocotb.start_soon(_frames(source, sink, spec, got, done, now()))
        timed_out = await timed_out_within(task, spec["timeout_cycles"])
        await ClockCycles(dut.ap_clk, 8)
        status = int.from_bytes((await axil.read(0x04, 4)).data, "little")
        results.append({"name": p["name"], "outputs": got, "frame_done_cycles": done, "ddr_bytes": ram.bytes_read,
                        "status": status, "bresp": bresp, "extra_beats": sink.count(), "timed_out": timed_out})
        if timed_out:
            break
    write_result(spec, results)
