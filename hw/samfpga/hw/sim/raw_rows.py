"""raw_rows.sv (the GEMM unit's raw QK^T sums as rows of keys for the softmax): its configuration, its expected
output beats, and a Verilator + cocotb run (``samfpga.hw.sim.raw_rows_bench``) fed with the unit's own raw output
beats (``token_batch_mvu.pack_outputs`` of a raw frame)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samfpga.hw.sim import token_batch_mvu as tb
from samfpga.hw.sim.own_rtl import build_own_rtl, run_bench

BENCH_MODULE = "samfpga.hw.sim.raw_rows_bench"


@dataclass(frozen=True)
class RawRowsConfig:
    """A raw_rows.sv instance: the unit's ``pe`` and ``k`` (beats per fold of a raw frame), ``nf`` folds per row,
    ``n`` keys kept per row, ``lanes`` sums per output beat (the softmax's PE), ``out_bits`` per sum."""

    pe: int
    k: int
    nf: int
    n: int
    lanes: int
    out_bits: int

    def __post_init__(self) -> None:
        if self.n > self.nf * self.pe:
            raise ValueError(f"raw_rows: n = {self.n} keys exceed the row's nf x pe = {self.nf * self.pe} sums")
        if self.n % self.lanes:
            raise ValueError(f"raw_rows: n = {self.n} is not a multiple of lanes = {self.lanes}")
        if self.out_bits > 8 * self.k:
            raise ValueError(f"raw_rows: out_bits = {self.out_bits} exceeds the {8 * self.k} bits of a raw sum")

    @classmethod
    def for_unit(cls, unit: tb.TokenBatchConfig, n: int, lanes: int, out_bits: int) -> RawRowsConfig:
        """The feed of a raw frame ``unit`` (a ``layer_shape`` with raw = True: its PE, words per fold and folds)."""
        if not unit.raw:
            raise ValueError("raw_rows: the unit's configuration is not a raw frame")
        return cls(unit.pe, unit.out_words, unit.mh // unit.pe, n, lanes, out_bits)

    def rtl_params(self) -> dict[str, int]:
        return {"PE": self.pe, "K": self.k, "NF": self.nf, "N": self.n, "L": self.lanes, "OUT_BITS": self.out_bits}

    def cycles_per_row(self) -> int:
        """Cycles a row takes in a run of rows: its input beats or its output beats, whichever are more."""
        return max(self.nf * self.k, self.n // self.lanes)

    def expected(self, sums: np.ndarray) -> list[int]:
        """Output beats for ``sums`` (rows, nf x pe) integers: each row's first n, ``lanes`` per beat, the low
        ``out_bits`` of each."""
        s = np.asarray(sums, dtype=np.int64)
        if s.ndim != 2 or s.shape[1] != self.nf * self.pe:
            raise ValueError(f"raw_rows: sums must be (rows, {self.nf * self.pe}), got {s.shape}")
        mask = (1 << self.out_bits) - 1
        beats = []
        for row in s[:, :self.n].tolist():
            for b in range(0, self.n, self.lanes):
                beats.append(sum((int(v) & mask) << (i * self.out_bits) for i, v in enumerate(row[b:b + self.lanes])))
        return beats


def simulate(cfg: RawRowsConfig, in_beats: list[int], expected: list[int], work_dir: Path,
             pauses: tuple[float, ...] = (0.0, 0.3), seed: int = 0) -> list[dict]:
    """Stream ``in_beats`` through raw_rows.sv at ``cfg``; one pass per pause (random stalls on both streams),
    every output beat compared with ``expected``. Returns the passes (words_compared, mismatches, cycles)."""
    work_dir = Path(work_dir)
    build_own_rtl("raw_rows", cfg.rtl_params(), work_dir)
    run = work_dir / "run"
    run.mkdir(parents=True, exist_ok=True)
    spec = {"inputs": [str(w) for w in in_beats], "expected": [str(w) for w in expected],
            "passes": [{"name": f"pause {p}", "pause": p} for p in pauses], "seed": seed,
            "timeout_cycles": 50 * (len(in_beats) + len(expected)) + 1000, "result": str(run / "result.json")}
    passes, error = run_bench("raw_rows", BENCH_MODULE, "SAMFPGA_RAW_ROWS_SPEC", spec, run, work_dir / "sim_build")
    if error:
        raise RuntimeError(error)
    return passes
