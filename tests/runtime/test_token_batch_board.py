"""Token-batched layers on the board side (board environment: no torch/finn): the driver copies the package's DDR
image into a DMA buffer and writes each unit's registers, the simulated PYNQ device checks every unit's
configuration and the bytes at its BASE, and the integer executor runs the fused layers; on the committed package
tests/runtime/data/tiny_token_batch (tests/support/token_batch_package.py: two fused MVAU + Requant pairs, and
FINN's python execution of the unfused pairs as the expected output). Tolerance 0."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from samfpga.backends import BackendError
from samfpga.intexec import load_intgraph

DATA = Path(__file__).resolve().parent / "data" / "tiny_token_batch"


def test_driver_loads_the_weights_and_the_sim_runs_the_fused_layers(sim_overlay):
    exp = np.load(DATA / "expected.npz")
    image = (DATA / "ddr_weights.bin").read_bytes()
    g = load_intgraph(DATA)
    np.testing.assert_array_equal(g.run_accelerator(exp["x"]), exp["y"])  # the executor's TokenBatchMVU
    acc = sim_overlay(DATA, ddr_image=image)
    try:
        units = acc.driver["token_batch"]["units"]
        assert len(units) == 2
        np.testing.assert_array_equal(acc.execute(exp["x"]), exp["y"])
        # what the driver wrote: BASE on the buffer at each unit's offset (BASE_LO/HI at 0x10/0x14)
        dev = acc.device
        for u in units:
            r = dev.units[u["name"]].regs
            assert r[0x10] | r[0x14] << 32 == acc.wbuf.device_address + u["ddr_offset"]
            assert (r[0x20], r[0x24]) == (1, u["tokens"])
    finally:
        acc.close()


def test_wrong_or_missing_weights_are_refused(sim_overlay):
    """A flipped byte in the second unit's weights: the simulated run is refused naming the unit and the byte;
    no image at all: the driver says which file it needs."""
    exp = np.load(DATA / "expected.npz")
    image = bytearray((DATA / "ddr_weights.bin").read_bytes())
    u = json.loads((DATA / "driver.json").read_text())["token_batch"]["units"][1]
    image[u["ddr_offset"] + 7] ^= 1
    acc = sim_overlay(DATA, ddr_image=bytes(image))
    try:
        with pytest.raises(BackendError, match=rf"unit {u['name']}: .* not its weights \(1 differ, first at \+7\)"):
            acc.execute(exp["x"])
    finally:
        acc.close()
    with pytest.raises(BackendError, match=r"2 token-batched units; their DDR image \(ddr_weights.bin\) is needed"):
        sim_overlay(DATA, ddr_image=None)
