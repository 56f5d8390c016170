"""cocotb test run inside the simulator for ``engine_gemm_path_axil``: the engine's GEMM path behind its AXI4-Lite
register block, run by the board's own host sequencer (``samfpga.backends.step_sequencer.StepSequencer``) in a
cocotb bridge thread whose MMIO reads / writes are AXI-Lite transactions (``read_dma_axil_bench.BridgeMMIO``); one
DDR shared by the path's five masters (``bench_common.SharedDdr``).

Spec (JSON through ``SAMFPGA_GEMM_PATH_AXIL_SPEC``, written by ``samfpga.hw.sim.engine_gemm_path.simulate_axil``):
ddr (the initial image), steps [{key: value}] (``step_config``), names, bad_steps [{key: value}] (run after the
steps, each expected to raise), passes [{"name", "ar_pause", ..., "axil_pause", "only_changed"}], seed,
timeout_cycles, result, image_dir. Per pass the DDR image after the steps is written to image_dir/ddr_<name>.bin; the
result has each step's cycles, MMIO writes and polls, each bad step's error message, and the last step's registers
read back after it.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.task import bridge
from cocotb.triggers import ClockCycles

from samfpga.backends.base import BackendError
from samfpga.backends.step_sequencer import StepSequencer
from samfpga.backends.unit_regs import ENGINE_GEMM_PATH
from samfpga.hw.sim.bench_common import (
    CLK_NS,
    SharedDdr,
    axil_master,
    axil_read,
    now,
    set_pause,
    timed_out_within,
    write_result,
)
from samfpga.hw.sim.read_dma_axil_bench import BridgeMMIO


async def _pass(seq: StepSequencer, spec: dict, out: dict) -> None:
    for i, cfg in enumerate(spec["steps"]):
        t0 = now()
        rec = await bridge(seq.run_step)(cfg, spec["names"][i], i, 600.0)
        out["steps"].append({"cycles": now() - t0, "writes": rec.writes, "polls": rec.polls})
    for cfg in spec["bad_steps"]:
        try:
            await bridge(seq.run_step)(cfg, "bad", len(out["steps"]), 600.0)
            out["bad"].append("")
        except BackendError as exc:
            out["bad"].append(f"{type(exc).__name__}: {exc}")


@cocotb.test()
async def engine_gemm_path_axil_bench(dut):
    spec = json.loads(Path(os.environ["SAMFPGA_GEMM_PATH_AXIL_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    initial = Path(spec["ddr"]).read_bytes()
    ddr = SharedDdr(dut, len(initial), ["m_axi_rd", "m_axi_wt", "m_axi_rs", "m_axi_pm"], ["m_axi_wr"])
    master = axil_master(dut, rng, 0.0)
    results = []
    for p in spec["passes"]:
        dut.rst.value = 1  # each pass from reset: the sequencer's first step writes every register
        await ClockCycles(dut.clk, 8)
        dut.rst.value = 0
        await ClockCycles(dut.clk, 4)
        for ch in (master.write_if.aw_channel, master.write_if.w_channel, master.read_if.ar_channel):
            set_pause(ch, rng, float(p.get("axil_pause", 0)))
        ddr.start_pass(initial, p, rng)
        seq = StepSequencer(BridgeMMIO(master), "engine_gemm_path", only_changed=bool(p.get("only_changed", True)))
        out: dict = {"name": p["name"], "steps": [], "bad": []}
        task = cocotb.start_soon(_pass(seq, spec, out))
        out["timed_out"] = await timed_out_within(task, spec["timeout_cycles"])
        await ClockCycles(dut.clk, 4)
        if not out["timed_out"]:  # the registers of the last step run, read back: [offset, written, read, RRESP]
            last = (spec["bad_steps"] or spec["steps"])[-1]
            out["readback"] = [[o, v, *(await axil_read(master, o))] for o, v in ENGINE_GEMM_PATH.writes(last)]
        Path(spec["image_dir"], f"ddr_{p['name']}.bin").write_bytes(ddr.image())
        results.append(out)
        if out["timed_out"]:
            break
    write_result(spec, results)
