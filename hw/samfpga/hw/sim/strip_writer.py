"""Strip writer (``hw/samfpga/hw/rtl/strip_writer.sv``): numpy reference of the DDR image it leaves, its write bursts
with their first / last beat strobes, and the Verilator + cocotb runner of its bench (``write_dma_bench``, shared with the access writer).

The mirror of the strip reader (``strip_reader``): a unit's output map (H, W, C) of bytes arrives as ``tiles``
column strips of S = W / tiles columns, without halo (strip s is columns [s*S, (s+1)*S), the strip reader's columns
at halo 0), one stream packet per strip in the reader's byte order (``strip_reader.reference`` at halo 0). The
writer puts every strip row segment at its place in the raster HWC frame buffer at ``base``. Frames are
``strip_reader.StripFrame`` with ``halo`` 0; the synthesis parameters are the reader's (``stream_w`` is the width
of the input stream).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from samfpga.hw.sim import strip_reader as sr
from samfpga.hw.sim.own_rtl import build_own_rtl, run_bench
from samfpga.hw.sim.strip_reader import ReaderConfig, StripFrame
from samfpga.hw.sim.toolchain import setup_verilator_env

BENCH_MODULE = "samfpga.hw.sim.write_dma_bench"
WriterConfig = ReaderConfig  # same parameters: AXI data width, stream width, burst limit


def _no_halo(f: StripFrame) -> None:
    if f.halo:
        raise ValueError(f"halo {f.halo}: the writer's strips have none (each output column is in one strip)")


def input_strips(f: StripFrame) -> list[bytes]:
    """The packets the writer takes: per strip, rows in order, within a row the strip's pixels, C bytes each."""
    _no_halo(f)
    return sr.reference(f)


def segments(f: StripFrame) -> list[tuple[int, int]]:
    """(byte address, bytes) of every strip row segment, in write order: S * C bytes at base + (y*W + s*S)*C."""
    _no_halo(f)
    return sr.segments(f)


def _lanes(lo: int, hi: int) -> int:
    """WSTRB of byte lanes [lo, hi)."""
    return (1 << hi) - (1 << lo)


def write_bursts(f: StripFrame, cfg: WriterConfig) -> list[tuple[int, int, int, int]]:
    """(address, beats, WSTRB of the first beat, WSTRB of the last beat) of every write burst of the frame's
    segments (``segment_write_bursts``)."""
    return segment_write_bursts(segments(f), cfg)


def segment_write_bursts(segs: list[tuple[int, int]], cfg: WriterConfig) -> list[tuple[int, int, int, int]]:
    """(address, beats, WSTRB of the first beat, WSTRB of the last beat) of the write bursts of segments ``segs``
    ((address, bytes), in order) as segment_writer.sv issues them: the reader's split of each segment
    (``strip_reader.segment_bursts``); the segment's first beat strobes the lanes from its first byte, its last beat
    the lanes up to its last byte (one-beat bursts carry both), every other beat all lanes."""
    db = cfg.axi_dw // 8
    out = []
    for addr, n in segs:
        bl = sr.segment_bursts(addr, n, cfg)
        for k, (a, b) in enumerate(bl):
            first = _lanes(addr % db if k == 0 else 0, db)
            last = _lanes(0, (addr + n - 1) % db + 1 if k == len(bl) - 1 else db)
            out.append((a, b, first & last if b == 1 else first, first & last if b == 1 else last))
    return out


def strobed_bytes(bursts: list[tuple[int, int, int, int]], cfg: WriterConfig) -> int:
    """Bytes written (strobes set) by ``bursts``: middle beats whole, first / last beats as strobed."""
    db = cfg.axi_dw // 8
    return sum(bin(fs).count("1") + (bin(ls).count("1") + (b - 2) * db if b > 1 else 0) for _, b, fs, ls in bursts)


def reference(background: bytes, frames: list[StripFrame], strips: list[list[bytes]] | None = None) -> bytes:
    """The DDR image after the frames are written in order over ``background``: each strip's bytes (``strips``,
    default ``input_strips`` of each frame; another list predicts the image of corrupted input) cut into its H row
    segments and placed at their addresses; every other byte keeps the background."""
    img = bytearray(background)
    for i, f in enumerate(frames):
        data = input_strips(f) if strips is None else strips[i]
        h = f.fmap.shape[0]
        segs = segments(f)
        for s, strip in enumerate(data):
            n = len(strip) // h
            for y in range(h):
                addr, size = segs[s * h + y]
                assert size == n
                img[addr:addr + n] = strip[y * n:(y + 1) * n]
    return bytes(img)


# ---------------------------------------------------------------------------------------------------------------
# Verilator + cocotb


@dataclass
class WriterResult:
    passes: list[dict] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)  # the DDR image after each pass
    wall_s: float = 0.0
    error: str = ""


