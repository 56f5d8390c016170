"""Requantiser lanes (``hw/samfpga/hw/rtl/requant_lanes.sv``): the engine's per-channel requantisation outside the
GEMM unit (``lane_requant.LaneRequant`` after the LayerNorm, the depthwise unit and the residual adder). Its
configuration, the beats it takes and sends, and the Verilator + cocotb runner of its bench
(``requant_lanes_bench``).

A frame of T tokens x C channels runs as GROUPS = ceil(C / LANES) beats per token: channel c on lane c % LANES,
the padded channels' parameters zero (their outputs are dropped).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from samfpga.hw.sim.lane_requant import LaneRequant, signed_bits
from samfpga.hw.sim.own_rtl import build_own_rtl, run_bench
from samfpga.hw.sim.toolchain import setup_verilator_env

BENCH_MODULE = "samfpga.hw.sim.requant_lanes_bench"


@dataclass(frozen=True)
class LanesConfig:
    """Synthesis parameters of requant_lanes.sv."""

    lanes: int = 4
    in_bits: int = 16
    out_bits: int = 8
    s_bits: int = 18
    b_bits: int = 40
    t_bits: int = 6
    depth: int = 16

    def rtl_params(self) -> dict[str, int]:
        return {"LANES": self.lanes, "IN_BITS": self.in_bits, "OUT_BITS": self.out_bits, "S_BITS": self.s_bits,
                "B_BITS": self.b_bits, "T_BITS": self.t_bits, "DEPTH": self.depth}

    @classmethod
    def covering(cls, passes: list[tuple[LaneRequant, np.ndarray]], lanes: int) -> LanesConfig:
        """The narrowest lanes that run every (parameters, inputs) pass: widths of the widest values, entries for
        the most channels."""
        rqs = [rq for rq, _ in passes]
        return cls(lanes=lanes, in_bits=max(signed_bits(x) for _, x in passes),
                   out_bits=max(rq.out_bits for rq in rqs),
                   s_bits=max(signed_bits(rq.scale) for rq in rqs), b_bits=max(signed_bits(rq.bias) for rq in rqs),
                   t_bits=max(int(rq.shift.max()).bit_length() for rq in rqs),
                   depth=max(-(-rq.channels // lanes) for rq in rqs))


def residual_lanes(pe: int, min_sf: int) -> int:
    """Lanes of a residual adder and its requantisers behind a unit that sends a fold of ``pe`` outputs per
    ``min_sf`` cycles or slower (SF: its input beats per fold): the fewest that keep up and divide ``pe`` (so a fold
    re-cuts into whole beats of lanes), the smallest divisor of ``pe`` of at least ceil(pe / min_sf)."""
    if pe < 1 or min_sf < 1:
        raise ValueError(f"residual lanes: pe = {pe}, min_sf = {min_sf}; both must be >= 1")
    need = -(-pe // min_sf)
    return next(k for k in range(need, pe + 1) if pe % k == 0)


def residual_drain(last: int, channels: int, lanes: int, pe: int) -> int:
    """Cycles a residual step takes past its unit's schedule: the unit's last batch (``last`` tokens of ``channels``)
    drains through ``lanes`` residual lanes, ``pe`` / ``lanes`` times slower than the unit sends it."""
    return -(-last * channels // lanes) - last * channels // pe


def groups(rq: LaneRequant, cfg: LanesConfig) -> int:
    """Beats per token."""
    return -(-rq.channels // cfg.lanes)


def _fits(name: str, v: np.ndarray, bits: int, signed: bool) -> None:
    lo, hi = (-(1 << bits - 1), (1 << bits - 1) - 1) if signed else (0, (1 << bits) - 1)
    if v.size and (v.min() < lo or v.max() > hi):
        raise ValueError(f"{name} [{v.min()}, {v.max()}] does not fit {bits} {'signed ' if signed else ''}bits")


def param_beats(rq: LaneRequant, cfg: LanesConfig) -> list[int]:
    """The p_axis beats of a frame: one per channel of the padded frame, {T, B, S} with S in the low bits."""
    n = groups(rq, cfg) * cfg.lanes
    if groups(rq, cfg) > cfg.depth:
        raise ValueError(f"{rq.channels} channels: more than {cfg.lanes} lanes x {cfg.depth} entries")
    for name, v, bits, signed in (("scale", rq.scale, cfg.s_bits, True), ("bias", rq.bias, cfg.b_bits, True),
                                  ("shift", rq.shift, cfg.t_bits, False)):
        _fits(name, np.asarray(v), bits, signed)
    out = []
    for c in range(n):
        s, b, t = (int(rq.scale[c]), int(rq.bias[c]), int(rq.shift[c])) if c < rq.channels else (0, 0, 0)
        out.append((s & ((1 << cfg.s_bits) - 1)) | (b & ((1 << cfg.b_bits) - 1)) << cfg.s_bits
                   | t << (cfg.s_bits + cfg.b_bits))
    return out


def param_bytes(cfg: LanesConfig) -> int:
    """Bytes of a p_axis beat: {T, B, S} rounded up to whole bytes."""
    return (cfg.s_bits + cfg.b_bits + cfg.t_bits + 7) // 8


def param_stream(rq: LaneRequant, cfg: LanesConfig) -> bytes:
    """The p_axis bytes of a frame: ``param_beats``, ``param_bytes`` little-endian bytes each."""
    return b"".join(v.to_bytes(param_bytes(cfg), "little") for v in param_beats(rq, cfg))


def pack_beats(v: np.ndarray, bits: int) -> bytes:
    """Rows of lane values (beats, lanes) -> the stream's bytes, lane k at bits [k*bits, (k+1)*bits)."""
    width = (v.shape[1] * bits + 7) // 8
    out = bytearray()
    for row in v:
        word = 0
        for k, x in enumerate(row):
            word |= (int(x) & ((1 << bits) - 1)) << (k * bits)
        out += word.to_bytes(width, "little")
    return bytes(out)


