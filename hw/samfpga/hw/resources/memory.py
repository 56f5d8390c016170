"""Price one on-chip memory of ``depth`` words x ``width`` bits on Zynq UltraScale+ / Versal primitives.

Primitive geometries (AMD UG573 / UG574):
    BRAM36  32 Kib data: 512x72 (simple dual port), 1Kx36, 2Kx18, 4Kx9, 8Kx4, 16Kx2, 32Kx1; an 18 Kib half
            (BRAM18: 512x36 ... 16Kx1) counts 0.5.
    URAM    4Kx72, no initial contents from the bitstream (UG573: "UltraRAM ... cannot be initialized"): a memory
            placed in URAM must be written at run time (FINN: ``runtime_writeable_weights`` + the driver).
    LUTRAM  a SLICEM LUT6 holds 64x1 (ROM or single-port RAM); deeper memories take ceil(depth/64) LUTs per bit and
            a read multiplexer (F7/F8 muxes cover 4 LUTs for free, beyond that ~1 LUT per 4 inputs per bit).
    LUTRAM (simple dual port, FIFOs) RAM32M16 32x14 / RAM64M8 64x7 in 8 LUTs.
    SRL     a LUT as SRLC32E: 32-deep shift register of one bit (FIFOs and delay lines).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_BRAM36_SHAPES = ((512, 72), (1024, 36), (2048, 18), (4096, 9), (8192, 4), (16384, 2), (32768, 1))
_BRAM18_SHAPES = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))
URAM_DEPTH, URAM_WIDTH = 4096, 72
#: below this many bits FINN/Vivado's "auto" keeps a memory in LUTs (Vivado infers distributed RAM for small arrays)
AUTO_LUTRAM_BITS = 4096
#: ... and a memory this shallow is always LUTRAM under "auto" (a BRAM port would be mostly empty)
AUTO_LUTRAM_DEPTH = 64


@dataclass(frozen=True)
class MemoryCost:
    """Resources of one memory. ``kind`` is the primitive used; ``runtime_load`` is True for URAM (no bitstream
    initialisation: the driver must write the contents)."""

    kind: str
    LUT: float = 0.0
    BRAM36: float = 0.0
    URAM: float = 0.0
    runtime_load: bool = False


def bram36(depth: int, width: int) -> float:
    """Fewest 36 Kib blocks (0.5 per 18 Kib half) holding ``depth`` x ``width`` bits."""
    if depth <= 0 or width <= 0:
        return 0.0
    full = min(math.ceil(depth / d) * math.ceil(width / w) for d, w in _BRAM36_SHAPES)
    half = min(math.ceil(depth / d) * math.ceil(width / w) for d, w in _BRAM18_SHAPES)
    return float(min(full, half / 2.0))


def uram(depth: int, width: int) -> float:
    """UltraRAM blocks (4K x 72, cascaded in depth) holding ``depth`` x ``width`` bits."""
    if depth <= 0 or width <= 0:
        return 0.0
    return float(math.ceil(depth / URAM_DEPTH) * math.ceil(width / URAM_WIDTH))


def lutram(depth: int, width: int) -> float:
    """LUTs of a distributed ROM/RAM of ``depth`` x ``width`` bits (64x1 per LUT plus the read mux)."""
    if depth <= 0 or width <= 0:
        return 0.0
    cells = math.ceil(depth / 64)
    mux = 0 if cells <= 4 else math.ceil((cells - 4) / 4) + 1  # F7/F8 muxes combine 4 cells for free
    return float(width * (cells + mux))


def lutram_sdp(depth: int, width: int) -> float:
    """LUTs of a distributed simple-dual-port RAM (a FIFO's storage: one write, one read port): RAM32M16 holds
    32 x 14 bits in 8 LUTs, RAM64M8 64 x 7 in 8; deeper memories cascade 64-deep blocks with a read mux."""
    if depth <= 0 or width <= 0:
        return 0.0
    if depth <= 32:
        return float(8 * math.ceil(width / 14))
    cells = math.ceil(depth / 64)
    return float(8 * math.ceil(width / 7) * cells + (0 if cells == 1 else width * math.ceil(cells / 4)))


def srl(depth: int, width: int) -> float:
    """LUTs of a shift-register delay/FIFO of ``depth`` x ``width`` (SRLC32E) plus its output mux."""
    if depth <= 0 or width <= 0:
        return 0.0
    cells = math.ceil(depth / 32)
    return float(width * (cells + (0 if cells == 1 else math.ceil(cells / 4))))


def place(depth: int, width: int, ram_style: str = "auto") -> MemoryCost:
    """Price ``depth`` x ``width`` bits in the primitive ``ram_style`` asks for (FINN's values: auto, block,
    distributed, ultra). ``auto`` follows what Vivado infers: LUTRAM when small or shallow, otherwise the cheaper of
    BRAM and LUTRAM counted in BRAM-equivalents (one BRAM36 ~ 36 Kib of LUTRAM = 576 LUTs)."""
    if depth <= 0 or width <= 0:
        return MemoryCost("none")
    style = (ram_style or "auto").lower()
    if style == "ultra":
        return MemoryCost("URAM", URAM=uram(depth, width), runtime_load=True)
    if style == "block":
        return MemoryCost("BRAM", BRAM36=bram36(depth, width))
    if style == "distributed":
        return MemoryCost("LUTRAM", LUT=lutram(depth, width))
    if style != "auto":
        raise ValueError(f"unknown ram_style {ram_style!r}; one of auto, block, distributed, ultra")
    if depth <= AUTO_LUTRAM_DEPTH or depth * width <= AUTO_LUTRAM_BITS:
        return MemoryCost("LUTRAM", LUT=lutram(depth, width))
    return MemoryCost("BRAM", BRAM36=bram36(depth, width))
