"""Access reader (``hw/samfpga/hw/rtl/access_reader.sv``): the engine's read DMA for one address pattern
(``samfpga.hw.sim.dma_access.Access``). Its configuration from an access, the bytes it emits, the segments and
bursts it reads, and the Verilator + cocotb runner of its bench (``read_dma_bench``, shared with the strip reader).

An access counts elements; a stored tensor whose elements take ``elem_bytes`` bytes (a raw frame's sums) is read
with every offset, run and stride scaled by that, which keeps each run contiguous in bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samfpga.hw.sim.dma_access import Access, gather
from samfpga.hw.sim.own_rtl import build_own_rtl, run_bench
from samfpga.hw.sim.strip_reader import ReaderConfig, ReaderResult, segment_bursts
from samfpga.hw.sim.toolchain import setup_verilator_env

BENCH_MODULE = "samfpga.hw.sim.read_dma_bench"
#: loop levels of the RTL walk (level 0 outermost)
LEVELS = 6
COUNT_BITS = 16
STRIDE_BITS = 32
RUN_BITS = 32


@dataclass(frozen=True)
class AccessFrame:
    """One read: ``access`` (elements) over a stored tensor at DDR byte address ``base``, ``elem_bytes`` per
    element."""

    access: Access
    base: int = 0
    elem_bytes: int = 1

    def byte_access(self) -> Access:
        """The access in bytes, from ``base``."""
        e = self.elem_bytes
        return Access(self.base + self.access.offset * e, self.access.run * e,
                      tuple((c, s * e) for c, s in self.access.loops))


def frame_config(f: AccessFrame) -> dict[str, int]:
    """The reader's runtime configuration for ``f`` as the register map's keys (``unit_regs.ACCESS_READER``): base,
    run, count0..5, stride0..5 (two's complement). The access's loops take the innermost levels, the others count 1.
    ValueError naming the access when it does not fit the reader (more than six loops, a count, run or stride
    beyond its register)."""
    a = f.byte_access()
    if a.levels > LEVELS:
        raise ValueError(f"access {a.describe()}: {a.levels} loop levels, the access reader walks {LEVELS}")
    if a.offset + sum(min(0, (c - 1) * s) for c, s in a.loops) < 0:
        raise ValueError(f"access {a.describe()}: reads before address 0")
    if not 1 <= a.run < 1 << RUN_BITS:
        raise ValueError(f"access {a.describe()}: run of {a.run} bytes does not fit {RUN_BITS} bits")
    loops = [(1, 0)] * (LEVELS - a.levels) + list(a.loops)
    cfg = {"base": a.offset, "run": a.run}
    for k, (count, stride) in enumerate(loops):
        if not 1 <= count < 1 << COUNT_BITS:
            raise ValueError(f"access {a.describe()}: loop count {count} does not fit {COUNT_BITS} bits")
        if not -(1 << STRIDE_BITS - 1) <= stride < 1 << STRIDE_BITS - 1:
            raise ValueError(f"access {a.describe()}: stride {stride} does not fit {STRIDE_BITS} signed bits")
        cfg[f"count{k}"] = count
        cfg[f"stride{k}"] = stride & ((1 << STRIDE_BITS) - 1)
    return cfg


def fits_aligned(f: AccessFrame, cfg: ReaderConfig) -> bool:
    """Whether the reader built with ALIGNED = 1 takes ``f``: base, run and every stride on whole AXI beats (the
    RTL refuses other frames with err[1])."""
    a, db = f.byte_access(), cfg.axi_dw // 8
    return a.offset % db == 0 and a.run % db == 0 and all(s % db == 0 for _, s in a.loops)


def segments(f: AccessFrame) -> list[tuple[int, int]]:
    """(byte address, bytes) of every run, in read order."""
    a = f.byte_access()
    starts = Access(a.offset, 1, a.loops).indices()
    return [(int(s), a.run) for s in starts]


def bursts(f: AccessFrame, cfg: ReaderConfig) -> list[tuple[int, int]]:
    """(address, beats) of every read burst: each run rounded out to whole AXI beats, split at 4 KiB pages and at
    ``max_burst`` beats."""
    return [b for addr, n in segments(f) for b in segment_bursts(addr, n, cfg)]


def axi_bytes(f: AccessFrame, cfg: ReaderConfig) -> int:
    """Bytes transferred over AXI (every run rounded out to whole beats)."""
    return sum(b for _, b in bursts(f, cfg)) * (cfg.axi_dw // 8)


def reference(f: AccessFrame, ddr: bytes) -> bytes:
    """The bytes the reader emits: the access's bytes of ``ddr`` in its order."""
    return gather(np.frombuffer(ddr, np.uint8), f.byte_access()).tobytes()


def build(cfg: ReaderConfig, work_dir: Path) -> float:
    """Verilator build of the reader at ``cfg`` into ``work_dir/sim_build``; returns seconds."""
    return build_own_rtl("access_reader", cfg.rtl_params(), work_dir)


def simulate(cfg: ReaderConfig, frames: list[AccessFrame | dict], passes: list[dict], work_dir: Path, ddr: bytes,
             seed: int = 0, tag: str = "run") -> ReaderResult:
    """Run the bench on a design built by ``build``: every pass ({"name", "ar_pause", "r_pause", "out_pause"})
    reads every frame from ``ddr``, back to back. A frame given as a dict is a raw register configuration the
    reader must refuse (it emits no packet). Per pass the result has each frame's packets (``packets``: hex), the
    AXI bytes read, the bursts, each frame's end cycle and ``err`` after the pass."""
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = work_dir / tag
    run.mkdir(parents=True, exist_ok=True)
    (run / "ddr.bin").write_bytes(ddr)
    specs = [{"cfg": {f"cfg_{k}": v for k, v in (f if isinstance(f, dict) else frame_config(f)).items()},
              "packets": 0 if isinstance(f, dict) else 1} for f in frames]
    work = sum(len(segments(f)) * 4 + sum(b for _, b in bursts(f, cfg)) + f.access.size * f.elem_bytes
               for f in frames if isinstance(f, AccessFrame))
    spec = {"ddr": str(run / "ddr.bin"), "frames": specs, "passes": passes, "seed": seed,
            "timeout_cycles": 20 * work + 20000, "result": str(run / "result.json")}
    res = ReaderResult()
    res.passes, res.error = run_bench("access_reader", BENCH_MODULE, "SAMFPGA_READ_DMA_SPEC", spec, run,
                                      work_dir / "sim_build")
    res.wall_s = round(time.monotonic() - t0, 2)
    return res


def build_axil(cfg: ReaderConfig, work_dir: Path) -> float:
    """Verilator build of ``access_reader_axil`` (generated wrapper, register block, reader) at ``cfg``; returns
    seconds. Its bench is the read DMAs' AXI-Lite bench: ``strip_reader.simulate_axil(..., unit="access_reader")``."""
    return build_own_rtl("access_reader_axil", cfg.rtl_params(), work_dir)