def data_beats(x: np.ndarray, rq: LaneRequant, cfg: LanesConfig) -> bytes:
    """The s_axis bytes of inputs x (..., C): tokens in order, each GROUPS beats (padded channels zero)."""
    x = np.asarray(x, dtype=np.int64).reshape(-1, rq.channels)
    _fits("input", x, cfg.in_bits, True)
    pad = np.zeros((x.shape[0], groups(rq, cfg) * cfg.lanes), dtype=np.int64)
    pad[:, :rq.channels] = x
    return pack_beats(pad.reshape(-1, cfg.lanes), cfg.in_bits)


def unpack_outputs(data: bytes, rq: LaneRequant, cfg: LanesConfig) -> np.ndarray:
    """m_axis bytes -> (tokens, C) outputs (padded channels dropped), signed or not as the frame's clip."""
    width = (cfg.lanes * cfg.out_bits + 7) // 8
    mask = (1 << cfg.out_bits) - 1
    vals = []
    for i in range(0, len(data), width):
        word = int.from_bytes(data[i:i + width], "little")
        vals += [(word >> (k * cfg.out_bits)) & mask for k in range(cfg.lanes)]
    v = np.asarray(vals, dtype=np.int64).reshape(-1, groups(rq, cfg) * cfg.lanes)[:, :rq.channels]
    if rq.out_signed:
        v = np.where(v >= 1 << cfg.out_bits - 1, v - (1 << cfg.out_bits), v)
    return v


def frame_config(x: np.ndarray, rq: LaneRequant, cfg: LanesConfig) -> dict[str, int]:
    """The frame's cfg_* values: groups, tokens, unsigned."""
    return {"groups": groups(rq, cfg), "tokens": int(np.asarray(x).size // rq.channels),
            "unsigned": int(not rq.out_signed)}


@dataclass
class LanesResult:
    passes: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    error: str = ""


def build(cfg: LanesConfig, work_dir: Path) -> float:
    """Verilator build of the lanes at ``cfg`` into ``work_dir/sim_build``; returns seconds."""
    return build_own_rtl("requant_lanes", cfg.rtl_params(), work_dir)


def simulate(cfg: LanesConfig, frames: list[tuple[LaneRequant, np.ndarray] | dict], passes: list[dict],
             work_dir: Path, seed: int = 0, tag: str = "run") -> LanesResult:
    """Run the bench on a design built by ``build``: every pass ({"name", "p_pause", "in_pause", "out_pause"})
    runs every frame ((parameters, inputs (..., C))) back to back; a dict is a raw configuration the lanes must
    refuse (nothing sent). Per pass the result has each frame's output bytes (hex), its end cycle and ``err``."""
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = work_dir / tag
    run.mkdir(parents=True, exist_ok=True)
    pw = param_bytes(cfg)
    specs = []
    for f in frames:
        if isinstance(f, dict):
            specs.append({"cfg": {f"cfg_{k}": v for k, v in f.items()}, "params": "", "data": "", "out": False})
            continue
        rq, x = f
        specs.append({"cfg": {f"cfg_{k}": v for k, v in frame_config(x, rq, cfg).items()},
                      "params": param_stream(rq, cfg).hex(),
                      "data": data_beats(x, rq, cfg).hex(), "out": True})
    beats = sum(len(s["data"]) // 2 // ((cfg.lanes * cfg.in_bits + 7) // 8) + len(s["params"]) // 2 // pw
                for s in specs)
    spec = {"frames": specs, "passes": passes, "seed": seed, "param_bytes": pw,
            "timeout_cycles": 20 * beats + 20000, "result": str(run / "result.json")}
    res = LanesResult()
    res.passes, res.error = run_bench("requant_lanes", BENCH_MODULE, "SAMFPGA_LANES_SPEC", spec, run,
                                      work_dir / "sim_build")
    res.wall_s = round(time.monotonic() - t0, 2)
    return res
