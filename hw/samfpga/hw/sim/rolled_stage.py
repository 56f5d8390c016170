"""Rolled stage (``hw/samfpga/hw/rtl/rolled_stage.sv``): strip reader -> token-batched linear body -> strip writer,
N blocks through two loop buffers in DDR, sequenced by the host. The numpy side (what the DDR holds after a frame)
and the Verilator + cocotb runner of its bench (``rolled_stage_bench``).

A frame is an int8 map x0 (H, W, C) in loop buffer 0 and the blocks' weights (N, C, C) with their requantisation
parameters packed at ``weights_base`` (``token_batch_mvu.pack_weights``, ``stride`` apart). Block i reads buffer
i % 2 and writes buffer (i + 1) % 2: x_{i+1}[y, x] = requant_i(W_i x_i[y, x]) (``token_batch_mvu.reference``), so
after the frame buffer N % 2 holds x_N and the other x_{N-1} (x0 itself when N = 1).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from samfpga.hw.sim import strip_reader as sr
from samfpga.hw.sim import strip_writer as sw
from samfpga.hw.sim import token_batch_mvu as tb
from samfpga.hw.sim.own_rtl import build_own_rtl, run_bench
from samfpga.hw.sim.strip_reader import ReaderConfig, StripFrame
from samfpga.hw.sim.toolchain import setup_verilator_env

BENCH_MODULE = "samfpga.hw.sim.rolled_stage_bench"


@dataclass(frozen=True)
class StageConfig:
    """Synthesis parameters of one ``rolled_stage``: C channels in and out, the body's folding and token batch."""

    c: int
    simd: int
    pe: int
    batch: int
    acc_bits: int = 24
    axi_dw: int = 64
    max_burst: int = 16
    wfifo_depth: int = 32
    pq_depth: int = 4
    dot: str = "chain"  # the body's dot products (token_batch_mvu DOT: "tree", "chain", "pack")

    @property
    def body(self) -> tb.TokenBatchConfig:
        return tb.TokenBatchConfig(mw=self.c, mh=self.c, simd=self.simd, pe=self.pe, batch=self.batch,
                                   acc_bits=self.acc_bits, axi_dw=self.axi_dw, max_burst=self.max_burst,
                                   wfifo_depth=self.wfifo_depth, requant=True, pq_depth=self.pq_depth,
                                   dot=self.dot)

    @property
    def reader(self) -> ReaderConfig:
        return ReaderConfig(axi_dw=self.axi_dw, stream_w=8 * self.simd, max_burst=self.max_burst)

    @property
    def writer(self) -> ReaderConfig:
        return ReaderConfig(axi_dw=self.axi_dw, stream_w=8 * self.pe, max_burst=self.max_burst)

    def rtl_params(self) -> dict[str, int]:
        return {"C": self.c, "SIMD": self.simd, "PE": self.pe, "B": self.batch, "ACC_BITS": self.acc_bits,
                "AXI_DW": self.axi_dw, "MAX_BURST": self.max_burst, "WFIFO_DEPTH": self.wfifo_depth,
                "PQ_DEPTH": self.pq_depth, "DOT": tb.DOTS.index(self.dot)}


@dataclass
class StageFrame:
    """One frame: x0 (H, W, C) int8, weights (N, C, C) int8, requantisation (N, C), ``tiles`` column strips, the
    weights at ``weights_base`` (``stride`` apart; None: the smallest legal stride) and the two loop buffers."""

    x0: np.ndarray
    w: np.ndarray
    rq: tb.RequantParams
    tiles: int
    weights_base: int
    buffers: tuple[int, int]
    stride: int | None = None

    @property
    def blocks(self) -> int:
        return int(self.w.shape[0])

    def stride_for(self, cfg: StageConfig) -> int:
        return cfg.body.min_stride if self.stride is None else self.stride


def block_maps(f: StageFrame, cfg: StageConfig) -> list[np.ndarray]:
    """x_0 .. x_N, each (H, W, C) int8: every block the body's exact arithmetic on every token."""
    h, w, c = f.x0.shape
    if c != cfg.c or f.w.shape[1:] != (c, c):
        raise ValueError(f"map channels {c} / weights {f.w.shape}: the stage has C = {cfg.c} in and out")
    maps = [np.asarray(f.x0, dtype=np.int8)]
    for i in range(f.blocks):
        rq = tb.RequantParams(f.rq.scale[i:i + 1], f.rq.bias[i:i + 1], f.rq.shift[i:i + 1])
        y = tb.reference(maps[-1].astype(np.int64).reshape(1, h * w, c), f.w[i:i + 1], cfg.body, rq)
        maps.append(y.reshape(h, w, c).astype(np.int8))
    return maps


def weights_image(f: StageFrame, cfg: StageConfig) -> bytes:
    return tb.pack_weights(f.w, cfg.body, f.stride_for(cfg), f.rq)


def _place(img: bytearray, base: int, data: bytes) -> None:
    if len(img) < base + len(data):
        raise ValueError(f"{len(data)} bytes at {base:#x} do not fit the {len(img)}-byte DDR image")
    img[base:base + len(data)] = data


