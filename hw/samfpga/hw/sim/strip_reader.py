"""Strip reader (``hw/samfpga/hw/rtl/strip_reader.sv``): numpy reference of the byte stream it emits, the bytes it
reads from DDR, its read bursts, and the Verilator + cocotb runner of its bench (``read_dma_bench``, shared with the access reader).

A feature map (H, W, C) of bytes sits in DDR at ``base`` in HWC order. It is read as ``tiles`` column strips of
S = W / tiles columns with ``halo`` extra columns on each interior side (clipped at the edges): strip s covers
columns [max(0, s*S - halo), min(W, (s+1)*S + halo)), the same columns as ``samfpga.hw.plan.strips._columns``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from samfpga.hw.sim.own_rtl import build_own_rtl, run_bench
from samfpga.hw.sim.toolchain import setup_verilator_env

BENCH_MODULE = "samfpga.hw.sim.read_dma_bench"


@dataclass(frozen=True)
class ReaderConfig:
    """Synthesis parameters: AXI data width and output stream width (bits), burst limit (beats); ``aligned`` (RTL
    ALIGNED = 1): frames on whole AXI beats only (base and C multiples of the beat, stream as wide as the port), no
    realignment buffer."""

    axi_dw: int = 64
    stream_w: int = 32
    max_burst: int = 16
    aligned: bool = False

    def __post_init__(self) -> None:
        if self.axi_dw < 8 or self.axi_dw & (self.axi_dw - 1):
            raise ValueError(f"axi_dw {self.axi_dw}: must be a power of 2 >= 8")
        if self.stream_w <= 0 or self.stream_w % 8:
            raise ValueError(f"stream_w {self.stream_w}: must be a positive multiple of 8")
        if not 1 <= self.max_burst <= 256:
            raise ValueError(f"max_burst {self.max_burst}: must be 1..256")
        if self.aligned and self.stream_w != self.axi_dw:
            raise ValueError(f"aligned: stream_w {self.stream_w} must equal axi_dw {self.axi_dw}")

    def rtl_params(self) -> dict[str, int]:
        return {"AXI_DW": self.axi_dw, "STREAM_W": self.stream_w, "MAX_BURST": self.max_burst,
                "ALIGNED": int(self.aligned)}


@dataclass(frozen=True)
class StripFrame:
    """One frame: the map (H, W, C) uint8 at DDR address ``base``, read as ``tiles`` strips with ``halo``."""

    fmap: np.ndarray
    tiles: int
    halo: int
    base: int = 0

    def __post_init__(self) -> None:
        h, w, c = self.fmap.shape
        if self.fmap.dtype != np.uint8:
            raise ValueError(f"fmap dtype {self.fmap.dtype}: must be uint8")
        if self.tiles < 1 or w % self.tiles:
            raise ValueError(f"{w} columns do not split into {self.tiles} equal strips")


def strip_columns(w: int, tiles: int, halo: int) -> list[tuple[int, int]]:
    """[lo, hi) columns of each strip, halos included and clipped to the map."""
    s = w // tiles
    return [(max(0, i * s - halo), min(w, (i + 1) * s + halo)) for i in range(tiles)]


def reference(f: StripFrame) -> list[bytes]:
    """The bytes of each strip as the reader emits them: rows in order, within a row the strip's pixels, C bytes
    each."""
    return [f.fmap[:, lo:hi, :].tobytes() for lo, hi in strip_columns(f.fmap.shape[1], f.tiles, f.halo)]


def payload_bytes(h: int, w: int, c: int, tiles: int, halo: int) -> int:
    """Bytes of the map the strips cover (the planner's count): sum over strips of H x (hi - lo) x C."""
    return sum(h * (hi - lo) * c for lo, hi in strip_columns(w, tiles, halo))


def segments(f: StripFrame) -> list[tuple[int, int]]:
    """(byte address, bytes) of every strip row segment, in read order."""
    h, w, c = f.fmap.shape
    return [(f.base + (y * w + lo) * c, (hi - lo) * c) for lo, hi in strip_columns(w, f.tiles, f.halo)
            for y in range(h)]


def bursts(f: StripFrame, cfg: ReaderConfig) -> list[tuple[int, int]]:
    """(address, beats) of every read burst: each segment rounded out to whole AXI beats, split at 4 KiB pages and
    at ``max_burst`` beats."""
    return [b for addr, n in segments(f) for b in segment_bursts(addr, n, cfg)]


def segment_bursts(addr: int, n: int, cfg: ReaderConfig) -> list[tuple[int, int]]:
    """(address, beats) of the INCR bursts that cover the ``n`` bytes at ``addr``: rounded out to whole AXI beats,
    split at 4 KiB pages and at ``max_burst`` beats (the strip reader's and the strip writer's burst split)."""
    db = cfg.axi_dw // 8
    out = []
    a = addr - addr % db
    left = (addr + n - 1) // db - a // db + 1
    while left:
        b = min(left, cfg.max_burst, (4096 - a % 4096) // db)
        out.append((a, b))
        a += b * db
        left -= b
    return out


def axi_bytes(f: StripFrame, cfg: ReaderConfig) -> int:
    """Bytes transferred over AXI: the payload plus the bytes of each segment's first and last beat outside it
    (equal to ``payload_bytes`` when every segment starts and ends on a beat boundary)."""
    return sum(b for _, b in bursts(f, cfg)) * (cfg.axi_dw // 8)


def min_cycles(f: StripFrame, cfg: ReaderConfig) -> int:
    """A lower bound of a free-running frame's cycles (no stalls): the W / tiles cycles of the divider plus the
    larger of the AXI beats read (one per cycle) and the stream beats emitted (one per cycle, each strip's last beat
    partial)."""
    ob = cfg.stream_w // 8
    stream = sum(-(-len(s) // ob) for s in reference(f))
    return f.fmap.shape[1] // f.tiles + max(stream, sum(b for _, b in bursts(f, cfg)))


# ---------------------------------------------------------------------------------------------------------------
# Verilator + cocotb


@dataclass
class ReaderResult:
    passes: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    error: str = ""


def ddr_image(frames: list[StripFrame]) -> bytes:
    """One DDR image holding every frame's map at its base (overlaps must hold equal bytes)."""
    img = bytearray()
    for f in frames:
        data = f.fmap.tobytes()
        end = f.base + len(data)
        img += bytes(max(0, end - len(img)))
        old = bytes(img[f.base:end])
        if any(old) and old != data:
            raise ValueError(f"frame at base {f.base:#x} overlaps another frame's different map")
        img[f.base:end] = data
    return bytes(img)


def build(cfg: ReaderConfig, work_dir: Path) -> float:
    """Verilator build of the reader at ``cfg`` into ``work_dir/sim_build``; returns seconds."""
    return build_own_rtl("strip_reader", cfg.rtl_params(), work_dir)


def simulate(cfg: ReaderConfig, frames: list[StripFrame], passes: list[dict], work_dir: Path, seed: int = 0,
             ddr: bytes | None = None, tag: str = "run") -> ReaderResult:
    """Run the bench on a design built by ``build``: every pass ({"name", "ar_pause", "r_pause", "out_pause"})
    reads every frame; ``ddr`` replaces the image made from the frames (negative controls). Per pass the result
    has the strips received (``packets``: per frame, hex), the AXI bytes read, the bursts and the cycles of each frame."""

    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = work_dir / tag
    run.mkdir(parents=True, exist_ok=True)
    (run / "ddr.bin").write_bytes(ddr_image(frames) if ddr is None else ddr)
    specs = [{"cfg": {f"cfg_{k}": v for k, v in frame_config(f).items()}, "packets": f.tiles} for f in frames]
    work = sum(sum(b for _, b in bursts(f, cfg)) + f.fmap.size for f in frames)
    spec = {"ddr": str(run / "ddr.bin"), "frames": specs, "passes": passes, "seed": seed,
            "timeout_cycles": 20 * work + 20000, "result": str(run / "result.json")}
    res = ReaderResult()
    res.passes, res.error = run_bench("strip_reader", BENCH_MODULE, "SAMFPGA_READ_DMA_SPEC", spec, run, work_dir / "sim_build")
    res.wall_s = round(time.monotonic() - t0, 2)
    return res


# ---------------------------------------------------------------------------------------------------------------
# The reader behind its AXI4-Lite register block (rtl/strip_reader_axil.sv, docs/unit_regs.md)

AXIL_BENCH_MODULE = "samfpga.hw.sim.read_dma_axil_bench"


def frame_config(f: StripFrame) -> dict[str, int]:
    """The runtime configuration of frame ``f`` as the register map's keys (``unit_regs.STRIP_READER``)."""
    h, w, c = f.fmap.shape
    return {"base": f.base, "h": h, "w": w, "c": c, "tiles": f.tiles, "halo": f.halo}


def build_axil(cfg: ReaderConfig, work_dir: Path) -> float:
    """Verilator build of ``strip_reader_axil`` (wrapper, register block, reader) at ``cfg``; returns seconds."""
    return build_own_rtl("strip_reader_axil", cfg.rtl_params(), work_dir)


def simulate_axil(frames: list[dict], probes: list[list], work_dir: Path, ddr: bytes, seed: int = 0,
                  axil_pause: float = 0.3, driver_frames: list[dict] = (), tag: str = "axil",
                  unit: str = "strip_reader") -> ReaderResult:
    """Run ``read_dma_axil_bench`` on ``<unit>_axil`` (a read DMA: ``strip_reader`` or ``access_reader``) built in
    ``work_dir`` (``build_axil``; ``access_reader.build_axil``): ``frames`` [{"writes": [(offset,
    value)], "strips"}] each configured, started and polled over AXI-Lite, then ``probes`` [(op "r"/"w", offset,
    value)], then ``driver_frames`` [{"cfg", "strips"}] run by ``UnitDriver.run`` itself over AXI-Lite. ``passes[0]`` of the result holds per frame the responses, read-backs, CTRL / STATUS values and strips."""
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = work_dir / tag
    run.mkdir(parents=True, exist_ok=True)
    (run / "ddr.bin").write_bytes(ddr)
    spec = {"unit": unit, "ddr": str(run / "ddr.bin"), "frames": frames, "probes": probes, "driver_frames": list(driver_frames),
            "axil_pause": axil_pause, "seed": seed,
            "timeout_cycles": 40 * len(ddr) + 20000, "result": str(run / "result.json")}
    res = ReaderResult()
    res.passes, res.error = run_bench(f"{unit}_axil", AXIL_BENCH_MODULE, "SAMFPGA_AXIL_SPEC", spec, run,
                                      work_dir / "sim_build")
    res.wall_s = round(time.monotonic() - t0, 2)
    return res
