"""The 64x64 test encoder as one stitched RTL design (issue 11, item 6), as pytests: ``make sim-stitched``.

Not part of ``make test`` (``testpaths = tests``). Two runs of the same int_ops kv260 build: the stem + MBConv
stage 0 (the first 28 HW nodes, which hold the build's slowest layer; about 3-5 min here) and the whole encoder
(524 nodes after DWC/FIFO insertion, about 600k simulated cycles: 21 min wall at load ~3, 4 min of it the
Verilator build; much longer on a loaded machine). Write bench/results/sim_stitched_64*.json.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


@pytest.mark.slow
@pytest.mark.timeout(7200)
@pytest.mark.parametrize("nodes,name", [(28, "sim_stitched_64_stem_stage0"), (None, "sim_stitched_64")],
                         ids=["stem_stage0", "whole"])
def test_encoder_stitched_bit_exact_and_cycles(tmp_path, nodes, name) -> None:
    """Build (int_ops, kv260) -> stitch (DWCs, FIFOs at the build's depths) -> Verilator -> 3 frames back to back:
    0 mismatches against FINN's python execution on every output word, and the frame interval within 15% of the
    cycle estimate (the slowest stitched layer's expected cycles: the build report's bottleneck for the whole)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from sim_stitched import main

    out = RESULTS / f"{name}.json"
    work = Path(os.environ.get("SAMFPGA_SIM_STITCHED_WORK", tmp_path / "work"))
    args = ["--work", str(work), "--out", str(out), "--frames", "3"] + ([] if nodes is None else ["--range", f"0:{nodes}"])
    if os.environ.get("SAMFPGA_SIM_STITCHED_BUILD"):
        args += ["--build", os.environ["SAMFPGA_SIM_STITCHED_BUILD"]]
    main(args)
    res = json.loads(out.read_text())
    assert res["error"] == "", res["error"]
    assert res["words_compared"] > 0 and res["mismatches"] == 0, res["first_mismatches"]
    assert len(res["frame_done_cycles"]) == 3
    assert abs(res["ratio"] - 1) <= 0.15, (res["cycles_simulated"], res["cycles_estimated"])
    # every FIFO's fill was read back from the RTL (-1: not read) and stayed within its depth
    assert res["fifos"] and all(0 <= f["max_fill"] <= f["depth"] for f in res["fifos"])
