"""The engine's LayerNorm (``hw/samfpga/hw/rtl/layernorm_lanes.sv``: int_layernorm.sv at run-time channels, then
its requantiser lanes): its configuration, the beats it takes and sends, and the Verilator + cocotb runner of its
bench (the requantiser lanes' bench, ``requant_lanes_bench``: the same start / busy / err and p / s / m streams).

A frame is one of the program's IntLayerNorm + Requant pairs (``EngineStep.ln`` / ``ln_rq``) over T tokens of C'
channels: C' / PE beats per token, channel c on lane c % PE. What one build serves: C' a multiple of PE up to C, any
eps and negated channels; inputs of up to IN_BITS (two's complement); the kernel's table width, entry width, frac
and output bits fixed (``LayerNormLanesConfig.covering`` refuses layers that differ in them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samfpga.hw.sim import requant_lanes as rl
from samfpga.hw.sim.lane_requant import LaneRequant, signed_bits
from samfpga.hw.sim.own_rtl import build_own_rtl, run_bench
from samfpga.hw.sim.toolchain import setup_verilator_env
from samfpga.kernels.layernorm import IntLayerNormParams, int_layernorm

#: one layer of the unit: its LayerNorm, its lanes and its inputs (tokens, C')
Frame = tuple[IntLayerNormParams, LaneRequant, np.ndarray]


@dataclass(frozen=True)
class LayerNormLanesConfig:
    """Synthesis parameters of layernorm_lanes.sv (``lanes``: its requantiser lanes, at LANES = pe)."""

    channels: int  # C: the widest layer
    pe: int
    in_bits: int
    ln_bits: int  # the LayerNorm's output width
    lut_bits: int
    r_bits: int
    shift_bias: int
    stats_bits: int  # SB
    lanes: rl.LanesConfig

    @property
    def beats(self) -> int:
        return self.channels // self.pe

    def rtl_params(self, rsqrt_file: Path) -> dict:
        return {"C": self.channels, "PE": self.pe, "IN_BITS": self.in_bits, "LN_BITS": self.ln_bits,
                "T": self.lut_bits, "RB": self.r_bits, "SHIFT_BIAS": self.shift_bias, "SB": self.stats_bits,
                "RSQRT_FILE": f'"{rsqrt_file}"', "OUT_BITS": self.lanes.out_bits, "S_BITS": self.lanes.s_bits,
                "B_BITS": self.lanes.b_bits, "T_BITS": self.lanes.t_bits}

    @classmethod
    def for_layers(cls, lns: list[IntLayerNormParams], pe: int, in_bits: int, lanes: rl.LanesConfig
                   ) -> LayerNormLanesConfig:
        """The unit at ``pe`` lanes for LayerNorms ``lns`` on ``in_bits``-bit inputs with ``lanes`` (their
        parameter widths): C of the widest, statistics wide enough for C^2 * max|x|^2 + eps (the kernel's, exact
        in int64). Refuses layers with another table, frac or output width, or channels not whole beats."""
        ref = lns[0]
        for p in lns:
            fixed = [(k, getattr(p, k), getattr(ref, k)) for k in ("frac_bits", "out_bits", "lut_bits", "r_bits")]
            diff = [f"{k} {a} (not {b})" for k, a, b in fixed if a != b]
            if diff:
                raise ValueError(f"layernorm_lanes: a layer of {p.channels} channels has {', '.join(diff)}: "
                                 "one build has one table and output width")
            if p.channels % pe:
                raise ValueError(f"layernorm_lanes: {p.channels} channels are not whole beats of {pe} lanes")
        c = max(p.channels for p in lns)
        xmax = 1 << (in_bits - 1)
        stats = max(int(c * c * xmax * xmax + p.eps_int).bit_length() + 2 for p in lns)
        return cls(channels=c, pe=pe, in_bits=in_bits, ln_bits=ref.out_bits, lut_bits=ref.lut_bits,
                   r_bits=ref.r_bits, shift_bias=ref.shift_bias, stats_bits=stats,
                   lanes=rl.LanesConfig(lanes=pe, in_bits=ref.out_bits, out_bits=lanes.out_bits, s_bits=lanes.s_bits,
                                        b_bits=lanes.b_bits, t_bits=lanes.t_bits, depth=c // pe))

    @classmethod
    def covering(cls, frames: list[Frame], pe: int, in_bits: int = 0) -> LayerNormLanesConfig:
        """The narrowest unit at ``pe`` lanes that runs every frame: IN_BITS of the widest input (or ``in_bits``,
        the inputs' datatype: a build serves every value of it), lanes covering every Requant (``for_layers``)."""
        lns = [p for p, _, _ in frames]
        in_bits = max([in_bits] + [signed_bits(x) for _, _, x in frames])
        lanes = rl.LanesConfig.covering([(rq, int_layernorm(x, p)) for p, rq, x in frames], lanes=pe)
        return cls.for_layers(lns, pe, in_bits, lanes)


def reference(p: IntLayerNormParams, rq: LaneRequant, x: np.ndarray) -> np.ndarray:
    """The unit's outputs (tokens, C'): the kernel's LayerNorm, then the lanes."""
    return rq.apply(int_layernorm(np.asarray(x, dtype=np.int64).reshape(-1, p.channels), p))


def frame_config(p: IntLayerNormParams, rq: LaneRequant, x: np.ndarray, cfg: LayerNormLanesConfig) -> dict[str, int]:
    """The frame's cfg_* values: beats, tokens, unsigned, eps, neg (channel c in bit c)."""
    if p.channels % cfg.pe or not 0 < p.channels <= cfg.channels:
        raise ValueError(f"layernorm_lanes: {p.channels} channels on a unit of {cfg.channels} at {cfg.pe} lanes")
    if rq.channels != p.channels:
        raise ValueError(f"layernorm_lanes: {rq.channels} requantiser channels after {p.channels}")
    if not 0 <= p.eps_int < 1 << 64:
        raise ValueError(f"layernorm_lanes: eps_int {p.eps_int} does not fit 64 bits")
    neg = sum(1 << c for c, b in enumerate(p.negate or ()) if b)
    return {"beats": p.channels // cfg.pe, "tokens": int(np.asarray(x).size // p.channels),
            "unsigned": int(not rq.out_signed), "eps": p.eps_int, "neg": neg}


def data_beats(x: np.ndarray, p: IntLayerNormParams, cfg: LayerNormLanesConfig) -> bytes:
    """The s_axis bytes of inputs x (..., C'): tokens in order, C' / PE beats each, lane k at [k*IN_BITS, ...)."""
    x = np.asarray(x, dtype=np.int64).reshape(-1, p.channels)
    lo, hi = -(1 << cfg.in_bits - 1), (1 << cfg.in_bits - 1) - 1
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"layernorm_lanes: inputs [{x.min()}, {x.max()}] do not fit {cfg.in_bits} signed bits")
    return rl.pack_beats(x.reshape(-1, cfg.pe), cfg.in_bits)


