"""Strip padding (``hw/samfpga/hw/rtl/strip_pad.sv``): numpy reference of the padded strips it emits, the geometry
of a strip before and after it, and the Verilator + cocotb runner of its bench (``strip_pad_bench``).

A map (H, W, C) arrives as the strip reader emits it (``strip_reader.reference``): ``tiles`` strips of S = W / tiles
columns, ``halo`` columns on interior sides, clipped at the image edges. The unit inserts ``pad`` zero rows above
and below every strip and ``pad`` zero columns on each side where the strip reaches the image edge, so that a
valid k x k convolution (k = 2 pad + 1) on each strip computes the padded convolution of the whole map
(``conv_valid``, checked in tests/test_sim_strip_pad.py for one layer and for a chain of two).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from samfpga.hw.sim.own_rtl import build_own_rtl, run_bench
from samfpga.hw.sim.strip_reader import StripFrame, strip_columns
from samfpga.hw.sim.strip_reader import reference as reader_reference
from samfpga.hw.sim.toolchain import setup_verilator_env

BENCH_MODULE = "samfpga.hw.sim.strip_pad_bench"


@dataclass(frozen=True)
class PadConfig:
    """Synthesis parameters: stream beat width (bits, a multiple of 8)."""

    bw: int = 32

    def __post_init__(self) -> None:
        if self.bw <= 0 or self.bw % 8:
            raise ValueError(f"bw {self.bw}: must be a positive multiple of 8")

    def rtl_params(self) -> dict[str, int]:
        return {"BW": self.bw}


@dataclass(frozen=True)
class PadFrame:
    """One frame: the map (H, W, C) uint8 in ``tiles`` strips with ``halo``, padded by ``pad``."""

    fmap: np.ndarray
    tiles: int
    halo: int
    pad: int

    def __post_init__(self) -> None:
        StripFrame(self.fmap, self.tiles, self.halo)  # the same checks as the reader's
        if self.pad < 0:
            raise ValueError(f"pad {self.pad}: must be >= 0")

    def cb(self, cfg: PadConfig) -> int:
        """Beats per pixel; raises ValueError when C does not fill whole beats."""
        c = self.fmap.shape[2]
        if c % (cfg.bw // 8):
            raise ValueError(f"C = {c} channels do not fill whole {cfg.bw}-bit beats")
        return c // (cfg.bw // 8)


def padded_columns(w: int, tiles: int, halo: int, pad: int) -> list[tuple[int, int]]:
    """[lo, hi) image columns of each padded strip: the reader's columns, widened by ``pad`` where they reach the
    image edge (so lo may be -pad and hi W + pad)."""
    return [(lo - (pad if lo == 0 else 0), hi + (pad if hi == w else 0)) for lo, hi in strip_columns(w, tiles, halo)]


def input_strips(f: PadFrame) -> list[bytes]:
    """What the unit receives: the strip reader's strips of the map."""
    return reader_reference(StripFrame(f.fmap, f.tiles, f.halo))


def padded_strips(f: PadFrame) -> list[np.ndarray]:
    """Each padded strip as an array (H + 2 pad, cols, C), cut from the zero-padded map."""
    p = f.pad
    full = np.pad(f.fmap, ((p, p), (p, p), (0, 0)))
    return [full[:, lo + p:hi + p, :] for lo, hi in padded_columns(f.fmap.shape[1], f.tiles, f.halo, p)]


def reference(f: PadFrame) -> list[bytes]:
    """The bytes of each strip as the unit emits them."""
    return [s.tobytes() for s in padded_strips(f)]


def conv_valid(x: np.ndarray, k: np.ndarray, stride: int = 1) -> np.ndarray:
    """Depthwise k x k convolution without padding, exact in int64: x (H, W, C), k (kh, kw, C) -> (H', W', C)."""
    kh, kw, _ = k.shape
    ho = (x.shape[0] - kh) // stride + 1
    wo = (x.shape[1] - kw) // stride + 1
    out = np.zeros((ho, wo, x.shape[2]), np.int64)
    for i in range(kh):
        for j in range(kw):
            out += x[i:i + stride * ho:stride, j:j + stride * wo:stride].astype(np.int64) * k[i, j].astype(np.int64)
    return out


def out_strip_columns(w: int, tiles: int, halo: int, pad: int, k: int) -> list[tuple[int, int]]:
    """[lo, hi) image columns of what a valid k x k, stride-1 convolution computes on each padded strip."""
    return [(lo + k // 2, hi - k // 2) for lo, hi in padded_columns(w, tiles, halo, pad)]


# ---------------------------------------------------------------------------------------------------------------
# Verilator + cocotb


@dataclass
class PadResult:
    passes: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    error: str = ""


def build(cfg: PadConfig, work_dir: Path) -> float:
    """Verilator build of the unit at ``cfg`` into ``work_dir/sim_build``; returns seconds."""
    return build_own_rtl("strip_pad", cfg.rtl_params(), work_dir)


def frame_spec(f: PadFrame, cfg: PadConfig, strips: list[bytes] | None = None) -> dict:
    """The bench's description of frame ``f``: its runtime configuration and the input strips (hex; ``strips``
    replaces the reader's, for negative controls)."""
    h, w, _ = f.fmap.shape
    return {"h": h, "w": w, "tiles": f.tiles, "halo": f.halo, "cb": f.cb(cfg), "pad": f.pad,
            "strips": [s.hex() for s in (input_strips(f) if strips is None else strips)]}


def simulate(cfg: PadConfig, frames: list[dict], passes: list[dict], work_dir: Path, seed: int = 0,
             tag: str = "run") -> PadResult:
    """Run the bench on a design built by ``build``: every pass ({"name", "in_pause", "out_pause"}) sends every
    frame (``frame_spec``), each started when the unit is idle. Per pass the result has the packets received (hex),
    ``err`` after each frame and each frame's cycles."""
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = work_dir / tag
    run.mkdir(parents=True, exist_ok=True)
    beats = sum(2 * len(bytes.fromhex(s)) // (cfg.bw // 8) + 1000 for f in frames for s in f["strips"])
    spec = {"frames": frames, "passes": passes, "seed": seed, "beat_bytes": cfg.bw // 8,
            "timeout_cycles": 20 * beats + 20000, "result": str(run / "result.json")}
    res = PadResult()
    res.passes, res.error = run_bench("strip_pad", BENCH_MODULE, "SAMFPGA_PAD_SPEC", spec, run, work_dir / "sim_build")
    res.wall_s = round(time.monotonic() - t0, 2)
    return res
