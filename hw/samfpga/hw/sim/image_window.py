"""The image's window (``hw/samfpga/hw/rtl/image_window.sv``: the engine's first convolution's input, each pixel
through its channel's table, then 3 x 3 patches at stride 2 with padding 1 in FINN's (ky, kx, channel) order),
its reference, its cycle model and the Verilator + cocotb runner of its bench (``image_window_bench``)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from samfpga.hw.sim.own_rtl import build_own_rtl, run_bench
from samfpga.hw.sim.toolchain import setup_verilator_env

BENCH_MODULE = "samfpga.hw.sim.image_window_bench"
#: the convolution the window serves (TinyViT's patch_embed.seq.0): kernel, stride, padding on every side
KERNEL, STRIDE, PAD = 3, 2, 1


#: bytes a pixel is stored in (its channels, then bytes the window ignores), so that beats hold whole pixels
PIXEL_BYTES = 4


def patch_beats(channels: int, out_b: int) -> int:
    """Beats of ``out_b`` bytes the window sends an output pixel's 3 x 3 x ``channels`` patch in (zeros after it)."""
    return -(-KERNEL * KERNEL * channels // out_b)


def stored_bytes(h: int, w: int) -> int:
    """Bytes of an ``h`` x ``w`` image as the window reads it (``PIXEL_BYTES`` a pixel)."""
    return h * w * PIXEL_BYTES


def check_image(h: int, w: int, w_max: int) -> None:
    """ValueError naming the problem unless the window takes an ``h`` x ``w`` image (``w_max``: its build's)."""
    if h <= 0 or h % 2 or w <= 0 or w % 2 or w > w_max:
        raise ValueError(f"image_window takes an image of even height and even width up to {w_max}, got {h} x {w}")


def stored_image(image: np.ndarray, fill: int = 0) -> bytes:
    """``image`` (H, W, C) uint8 as the window reads it: each pixel in ``PIXEL_BYTES`` bytes, its channels first,
    then ``fill``."""
    h, w, c = image.shape
    if c > PIXEL_BYTES:
        raise ValueError(f"an image of {c} channels does not fit {PIXEL_BYTES} bytes a pixel")
    out = np.full((h, w, PIXEL_BYTES), fill, dtype=np.uint8)
    out[:, :, :c] = image
    return out.tobytes()


def reference(image: np.ndarray, table: np.ndarray, out_b: int) -> bytes:
    """The window's output bytes for ``image`` (H, W, C) uint8 through ``table`` (C, 256) of int8 (or uint8) values:
    per output pixel (row-major) its patch (ky, kx, c) as bytes, zeros to whole beats of ``out_b``. FINN's
    padding and sliding window (``samfpga.kernels``) on the table's outputs."""
    from samfpga.kernels import fmpadding, swg

    h, w, c = image.shape
    a = table[np.arange(c), image.astype(np.int64)]  # (H, W, C)
    a = fmpadding.fmpadding(a.reshape(1, h, w, c), (PAD, PAD, PAD, PAD))
    p = swg.sliding_window(a, (KERNEL, KERNEL), (STRIDE, STRIDE), (1, 1)).reshape(-1, KERNEL * KERNEL * c)
    out = np.zeros((p.shape[0], patch_beats(c, out_b) * out_b), dtype=np.int64)
    out[:, :p.shape[1]] = p
    return (out & 0xFF).astype(np.uint8).tobytes()


def table_bytes(table: np.ndarray) -> bytes:
    """The table as the window loads it: channel c's entry v at byte 256 c + v (two's complement bytes)."""
    return (np.asarray(table, dtype=np.int64) & 0xFF).astype(np.uint8).tobytes()


def model_cycles(h: int, w: int, c: int, out_b: int) -> int:
    """Cycles of a step from its start to its last output beat, free-running (RTL simulation, exact at the sizes of
    tests/test_sim_image_window.py): the table a byte a cycle, then output row oy starts when rows 2 oy and 2 oy + 1
    are in (2 pixels a cycle: W cycles a pair of rows) and the row before it is out, and takes NB beats a pixel and
    a cycle to restart its reads."""
    t0 = c * 256 + 5
    row = patch_beats(c, out_b) * (w // 2) + 1
    start = t0 + w
    for oy in range(1, h // 2):
        start = max(start + row, t0 + (oy + 1) * w)
    return start + row


def build(w_max: int, out_b: int, work_dir: Path, c: int = 3, tb: int = 8) -> float:
    """Verilator build of the window for images up to ``w_max`` wide, ``out_b`` bytes an output beat; seconds."""
    return build_own_rtl("image_window", {"C": c, "W_MAX": w_max, "OUT_B": out_b, "TB": tb}, work_dir)


def simulate(images: list[tuple[np.ndarray, np.ndarray]], passes: list[dict], work_dir: Path, tb: int = 8,
             seed: int = 0, tag: str = "run") -> tuple[list[dict], str, float]:
    """Run each (image (H, W, C) uint8, stored by ``stored_image`` with its spare bytes 0xA5, which the window must
    ignore; table (C, 256)) through a window built by ``build``, in each pass
    ({"name", "in_pause", "out_pause"}); returns (per pass, per image its output bytes as hex, its cycles and its
    refusal flag; an error or ""; seconds)."""
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = Path(work_dir) / tag
    run.mkdir(parents=True, exist_ok=True)
    steps = [{"h": int(im.shape[0]), "w": int(im.shape[1]), "table": table_bytes(t).hex(),
              "image": stored_image(im, fill=0xA5).hex()} for im, t in images]
    spec = {"steps": steps, "passes": passes, "seed": seed, "tb": tb,
            "timeout_cycles": 40 * sum(len(s["image"]) // 2 + 1024 for s in steps) + 2000,
            "result": str(run / "result.json")}
    res, err = run_bench("image_window", BENCH_MODULE, "SAMFPGA_IMAGE_WINDOW_SPEC", spec, run,
                         Path(work_dir) / "sim_build")
    return res, err, round(time.monotonic() - t0, 2)
