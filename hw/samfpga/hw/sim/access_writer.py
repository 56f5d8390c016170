"""Access writer (``hw/samfpga/hw/rtl/access_writer.sv``): the engine's write DMA for one address pattern
(``samfpga.hw.sim.dma_access.Access``), the mirror of ``access_reader``. The DDR image it leaves, the write bursts it
issues, and the Verilator + cocotb runner of its bench (``write_dma_bench``, shared with the strip writer).

Frames are ``access_reader.AccessFrame`` (an access over a stored tensor at a byte address, ``elem_bytes`` per
element) with the bytes the unit sends, in stream order; the register configuration is the reader's
(``access_reader.frame_config``: ``unit_regs.ACCESS_WRITER`` has the same keys).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from samfpga.hw.sim.access_reader import AccessFrame, frame_config, segments
from samfpga.hw.sim.own_rtl import build_own_rtl, run_bench
from samfpga.hw.sim.strip_reader import ReaderConfig
from samfpga.hw.sim.strip_writer import WriterResult, segment_write_bursts
from samfpga.hw.sim.toolchain import setup_verilator_env

BENCH_MODULE = "samfpga.hw.sim.write_dma_bench"


def write_bursts(f: AccessFrame, cfg: ReaderConfig) -> list[tuple[int, int, int, int]]:
    """(address, beats, first-beat WSTRB, last-beat WSTRB) of every write burst of the frame, in order."""
    return segment_write_bursts(segments(f), cfg)


def reference(background: bytes, frames: list[tuple[AccessFrame, bytes]]) -> bytes:
    """The DDR image after the frames ((frame, the bytes sent)) are written in order over ``background``: byte j of
    a frame's stream at the access's j-th byte address (a later write of the same byte wins)."""
    img = np.frombuffer(background, np.uint8).copy()
    for f, data in frames:
        idx = f.byte_access().indices()
        if len(data) != idx.size:
            raise ValueError(f"frame {f.byte_access().describe()}: {len(data)} bytes sent for {idx.size} addressed")
        img[idx] = np.frombuffer(data, np.uint8)
    return img.tobytes()


def build(cfg: ReaderConfig, work_dir: Path) -> float:
    """Verilator build of the writer at ``cfg`` (``stream_w``: its input stream) into ``work_dir/sim_build``."""
    return build_own_rtl("access_writer", cfg.rtl_params(), work_dir)


def simulate(cfg: ReaderConfig, frames: list[tuple[AccessFrame, bytes] | dict], passes: list[dict], background: bytes,
             work_dir: Path, seed: int = 0, tag: str = "run") -> WriterResult:
    """Run the bench on a design built by ``build``: every pass ({"name", "in_pause", "aw_pause", "w_pause",
    "b_pause", "fault"}) fills the RAM with ``background`` and writes every frame ((frame, bytes sent)); a dict is a
    raw register configuration sent without data (one the writer must refuse). Per pass the result has the AW and W
    bursts, each frame's ``done`` cycle with ``err``, and the DDR image (``images``)."""
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = work_dir / tag
    run.mkdir(parents=True, exist_ok=True)
    (run / "background.bin").write_bytes(background)
    specs = [{"cfg": {f"cfg_{k}": v for k, v in f.items()}, "packets": []} if isinstance(f, dict) else
             {"cfg": {f"cfg_{k}": v for k, v in frame_config(f[0]).items()}, "packets": [f[1].hex()]} for f in frames]
    work = sum(len(segments(f)) * 4 + sum(b for _, b, _, _ in write_bursts(f, cfg)) + len(d)
               for f, d in (x for x in frames if not isinstance(x, dict)))
    spec = {"background": str(run / "background.bin"), "frames": specs, "passes": passes, "seed": seed,
            "timeout_cycles": 20 * work + 20000, "image_dir": str(run), "result": str(run / "result.json")}
    res = WriterResult()
    res.passes, res.error = run_bench("access_writer", BENCH_MODULE, "SAMFPGA_WRITE_DMA_SPEC", spec, run,
                                      work_dir / "sim_build")
    res.images = [(run / f"ddr_{p['name']}.bin").read_bytes() for p in res.passes]
    res.wall_s = round(time.monotonic() - t0, 2)
    return res


def build_axil(cfg: ReaderConfig, work_dir: Path) -> float:
    """Verilator build of ``access_writer_axil`` (generated wrapper, register block, writer) at ``cfg``; its bench is
    the write DMAs' AXI-Lite bench: ``strip_writer.simulate_axil(..., unit="access_writer")``."""
    return build_own_rtl("access_writer_axil", cfg.rtl_params(), work_dir)