def unpack_outputs(data: bytes, rq: LaneRequant, cfg: LayerNormLanesConfig) -> np.ndarray:
    """m_axis bytes -> (tokens, C') outputs."""
    return rl.unpack_outputs(data, rq, cfg.lanes)


def build(cfg: LayerNormLanesConfig, work_dir: Path, table: np.ndarray) -> float:
    """Verilator build of the unit at ``cfg`` with rsqrt ``table`` (``IntLayerNormParams.table``) into
    ``work_dir/sim_build``; returns seconds."""
    from samfpga.hw.custom_ops.intlayernorm import write_hex_table

    hdl = Path(work_dir) / "hdl"
    hdl.mkdir(parents=True, exist_ok=True)
    write_hex_table(hdl / "rsqrt.dat", table, cfg.r_bits)
    return build_own_rtl("layernorm_lanes", cfg.rtl_params(hdl / "rsqrt.dat"), work_dir)


def simulate(cfg: LayerNormLanesConfig, frames: list[Frame | dict], passes: list[dict], work_dir: Path,
             seed: int = 0, tag: str = "run") -> rl.LanesResult:
    """Run the bench on a design built by ``build``: every pass ({"name", "p_pause", "in_pause", "out_pause"})
    runs every frame back to back; a dict is a raw configuration the unit must refuse (nothing taken or sent). Per
    pass the result has each frame's output bytes (hex), its end cycle and ``err``."""
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = Path(work_dir) / tag
    run.mkdir(parents=True, exist_ok=True)
    pw = rl.param_bytes(cfg.lanes)
    specs = []
    for f in frames:
        if isinstance(f, dict):
            specs.append({"cfg": {f"cfg_{k}": v for k, v in f.items()}, "params": "", "data": "", "out": False})
            continue
        p, rq, x = f
        specs.append({"cfg": {f"cfg_{k}": v for k, v in frame_config(p, rq, x, cfg).items()},
                      "params": rl.param_stream(rq, cfg.lanes).hex(),
                      "data": data_beats(x, p, cfg).hex(), "out": True})
    beats = sum(len(s["data"]) // 2 // ((cfg.pe * cfg.in_bits + 7) // 8) + len(s["params"]) // 2 // pw
                for s in specs)
    # a token: its beats in, 5 cycles of statistics, its beats out (not overlapped)
    spec = {"frames": specs, "passes": passes, "seed": seed, "param_bytes": pw,
            "timeout_cycles": 20 * (2 * beats + 6 * sum(int(s["cfg"].get("cfg_tokens", 0)) for s in specs)) + 20000,
            "result": str(run / "result.json")}
    res = rl.LanesResult()
    res.passes, res.error = run_bench("layernorm_lanes", rl.BENCH_MODULE, "SAMFPGA_LANES_SPEC", spec, run,
                                      Path(work_dir) / "sim_build")
    res.wall_s = round(time.monotonic() - t0, 2)
    return res
