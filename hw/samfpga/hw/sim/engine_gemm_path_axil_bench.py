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

A pass with ``host`` (an engine host folder: ``samfpga.backends.engine_host``) and ``x`` (an .npy of the
accelerator input) is the board's frame instead: in the bridge thread the host's own code loads the DDR
(``load_regions``: zeros and host.json's regions, over whatever the DDR held) and runs ``run_frame`` (the input
written, host.json's steps relocated to the DDR's address 0 run by the sequencer, the output read); the result has
its ``output``, its steps' MMIO writes and polls and the frame's cycles (no bad steps, no read-back). ``overlap``:
the sequencer writes each step's registers while the step before runs (``StepSequencer``).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.task import bridge
from cocotb.triggers import ClockCycles

from samfpga.backends.base import BackendError
from samfpga.backends.engine_host import load_regions, read_engine_host, relocated, run_frame
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


class DdrView:
    """The bench's DDR (cocotbext-axi's memory) as the host's uint8 buffer: the slices ``engine_host`` reads and
    writes."""

    dtype = np.dtype(np.uint8)

    def __init__(self, ddr: SharedDdr) -> None:
        self.ram, self.size = next(iter(ddr.reads.values())), ddr.size

    def _range(self, sl: slice) -> tuple[int, int]:
        start, stop, step = sl.indices(self.size)
        assert step == 1
        return start, stop

    def __getitem__(self, sl: slice) -> np.ndarray:
        a, b = self._range(sl)
        return np.frombuffer(self.ram.read(a, b - a), dtype=np.uint8)

    def __setitem__(self, sl: slice, value) -> None:
        a, b = self._range(sl)
        self.ram.write(a, np.broadcast_to(np.asarray(value, dtype=np.uint8), (b - a,)).tobytes())


async def _host_pass(seq: StepSequencer, p: dict, ddr: SharedDdr, out: dict) -> None:
    host = read_engine_host(p["host"])
    x = np.load(p["x"])
    buf = DdrView(ddr)

    load = bridge(lambda: load_regions(buf, host))
    await load()
    t0 = now()  # the frame's cycles from its first register write to the last step's end (its loading excluded)
    y, recs = await bridge(lambda: run_frame(seq, buf, host, x, 0, steps=relocated(host, 0), timeout_s=600.0))()
    out["cycles"] = now() - t0
    out["steps"] = [{"writes": r.writes, "polls": r.polls} for r in recs]
    out["output"] = np.asarray(y).ravel().tolist()


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
        seq = StepSequencer(BridgeMMIO(master), "engine_gemm_path", only_changed=bool(p.get("only_changed", True)),
                            overlap=bool(p.get("overlap", False)))
        out: dict = {"name": p["name"], "steps": [], "bad": []}
        host = "host" in p
        task = cocotb.start_soon(_host_pass(seq, p, ddr, out) if host else _pass(seq, spec, out))
        out["timed_out"] = await timed_out_within(task, spec["timeout_cycles"])
        await ClockCycles(dut.clk, 4)
        if not out["timed_out"] and not host:  # the registers of the last step run, read back: [offset, written, read, RRESP]
            last = (spec["bad_steps"] or spec["steps"])[-1]
            out["readback"] = [[o, v, *(await axil_read(master, o))] for o, v in ENGINE_GEMM_PATH.writes(last)]
        Path(spec["image_dir"], f"ddr_{p['name']}.bin").write_bytes(ddr.image())
        results.append(out)
        if out["timed_out"]:
            break
    write_result(spec, results)
