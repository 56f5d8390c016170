"""The token pack (``hw/samfpga/hw/rtl/token_pack.sv``: the unit side's PE-byte beats to the writer's port beats,
each token's padding dropped) and the Verilator + cocotb runner of its bench (``token_pack_bench``). Its reference is
``packed``: each token's first ``keep`` bytes, back to back, cut at the frame's bytes."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from samfpga.hw.sim.own_rtl import build_own_rtl, run_bench
from samfpga.hw.sim.toolchain import setup_verilator_env

BENCH_MODULE = "samfpga.hw.sim.token_pack_bench"


@dataclass(frozen=True)
class PackFrame:
    """One frame: ``data`` (whole input beats; the unit's outputs), tokens of ``beats`` beats of which the first
    ``keep`` bytes are kept (``beats`` 0: every byte), ``bytes`` of them sent (the writer's count)."""

    data: bytes
    beats: int
    keep: int
    bytes: int


def packed(f: PackFrame, in_b: int) -> bytes:
    """The bytes ``token_pack.sv`` sends for frame ``f`` at ``in_b`` bytes a beat."""
    if f.beats == 0:
        return f.data[:f.bytes]
    tok = f.beats * in_b
    out = b"".join(f.data[i:i + f.keep] for i in range(0, len(f.data), tok))
    return out[:f.bytes]


def granule(in_b: int, out_b: int) -> int:
    """G: the byte multiple every kept count must be (``cfg_keep``), outside a frame's last beat."""
    return math.gcd(in_b, out_b)


def build(in_b: int, out_b: int, work_dir: Path) -> float:
    """Verilator build of the pack from ``in_b`` to ``out_b`` bytes a beat; returns seconds."""
    return build_own_rtl("token_pack", {"IN_B": in_b, "OUT_B": out_b}, work_dir)


def simulate(frames: list[PackFrame], passes: list[dict], work_dir: Path, seed: int = 0, tag: str = "run"
             ) -> tuple[list[dict], str, float]:
    """Send every frame through a pack built by ``build`` in each pass ({"name", "in_pause", "out_pause"}); returns
    (per pass the frames received as hex and the cycles, an error or "", seconds)."""
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = Path(work_dir) / tag
    run.mkdir(parents=True, exist_ok=True)
    spec = {"frames": [{**asdict(f), "data": f.data.hex()} for f in frames], "passes": passes, "seed": seed,
            "timeout_cycles": 20 * sum(len(f.data) + 16 for f in frames) + 2000, "result": str(run / "result.json")}
    res, err = run_bench("token_pack", BENCH_MODULE, "SAMFPGA_PACK_SPEC", spec, run, Path(work_dir) / "sim_build")
    return res, err, round(time.monotonic() - t0, 2)
