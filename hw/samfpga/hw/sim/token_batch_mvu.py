"""The token-batched MVU (hw/samfpga/hw/rtl/token_batch_mvu.sv): its DDR weight layout, a numpy model of the unit,
its stream packing and its schedule's cycle count. numpy only (the driver and the planner can import it).

A frame is ``n`` iterations (the blocks of a rolled stage) x ``t`` tokens: iteration i multiplies its ``t`` input
vectors (``mw`` integers each) by its own weight matrix (``mh`` x ``mw``) read from DDR at ``base + i * stride``.

DDR layout (``pack_weights``), per iteration: the weight words (nf, sf) for nf < MH/PE, sf < MW/SIMD in that order,
word element p*SIMD + s = W[nf*PE + p, sf*SIMD + s] (``w_bits`` two's complement or unsigned, element 0 in the
LSBs), concatenated into one little-endian bit string (no padding between words), padded with zero bits to whole
AXI beats, then with zero bytes to ``stride`` (a multiple of the burst size, so that no burst crosses 4 KiB).
The unit reads that string once per batch of ``batch`` tokens.

With ``requant`` the unit requantises each sum before its output banks, y = clip((acc * scale + bias) >> shift)
(floor shift; clip to ``out_bits``), with per-channel parameters (``RequantParams``, one set per iteration) that
travel in the same string: ahead of fold nf's SF weight words, ``param_words`` words holding the PE channels
nf*PE .. nf*PE+PE-1, channel p at bit p * param_bits as (scale: rq_scale_bits, bias: rq_bias_bits, shift:
rq_shift_bits), zero-padded to whole words.

A unit built with ``raw_out`` (RTL RAW_OUT, with ``requant`` and ``rt_shape``) can run a frame ``raw`` (register
RAW; the engine's QK^T, whose sums go to the softmax unrequantised): no parameter words in DDR (the layout without
``requant``), and each fold's PE sums, as ``raw_words`` x ``out_bits`` bits (the accumulator's low bits, sign-extended), leave as ``raw_words``
beats of the requantised stream's width (``pack_outputs``); after an issue that finishes a sum the unit waits
``raw_words`` cycles before the next such issue (its output banks have one write port).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

#: the unit's dot-product datapaths, in the order of its RTL parameter DOT
DOTS = ("tree", "chain", "pack")


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
    requant: bool = False  # requantise inside the unit (RTL parameter RQ)
    out_bits: int = 8
    out_signed: bool = True
    rq_scale_bits: int = 18
    rq_bias_bits: int = 40
    rq_shift_bits: int = 6
    pq_depth: int = 4  # RQ: folds' requantisation parameters queued in registers (RTL PQ_DEPTH; priced by the planner)
    dot: str = "tree"  # dot products (RTL DOT): "tree" adder trees, "chain" dot_chain.sv, "pack" dot_pack.sv (PE even)
    #: RTL RT_SHAPE: the layer's shape is run-time (cfg_sf / cfg_nf / cfg_batch), mw / mh / batch the largest it
    #: holds (``layer_shape`` gives a layer's configuration on it); needs words of whole AXI beats
    rt_shape: bool = False
    #: RTL RAW_OUT: frames may bypass the requantiser (register RAW); needs requant and rt_shape
    raw_out: bool = False
    #: RTL RAW_BITS: bits of a raw sum on the stream (0: acc_bits): the accumulator's low bits, exact for sums that
    #: fit (the engine's unit has the widest layer's accumulator; QK^T's sums are narrower)
    raw_bits: int = 0
    #: this frame (a ``layer_shape`` configuration) runs raw: sums out unrequantised, no parameters in DDR
    raw: bool = False

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
        if self.dot not in DOTS or (self.dot == "pack" and self.pe % 2):
            raise ValueError(f"dot {self.dot!r} must be one of {DOTS} (pack: PE even, got PE={self.pe})")
        if self.pq_depth < 2 or self.pq_depth & (self.pq_depth - 1):
            raise ValueError(f"pq_depth {self.pq_depth} must be a power of 2 >= 2")
        if self.wfifo_depth < self.max_burst or self.wfifo_depth & (self.wfifo_depth - 1):
            raise ValueError(f"wfifo_depth {self.wfifo_depth} must be a power of 2 >= max_burst {self.max_burst}")
        if self.rt_shape and self.word_bits % self.axi_dw:
            raise ValueError(f"rt_shape needs weight words of whole AXI beats: PE*SIMD*W_BITS = {self.word_bits} is "
                             f"not a multiple of axi_dw {self.axi_dw}")
        if self.raw_out and not (self.requant and self.rt_shape):
            raise ValueError("raw_out needs requant and rt_shape (the unit's RAW_OUT needs RQ = 1 and RT_SHAPE = 1)")
        if self.raw and not self.requant:
            raise ValueError("raw: only a requantising unit has a requantiser to bypass (requant=False)")
        if self.requant and not (2 <= self.out_bits <= 32 and 1 <= self.rq_shift_bits <= 7):
            raise ValueError(f"requant: out_bits {self.out_bits} must be 2..32 and rq_shift_bits "
                             f"{self.rq_shift_bits} 1..7")

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
    def requantises(self) -> bool:
        """The frame's sums are requantised (``requant`` and not ``raw``): parameters travel with the weights."""
        return self.requant and not self.raw

    @property
    def raw_words(self) -> int:
        """Output words (of ``out_bits`` per value) one raw sum takes: ceil(raw_bits (or acc_bits) / out_bits)."""
        return -(-(self.raw_bits or self.acc_bits) // self.out_bits)

    @property
    def raw_low(self) -> bool:
        """A raw frame whose sums leave as their low ``out_bits`` bits, a fold as one beat (``raw_words`` 1: a frame
        at raw_bits = out_bits, whose sums fit them; the engine's V transpose): on a unit built for wider raw sums the
        RTL takes it from cfg_unsigned = 1 (``unsigned_flag``)."""
        return self.raw and self.raw_words == 1

    @property
    def unsigned_flag(self) -> int:
        """The RTL's cfg_unsigned for this frame: a requantised frame's clip to the unsigned range, or a raw frame's
        low bits (``raw_low``)."""
        return int(self.raw_low if self.raw else self.requantises and not self.out_signed)

    @property
    def out_words(self) -> int:
        """Output beats per fold of PE values: ``raw_words`` in a raw frame, else 1."""
        return self.raw_words if self.raw else 1

    @property
    def param_bits(self) -> int:
        """Requantisation parameters of one channel (scale, bias, shift)."""
        return self.rq_scale_bits + self.rq_bias_bits + self.rq_shift_bits

    @property
    def param_words(self) -> int:
        """Words of parameters ahead of each output fold's weight words (0 without ``requant``)."""
        return math.ceil(self.pe * self.param_bits / self.word_bits) if self.requantises else 0

    @property
    def fold_words(self) -> int:
        """Words the unit reads per output fold: parameters and SF weight words."""
        return self.param_words + self.sf

    @property
    def beats(self) -> int:
        """AXI beats per pass (one iteration's weights and parameters)."""
        return math.ceil(self.nf * self.fold_words * self.word_bits / self.axi_dw)

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
    def out_value_bits(self) -> int:
        """Bits of one output value: requantised, the accumulator, or (raw) the sum sign-extended to
        ``raw_words`` x ``out_bits``."""
        if self.raw:
            return self.raw_words * self.out_bits
        return self.out_bits if self.requant else self.acc_bits

    @property
    def out_value_signed(self) -> bool:
        return self.out_signed if self.requantises else True

    @property
    def out_stream_bits(self) -> int:
        """Bits of one output beat: PE values (a raw frame's PE sums take ``out_words`` beats of this width)."""
        return math.ceil(self.pe * self.out_value_bits // self.out_words / 8) * 8

    def rtl_params(self) -> dict[str, int]:
        return {"MW": self.mw, "MH": self.mh, "SIMD": self.simd, "PE": self.pe, "A_BITS": self.a_bits,
                "W_BITS": self.w_bits, "ACC_BITS": self.acc_bits, "A_SIGNED": int(self.a_signed),
                "W_SIGNED": int(self.w_signed), "B": self.batch, "AXI_DW": self.axi_dw, "AXI_AW": self.axi_aw,
                "MAX_BURST": self.max_burst, "WFIFO_DEPTH": self.wfifo_depth, "CNT_BITS": self.cnt_bits,
                "RQ": int(self.requant), "OUT_BITS": self.out_bits, "OUT_SIGNED": int(self.out_signed),
                "RS_BITS": self.rq_scale_bits, "RB_BITS": self.rq_bias_bits, "RT_BITS": self.rq_shift_bits,
                "PQ_DEPTH": self.pq_depth, "DOT": DOTS.index(self.dot), "RT_SHAPE": int(self.rt_shape),
                "RAW_OUT": int(self.raw_out), "RAW_BITS": self.raw_bits}

    def to_dict(self) -> dict:
        return asdict(self)


def whole_folds(n: int, fold: int) -> int:
    """``n`` rounded up to a multiple of ``fold`` (a layer's MW / MH padded to the unit's SIMD / PE)."""
    return -(-n // fold) * fold


def max_batch(unit: TokenBatchConfig, mw: int, mh: int, raw: bool = False) -> int:
    """The most tokens per pass ``unit``'s input and output banks hold for an ``mw`` -> ``mh`` layer (whole folds):
    B' <= B, B'·MW/SIMD <= B·SF, B'·MH/PE·K <= B·NF (K = ``raw_words`` in a ``raw`` frame, else 1; 0 when not
    even one)."""
    k = unit.raw_words if raw else 1
    return min(unit.batch, unit.batch * unit.sf // (mw // unit.simd), unit.batch * unit.nf // (mh // unit.pe * k))


def layer_shape(unit: TokenBatchConfig, mw: int, mh: int, batch: int | None = None, raw: bool = False
                ) -> TokenBatchConfig:
    """The configuration of an ``mw`` -> ``mh`` layer run on the run-time-shaped ``unit`` (``unit.rt_shape``) with
    ``batch`` tokens per pass (default: the most its buffers hold, ``max_batch``), ``raw``: its sums unrequantised
    (``unit.raw_out``): a unit built at that shape, whose DDR layout, streams and schedule the run-time-shaped unit
    reproduces. Its registers: cfg_sf = .sf, cfg_nf = .nf, cfg_batch = .batch, cfg_raw = .raw.
    ValueError naming the limit when the unit's buffers cannot hold the layer."""
    if not unit.rt_shape:
        raise ValueError("layer_shape: the unit is not run-time shaped (rt_shape=False)")
    if raw and not unit.raw_out:
        raise ValueError("layer_shape: raw needs a unit built with raw_out (RTL RAW_OUT = 1)")
    if mw % unit.simd or mh % unit.pe or mw < 1 or mh < 1:
        raise ValueError(f"layer {mw} -> {mh}: SIMD={unit.simd} must divide MW and PE={unit.pe} MH")
    most = max_batch(unit, mw, mh, raw)
    b = most if batch is None else batch
    k = unit.raw_words if raw else 1
    if not 1 <= b <= most:
        raise ValueError(f"layer {mw} -> {mh} at batch {b}{' raw' if raw else ''}: beyond the unit's buffers "
                         f"(batch <= {unit.batch}, batch x MW/SIMD <= {unit.batch * unit.sf}, batch x MH/PE"
                         f"{f' x {k}' if raw else ''} <= {unit.batch * unit.nf})")
    return replace(unit, mw=mw, mh=mh, batch=b, rt_shape=False, raw_out=False, raw=raw)


@dataclass
class RequantParams:
    """Per-iteration, per-channel requantisation: y = clip((acc * scale + bias) >> shift). Arrays (n, mh) of
    integers: scale and bias two's complement of ``rq_scale_bits`` / ``rq_bias_bits``, shift in
    [0, 2**rq_shift_bits)."""

    scale: np.ndarray
    bias: np.ndarray
    shift: np.ndarray

    def checked(self, cfg: TokenBatchConfig, n: int | None = None) -> RequantParams:
        out = RequantParams(_check_ints("requant scale", self.scale, cfg.rq_scale_bits, True),
                            _check_ints("requant bias", self.bias, cfg.rq_bias_bits, True),
                            _check_ints("requant shift", self.shift, cfg.rq_shift_bits, False))
        for name, a in vars(out).items():
            if a.ndim != 2 or a.shape[1] != cfg.mh or (n is not None and a.shape[0] != n):
                raise ValueError(f"requant {name}: shape {a.shape}, expected (n, MH) = "
                                 f"({'n' if n is None else n}, {cfg.mh})")
        return out


def from_finn_requant(per_iteration: list, cfg: TokenBatchConfig) -> RequantParams:
    """The unit's parameters for FINN+'s ``Requant`` layers, one per iteration, given as their fixed-point
    decomposition (``samfpga.kernels.requant.fixed_point_params(scale, bias, cfg.acc_bits, cfg.out_bits)``, which
    mirrors finn-rtllib requant.sv and FINN+'s ``decompose_params``): the unit then computes what that RTL computes,
    ``clip((acc * S + B) >> T)``. Refused, with the reason: a decomposition that drops input LSBs (accumulator
    wider than the multiplier's data port), or values beyond the unit's parameter widths."""
    if len(per_iteration) < 1:
        raise ValueError("from_finn_requant: no iterations")
    rows = {"scale": [], "bias": [], "shift": []}
    for i, p in enumerate(per_iteration):
        if p.x_drop:
            raise ValueError(f"iteration {i}: the requantiser drops {p.x_drop} input LSBs (accumulator of "
                             f"{cfg.acc_bits} bits wider than its {p.x_width}-bit multiplier port); the unit does not")
        if p.s_width > cfg.rq_scale_bits:
            raise ValueError(f"iteration {i}: {p.s_width}-bit scales need rq_scale_bits >= {p.s_width} "
                             f"(have {cfg.rq_scale_bits})")
        for k in rows:
            a = np.asarray(getattr(p, k)).ravel()
            if a.shape != (cfg.mh,):
                raise ValueError(f"iteration {i}: {k} of {a.size} channels, expected MH = {cfg.mh}")
            rows[k].append([int(v) for v in a])
    return RequantParams(**{k: np.array(v, dtype=np.int64) for k, v in rows.items()}).checked(cfg)


def sample_requant(cfg: TokenBatchConfig, n: int, rng: np.random.Generator) -> RequantParams:
    """Test and benchmark parameters for ``n`` iterations that put most outputs inside the range and some beyond
    both ends (clipped): scales of magnitude 2**15 .. 2**17 with random signs, biases within +-2**20, and the shift
    that maps a typical sum (sqrt(MW) x 74 x 74 for uniform 8-bit operands) times 2**16 to half the signed range."""
    typical = np.log2(np.sqrt(cfg.mw) * 74 * 74) + 16
    shift = np.full((n, cfg.mh), int(round(typical)) - (cfg.out_bits - 1))
    scale = rng.integers(1 << 15, 1 << 17, (n, cfg.mh)) * rng.choice([-1, 1], (n, cfg.mh))
    return RequantParams(scale=scale, bias=rng.integers(-(1 << 20), 1 << 20, (n, cfg.mh)), shift=shift)


def requantize(acc: np.ndarray, rq: RequantParams, cfg: TokenBatchConfig) -> np.ndarray:
    """clip(floor((acc * scale + bias) / 2**shift)) per channel. acc: (n, t, mh) int64 -> (n, t, mh) int64."""
    rq = rq.checked(cfg, acc.shape[0])
    # python integers: acc * scale + bias can exceed int64 for wide parameters
    a = acc.astype(object)
    v = (a * rq.scale[:, None, :].astype(object) + rq.bias[:, None, :].astype(object)) >> \
        rq.shift[:, None, :].astype(object)
    lo, hi = _range(cfg.out_bits, cfg.out_signed)
    return np.clip(v, lo, hi).astype(np.int64)


def param_words(rq: RequantParams, i: int, cfg: TokenBatchConfig) -> list[list[int]]:
    """Iteration i's parameters as NF groups of ``cfg.param_words`` words (see the module doc)."""
    pb = cfg.param_bits
    masks = [(1 << b) - 1 for b in (cfg.rq_scale_bits, cfg.rq_bias_bits, cfg.rq_shift_bits)]
    out = []
    for nf in range(cfg.nf):
        v = 0
        for p in range(cfg.pe):
            c = nf * cfg.pe + p
            lane = (int(rq.scale[i, c]) & masks[0]) | (int(rq.bias[i, c]) & masks[1]) << cfg.rq_scale_bits | \
                (int(rq.shift[i, c]) & masks[2]) << (cfg.rq_scale_bits + cfg.rq_bias_bits)
            v |= lane << (p * pb)
        wm = (1 << cfg.word_bits) - 1
        out.append([(v >> (k * cfg.word_bits)) & wm for k in range(cfg.param_words)])
    return out


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


def pack_weights(w: np.ndarray, cfg: TokenBatchConfig, stride: int | None = None,
                 rq: RequantParams | None = None) -> bytes:
    """DDR image of ``n`` iterations' weights (n, mh, mw) -> ``n * stride`` bytes (iteration i at i * stride);
    with ``cfg.requant`` each fold's parameters from ``rq`` ahead of its weight words.

    stride: bytes per iteration, a multiple of ``cfg.burst_bytes`` >= ``cfg.pass_bytes`` (default: the smallest).
    """
    w = np.asarray(w)
    if w.ndim != 3:
        raise ValueError(f"weights: expected (n, MH, MW), got shape {w.shape}")
    if cfg.requantises != (rq is not None):
        raise ValueError("requant parameters are needed exactly when the frame is requantised (cfg.requantises)")
    if rq is not None:
        rq = rq.checked(cfg, w.shape[0])
    stride = cfg.min_stride if stride is None else stride
    if stride % cfg.burst_bytes or stride < cfg.pass_bytes:
        raise ValueError(f"stride {stride} must be a multiple of the burst size {cfg.burst_bytes} and >= one "
                         f"pass of {cfg.pass_bytes} bytes")
    out = bytearray()
    for i in range(w.shape[0]):
        ww = weight_words(w[i], cfg)
        pw = param_words(rq, i, cfg) if rq is not None else [[] for _ in range(cfg.nf)]
        seq = [x for nf in range(cfg.nf) for x in pw[nf] + ww[nf * cfg.sf:(nf + 1) * cfg.sf]]
        bits = 0
        for k, word in enumerate(seq):
            bits |= word << (k * cfg.word_bits)
        out += bits.to_bytes(cfg.pass_bytes, "little") + bytes(stride - cfg.pass_bytes)
    return bytes(out)


def unpack_weights(data: bytes, n: int, cfg: TokenBatchConfig, stride: int | None = None,
                   base: int = 0) -> np.ndarray:
    """Inverse of ``pack_weights``: (n, mh, mw) int64 read from ``data`` at ``base + i * stride``."""
    return _unpack(data, n, cfg, stride, base)[0]


def unpack_requant(data: bytes, n: int, cfg: TokenBatchConfig, stride: int | None = None,
                   base: int = 0) -> RequantParams:
    """The requantisation parameters of a ``pack_weights`` image (``cfg.requant``)."""
    if not cfg.requantises:
        raise ValueError("the frame is not requantised (cfg.requantises is False): no parameters in the image")
    return _unpack(data, n, cfg, stride, base)[1]


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def _unpack(data: bytes, n: int, cfg: TokenBatchConfig, stride: int | None, base: int
            ) -> tuple[np.ndarray, RequantParams | None]:
    stride = cfg.min_stride if stride is None else stride
    out = np.zeros((n, cfg.mh, cfg.mw), dtype=np.int64)
    sc, bi, sh = (np.zeros((n, cfg.mh), dtype=np.int64) for _ in range(3))
    mask = (1 << cfg.w_bits) - 1
    wmask = (1 << cfg.word_bits) - 1
    for i in range(n):
        start = base + i * stride
        if start + cfg.pass_bytes > len(data):
            raise ValueError(f"iteration {i}: bytes {start}..{start + cfg.pass_bytes} beyond the image "
                             f"({len(data)} bytes)")
        bits = int.from_bytes(data[start:start + cfg.pass_bytes], "little")
        seq = [(bits >> (k * cfg.word_bits)) & wmask for k in range(cfg.nf * cfg.fold_words)]
        wwords = []
        for nf in range(cfg.nf):
            fold = seq[nf * cfg.fold_words:(nf + 1) * cfg.fold_words]
            wwords += fold[cfg.param_words:]
            if cfg.requantises:
                v = sum(x << (k * cfg.word_bits) for k, x in enumerate(fold[:cfg.param_words]))
                for p in range(cfg.pe):
                    lane = v >> (p * cfg.param_bits)
                    c = nf * cfg.pe + p
                    sc[i, c] = _signed(lane & ((1 << cfg.rq_scale_bits) - 1), cfg.rq_scale_bits)
                    bi[i, c] = _signed((lane >> cfg.rq_scale_bits) & ((1 << cfg.rq_bias_bits) - 1),
                                       cfg.rq_bias_bits)
                    sh[i, c] = (lane >> (cfg.rq_scale_bits + cfg.rq_bias_bits)) & ((1 << cfg.rq_shift_bits) - 1)
        elems = np.array([(wd >> (k * cfg.w_bits)) & mask for wd in wwords for k in range(cfg.pe * cfg.simd)],
                         dtype=np.int64)
        if cfg.w_signed:
            elems = np.where(elems >= 1 << (cfg.w_bits - 1), elems - (1 << cfg.w_bits), elems)
        out[i] = elems.reshape(cfg.nf, cfg.sf, cfg.pe, cfg.simd).transpose(0, 2, 1, 3).reshape(cfg.mh, cfg.mw)
    return out, (RequantParams(sc, bi, sh) if cfg.requantises else None)


def reference(x: np.ndarray, w: np.ndarray, cfg: TokenBatchConfig, rq: RequantParams | None = None
              ) -> np.ndarray:
    """The layer: y[i, t] = W[i] @ x[i, t], exact, then ``requantize`` with ``rq`` when ``cfg.requant``.
    x: (n, t, mw) integers, w: (n, mh, mw) -> (n, t, mh) int64.

    Raises when a sum does not fit ``acc_bits`` (the unit's accumulator is sized so that it does)."""
    x = _check_ints("inputs", x, cfg.a_bits, cfg.a_signed)
    w = _check_ints("weights", w, cfg.w_bits, cfg.w_signed)
    if x.ndim != 3 or w.ndim != 3 or x.shape[0] != w.shape[0] or x.shape[2] != cfg.mw or \
            w.shape[1:] != (cfg.mh, cfg.mw):
        raise ValueError(f"inputs {x.shape} / weights {w.shape}: expected (n, t, {cfg.mw}) / (n, {cfg.mh}, {cfg.mw})")
    y = np.einsum("itk,ihk->ith", x, w)
    lo, hi = _range(cfg.acc_bits, True)
    if y.size and (y.min() < lo or y.max() > hi):
        raise ValueError(f"results in [{y.min()}, {y.max()}] overflow the INT{cfg.acc_bits} accumulator")
    if cfg.requantises != (rq is not None):
        raise ValueError("requant parameters are needed exactly when the frame is requantised (cfg.requantises)")
    if cfg.raw:
        lo, hi = _range(cfg.out_value_bits, True)
        if y.size and (y.min() < lo or y.max() > hi):
            raise ValueError(f"raw sums in [{y.min()}, {y.max()}] do not fit the {cfg.out_value_bits} bits the unit "
                             f"sends (raw_bits {cfg.raw_bits or cfg.acc_bits})")
    return requantize(y, rq, cfg) if rq is not None else y


def unit_model(x: np.ndarray, ddr: bytes, cfg: TokenBatchConfig, base: int = 0, stride: int | None = None
               ) -> np.ndarray:
    """The unit's schedule in numpy: per iteration, per batch of <= B tokens, one pass over the weight words read
    from the DDR image ``ddr`` (as ``pack_weights`` lays them out at ``base``), each word applied to every token
    of the batch. x: (n, t, mw) -> (n, t, mh) int64 (the output stream's order)."""
    x = _check_ints("inputs", x, cfg.a_bits, cfg.a_signed)
    n, t, _ = x.shape
    stride = cfg.min_stride if stride is None else stride
    w, rq = _unpack(ddr, n, cfg, stride, base)
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
    return requantize(y, rq, cfg) if rq is not None else y


def pack_inputs(x: np.ndarray, cfg: TokenBatchConfig) -> list[int]:
    """Input stream beats of x (n, t, mw): per token SF beats of SIMD elements (element 0 in the LSBs)."""
    x = _check_ints("inputs", x, cfg.a_bits, cfg.a_signed)
    return _pack_rows(x.reshape(-1, cfg.simd), cfg.a_bits)


def pack_outputs(y: np.ndarray, cfg: TokenBatchConfig) -> list[int]:
    """Output stream beats of y (n, t, mh): per token NF folds of PE values (``out_value_bits`` each), a fold in
    ``out_words`` beats (raw: beat k = bits k*PE*out_bits .. of the fold's PE values)."""
    folds = _pack_rows(np.asarray(y, dtype=np.int64).reshape(-1, cfg.pe), cfg.out_value_bits)
    k = cfg.out_words
    if k == 1:
        return folds
    bits = cfg.pe * cfg.out_value_bits // k
    return [(f >> (j * bits)) & ((1 << bits) - 1) for f in folds for j in range(k)]


def unpack_outputs(words: list[int], n: int, t: int, cfg: TokenBatchConfig) -> np.ndarray:
    """Inverse of ``pack_outputs`` -> (n, t, mh) int64."""
    k = cfg.out_words
    if k > 1:
        if len(words) % k:
            raise ValueError(f"{len(words)} output beats: not whole folds of {k} beats (raw)")
        step = cfg.pe * cfg.out_value_bits // k
        words = [sum(int(w) << (j * step) for j, w in enumerate(words[i:i + k])) for i in range(0, len(words), k)]
    bits = cfg.out_value_bits
    mask = (1 << bits) - 1
    vals = [((int(wd) >> (p * bits)) & mask) for wd in words for p in range(cfg.pe)]
    arr = np.array([_signed(v, bits) if cfg.out_value_signed else v for v in vals], dtype=np.int64)
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


def issue_cycles(cfg: TokenBatchConfig, nb: int) -> int:
    """Cycles a pass of ``nb`` tokens issues its MACs: NF x SF x nb, or in a raw frame with the wait after each
    issue that finishes a sum (K = ``raw_words``): per fold (nb - 1) x K + max(K, (SF - 1) x nb + 1) in steady
    state (SF = 1: nb x K)."""
    if not cfg.raw:
        return cfg.nf * cfg.sf * nb
    k = cfg.raw_words
    return cfg.nf * ((nb - 1) * k + max(k, (cfg.sf - 1) * nb + 1))


def stream_cycles(cfg: TokenBatchConfig, t: int) -> int:
    """Cycles one run over ``t`` tokens takes beyond its MAC cycles (``schedule_cycles``'s params + raw_wait +
    weight_bound for n = 1, in closed form for the planner): the parameter words of every pass, a raw frame's
    waits, and the passes whose weights take more AXI beats than their issue cycles (a narrow port or a small
    batch)."""
    q = cfg.nf * cfg.param_words
    words = cfg.nf * cfg.sf
    full, rest = divmod(t, cfg.batch)
    out = 0
    for nb, count in ((cfg.batch, full), (rest, 1 if rest else 0)):
        issue = issue_cycles(cfg, nb)
        out += count * (q + issue - words * nb + max(0, cfg.beats - issue - q))
    return out


def schedule_cycles(cfg: TokenBatchConfig, n: int, t: int) -> dict[str, int]:
    """Cycles of one frame by the unit's schedule, free-running streams, a DDR that returns one beat per cycle:
    ``compute`` = the MAC cycles (n * t * NF * SF, FINN's MVAU count for n x t vectors), ``weight_bound`` = the
    extra cycles of passes whose weights take longer to read than to apply (a batch of nb tokens applies each word
    nb cycles; a word takes word_bits/axi_dw beats), ``fill`` = loading the first batch, ``drain`` = emitting the
    last batch's outputs, ``params`` = the cycles that take requantisation parameter words (NF * param_words per
    pass, no MACs), ``raw_wait`` = a raw frame's waits between issues that finish a sum (``issue_cycles`` beyond
    the MAC cycles). Pipeline latencies (a few cycles) are not counted, nor the output-bank hand-over of
    SF = 1 layers (a few cycles per pass: the output stream is then as busy as the MACs)."""
    compute = n * t * cfg.nf * cfg.sf
    words = cfg.nf * cfg.sf
    passes = math.ceil(t / cfg.batch)
    params = n * passes * cfg.nf * cfg.param_words
    extra = wait = 0
    for t0 in range(0, t, cfg.batch):
        nb = min(cfg.batch, t - t0)
        issue = issue_cycles(cfg, nb)
        wait += issue - words * nb
        extra += max(0, cfg.beats - issue - cfg.nf * cfg.param_words)
    first = min(cfg.batch, t)
    last = t - (passes - 1) * cfg.batch
    drain = last * cfg.nf * cfg.out_words
    return {"compute": compute, "params": params, "raw_wait": n * wait, "weight_bound": n * extra,
            "fill": first * cfg.sf, "drain": drain,
            "total": compute + params + n * wait + n * extra + first * cfg.sf + drain}
