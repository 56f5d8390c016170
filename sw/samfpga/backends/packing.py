"""FINN's stream packing for DMA buffers, in numpy.

FINN's driver packs a folded tensor (..., fold, SIMD) into bytes with ``finnpy_to_packed_bytearray(x, dt,
reverse_inner=True, reverse_endian=True)``: the SIMD elements of one stream word are concatenated with element 0
in the least significant bits (two's complement for signed types, IEEE bits for FLOAT32), the word is padded to
whole bytes and stored little-endian. ``pack``/``unpack`` do the same on (..., SIMD) -> (..., ceil(SIMD*bits/8)).
"""

from __future__ import annotations

import math

import numpy as np


def dtype_bits(dtype: str) -> int:
    if dtype == "FLOAT32":
        return 32
    if dtype in ("BINARY", "BIPOLAR"):
        return 1
    if dtype == "TERNARY":
        return 2
    for p in ("UINT", "INT"):
        if dtype.startswith(p):
            return int(dtype[len(p):])
    raise ValueError(f"unsupported stream datatype {dtype!r}")


def _signed(dtype: str) -> bool:
    return dtype.startswith("INT") or dtype in ("BIPOLAR", "TERNARY")


def pack(x: np.ndarray, dtype: str) -> np.ndarray:
    """(..., SIMD) values of ``dtype`` -> (..., ceil(SIMD*bits/8)) uint8. Values must be representable."""
    bits = dtype_bits(dtype)
    if dtype == "FLOAT32":
        words = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    else:
        v = np.asarray(x)
        if not np.all(v == np.round(v)):
            raise ValueError(f"pack: non-integer values for {dtype}")
        iv = v.astype(np.int64)
        if dtype == "BIPOLAR":
            iv = (iv + 1) // 2
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if _signed(dtype) else (0, 2 ** bits - 1)
        if dtype != "BIPOLAR" and iv.size and (iv.min() < lo or iv.max() > hi):
            raise ValueError(f"pack: values in [{iv.min()}, {iv.max()}] do not fit {dtype}")
        words = (iv & ((1 << bits) - 1)).astype(np.uint64)
    simd = words.shape[-1]
    nbytes = math.ceil(simd * bits / 8)
    if bits in (8, 16, 32):
        le = words.astype({8: "<u1", 16: "<u2", 32: "<u4"}[bits])
        return np.ascontiguousarray(le).view(np.uint8).reshape(*words.shape[:-1], nbytes)
    bitarr = ((words[..., None] >> np.arange(bits, dtype=np.uint64)) & 1).astype(np.uint8)
    bitarr = bitarr.reshape(*words.shape[:-1], simd * bits)
    pad = nbytes * 8 - simd * bits
    if pad:
        bitarr = np.concatenate([bitarr, np.zeros((*bitarr.shape[:-1], pad), np.uint8)], axis=-1)
    return np.packbits(bitarr, axis=-1, bitorder="little")


def unpack(b: np.ndarray, dtype: str, simd: int) -> np.ndarray:
    """Inverse of ``pack``: (..., nbytes) uint8 -> (..., SIMD) float32 values."""
    bits = dtype_bits(dtype)
    b = np.ascontiguousarray(b, dtype=np.uint8)
    if bits in (8, 16, 32) and b.shape[-1] * 8 == simd * bits:
        words = b.view({8: "<u1", 16: "<u2", 32: "<u4"}[bits]).astype(np.uint64)
    else:
        bitarr = np.unpackbits(b, axis=-1, bitorder="little")[..., : simd * bits]
        bitarr = bitarr.reshape(*b.shape[:-1], simd, bits).astype(np.uint64)
        words = (bitarr << np.arange(bits, dtype=np.uint64)).sum(axis=-1)
    if dtype == "FLOAT32":
        return words.astype(np.uint32).view(np.float32)
    iv = words.astype(np.int64)
    if _signed(dtype) and dtype != "BIPOLAR":
        iv = np.where(iv >= (1 << (bits - 1)), iv - (1 << bits), iv)
    if dtype == "BIPOLAR":
        iv = 2 * iv - 1
    return iv.astype(np.float32)
