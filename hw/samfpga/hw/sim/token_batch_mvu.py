"""The token-batched MVU (hw/samfpga/hw/rtl/token_batch_mvu.sv): its DDR weight layout, a numpy model of the unit,
its stream packing and its schedule's cycle count. numpy only (the driver and the planner can import it).

A frame is ``n`` iterations (the blocks of a rolled stage) x ``t`` tokens: iteration i multiplies its ``t`` input
vectors (``mw`` integers each) by its own weight matrix (``mh`` x ``mw``) read from DDR at ``base + i * stride``.

DDR layout (``pack_weights``), per iteration: the weight words (nf, sf) for nf < MH/PE, sf < MW/SIMD in that order,
word element p*SIMD + s = W[nf*PE + p, sf*SIMD + s] (``w_bits`` two's complement or unsigned, element 0 in the
LSBs), concatenated into one little-endian bit string (no padding between words), padded with zero bits to whole
AXI beats, then with zero bytes to ``stride`` (a multiple of the burst size, so that no burst crosses 4 KiB).
The unit reads that string once per batch of ``batch`` tokens.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TokenBatchConfig:
    """Parameters of one ``token_batch_mvu`` instance (RTL parameter names in ``rtl_params``)."""

    mw: int
    mh: int
    simd: int
    pe: int
    batch: int  # B: tokens per pass over the weights
    a_bits: int = 8
    w_bits: int = 8
    acc_bits: int = 24
    a_signed: bool = True
    w_signed: bool = True
    axi_dw: int = 64
    axi_aw: int = 32
    max_burst: int = 16
    wfifo_depth: int = 32
    cnt_bits: int = 16

    def __post_init__(self) -> None:
        if self.mw % self.simd or self.mh % self.pe:
            raise ValueError(f"SIMD={self.simd} must divide MW={self.mw} and PE={self.pe} must divide MH={self.mh}")
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1, got {self.batch}")
        bb = self.burst_bytes
        if self.axi_dw % 8 or bb > 4096 or bb & (bb - 1):
            raise ValueError(f"max_burst * axi_dw/8 = {bb} must be a power of 2 <= 4096")
        if not 1 <= self.max_burst <= 256:
            raise ValueError(f"max_burst must be 1..256, got {self.max_burst}")
        if self.wfifo_depth < self.max_burst or self.wfifo_depth & (self.wfifo_depth - 1):
            raise ValueError(f"wfifo_depth {self.wfifo_depth} must be a power of 2 >= max_burst {self.max_burst}")

    @property
    def sf(self) -> int:
        return self.mw // self.simd

    @property
    def nf(self) -> int:
        return self.mh // self.pe

    @property
    def word_bits(self) -> int:
        return self.pe * self.simd * self.w_bits

    @property
    def beats(self) -> int:
        """AXI beats per pass (one iteration's weights)."""
        return math.ceil(self.nf * self.sf * self.word_bits / self.axi_dw)

    @property
    def pass_bytes(self) -> int:
        return self.beats * self.axi_dw // 8

    @property
    def burst_bytes(self) -> int:
        return self.max_burst * self.axi_dw // 8

    @property
    def min_stride(self) -> int:
        """Smallest legal iteration stride: the pass rounded up to whole bursts."""
        return math.ceil(self.pass_bytes / self.burst_bytes) * self.burst_bytes

    @property
    def in_stream_bits(self) -> int:
        return math.ceil(self.simd * self.a_bits / 8) * 8

    @property
    def out_stream_bits(self) -> int:
        return math.ceil(self.pe * self.acc_bits / 8) * 8

    def rtl_params(self) -> dict[str, int]:
        return {"MW": self.mw, "MH": self.mh, "SIMD": self.simd, "PE": self.pe, "A_BITS": self.a_bits,
                "W_BITS": self.w_bits, "ACC_BITS": self.acc_bits, "A_SIGNED": int(self.a_signed),
                "W_SIGNED": int(self.w_signed), "B": self.batch, "AXI_DW": self.axi_dw, "AXI_AW": self.axi_aw,
                "MAX_BURST": self.max_burst, "WFIFO_DEPTH": self.wfifo_depth, "CNT_BITS": self.cnt_bits}

    def to_dict(self) -> dict:
        return asdict(self)


def _range(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _check_ints(name: str, a: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iu" and not np.array_equal(a, np.round(a)):
        raise ValueError(f"{name}: values must be integers")
    a = a.astype(np.int64)
    lo, hi = _range(bits, signed)
    if a.size and (a.min() < lo or a.max() > hi):
        raise ValueError(f"{name}: values in [{a.min()}, {a.max()}] exceed {'INT' if signed else 'UINT'}{bits} "
                         f"[{lo}, {hi}]")
    return a


def weight_words(w: np.ndarray, cfg: TokenBatchConfig) -> list[int]:
    """One iteration's weights (mh, mw) as the NF*SF words the unit reads, in read order (see the module doc)."""
    w = _check_ints("weights", w, cfg.w_bits, cfg.w_signed)
    if w.shape != (cfg.mh, cfg.mw):
        raise ValueError(f"weights: shape {w.shape}, expected (MH, MW) = ({cfg.mh}, {cfg.mw})")
    mask = (1 << cfg.w_bits) - 1
    # (nf, pe, sf, simd) -> (nf, sf, pe, simd): word (nf, sf), element p*SIMD + s
    blocks = w.reshape(cfg.nf, cfg.pe, cfg.sf, cfg.simd).transpose(0, 2, 1, 3).reshape(cfg.nf * cfg.sf, -1)
    words = []
    for row in blocks:
        v = 0
        for k, e in enumerate(row.tolist()):
            v |= (int(e) & mask) << (k * cfg.w_bits)
        words.append(v)
    return words


def pack_weights(w: np.ndarray, cfg: TokenBatchConfig, stride: int | None = None) -> bytes:
    """DDR image of ``n`` iterations' weights (n, mh, mw) -> ``n * stride`` bytes (iteration i at i * stride).

    stride: bytes per iteration, a multiple of ``cfg.burst_bytes`` >= ``cfg.pass_bytes`` (default: the smallest).
    """
    w = np.asarray(w)
    if w.ndim != 3:
        raise ValueError(f"weights: expected (n, MH, MW), got shape {w.shape}")
    stride = cfg.min_stride if stride is None else stride
    if stride % cfg.burst_bytes or stride < cfg.pass_bytes:
        raise ValueError(f"stride {stride} must be a multiple of the burst size {cfg.burst_bytes} and >= one "
                         f"pass of {cfg.pass_bytes} bytes")
    out = bytearray()
    for i in range(w.shape[0]):
        bits = 0
        for k, word in enumerate(weight_words(w[i], cfg)):
            bits |= word << (k * cfg.word_bits)
        out += bits.to_bytes(cfg.pass_bytes, "little") + bytes(stride - cfg.pass_bytes)
    return bytes(out)


def unpack_weights(data: bytes, n: int, cfg: TokenBatchConfig, stride: int | None = None,
                   base: int = 0) -> np.ndarray:
    """Inverse of ``pack_weights``: (n, mh, mw) int64 read from ``data`` at ``base + i * stride``."""
    stride = cfg.min_stride if stride is None else stride
    out = np.zeros((n, cfg.mh, cfg.mw), dtype=np.int64)
    mask = (1 << cfg.w_bits) - 1
    words = cfg.nf * cfg.sf
    for i in range(n):
        start = base + i * stride
        if start + cfg.pass_bytes > len(data):
            raise ValueError(f"iteration {i}: bytes {start}..{start + cfg.pass_bytes} beyond the image "
                             f"({len(data)} bytes)")
        bits = int.from_bytes(data[start:start + cfg.pass_bytes], "little")
        elems = np.array([(bits >> (k * cfg.w_bits)) & mask for k in range(words * cfg.pe * cfg.simd)],
                         dtype=np.int64)
        if cfg.w_signed:
            elems = np.where(elems >= 1 << (cfg.w_bits - 1), elems - (1 << cfg.w_bits), elems)
        out[i] = elems.reshape(cfg.nf, cfg.sf, cfg.pe, cfg.simd).transpose(0, 2, 1, 3).reshape(cfg.mh, cfg.mw)
    return out


def reference(x: np.ndarray, w: np.ndarray, cfg: TokenBatchConfig) -> np.ndarray:
    """The layer: y[i, t] = W[i] @ x[i, t], exact. x: (n, t, mw) integers, w: (n, mh, mw) -> (n, t, mh) int64.

    Raises when a result does not fit ``acc_bits`` (the unit's accumulator is sized so that it does)."""
    x = _check_ints("inputs", x, cfg.a_bits, cfg.a_signed)
    w = _check_ints("weights", w, cfg.w_bits, cfg.w_signed)
    if x.ndim != 3 or w.ndim != 3 or x.shape[0] != w.shape[0] or x.shape[2] != cfg.mw or \
            w.shape[1:] != (cfg.mh, cfg.mw):
        raise ValueError(f"inputs {x.shape} / weights {w.shape}: expected (n, t, {cfg.mw}) / (n, {cfg.mh}, {cfg.mw})")
    y = np.einsum("itk,ihk->ith", x, w)
    lo, hi = _range(cfg.acc_bits, True)
    if y.size and (y.min() < lo or y.max() > hi):
        raise ValueError(f"results in [{y.min()}, {y.max()}] overflow the INT{cfg.acc_bits} accumulator")
    return y


def unit_model(x: np.ndarray, ddr: bytes, cfg: TokenBatchConfig, base: int = 0, stride: int | None = None
               ) -> np.ndarray:
    """The unit's schedule in numpy: per iteration, per batch of <= B tokens, one pass over the weight words read
    from the DDR image ``ddr`` (as ``pack_weights`` lays them out at ``base``), each word applied to every token
    of the batch. x: (n, t, mw) -> (n, t, mh) int64 (the output stream's order)."""
    x = _check_ints("inputs", x, cfg.a_bits, cfg.a_signed)
    n, t, _ = x.shape
    stride = cfg.min_stride if stride is None else stride
    w = unpack_weights(ddr, n, cfg, stride, base)
    y = np.zeros((n, t, cfg.mh), dtype=np.int64)
    for i in range(n):
        for t0 in range(0, t, cfg.batch):
            xb = x[i, t0:t0 + cfg.batch]  # (nb, mw)
            for nf in range(cfg.nf):
                acc = np.zeros((len(xb), cfg.pe), dtype=np.int64)
                for sf in range(cfg.sf):
                    word = w[i, nf * cfg.pe:(nf + 1) * cfg.pe, sf * cfg.simd:(sf + 1) * cfg.simd]  # (pe, simd)
                    acc += xb[:, sf * cfg.simd:(sf + 1) * cfg.simd] @ word.T
                y[i, t0:t0 + len(xb), nf * cfg.pe:(nf + 1) * cfg.pe] = acc
    return y


def pack_inputs(x: np.ndarray, cfg: TokenBatchConfig) -> list[int]:
    """Input stream beats of x (n, t, mw): per token SF beats of SIMD elements (element 0 in the LSBs)."""
    x = _check_ints("inputs", x, cfg.a_bits, cfg.a_signed)
    return _pack_rows(x.reshape(-1, cfg.simd), cfg.a_bits)


def pack_outputs(y: np.ndarray, cfg: TokenBatchConfig) -> list[int]:
    """Output stream beats of y (n, t, mh): per token NF beats of PE accumulators (ACC_BITS two's complement)."""
    return _pack_rows(np.asarray(y, dtype=np.int64).reshape(-1, cfg.pe), cfg.acc_bits)


def unpack_outputs(words: list[int], n: int, t: int, cfg: TokenBatchConfig) -> np.ndarray:
    """Inverse of ``pack_outputs`` (signed accumulators) -> (n, t, mh) int64."""
    mask = (1 << cfg.acc_bits) - 1
    half = 1 << (cfg.acc_bits - 1)
    vals = [((int(wd) >> (p * cfg.acc_bits)) & mask) for wd in words for p in range(cfg.pe)]
    arr = np.array([v - (1 << cfg.acc_bits) if v >= half else v for v in vals], dtype=np.int64)
    return arr.reshape(n, t, cfg.mh)


def _pack_rows(rows: np.ndarray, bits: int) -> list[int]:
    mask = (1 << bits) - 1
    out = []
    for row in rows.tolist():
        v = 0
        for k, e in enumerate(row):
            v |= (int(e) & mask) << (k * bits)
        out.append(v)
    return out


def ddr_bytes_per_frame(cfg: TokenBatchConfig, n: int, t: int) -> int:
    """Bytes the unit reads per frame: one pass (whole AXI beats) per batch of every iteration."""
    return n * math.ceil(t / cfg.batch) * cfg.pass_bytes


def schedule_cycles(cfg: TokenBatchConfig, n: int, t: int) -> dict[str, int]:
    """Cycles of one frame by the unit's schedule, free-running streams, a DDR that returns one beat per cycle:
    ``compute`` = the MAC cycles (n * t * NF * SF, FINN's MVAU count for n x t vectors), ``weight_bound`` = the
    extra cycles of passes whose weights take longer to read than to apply (a batch of nb tokens applies each word
    nb cycles; a word takes word_bits/axi_dw beats), ``fill`` = loading the first batch, ``drain`` = emitting the
    last batch's outputs. Pipeline latencies (a few cycles) are not counted, nor the output-bank hand-over of
    SF = 1 layers (a few cycles per pass: the output stream is then as busy as the MACs)."""
    compute = n * t * cfg.nf * cfg.sf
    words = cfg.nf * cfg.sf
    extra = 0
    for t0 in range(0, t, cfg.batch):
        nb = min(cfg.batch, t - t0)
        extra += max(0, cfg.beats - words * nb)
    first = min(cfg.batch, t)
    last = t - (math.ceil(t / cfg.batch) - 1) * cfg.batch
    return {"compute": compute, "weight_bound": n * extra, "fill": first * cfg.sf, "drain": last * cfg.nf,
            "total": compute + n * extra + first * cfg.sf + last * cfg.nf}
