"""The byte gearbox (``hw/samfpga/hw/rtl/byte_gearbox.sv``: a byte stream re-cut from IN_B to OUT_B bytes per beat,
packets kept apart, partial last beats by tkeep) and the Verilator + cocotb runner of its bench
(``byte_gearbox_bench``). Its reference is the identity on each packet's bytes."""

from __future__ import annotations

import time
from pathlib import Path

from samfpga.hw.sim.own_rtl import build_own_rtl, run_bench
from samfpga.hw.sim.toolchain import setup_verilator_env

BENCH_MODULE = "samfpga.hw.sim.byte_gearbox_bench"


def build(in_b: int, out_b: int, work_dir: Path) -> float:
    """Verilator build of the gearbox from ``in_b`` to ``out_b`` bytes per beat; returns seconds."""
    return build_own_rtl("byte_gearbox", {"IN_B": in_b, "OUT_B": out_b}, work_dir)


def simulate(packets: list[bytes], passes: list[dict], work_dir: Path, seed: int = 0, tag: str = "run"
             ) -> tuple[list[dict], str, float]:
    """Send every packet through a gearbox built by ``build`` in each pass ({"name", "in_pause", "out_pause"});
    returns (per pass the packets received as hex and the cycles, an error or "", seconds)."""
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = Path(work_dir) / tag
    run.mkdir(parents=True, exist_ok=True)
    spec = {"packets": [p.hex() for p in packets], "passes": passes, "seed": seed,
            "timeout_cycles": 20 * sum(len(p) + 8 for p in packets) + 2000, "result": str(run / "result.json")}
    res, err = run_bench("byte_gearbox", BENCH_MODULE, "SAMFPGA_GEARBOX_SPEC", spec, run, Path(work_dir) / "sim_build")
    return res, err, round(time.monotonic() - t0, 2)
