"""Verilator build of one of the project's own RTL modules (hw/samfpga/hw/rtl/<top>.sv) for a cocotb bench."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from samfpga.hw.sim.runner import VERILATOR_ARGS
from samfpga.hw.sim.toolchain import setup_verilator_env
from samfpga.resources import package_path


def build_own_rtl(top: str, parameters: dict, work_dir: Path) -> float:
    """Build module ``top`` (its file copied to ``work_dir/hdl``) at ``parameters`` into ``work_dir/sim_build``;
    returns seconds."""
    from cocotb_tools.runner import get_runner

    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    src = work_dir / "hdl" / f"{top}.sv"
    src.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(package_path("samfpga.hw", "rtl", f"{top}.sv"), src)
    get_runner("verilator").build(sources=[src], hdl_toplevel=top, build_dir=work_dir / "sim_build",
                                  build_args=VERILATOR_ARGS, parameters=parameters, always=True,
                                  log_file=work_dir / "build.log")
    return time.monotonic() - t0
