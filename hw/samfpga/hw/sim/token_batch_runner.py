"""Build ``token_batch_mvu.sv`` with Verilator for one parameter set and run its cocotb bench
(``samfpga.hw.sim.token_batch_bench``) on frames made by the numpy side (``samfpga.hw.sim.token_batch_mvu``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from samfpga.hw.sim.own_rtl import build_own_rtl, run_bench
from samfpga.hw.sim.token_batch_mvu import (
    RequantParams,
    TokenBatchConfig,
    pack_inputs,
    pack_outputs,
    pack_weights,
    reference,
)
from samfpga.hw.sim.toolchain import setup_verilator_env

BENCH_MODULE = "samfpga.hw.sim.token_batch_bench"


@dataclass
class Frame:
    """One frame: inputs x (n, t, mw) and weights w (n, mh, mw) (and, for a requantising unit, its parameters),
    placed in DDR at ``base`` with ``stride``. ``shape``: on a run-time-shaped unit, the layer's configuration
    (``token_batch_mvu.layer_shape``), whose registers the bench writes; None: the unit's own."""

    x: np.ndarray
    w: np.ndarray
    base: int = 0
    stride: int | None = None
    rq: RequantParams | None = None
    shape: TokenBatchConfig | None = None

    def config(self, unit: TokenBatchConfig) -> TokenBatchConfig:
        return unit if self.shape is None else self.shape


@dataclass
class Pass:
    """One pass over every frame with these stall probabilities (see ``token_batch_bench``)."""

    name: str
    pause: float = 0.0
    ar_pause: float = 0.0
    r_pause: float = 0.0


@dataclass
class TokenBatchResult:
    config: dict
    passes: list[dict] = field(default_factory=list)
    build_s: float = 0.0
    wall_s: float = 0.0
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and bool(self.passes) and all(
            p["mismatches"] == 0 and p["words_compared"] > 0 and p["err"] == 0 for p in self.passes)


def ddr_image(frames: list[Frame], cfg: TokenBatchConfig) -> bytes:
    """One DDR image holding every frame's weights at its base (overlapping regions must hold equal bytes)."""
    img = bytearray()
    for f in frames:
        fc = f.config(cfg)
        stride = fc.min_stride if f.stride is None else f.stride
        data = pack_weights(f.w, fc, stride, f.rq)
        end = f.base + len(data)
        if len(img) < end:
            img += bytes(end - len(img))
        old = bytes(img[f.base:end])
        if any(old) and old != data:
            raise ValueError(f"frame at base {f.base:#x}: its weights overlap another frame's different weights")
        img[f.base:end] = data
    return bytes(img)


def frame_spec(f: Frame, cfg: TokenBatchConfig, expected: np.ndarray | None = None) -> dict:
    cfg = f.config(cfg)
    n, t, _ = np.asarray(f.x).shape
    y = reference(f.x, f.w, cfg, f.rq) if expected is None else expected
    return {"n": n, "t": t, "base": f.base, "stride": cfg.min_stride if f.stride is None else f.stride,
            "sf": cfg.sf, "nf": cfg.nf, "batch": cfg.batch, "raw": int(cfg.raw),
            # a run-time-shaped unit clips each frame to its own sign (cfg_unsigned)
            "unsigned": cfg.unsigned_flag,
            "inputs": [str(v) for v in pack_inputs(f.x, cfg)], "expected": [str(v) for v in pack_outputs(y, cfg)]}


def build(cfg: TokenBatchConfig, work_dir: Path) -> float:
    """Verilator build of the unit at ``cfg``'s parameters into ``work_dir/sim_build``; returns seconds."""
    return build_own_rtl("token_batch_mvu", cfg.rtl_params(), work_dir)


def simulate(cfg: TokenBatchConfig, frames: list[Frame], passes: list[Pass], work_dir: Path, seed: int = 0,
             expected: list[np.ndarray] | None = None, ddr: bytes | None = None, tag: str = "run"
             ) -> TokenBatchResult:
    """Run the bench on a design built by ``build`` in ``work_dir``. ``expected`` (per frame, (n, t, mh)) replaces
    the reference; ``ddr`` replaces the image made from the frames' weights (negative controls)."""

    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = work_dir / tag
    run.mkdir(parents=True, exist_ok=True)
    image = ddr_image(frames, cfg) if ddr is None else ddr
    (run / "ddr.bin").write_bytes(image)
    specs = [frame_spec(f, cfg, None if expected is None else expected[k]) for k, f in enumerate(frames)]
    words = sum(len(s["inputs"]) + len(s["expected"]) for s in specs)
    macs = sum(s["n"] * s["t"] * f.config(cfg).nf * f.config(cfg).sf for s, f in zip(specs, frames, strict=True))
    reads = sum(s["n"] * -(-s["t"] // f.config(cfg).batch) * f.config(cfg).beats
                for s, f in zip(specs, frames, strict=True))
    spec = {"ddr": str(run / "ddr.bin"), "frames": specs, "passes": [vars(p) for p in passes],
            "in_bits": cfg.in_stream_bits, "out_bits": cfg.out_stream_bits, "seed": seed,
            "timeout_cycles": 20 * (words + macs + reads) + 20000, "result": str(run / "result.json")}
    res = TokenBatchResult(config=cfg.to_dict())
    res.passes, res.error = run_bench("token_batch_mvu", BENCH_MODULE, "SAMFPGA_TB_MVU_SPEC", spec, run, work_dir / "sim_build")
    res.wall_s = round(time.monotonic() - t0, 2)
    return res
