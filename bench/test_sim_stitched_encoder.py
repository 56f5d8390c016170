"""The whole 64x64 test encoder as one stitched RTL design (issue 11, item 6), as a pytest: ``make sim-stitched``.

Not part of ``make test`` (``testpaths = tests``): the Verilator build of the 476-node design takes most of
its tens of minutes on the shared 2-core machine. Writes bench/results/sim_stitched_64.json.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "sim_stitched_64.json"


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_whole_encoder_stitched_bit_exact_and_cycles(tmp_path) -> None:
    """Build (int_ops, kv260) -> stitch (FIFOs at the build's depths, DWCs) -> Verilator -> 3 frames back to back:
    0 mismatches against FINN's python execution on every output word, and the frame interval within 15% of the
    build report's cycle estimate (slowest layer)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from sim_stitched import main

    work = Path(os.environ.get("SAMFPGA_SIM_STITCHED_WORK", tmp_path / "work"))
    args = ["--work", str(work), "--out", str(OUT), "--frames", "3"]
    if os.environ.get("SAMFPGA_SIM_STITCHED_BUILD"):
        args += ["--build", os.environ["SAMFPGA_SIM_STITCHED_BUILD"]]
    main(args)
    res = json.loads(OUT.read_text())
    assert res["error"] == "", res["error"]
    assert res["words_compared"] > 0 and res["mismatches"] == 0, res["first_mismatches"]
    assert len(res["frame_done_cycles"]) == 3
    assert abs(res["ratio"] - 1) <= 0.15, (res["cycles_simulated"], res["cycles_estimated"])
    # every FIFO's fill was read back from the RTL (-1: not read) and stayed within its depth
    assert res["fifos"] and all(0 <= f["max_fill"] <= f["depth"] for f in res["fifos"])
