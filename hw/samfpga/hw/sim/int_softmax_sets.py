"""The softmax of the layer-sequential engine picks its parameter set at run time (int_softmax.sv RT_SET = 1, input
``cfg_set``): build it with Verilator for a list of parameter sets (``intsoftmax.rtl_parameters``: one per layer,
compact window tables of any number of heads each) and stream steps of rows, each with the set the host would
select, through ``samfpga.hw.sim.int_softmax_sets_bench``; the expected words are the kernel's
(``samfpga.kernels.softmax.int_softmax``) with that step's parameters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from samfpga.hw.custom_ops.intsoftmax import quote_table_files, rtl_parameters
from samfpga.hw.sim.own_rtl import build_own_rtl, run_bench
from samfpga.kernels.softmax import IntSoftmaxParams, int_softmax

BENCH_MODULE = "samfpga.hw.sim.int_softmax_sets_bench"


@dataclass
class SetsResult:
    parameters: dict
    passes: list[dict] = field(default_factory=list)
    build_s: float = 0.0
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and bool(self.passes) and all(
            p["mismatches"] == 0 and p["words_compared"] > 0 for p in self.passes)


def simulate(sets: list[IntSoftmaxParams], steps: list[tuple[int, np.ndarray]], work_dir: Path, *, pe: int,
             in_bits: int = 16, in_signed: bool = True, out_bits: int = 8, pipelined: int = 1, bias_ram: int = 1,
             pauses: tuple[float, ...] = (0.0, 0.3), seed: int = 0,
             expected_sets: list[int] | None = None) -> SetsResult:
    """Run ``steps`` [(set, logits (rows, n) integers)] through int_softmax.sv built for the parameter sets ``sets``
    with RT_SET = 1 at ``pe`` lanes. A step's rows are a whole number of its set's bias rows (the head counter
    restarts with the step). ``expected_sets``: the set each step's expected words are computed with (default:
    the step's own; a negative control passes others). One pass per pause."""
    work_dir = Path(work_dir)
    hdl = work_dir / "hdl"
    params = rtl_parameters(sets, pe=pe, in_bits=in_bits, in_signed=in_signed, out_bits=out_bits, code_dir=hdl,
                            name="sm", pipelined=pipelined, bias_ram=bias_ram)
    n = params["N"]
    params = quote_table_files(params, hdl)
    params["RT_SET"] = 1
    if (pe * in_bits) % 8 or (pe * out_bits) % 8:
        raise ValueError(f"int_softmax_sets: PE {pe} x {in_bits} / {out_bits} bits is not whole bytes")
    spec_steps = []
    for i, (s, rows) in enumerate(steps):
        rows = np.asarray(rows, dtype=np.int64)
        if rows.ndim != 2 or rows.shape[1] != n:
            raise ValueError(f"int_softmax_sets: step {i} logits must be (rows, {n}), got {rows.shape}")
        want = int_softmax(rows, sets[s if expected_sets is None else expected_sets[i]])
        spec_steps.append({"set": int(s), "inputs": [int(v) & ((1 << in_bits) - 1) for v in rows.reshape(-1)],
                           "expected": [int(v) for v in want.reshape(-1)]})
    res = SetsResult(parameters={k: v for k, v in params.items() if not k.endswith("_FILE")})
    try:
        res.build_s = build_own_rtl("int_softmax", params, work_dir)
    except Exception as exc:  # noqa: BLE001 - a build failure is the result
        res.error = f"build failed: {exc} (log in {work_dir / 'build.log'})"
        return res
    run = work_dir / "run"
    run.mkdir(parents=True, exist_ok=True)
    rows_total = sum(len(s["inputs"]) for s in spec_steps) // n
    spec = {"steps": spec_steps, "passes": [{"name": f"pause {p}", "pause": p} for p in pauses], "seed": seed,
            "in_bits": in_bits, "out_bits": out_bits, "timeout_cycles": 200 * rows_total * (n // pe + 60) + 10_000,
            "result": str(run / "result.json")}
    t0 = time.monotonic()
    res.passes, res.error = run_bench("int_softmax", BENCH_MODULE, "SAMFPGA_SM_SETS_SPEC", spec, run, work_dir /
                                      "sim_build")
    res.parameters["sim_s"] = round(time.monotonic() - t0, 1)
    return res