def frame_config(f: StripFrame) -> dict[str, int]:
    """The runtime configuration of frame ``f`` as the register map's keys (``unit_regs.STRIP_WRITER``)."""
    _no_halo(f)
    return {k: v for k, v in sr.frame_config(f).items() if k != "halo"}


def build(cfg: WriterConfig, work_dir: Path) -> float:
    """Verilator build of the writer at ``cfg`` into ``work_dir/sim_build``; returns seconds."""
    return build_own_rtl("strip_writer", cfg.rtl_params(), work_dir)


def simulate(cfg: WriterConfig, frames: list[StripFrame | dict], passes: list[dict], background: bytes, work_dir: Path,
             seed: int = 0, strips: list[list[bytes]] | None = None, tag: str = "run") -> WriterResult:
    """Run the bench on a design built by ``build``: every pass ({"name", "in_pause", "aw_pause", "w_pause",
    "b_pause", "fault"}) fills the RAM with ``background`` and writes every frame (its ``input_strips``, or
    ``strips``: negative controls); a dict frame ({"base", "h", "w", "c", "tiles"}) is a configuration sent without
    strips (one the writer must refuse). Per pass the result has the AW bursts (address, beats), the W bursts
    (beats, first and last WSTRB), the cycles at which each frame's ``done`` pulsed with ``err`` and the bursts
    awaiting B at that pulse, and the DDR image (``images``)."""
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = work_dir / tag
    run.mkdir(parents=True, exist_ok=True)
    (run / "background.bin").write_bytes(background)
    good = [f for f in frames if isinstance(f, StripFrame)]
    data = iter([input_strips(f) for f in good] if strips is None else strips)
    specs = [{"cfg": {f"cfg_{k}": v for k, v in f.items()}, "packets": []} if isinstance(f, dict) else
             {"cfg": {f"cfg_{k}": v for k, v in frame_config(f).items()}, "packets": [s.hex() for s in next(data)]}
             for f in frames]
    work = sum(sum(b for _, b, _, _ in write_bursts(f, cfg)) + f.fmap.size for f in good)
    spec = {"background": str(run / "background.bin"), "frames": specs, "passes": passes, "seed": seed,
            "timeout_cycles": 20 * work + 20000, "image_dir": str(run), "result": str(run / "result.json")}
    res = WriterResult()
    res.passes, res.error = run_bench("strip_writer", BENCH_MODULE, "SAMFPGA_WRITE_DMA_SPEC", spec, run,
                                      work_dir / "sim_build")
    res.images = [(run / f"ddr_{p['name']}.bin").read_bytes() for p in res.passes]
    res.wall_s = round(time.monotonic() - t0, 2)
    return res


# ---------------------------------------------------------------------------------------------------------------
# The writer behind its AXI4-Lite register block (rtl/strip_writer_axil.sv, docs/unit_regs.md)

AXIL_BENCH_MODULE = "samfpga.hw.sim.write_dma_axil_bench"


def build_axil(cfg: WriterConfig, work_dir: Path) -> float:
    """Verilator build of ``strip_writer_axil`` (wrapper, register block, writer) at ``cfg``; returns seconds."""
    return build_own_rtl("strip_writer_axil", cfg.rtl_params(), work_dir)


def simulate_axil(frames: list[dict], background: bytes, work_dir: Path, seed: int = 0, axil_pause: float = 0.3,
                  tag: str = "axil", unit: str = "strip_writer") -> WriterResult:
    """Run ``write_dma_axil_bench`` on ``<unit>_axil`` (a write DMA: ``strip_writer`` or ``access_writer``) built in
    ``work_dir`` (``build_axil``; ``access_writer.build_axil``): ``frames`` [{"writes": [(offset,
    value)], "strips": [bytes]}] each configured, started and polled over AXI-Lite while its strips are sent;
    ``images[0]`` is the DDR image at the end."""
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = work_dir / tag
    run.mkdir(parents=True, exist_ok=True)
    (run / "background.bin").write_bytes(background)
    specs = [{"writes": f["writes"], "strips": [s.hex() for s in f["strips"]]} for f in frames]
    spec = {"background": str(run / "background.bin"), "frames": specs, "axil_pause": axil_pause, "seed": seed,
            "timeout_cycles": 40 * len(background) + 20000, "image": str(run / "ddr.bin"),
            "result": str(run / "result.json")}
    res = WriterResult()
    res.passes, res.error = run_bench(f"{unit}_axil", AXIL_BENCH_MODULE, "SAMFPGA_AXILW_SPEC", spec, run,
                                      work_dir / "sim_build")
    if (run / "ddr.bin").is_file():
        res.images = [(run / "ddr.bin").read_bytes()]
    res.wall_s = round(time.monotonic() - t0, 2)
    return res
