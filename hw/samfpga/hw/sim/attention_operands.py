"""How the layer-sequential engine (``samfpga.hw.plan.engine``, docs/engine.md) lays out a window attention's
operands for its one GEMM unit (token_batch_mvu.sv), in numpy: what the DMA and the permutation unit must produce,
and the unit frames that use it. numpy only.

Per window and head the unit runs QK^T with the queries as its input stream (t tokens of d values) and K as its
weight words, and AV with the softmax's rows as its input stream and V^T as its weight words. A weight word of the
unit packs PE rows x SIMD inner values (element p*SIMD + s = W[nf*PE + p, sf*SIMD + s], ``token_batch_mvu``), so a
weight image is a row-major matrix (rows = the unit's outputs, inner = its inputs) whose SIMD-value chunks are
reordered from (NF, PE, SF) to (NF, SF, PE): one PagePermute page (hw/samfpga/hw/rtl/page_permute.sv) with
SIMD-value words and the innermost axis in place (``weight_image_permute``).

K is written by the qkv layer as rows (token, dims), so its image is that permutation of its rows. V^T is not:
the qkv layer writes V as rows (token, dims) too, and V^T's rows are its columns, an element-level transpose that
no SIMD-word permutation does. The unit itself transposes it (``transpose_frame``): with the one-hot vectors e_0 ..
e_{d-1} as inputs and V's rows as weights, y[j, k] = sum_i V[k, i] e_j[i] = V[k, j], requantised by the identity
(scale 1, bias 0, shift 0: 8-bit values stay), so V^T leaves as rows and the same permutation gives AV's image.
That costs the unit d x keys x d MACs per window and head (half of AV's at keys = 2d).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from samfpga.hw.sim import token_batch_mvu as tb


def weight_image_permute(mh: int, mw: int, unit: tb.TokenBatchConfig) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(transpose_in_shape, perm) of the PagePermute that turns a row-major (mh, mw) matrix of ``w_bits``-wide
    values (mh, mw whole folds of the unit's PE / SIMD) into its weight words: (NF, PE, SF, SIMD) -> (NF, SF, PE,
    SIMD), words of SIMD values. ValueError when the shape is not whole folds."""
    if mh % unit.pe or mw % unit.simd:
        raise ValueError(f"weight image of {mh} x {mw}: PE={unit.pe} must divide the rows and SIMD={unit.simd} "
                         "the inner dimension (pad to whole folds)")
    return (mh // unit.pe, unit.pe, mw // unit.simd, unit.simd), (0, 2, 1, 3)


def weight_image(rows: np.ndarray, cfg: tb.TokenBatchConfig, rq: tb.RequantParams | None = None) -> bytes:
    """One iteration's DDR image for the layer configuration ``cfg`` (``token_batch_mvu.layer_shape``) from its
    row-major matrix ``rows`` (cfg.mh, cfg.mw) of 8-bit integers: the ``weight_image_permute`` of its values as
    bytes (two's complement), with, when the frame requantises, each fold's parameter words (``rq``, one
    iteration) ahead of its SF weight words (the writer leaves those gaps; the words are the same for every window
    of a head, written once), zero-padded to the pass's whole AXI beats. Equal to ``token_batch_mvu.pack_weights``
    of ``rows`` (tests/test_attention_operands.py)."""
    rows = np.asarray(rows)
    if rows.shape != (cfg.mh, cfg.mw):
        raise ValueError(f"weight image: rows of shape {rows.shape}, expected (MH, MW) = ({cfg.mh}, {cfg.mw})")
    if cfg.w_bits != 8 or cfg.word_bits % 8:
        raise ValueError(f"weight image: byte values only (w_bits {cfg.w_bits})")
    if cfg.requantises != (rq is not None):
        raise ValueError("weight image: requant parameters are needed exactly when the frame is requantised")
    lo, hi = (-128, 127) if cfg.w_signed else (0, 255)
    if rows.size and (rows.min() < lo or rows.max() > hi):
        raise ValueError(f"weight image: values in [{rows.min()}, {rows.max()}] exceed 8 bits")
    shape, perm = weight_image_permute(cfg.mh, cfg.mw, cfg)
    data = (np.transpose(rows.astype(np.int64).reshape(shape), perm).ravel() & 0xFF).astype(np.uint8)
    folds = data.reshape(cfg.nf, cfg.sf * cfg.word_bits // 8)
    pw = tb.param_words(rq.checked(cfg, 1), 0, cfg) if rq is not None else [[] for _ in range(cfg.nf)]
    wb = cfg.word_bits // 8
    out = b"".join(b"".join(w.to_bytes(wb, "little") for w in pw[nf]) + folds[nf].tobytes() for nf in range(cfg.nf))
    return out + bytes(cfg.pass_bytes - len(out))


def transpose_frame(v: np.ndarray, unit: tb.TokenBatchConfig) -> tuple[tb.TokenBatchConfig, np.ndarray,
                                                                       tb.RequantParams]:
    """The unit frame that transposes ``v`` (keys, dims) of 8-bit values: (layer configuration on ``unit``,
    inputs (1, dims, dims_padded) = the one-hot vectors, requantisation parameters = the identity). With ``v``'s
    rows (padded) as the weights the frame's outputs (1, dims, keys_padded) are V^T's rows, keys beyond ``v``'s
    zero."""
    v = np.asarray(v)
    if v.ndim != 2:
        raise ValueError(f"transpose: v of shape {v.shape}, expected (keys, dims)")
    keys, dims = v.shape
    cfg = transpose_shape(keys, dims, unit)
    x = np.zeros((1, dims, cfg.mw), dtype=np.int64)
    x[0, np.arange(dims), np.arange(dims)] = 1
    one = np.ones((1, cfg.mh), dtype=np.int64)
    return cfg, x, tb.RequantParams(scale=one, bias=0 * one, shift=0 * one)


def transpose_shape(keys: int, dims: int, unit: tb.TokenBatchConfig) -> tb.TokenBatchConfig:
    """The layer configuration on ``unit`` of the frame that transposes a (keys, dims) V (``transpose_frame``):
    dims one-hot inputs of dims values (whole SIMD folds) -> keys outputs (whole PE folds), requantised, as many
    inputs per pass as the buffers hold."""
    mw, mh = tb.whole_folds(dims, unit.simd), tb.whole_folds(keys, unit.pe)
    return tb.layer_shape(unit, mw, mh, min(dims, tb.max_batch(unit, mw, mh)))


def transpose_raw_shape(keys: int, dims: int, unit: tb.TokenBatchConfig, tokens: int | None = None
                        ) -> tb.TokenBatchConfig:
    """The V transpose as the engine's GEMM path runs it (engine_gemm_path.sv): the frame of ``transpose_shape`` as
    a raw frame, without the identity's requantisation words around V's rows (so V's rows are one block per window
    and head as the qkv layer's writer stores them), whose sums (of one-hot inputs: V's values) leave as their low
    bytes, a fold as one beat (``raw_low``: raw_bits = out_bits; token_batch_mvu.sv takes it from cfg_unsigned).
    ``tokens``: the one-hot inputs (default ``dims``)."""
    low = replace(unit, raw_bits=unit.out_bits)
    mw, mh = tb.whole_folds(dims, unit.simd), tb.whole_folds(keys, unit.pe)
    return tb.layer_shape(low, mw, mh, min(tokens or dims, tb.max_batch(low, mw, mh, raw=True)), raw=True)


def padded(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``a`` (..., r, c) zero-padded to (..., rows, cols) (a layer's whole folds), int64."""
    a = np.asarray(a)
    out = np.zeros((*a.shape[:-2], rows, cols), dtype=np.int64)
    out[..., :a.shape[-2], :a.shape[-1]] = a
    return out


def qkv_regions(qkv: np.ndarray, slack: int = 0) -> tuple[bytes, bytes, bytes]:
    """The qkv layer's output ``qkv`` (windows, t, heads, 3, d) of 8-bit integers (TinyViT's channel order per
    token: head, then q / k / v, then dim) as the three DDR regions the engine's writer makes: Q, K and V, each in
    (window, head, token, dim) order (bytes, two's complement), each followed by ``slack`` zero bytes for the last
    block's overlapping read (``qk_frame``). Per window the writer's permutation is (t, heads x 3, d) -> (3, heads,
    t, d) with d-value words: one PagePermute page, then three destination bases."""
    a = np.asarray(qkv)
    if a.ndim != 5 or a.shape[3] != 3:
        raise ValueError(f"qkv: expected (windows, t, heads, 3, d), got shape {a.shape}")
    if a.size and (a.min() < -128 or a.max() > 127):
        raise ValueError(f"qkv: values in [{a.min()}, {a.max()}] exceed 8 bits")
    regions = np.transpose(a.astype(np.int64), (3, 0, 2, 1, 4))  # (3, windows, heads, t, d)
    return tuple((regions[s].ravel() & 0xFF).astype(np.uint8).tobytes() + bytes(slack) for s in range(3))


def qk_frame(t: int, d: int, unit: tb.TokenBatchConfig) -> tuple[tb.TokenBatchConfig, int, int]:
    """QK^T of one window-head per iteration over the K region of ``qkv_regions``: (the raw layer configuration on
    ``unit``, the iteration stride, the slack after the region). K's rows are the unit's weight words as written
    when d is one SIMD fold (SF' = 1: a word is PE rows of d values), so iteration i reads its pass from the block
    at i x t x d; the pass covers the keys padded to whole PE folds, so it reads into the next block (another
    head's keys, or the slack after the last block): those sums are past the row's t keys and raw_rows.sv drops
    them. ValueError when d is not one SIMD fold or a block is not whole bursts."""
    if d != unit.simd:
        raise ValueError(f"QK^T over the K region: head dim {d} must be the unit's SIMD {unit.simd} (SF' = 1: K's "
                         "rows are then its weight words)")
    cfg = tb.layer_shape(unit, d, tb.whole_folds(t, unit.pe), min(t, tb.max_batch(unit, d, tb.whole_folds(t, unit.pe),
                                                                                  raw=True)), raw=True)
    stride = t * d
    if stride % cfg.burst_bytes:
        raise ValueError(f"QK^T over the K region: a block of {stride} bytes is not whole bursts of "
                         f"{cfg.burst_bytes}")
    return cfg, stride, max(0, cfg.pass_bytes - stride)


def vt_frame(t: int, d: int, unit: tb.TokenBatchConfig) -> tuple[tb.TokenBatchConfig, int, int]:
    """The V transpose (``transpose_frame``) of one window-head per iteration over a V region laid out by
    ``v_region``: (its layer configuration on ``unit``, the iteration stride, the slack after the region). A V block
    is the transpose pass's own image (each fold's requantisation words ahead of its rows) without the rows that pad
    the keys to whole PE folds: the stride is the pass less those rows, so each pass reads the next block's first
    bytes as its padded rows, whose outputs (V^T's columns past t) AV's writer drops. ValueError when d is not one
    SIMD fold or the stride is not whole bursts."""
    if d != unit.simd:
        raise ValueError(f"V transpose over the V region: head dim {d} must be the unit's SIMD {unit.simd} (SF' = 1)")
    cfg = transpose_shape(t, d, unit)
    stride = cfg.pass_bytes - (cfg.mh - t) * d
    if stride % cfg.burst_bytes:
        raise ValueError(f"V transpose over the V region: a block of {stride} bytes (the pass of {cfg.pass_bytes} "
                         f"less {cfg.mh - t} padded rows) is not whole bursts of {cfg.burst_bytes}")
    return cfg, stride, cfg.pass_bytes - stride


def v_region(v: np.ndarray, cfg: tb.TokenBatchConfig, stride: int, slack: int) -> bytes:
    """V's region for ``vt_frame`` (``cfg``, ``stride``, ``slack``): per window-head block ``v`` (n, t, d) of 8-bit
    values, its transpose pass's image (the identity's requantisation words ahead of each fold, which the host
    writes once; the writer fills the rows between them) cut to ``stride`` bytes, then ``slack`` zero bytes."""
    v = np.asarray(v)
    if v.ndim != 3:
        raise ValueError(f"v region: v of shape {v.shape}, expected (n, t, d)")
    n, t, d = v.shape
    one = np.ones((1, cfg.mh), dtype=np.int64)
    rq = tb.RequantParams(scale=one, bias=0 * one, shift=0 * one)
    blocks = [weight_image(padded(v[i], cfg.mh, cfg.mw), cfg, rq)[:stride] for i in range(n)]
    return b"".join(blocks) + bytes(slack)
