"""The engine's GEMM path as one design (``hw/samfpga/hw/rtl/engine_gemm_path.sv``: access reader -> widened
activations -> token_batch_mvu -> access writer): which steps of an engine program it runs, their register values,
a DDR image holding the program's weights and stored tensors, and the Verilator + cocotb runner of its bench
(``engine_gemm_path_bench``).

A step runs here when its GEMM needs nothing on its streams (``plain_gemm_steps``: no image table, LayerNorm,
sliding window or residual adder) and its layer fills whole folds (no padded inputs or outputs to insert or drop).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from samfpga.hw.sim import access_reader as ar
from samfpga.hw.sim.access_reader import AccessFrame
from samfpga.hw.sim.dma_access import Access
from samfpga.hw.sim.own_rtl import build_own_rtl, run_bench
from samfpga.hw.sim.toolchain import setup_verilator_env

BENCH_MODULE = "samfpga.hw.sim.engine_gemm_path_bench"
#: the unit's parameters the path passes through (token_batch_mvu.sv's, RQ / RT_SHAPE / A_SIGNED fixed to 1)
UNIT_PARAMS = ("MW", "MH", "SIMD", "PE", "A_BITS", "W_BITS", "ACC_BITS", "B", "AXI_DW", "AXI_AW", "MAX_BURST",
               "WFIFO_DEPTH", "CNT_BITS", "OUT_BITS", "RS_BITS", "RB_BITS", "RT_BITS", "PQ_DEPTH", "DOT", "RAW_OUT",
               "RAW_BITS")
PAGE = 4096


def plain_gemm_steps(prog) -> list:
    """The steps of ``prog`` (an ``EngineProgram``) the GEMM path runs: kind gemm, nothing on the unit's streams,
    whole folds in and out."""
    return [s for s in prog.steps if s.kind == "gemm" and s.table is None and s.ln is None and s.window is None
            and s.residual is None and s.mw == s.layer.mw and s.mh == s.layer.mh]


def rtl_params(prog, dma_burst: int = 16) -> dict[str, int]:
    u = prog.unit
    if not (u.requant and u.rt_shape and u.a_signed and u.a_bits >= 8):
        raise ValueError("the GEMM path needs a requantising, run-time-shaped unit with signed activations of at "
                         f"least 8 bits (got requant={u.requant}, rt_shape={u.rt_shape}, a_bits={u.a_bits})")
    p = u.rtl_params()
    return {**{k: p[k] for k in UNIT_PARAMS}, "DMA_BURST": dma_burst}


@dataclass
class DdrLayout:
    """Where the program lives in DDR: its weight image at ``image_base``, each stored tensor at ``bases[name]``
    (every one on its own 4 KiB page)."""

    image_base: int
    bases: dict[str, int]
    size: int


def layout(prog, tensors: list[str]) -> DdrLayout:
    """The weight image at 0, then ``tensors`` one after another, each on a new page."""
    off = -(-len(prog.image) // PAGE) * PAGE
    bases = {}
    for t in dict.fromkeys(tensors):
        bases[t] = off
        off += -(-_tensor_bytes(prog, t) // PAGE) * PAGE
    return DdrLayout(0, bases, off)


def _tensor_bytes(prog, t: str) -> int:
    for s in prog.steps:
        if s.output == t:
            return int(np.prod(s.out_shape)) * prog.elem_bytes(t)
    for s in prog.steps:
        for o in (s.input, s.residual, s.weights):
            if o is not None and o.tensor == t:
                return (int(o.access.indices().max()) + 1) * prog.elem_bytes(t)
    raise KeyError(t)


def step_config(prog, s, lay: DdrLayout) -> dict[str, int]:
    """Every configuration port of the path for step ``s``: the reader's (``rd_cfg_*``, its input's address pattern),
    the input's sign, the unit's (``wt_cfg_*``: the layer's weights in the program's image, its shape, raw or
    requantised, the clip's sign) and the writer's (``wr_cfg_*``, the output's pattern)."""
    if not any(s is p for p in plain_gemm_steps(prog)):
        raise ValueError(f"step {s.name} ({s.kind}): not a plain GEMM step of whole folds; the path runs "
                         "plain_gemm_steps only")
    rd = ar.frame_config(AccessFrame(s.input.access, lay.bases[s.input.tensor], prog.elem_bytes(s.input.tensor)))
    n = int(np.prod(s.out_shape))
    wr = ar.frame_config(AccessFrame(s.write if s.write is not None else Access(0, n, ()), lay.bases[s.output],
                                     prog.elem_bytes(s.output)))
    c = s.layer
    unit = {"base": lay.image_base + s.offset, "stride": c.min_stride, "iters": s.iters, "tokens": s.tokens,
            "sf": c.sf, "nf": c.nf, "batch": c.batch, "raw": int(c.raw),
            "unsigned": int(c.requantises and not c.out_signed)}
    return {**{f"rd_cfg_{k}": v for k, v in rd.items()}, "cfg_in_unsigned": int(s.in_dtype.startswith("UINT")),
            **{f"wt_cfg_{k}": v for k, v in unit.items()}, **{f"wr_cfg_{k}": v for k, v in wr.items()}}


@dataclass
class PathResult:
    passes: list[dict] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)
    wall_s: float = 0.0
    error: str = ""


def build(prog, work_dir: Path, dma_burst: int = 16) -> float:
    """Verilator build of the path for ``prog``'s unit into ``work_dir/sim_build``; returns seconds."""
    return build_own_rtl("engine_gemm_path", rtl_params(prog, dma_burst), work_dir)


def simulate(steps: list[dict], ddr: bytes, passes: list[dict], work_dir: Path, seed: int = 0, tag: str = "run"
             ) -> PathResult:
    """Run the bench on a design built by ``build``: every pass ({"name", "ar_pause", "r_pause", "aw_pause",
    "w_pause", "b_pause"}) starts from ``ddr`` and runs ``steps`` (``step_config`` of each) in order."""
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = work_dir / tag
    run.mkdir(parents=True, exist_ok=True)
    (run / "ddr.bin").write_bytes(ddr)
    spec = {"ddr": str(run / "ddr.bin"), "steps": steps, "passes": passes, "seed": seed,
            "timeout_cycles": 20 * len(ddr) + 50000, "image_dir": str(run), "result": str(run / "result.json")}
    res = PathResult()
    res.passes, res.error = run_bench("engine_gemm_path", BENCH_MODULE, "SAMFPGA_GEMM_PATH_SPEC", spec, run,
                                      work_dir / "sim_build")
    res.images = [(run / f"ddr_{p['name']}.bin").read_bytes() for p in res.passes
                  if (run / f"ddr_{p['name']}.bin").is_file()]
    res.wall_s = round(time.monotonic() - t0, 2)
    return res
