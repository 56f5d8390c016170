"""RTL simulation of a ``TokenBatchMVU_rtl`` FINN node as its HDL generation writes it (the node wrapper with FINN's
port names around ``token_batch_mvu_axil``): the Verilator build of the generated files and the runner of its
cocotb bench (``token_batch_node_bench``), which configures the node over ``s_axi_control``, serves its weights
from an AXI RAM holding the graph's DDR image on ``m_axi_gmem``, and streams frames through ``in0_V`` / ``out0_V``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from samfpga.hw.sim import token_batch_mvu as tb
from samfpga.hw.sim.own_rtl import run_bench
from samfpga.hw.sim.runner import VERILATOR_ARGS
from samfpga.hw.sim.toolchain import prune_build, setup_verilator_env

BENCH_MODULE = "samfpga.hw.sim.token_batch_node_bench"


@dataclass
class NodeResult:
    passes: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    error: str = ""


def generate(model, node_name: str, work_dir: Path, fpgapart: str = "xck26-sfvc784-2LV-c") -> tuple[str, list[str]]:
    """Run the node's ``generate_hdl`` into ``work_dir/ipgen``; returns (top module, absolute source paths)."""
    from qonnx.custom_op.registry import getCustomOp

    op = getCustomOp(model.get_node_from_name(node_name))
    code = work_dir / "ipgen"
    code.mkdir(parents=True, exist_ok=True)
    op.set_nodeattr("code_gen_dir_ipgen", str(code))
    op.generate_hdl(model, fpgapart, 5.0)
    return op.get_nodeattr("gen_top_module"), op.get_rtl_file_list(abspath=True)


def build(top: str, sources: list[str], work_dir: Path) -> float:
    """Verilator build of the generated wrapper and its sources into ``work_dir/sim_build``; returns seconds."""
    from cocotb_tools.runner import get_runner

    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    get_runner("verilator").build(sources=[Path(s) for s in sources], hdl_toplevel=top,
                                  build_dir=work_dir / "sim_build", build_args=VERILATOR_ARGS, always=True,
                                  log_file=work_dir / "build.log")
    prune_build(work_dir / "sim_build")
    return time.monotonic() - t0


def simulate(top: str, cfg: tb.TokenBatchConfig, frames: list[np.ndarray], ddr: bytes, base: int,
             writes: list[tuple[int, int]], passes: list[dict], work_dir: Path, seed: int = 0,
             tag: str = "run") -> NodeResult:
    """Run the bench: the register ``writes`` over AXI-Lite, then every frame (x: (t, mw) integers) through the
    streams, per pass ({"name", "in_pause", "out_pause", "r_pause"}). ``ddr`` is placed at address ``base``. Per
    pass the result has each frame's output beats (ints), STATUS after the frames, and the bytes read from DDR."""
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = work_dir / tag
    run.mkdir(parents=True, exist_ok=True)
    (run / "ddr.bin").write_bytes(bytes(base) + ddr)
    spec = {"ddr": str(run / "ddr.bin"), "writes": [list(w) for w in writes], "passes": passes, "seed": seed,
            "frames": [[str(v) for v in tb.pack_inputs(x[None], cfg)] for x in frames],
            "out_beats": [x.shape[0] * cfg.nf for x in frames],
            "in_bytes": cfg.in_stream_bits // 8, "out_bytes": cfg.out_stream_bits // 8,
            "timeout_cycles": 50 * sum(tb.schedule_cycles(cfg, 1, x.shape[0])["total"] for x in frames) + 20000,
            "result": str(run / "result.json")}
    res = NodeResult()
    res.passes, res.error = run_bench(top, BENCH_MODULE, "SAMFPGA_TBNODE_SPEC", spec, run, work_dir / "sim_build")
    res.wall_s = round(time.monotonic() - t0, 2)
    return res
