"""The token pack (hw/samfpga/hw/rtl/token_pack.sv) in Verilator + cocotb: frames of the unit side's PE-byte beats
whose tokens' padding is dropped, re-cut to the writer's 16-byte beats, at the path's widths, under stalls and
free-running, byte for byte ``token_pack.packed``."""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.hw.sim import token_pack as tp


def _frames(in_b: int, out_b: int) -> list[tp.PackFrame]:
    """Frames of every kind the path sends: every byte kept (whole, and a last beat with bytes past the frame);
    tokens padded within their last beat (vit_t's 256 of 280 at PE 40), kept bytes fewer than an output beat, padding
    of whole beats (a raw frame's 3-byte sums: 256 x 3 of 280 x 3), random shapes (keeps multiples of G)."""
    rng = np.random.default_rng(in_b * 100 + out_b)
    g = tp.granule(in_b, out_b)

    def frame(beats: int, keep: int, tokens: int, cut: int = 0) -> tp.PackFrame:
        data = rng.integers(0, 256, max(beats, 1) * in_b * tokens, dtype=np.uint8).tobytes()
        n = (tokens * keep if beats else len(data)) - cut
        return tp.PackFrame(data, beats, keep, n)

    out = [frame(0, 0, 9), frame(0, 0, 5, cut=in_b // 2 + 1)]
    for mh, k in ((256, 1), (32, 1), (8, 1), (256, 3), (in_b - g, 1), (g, 1)):
        beats = -(-mh // in_b) * k
        if (mh * k) % g == 0:
            out.append(frame(beats, mh * k, 7))
    for _ in range(6):
        beats = int(rng.integers(1, 8))
        keep = g * int(rng.integers(1, beats * in_b // g + 1))
        out.append(frame(beats, keep, int(rng.integers(1, 12))))
    return out


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("in_b", "out_b"), [(40, 16), (64, 16), (24, 16), (10, 16), (8, 16)])
def test_tokens_packed_to_port_beats(tmp_path, in_b, out_b):
    """The KV260 plan's PE 40 and the larger boards' 64 to 16-byte beats, and the tiny programs' PE 24, 10 and 8:
    every frame comes out as its tokens' kept bytes back to back, cut at its byte count, one tlast a frame. Free-running,
    a long frame (150 tokens: vit_t's 256 bytes of 280 at PE 40, a beat less G, G bytes of a beat, every byte) takes
    at most its input beats or its output beats, whichever is more, plus 16 cycles (the bench's start, count and
    gaps): the pack loses no cycle to a token's padding."""
    frames = _frames(in_b, out_b)
    tp.build(in_b, out_b, tmp_path)
    res, err, _ = tp.simulate(frames, [{"name": "stalls", "in_pause": 0.3, "out_pause": 0.3}, {"name": "free"}],
                              tmp_path)
    assert not err, err
    want = [tp.packed(f, in_b) for f in frames]
    assert any(len(w) < len(f.data) - in_b for w, f in zip(want, frames, strict=True))
    for p in res:
        assert not p["timed_out"], p["name"]
        assert [bytes.fromhex(x) for x in p["frames"]] == want, p["name"]
    # the rate: long frames (the bench's own start, count and gaps: 16 cycles a frame)
    g = tp.granule(in_b, out_b)
    rng = np.random.default_rng(7)
    long = [tp.PackFrame(rng.integers(0, 256, b * in_b * 150, dtype=np.uint8).tobytes(), b, k, 150 * k)
            for b, k in ((-(-256 // in_b), 256), (1, max(in_b - g, g)), (1, g))]
    long.append(tp.PackFrame(bytes(range(256)) * in_b, 0, 0, 256 * in_b))
    res, err, _ = tp.simulate(long, [{"name": "free"}], tmp_path, tag="rate")
    assert not err, err
    assert [bytes.fromhex(x) for x in res[0]["frames"]] == [tp.packed(f, in_b) for f in long]
    bound = sum(max(len(f.data) // in_b, -(-len(tp.packed(f, in_b)) // out_b)) + 16 for f in long)
    assert res[0]["cycles"] <= bound, (res[0]["cycles"], bound)
