"""Runtime-writeable layers on the board side (board environment: no torch/finn): the driver writes each layer's
words from the package over AXI-Lite, runs the dropped flush frame, and the simulated PYNQ device checks every
word before a run; on the committed package tests/runtime/data/tiny_runtime_weights
(tests/support/runtime_weights_package.py: an MVAU with URAM weights and a Thresholding layer, and FINN's python
execution as the expected output). Tolerance 0."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from samfpga.backends import BackendError
from samfpga.backends.pynq_driver import read_runtime_words

DATA = Path(__file__).resolve().parent / "data" / "tiny_runtime_weights"


def _words(root: Path) -> dict:
    drv = json.loads((root / "driver.json").read_text())
    return {e["name"]: read_runtime_words(root, e) for e in drv["runtime_weights"]}


def test_driver_writes_the_words_flushes_and_runs(sim_overlay):
    """Every word of both layers lands at its address; the flush frame is the one run that started after the
    writes (the device counts it); then a run gives FINN's output exactly."""
    exp = np.load(DATA / "expected.npz")
    acc = sim_overlay(DATA, runtime_words=_words(DATA))
    try:
        dev = acc.device
        for e in acc.driver["runtime_weights"]:
            m = dev.runtime[e["name"]]
            assert m.written[:e["words"]].all() and not m.written[e["words"]:].any()
            np.testing.assert_array_equal(m.words[:e["words"]], read_runtime_words(DATA, e))
        assert dev.stale_runs == 1
        np.testing.assert_array_equal(acc.execute(exp["x"]), exp["y"])
        assert dev.stale_runs == 1  # the user's run came after the flush
    finally:
        acc.close()


def test_missing_or_wrong_words_are_refused(sim_overlay, tmp_path):
    """No words: the driver names the layer and file it needs. One word written wrong: the flush run is refused
    naming the layer (the device holds the package's words). A short file: refused on reading."""
    with pytest.raises(BackendError, match=r"runtime weights for MVAU_rtl_0 \(runtime_weights/MVAU_rtl_0.dat\)"):
        sim_overlay(DATA, runtime_words=None)
    bad = _words(DATA)
    bad["Thresholding_rtl_0"] = bad["Thresholding_rtl_0"].copy()
    bad["Thresholding_rtl_0"][5] ^= 1
    with pytest.raises(BackendError, match=r"Thresholding_rtl_0: 1 of its 128 words .* uninitialised URAM"):
        sim_overlay(DATA, runtime_words=bad)
    pkg = tmp_path / "pkg"
    shutil.copytree(DATA, pkg)
    f = pkg / "runtime_weights" / "Thresholding_rtl_0.dat"
    f.write_text("\n".join(f.read_text().split()[:-1]) + "\n")
    entry = json.loads((pkg / "driver.json").read_text())["runtime_weights"][1]
    with pytest.raises(BackendError, match=r"127 words, driver.json says 128"):
        read_runtime_words(pkg, entry)
