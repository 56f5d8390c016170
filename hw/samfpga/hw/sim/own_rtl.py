"""Verilator build of one of the project's own RTL modules (hw/samfpga/hw/rtl/<top>.sv) for a cocotb bench."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from samfpga.hw.sim.runner import VERILATOR_ARGS
from samfpga.hw.sim.toolchain import prune_build, setup_verilator_env
from samfpga.resources import package_path


def build_own_rtl(top: str, parameters: dict, work_dir: Path) -> float:
    """Build module ``top`` (its file, and those of the own modules it instantiates: ``synth.own_rtl.own_modules``,
    copied to ``work_dir/hdl``) at ``parameters`` into ``work_dir/sim_build``; returns seconds."""
    from cocotb_tools.runner import get_runner

    from samfpga.hw.synth.own_rtl import own_modules

    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    sources = []
    for name in own_modules(top):
        src = work_dir / "hdl" / f"{name}.sv"
        src.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(package_path("samfpga.hw", "rtl", f"{name}.sv"), src)
        sources.append(src)
    get_runner("verilator").build(sources=sources, hdl_toplevel=top, build_dir=work_dir / "sim_build",
                                  build_args=VERILATOR_ARGS, parameters=parameters, always=True,
                                  log_file=work_dir / "build.log")
    prune_build(work_dir / "sim_build")
    return time.monotonic() - t0


def run_bench(top: str, bench_module: str, spec_env: str, spec: dict, run: Path, build_dir: Path
              ) -> tuple[list, str]:
    """Write ``spec`` to ``run/spec.json`` (its path in env ``spec_env``), run cocotb ``bench_module`` on ``top``
    built in ``build_dir``; returns (the passes the bench wrote to ``spec["result"]``, an error or "")."""
    from cocotb_tools.runner import get_runner

    (run / "spec.json").write_text(json.dumps(spec))
    error = ""
    try:
        get_runner("verilator").test(test_module=bench_module, hdl_toplevel=top, hdl_toplevel_lang="verilog",
                                     build_dir=build_dir, test_dir=run, extra_env={spec_env: str(run / "spec.json")},
                                     results_xml=str(run / "results.xml"), log_file=run / "sim.log")
    except (Exception, SystemExit) as exc:  # a failing cocotb test exits the runner; details in result.json
        error = f"{type(exc).__name__}: {exc} (logs in {run})"
    rfile = Path(spec["result"])
    if rfile.is_file():
        return json.loads(rfile.read_text())["passes"], error
    return [], error or f"simulation wrote no result (logs in {run})"
