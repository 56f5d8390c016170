"""The engine's depthwise unit (``hw/samfpga/hw/rtl/dw_core.sv``: strip padding -> 3 x 3 window -> PE channels x
9 taps -> requantiser lanes, every shape at run time): its configuration, the beats it takes and sends, its
reference, and the Verilator + cocotb runner of its bench (the requantiser lanes' bench, ``requant_lanes_bench``).

A frame is one depthwise layer with its lanes (the program's ``dw`` step: ``EngineStep.dw_weights`` and ``rq``)
over a map (H, W, C) of 8-bit activations, C = cb * PE, padding 1, stride 1 or 2, read in ``tiles`` column strips
of S = W / tiles columns with a one-column halo on interior sides (strip_reader.sv's strips). The unit's outputs
are per strip, output row, column: the pixel's C requantised values. A window frame (``DwFrame.window``: a 3 x 3
convolution's input for the engine's GEMM unit) sends the padded strips' windows instead (``windows``), with no
weights, lanes or parameters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from samfpga.hw.sim import requant_lanes as rl
from samfpga.hw.sim.lane_requant import LaneRequant, signed_bits
from samfpga.hw.sim.own_rtl import build_own_rtl, run_bench
from samfpga.hw.sim.strip_pad import conv_valid, padded_columns
from samfpga.hw.sim.strip_reader import strip_columns
from samfpga.hw.sim.toolchain import setup_verilator_env

#: taps of the window: 3 x 3, padding 1 (TinyViT's MBConv and local convolutions, its patch merging at stride 2)
K = 3


@dataclass(frozen=True)
class DwFrame:
    """One layer: ``fmap`` (H, W, C) activations (UINT8 when ``in_unsigned``, else INT8), ``weights`` (C, 9) taps
    (tap ky * 3 + kx), its lanes ``rq``, ``stride`` 1 or 2, read in ``tiles`` strips. ``open_l`` / ``open_r`` (one
    strip): the map is a strip of a wider one, its halo column on that side included and not padded
    (``strip_frames``). ``window``: the window alone (cfg_window; ``weights`` and ``rq`` None)."""

    fmap: np.ndarray
    weights: np.ndarray | None
    rq: LaneRequant | None
    stride: int = 1
    tiles: int = 1
    in_unsigned: bool = False
    open_l: bool = False
    open_r: bool = False
    window: bool = False

    def __post_init__(self) -> None:
        h, w, c = np.shape(self.fmap)
        if self.window:
            if self.weights is not None or self.rq is not None:
                raise ValueError("dw_core: a window frame has no weights or lanes")
        elif np.shape(self.weights) != (c, K * K):
            raise ValueError(f"dw_core: weights {np.shape(self.weights)} for {c} channels (want ({c}, {K * K}))")
        elif self.rq.channels != c:
            raise ValueError(f"dw_core: {self.rq.channels} requantiser channels after {c}")
        if self.stride not in (1, 2):
            raise ValueError(f"dw_core: stride {self.stride} (1 or 2)")
        if self.tiles < 1 or w % self.tiles:
            raise ValueError(f"dw_core: {w} columns are not {self.tiles} whole strips")
        if (self.open_l or self.open_r) and self.tiles != 1:
            raise ValueError(f"dw_core: an open side on a map in {self.tiles} strips (a strip sent alone is one)")
        lo, hi = (0, 255) if self.in_unsigned else (-128, 127)
        x = np.asarray(self.fmap)
        if x.size and (x.min() < lo or x.max() > hi):
            raise ValueError(f"dw_core: activations [{x.min()}, {x.max()}] are not "
                             f"{'UINT8' if self.in_unsigned else 'INT8'}")

    @property
    def strip_cols(self) -> int:
        """Columns of a strip as the unit counts them (S: an open side's halo included)."""
        return np.shape(self.fmap)[1] // self.tiles

    @property
    def padded_cols(self) -> int:
        """Columns of a padded strip (the window's W')."""
        return self.strip_cols + 2 - self.open_l - self.open_r


@dataclass(frozen=True)
class DwCoreConfig:
    """Synthesis parameters of dw_core.sv (``lanes``: its requantiser lanes, at LANES = pe, IN_BITS = acc_bits)."""

    pe: int
    w_max: int  # columns of a padded strip (S + 2)
    cb_max: int  # beats of PE channels per pixel
    w_bits: int
    lanes: rl.LanesConfig

    @property
    def acc_bits(self) -> int:
        """Any sum of nine products of a 9-bit activation and a w_bits weight."""
        return 9 + self.w_bits + 4

    def rtl_params(self) -> dict[str, int]:
        return {"PE": self.pe, "W_MAX": self.w_max, "CB_MAX": self.cb_max, "W_BITS": self.w_bits,
                "ACC_BITS": self.acc_bits, "OUT_BITS": self.lanes.out_bits, "S_BITS": self.lanes.s_bits,
                "B_BITS": self.lanes.b_bits, "T_BITS": self.lanes.t_bits}

    @classmethod
    def covering(cls, frames: list[DwFrame], pe: int) -> DwCoreConfig:
        """The narrowest unit at ``pe`` channels per beat that runs every frame."""
        for f in frames:
            if np.shape(f.fmap)[2] % pe:
                raise ValueError(f"dw_core: {np.shape(f.fmap)[2]} channels are not whole beats of {pe}")
        convs = [f for f in frames if not f.window]
        if not convs:
            raise ValueError("dw_core: a unit covers at least one depthwise frame (its lanes' widths)")
        w_bits = max(signed_bits(f.weights) for f in convs)
        cb = max(np.shape(f.fmap)[2] // pe for f in frames)
        lanes = rl.LanesConfig.covering([(f.rq, accumulate(f)) for f in convs], lanes=pe)
        cfg = cls(pe=pe, w_max=max(f.padded_cols for f in frames), cb_max=cb, w_bits=w_bits, lanes=lanes)
        return replace(cfg, lanes=replace(lanes, in_bits=cfg.acc_bits, depth=cb))


def padded_strips(f: DwFrame) -> list[np.ndarray]:
    """Each strip as the window sees it: (H + 2, W', C) cut from the map padded by one (an open side unpadded)."""
    full = np.pad(np.asarray(f.fmap, dtype=np.int64), ((1, 1), (int(not f.open_l), int(not f.open_r)), (0, 0)))
    if f.open_l or f.open_r:
        return [full]
    w = np.shape(f.fmap)[1]
    return [full[:, lo + 1:hi + 1, :] for lo, hi in padded_columns(w, f.tiles, 1, 1)]


def strip_frames(f: DwFrame, tiles: int) -> list[DwFrame]:
    """Layer ``f`` (one strip) as ``tiles`` frames of one strip each, as a host launches it strip by strip: strip i's
    columns with their halos (``strip_reader.strip_columns``), its interior sides open. Their outputs side by side
    are ``f``'s (stride 2: strips of an even number of columns)."""
    if f.tiles != 1 or f.open_l or f.open_r:
        raise ValueError("dw_core: strip_frames splits a whole map")
    w = np.shape(f.fmap)[1]
    if w % tiles or (f.stride == 2 and (w // tiles) % 2):
        raise ValueError(f"dw_core: {w} columns are not {tiles} whole strips (even at stride 2)")
    return [replace(f, fmap=np.asarray(f.fmap)[:, lo:hi], open_l=lo > 0, open_r=hi < w)
            for lo, hi in strip_columns(w, tiles, 1)]


def accumulate(f: DwFrame) -> np.ndarray:
    """The depthwise sums (tokens, C) in the unit's order (strip, output row, column), exact in int64."""
    k = np.asarray(f.weights, dtype=np.int64).T.reshape(K, K, -1)
    c = np.shape(f.fmap)[2]
    return np.concatenate([conv_valid(s, k, f.stride).reshape(-1, c) for s in padded_strips(f)])


def windows(f: DwFrame, pe: int) -> np.ndarray:
    """A window frame's x_axis beats (tokens * cb, 9 * pe), a byte per value: per strip, output row, column, beat g
    of the pixel's C = cb * pe channels, the 9 taps (tap ky * 3 + kx) of channels g * pe .. g * pe + pe - 1, tap
    major. The values of a 3 x 3 convolution's input patch in the order (g, tap, lane)."""
    c = np.shape(f.fmap)[2]
    if c % pe:
        raise ValueError(f"dw_core: {c} channels are not whole beats of {pe}")
    out = []
    for s in padded_strips(f):
        h, w = s.shape[:2]
        oh, ow = (h - K) // f.stride + 1, (w - K) // f.stride + 1
        taps = np.stack([s[ky:ky + f.stride * (oh - 1) + 1:f.stride, kx:kx + f.stride * (ow - 1) + 1:f.stride]
                         for ky in range(K) for kx in range(K)], axis=2)  # (oh, ow, 9, C)
        out.append(taps.reshape(oh * ow, K * K, c // pe, pe).transpose(0, 2, 1, 3).reshape(-1, K * K * pe))
    return np.concatenate(out)


def patch_index(c: int, pe: int, padded: int | None = None) -> np.ndarray:
    """(9 * cb * pe,) for a map of ``c`` channels stored ``padded`` (default ``c``) a pixel, in cb = ceil(padded /
    pe) beats: for each value of a window beat's patch (order beat g, tap, lane p: ``windows``) its index in FINN's
    im2col order (tap * c + channel, the sliding window generator's and so the conv's weight rows), -1 for a padded
    channel (g * pe + p >= c)."""
    cb = -(-(c if padded is None else padded) // pe)
    g, t, p = np.meshgrid(np.arange(cb), np.arange(K * K), np.arange(pe), indexing="ij")
    ch = g * pe + p
    return np.where(ch < c, t * c + ch, -1).ravel()


def reference(f: DwFrame) -> np.ndarray:
    """The unit's outputs (tokens, C): the sums, then the lanes."""
    return f.rq.apply(accumulate(f))


def frame_config(f: DwFrame, cfg: DwCoreConfig) -> dict[str, int]:
    """The frame's cfg_* values."""
    h, w, c = np.shape(f.fmap)
    if c % cfg.pe or not 0 < c // cfg.pe <= cfg.cb_max:
        raise ValueError(f"dw_core: {c} channels on a unit of {cfg.cb_max} beats of {cfg.pe}")
    if f.padded_cols > cfg.w_max:
        raise ValueError(f"dw_core: strips of {f.padded_cols - 2} columns on a unit of {cfg.w_max - 2}")
    return {"h": h, "w": w, "tiles": f.tiles, "cb": c // cfg.pe, "stride2": int(f.stride == 2),
            "in_unsigned": int(f.in_unsigned), "unsigned": int(not f.window and not f.rq.out_signed),
            "open_l": int(f.open_l), "open_r": int(f.open_r), "window": int(f.window)}


def input_packets(f: DwFrame) -> list[bytes]:
    """The s_axis packets: each strip (strip_reader.sv's: rows of its columns, halo included), a byte per value."""
    x = np.asarray(f.fmap, dtype=np.int64)
    return [(x[:, lo:hi, :] & 0xFF).astype(np.uint8).tobytes()
            for lo, hi in strip_columns(np.shape(x)[1], f.tiles, 1)]


def weight_beats(f: DwFrame, cfg: DwCoreConfig) -> bytes:
    """The weights on the parameter stream: for each group g, taps 0..8, the group's PE weights (W_BITS each, lane
    p at bit p * W_BITS) in ceil(PE * W_BITS / the beat's bits) beats, low bits first."""
    w = np.asarray(f.weights, dtype=np.int64)
    rl._fits("dw_core: weights", w, cfg.w_bits, True)
    pb = rl.param_bytes(cfg.lanes)
    per_tap = -(-cfg.pe * cfg.w_bits // (8 * pb)) * pb
    rows = w.reshape(-1, cfg.pe, K * K).transpose(0, 2, 1).reshape(-1, cfg.pe)  # (group, tap) x lanes
    tap = (cfg.pe * cfg.w_bits + 7) // 8
    packed = rl.pack_beats(rows, cfg.w_bits)
    return b"".join(packed[i:i + tap].ljust(per_tap, b"\0") for i in range(0, len(packed), tap))


def param_stream(f: DwFrame, cfg: DwCoreConfig) -> bytes:
    """The p_axis bytes of a frame: its weights, then its lanes' parameters (none for a window frame)."""
    if f.window:
        return b""
    return weight_beats(f, cfg) + rl.param_stream(f.rq, cfg.lanes)


def unpack_outputs(data: bytes, f: DwFrame, cfg: DwCoreConfig) -> np.ndarray:
    """m_axis bytes -> (tokens, C) outputs."""
    return rl.unpack_outputs(data, f.rq, cfg.lanes)


def build(cfg: DwCoreConfig, work_dir: Path) -> float:
    """Verilator build of the unit at ``cfg`` into ``work_dir/sim_build``; returns seconds."""
    return build_own_rtl("dw_core", cfg.rtl_params(), work_dir)


def simulate(cfg: DwCoreConfig, frames: list[DwFrame | dict], passes: list[dict], work_dir: Path, seed: int = 0,
             tag: str = "run", packets: dict[int, list[bytes]] | None = None) -> rl.LanesResult:
    """Run the bench on a design built by ``build``: every pass ({"name", "p_pause" (weights and parameters),
    "in_pause", "out_pause"}) runs every frame back to back; a dict is a raw configuration the unit must refuse
    (nothing taken or sent). ``packets``: input packets that replace frame i's (negative controls). Per pass the
    result has each frame's output bytes (hex; a window frame's x_axis bytes, a packet per strip), its end cycle
    and ``err``."""
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = Path(work_dir) / tag
    run.mkdir(parents=True, exist_ok=True)
    specs, cycles = [], 0
    for i, f in enumerate(frames):
        if isinstance(f, dict):
            specs.append({"cfg": {f"cfg_{k}": v for k, v in {"window": 0, **f}.items()}, "params": "", "data": "",
                          "out": False})
            continue
        pk = (packets or {}).get(i) or input_packets(f)
        specs.append({"cfg": {f"cfg_{k}": v for k, v in frame_config(f, cfg).items()},
                      "params": param_stream(f, cfg).hex(),
                      "data": [p.hex() for p in pk], "out": "x" if f.window else True, "x_packets": len(pk)})
        # the padded strips' beats, the window's reads (two per output at stride 2), the parameters
        outs = windows(f, cfg.pe).size // 9 if f.window else reference(f).size
        cycles += sum(len(p) for p in pk) // cfg.pe * 2 + 2 * outs // cfg.pe * f.stride + 12 * np.shape(f.fmap)[2]
    spec = {"frames": specs, "passes": passes, "seed": seed, "param_bytes": rl.param_bytes(cfg.lanes),
            "timeout_cycles": 20 * cycles + 20000, "result": str(run / "result.json")}
    res = rl.LanesResult()
    res.passes, res.error = run_bench("dw_core", rl.BENCH_MODULE, "SAMFPGA_LANES_SPEC", spec, run,
                                      Path(work_dir) / "sim_build")
    res.wall_s = round(time.monotonic() - t0, 2)
    return res
