"""The byte gearbox (hw/samfpga/hw/rtl/byte_gearbox.sv) in Verilator + cocotb: packets of random lengths (partial
last beats on both sides) through the widths the engine's path uses around its depthwise unit, every packet's bytes
and boundaries kept, under stalls and free-running."""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.hw.sim import byte_gearbox as gb


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("in_b", "out_b"), [(16, 8), (8, 40), (4, 32), (10, 40), (16, 40), (32, 16), (16, 24), (24, 16),
                                            (144, 32)])
def test_packets_pass_whole(tmp_path, in_b, out_b):
    """Split (16 -> 8, 32 -> 16; 24 -> 16 and 144 -> 32, the window's 9 taps x 16 channels to the unit's SIMD 32: a
    beat's remainder carried into the next), gathers (8 -> 40, 4 -> 32, 10 -> 40: whole slots of the output beat) and general ratios (16 -> 40, 16 -> 24: offsets of 8
    bytes; the path's re-cuts to the depthwise unit's and the writer's beats, and of raw sums to the LayerNorm's): 13
    packets of 1 to 200 bytes and one of 4,000 back to back come out byte for byte, one packet per tlast. Free-running, the
    narrower side moves a beat a cycle: the cycles are its beats plus at most 2 a packet (a tail) and 10 (a gearbox
    that took an input only when its buffer had room before the cycle's output ran 16 -> 40 at 5 inputs in 6 cycles,
    16 -> 24 at 3 in 4, which this bound refuses)."""
    rng = np.random.default_rng(in_b * 100 + out_b)
    packets = [rng.integers(0, 256, int(n), dtype=np.uint8).tobytes() for n in rng.integers(1, 201, 12)]
    packets += [bytes(range(3 * out_b))]  # a whole number of output beats
    packets += [rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()]  # long enough for the rate to show
    gb.build(in_b, out_b, tmp_path)
    res, err, _ = gb.simulate(packets, [{"name": "stalls", "in_pause": 0.3, "out_pause": 0.3}, {"name": "free"}],
                              tmp_path)
    assert not err, err
    for p in res:
        assert not p["timed_out"], p["name"]
        assert [bytes.fromhex(x) for x in p["packets"]] == packets, p["name"]
    beats = sum(-(-len(p) // min(in_b, out_b)) for p in packets)
    assert res[1]["cycles"] <= beats + 2 * len(packets) + 10, (res[1]["cycles"], beats)