def initial_image(background: bytes, frames: list[StageFrame], cfg: StageConfig) -> bytes:
    """The DDR before a pass: every frame's weights and its x0 in loop buffer 0, over ``background``. Regions of
    different frames must not overlap (a frame's buffers are its own)."""
    img = bytearray(background)
    spans = []
    for f in frames:
        n = f.x0.size
        for base, size in ((f.weights_base, len(weights_image(f, cfg))), (f.buffers[0], n), (f.buffers[1], n)):
            if any(base < e and s < base + size for s, e in spans):
                raise ValueError(f"region [{base:#x}, {base + size:#x}) overlaps another frame's")
            spans.append((base, base + size))
        _place(img, f.weights_base, weights_image(f, cfg))
        _place(img, f.buffers[0], f.x0.astype(np.int8).tobytes())
    return bytes(img)


def reference(background: bytes, frames: list[StageFrame], cfg: StageConfig) -> bytes:
    """The DDR after the frames: each block's output written into its output buffer in turn."""
    img = bytearray(initial_image(background, frames, cfg))
    for f in frames:
        maps = block_maps(f, cfg)
        for i in range(f.blocks):
            _place(img, f.buffers[(i + 1) % 2], maps[i + 1].tobytes())
    return bytes(img)


def loop_traffic(f: StageFrame, cfg: StageConfig) -> dict[str, int]:
    """AXI bytes one frame moves, by port, from the units' own models: the reader's whole-beat reads of each block's
    input (``strip_reader.read_bytes``), the body's weight and parameter passes (``token_batch_mvu``), the writer's
    strobed bytes (the map, once per block)."""
    h, w, c = f.x0.shape
    frame = StripFrame(np.zeros((h, w, c), np.uint8), f.tiles, 0, f.buffers[0])
    rd = sum(sr.axi_bytes(StripFrame(frame.fmap, f.tiles, 0, f.buffers[i % 2]), cfg.reader)
             for i in range(f.blocks))
    wr = sum(sw.strobed_bytes(sw.write_bursts(StripFrame(frame.fmap, f.tiles, 0, f.buffers[(i + 1) % 2]),
                                              cfg.writer), cfg.writer) for i in range(f.blocks))
    return {"reader": rd, "weights": tb.ddr_bytes_per_frame(cfg.body, f.blocks, h * w), "writer": wr}


def frame_spec(f: StageFrame, cfg: StageConfig) -> dict:
    h, w, c = f.x0.shape
    return {"h": h, "w": w, "tiles": f.tiles, "n": f.blocks, "t": h * w, "wt_base": f.weights_base,
            "stride": f.stride_for(cfg), "buffers": list(f.buffers)}


def build(cfg: StageConfig, work_dir: Path) -> float:
    """Verilator build of ``rolled_stage`` and its three units at ``cfg`` into ``work_dir/sim_build``; seconds."""
    return build_own_rtl("rolled_stage", cfg.rtl_params(), work_dir)


@dataclass
class Pass:
    """One pass over every frame with these per-cycle stall probabilities on the DDR model's channels (AR and R of
    both read ports, AW, W and B of the write port)."""

    name: str
    ar_pause: float = 0.0
    r_pause: float = 0.0
    aw_pause: float = 0.0
    w_pause: float = 0.0
    b_pause: float = 0.0


@dataclass
class StageResult:
    passes: list[dict] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)
    build_s: float = 0.0
    wall_s: float = 0.0
    error: str = ""


def simulate(cfg: StageConfig, frames: list[StageFrame], passes: list[Pass], background: bytes, work_dir: Path,
             seed: int = 0, ddr: bytes | None = None, tag: str = "run") -> StageResult:
    """Run the bench on a design built by ``build`` in ``work_dir``: each pass restores the DDR to
    ``initial_image`` (or ``ddr``, for negative controls) and runs every frame; ``images`` holds the DDR after
    each pass."""
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = work_dir / tag
    run.mkdir(parents=True, exist_ok=True)
    image = initial_image(background, frames, cfg) if ddr is None else ddr
    (run / "ddr.bin").write_bytes(image)
    specs = [frame_spec(f, cfg) for f in frames]
    work = sum(s["n"] * s["t"] * (cfg.c // cfg.simd) * (cfg.c // cfg.pe) for s in specs)
    spec = {"ddr": str(run / "ddr.bin"), "frames": specs, "passes": [vars(p) for p in passes], "seed": seed,
            "timeout_cycles": 40 * work + 20000, "result": str(run / "result.json"), "image_dir": str(run)}
    res = StageResult()
    res.passes, res.error = run_bench("rolled_stage", BENCH_MODULE, "SAMFPGA_ROLLED_SPEC", spec, run,
                                      work_dir / "sim_build")
    res.images = [(run / f"ddr_{p['name']}.bin").read_bytes() for p in res.passes
                  if (run / f"ddr_{p['name']}.bin").is_file()]
    res.wall_s = round(time.monotonic() - t0, 2)
    return res
