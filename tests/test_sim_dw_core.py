"""The engine's depthwise unit (hw/samfpga/hw/rtl/dw_core.sv: strip padding -> 3 x 3 window -> PE channels x 9 taps
-> requantiser lanes, shapes at run time) in Verilator + cocotb against its reference (the padded map's depthwise
convolution, exact in int64, then LaneRequant.apply), on every depthwise layer of the tiny engine program, whose
outputs the reference must equal first; tolerance 0."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from samfpga.hw.sim import dw_core as dc
from samfpga.hw.sim import requant_lanes as rl
from samfpga.hw.sim.lane_requant import LaneRequant

PASSES = [{"name": "stalls", "p_pause": 0.3, "in_pause": 0.3, "out_pause": 0.3}, {"name": "free"}]


def _program_frames() -> list[dc.DwFrame]:
    """The tiny program's depthwise steps as frames (their inputs from the program's run on one image); each
    frame's reference is checked against what the program stores."""
    from samfpga.hw.sim.engine_program import _read
    from tests.test_engine_program import program_run

    outs: dict[str, np.ndarray] = {}
    _, prog, mem = program_run(0, trace=lambda s, y: outs.__setitem__(s.name, y))
    frames = []
    for s in prog.steps:
        if s.kind != "dw":
            continue
        a = _read(mem, s.input)
        assert s.window["kernel"] == (3, 3) and s.window["pad"] == (1, 1, 1, 1), s.name
        f = dc.DwFrame(a.reshape(a.shape[-3:]), s.dw_weights, s.rq, stride=s.window["stride"][0],
                       in_unsigned=prog.dtypes[s.input.tensor].startswith("UINT"))
        np.testing.assert_array_equal(dc.reference(f).ravel(), outs[s.name], err_msg=s.name)
        frames.append(f)
    return frames


def _rq(c: int, rng: np.random.Generator, signed: bool = True) -> LaneRequant:
    return LaneRequant(rng.integers(1, 1 << 12, c), rng.integers(-(1 << 20), 1 << 20, c), np.full(c, 14), 8, signed)


def _strip_frame(rng: np.random.Generator, h: int, w: int, c: int, tiles: int, stride: int) -> dc.DwFrame:
    return dc.DwFrame(rng.integers(-128, 128, (h, w, c)), rng.integers(-128, 128, (c, 9)), _rq(c, rng), stride,
                      tiles)


def test_strips_compute_the_whole_maps_convolution():
    """The reference's strips (each cut from the map padded by one, with its halo) put side by side give the
    depthwise convolution of the whole padded map, at stride 1 and at stride 2 (even strips)."""
    from samfpga.hw.sim.strip_pad import conv_valid

    rng = np.random.default_rng(1)
    for tiles, stride in ((1, 1), (2, 1), (4, 1), (2, 2), (4, 2)):
        f = _strip_frame(rng, 6, 16, 8, tiles, stride)
        whole = conv_valid(np.pad(f.fmap, ((1, 1), (1, 1), (0, 0))), f.weights.T.reshape(3, 3, -1), stride)
        oh, ow = whole.shape[:2]
        acc = dc.accumulate(f).reshape(tiles, oh, ow // tiles, -1)
        np.testing.assert_array_equal(np.concatenate(list(acc), axis=1), whole, err_msg=f"{tiles} x {stride}")


def test_strips_sent_alone_compute_the_whole_maps_convolution():
    """A layer launched strip by strip (``strip_frames``: each strip with its halos, its interior sides open, so
    unpadded): the strips' outputs side by side equal the whole map's, at stride 1 and 2; odd strips at stride 2 and
    an open side on a map in strips are refused."""
    rng = np.random.default_rng(4)
    for tiles, stride in ((2, 1), (4, 1), (2, 2), (4, 2)):
        f = _strip_frame(rng, 6, 16, 8, 1, stride)
        parts = dc.strip_frames(f, tiles)
        assert [(p.open_l, p.open_r) for p in parts][:2] == [(False, True), (True, tiles > 2)]
        assert all(p.padded_cols == 16 // tiles + 2 for p in parts)
        oh = (6 - 1) // stride + 1
        got = np.concatenate([dc.accumulate(p).reshape(oh, -1, 8) for p in parts], axis=1)
        np.testing.assert_array_equal(got, dc.accumulate(f).reshape(oh, -1, 8), err_msg=f"{tiles} x {stride}")
    with pytest.raises(ValueError, match="not 8 whole strips \\(even at stride 2\\)"):
        dc.strip_frames(_strip_frame(rng, 6, 8, 8, 1, 2), 8)
    with pytest.raises(ValueError, match="an open side on a map in 2 strips"):
        replace(_strip_frame(rng, 6, 8, 8, 2, 1), open_l=True)


def test_configuration_by_hand():
    """Registers, weight beats (group, tap, PE lanes) and refusals named."""
    rng = np.random.default_rng(2)
    f = _strip_frame(rng, 4, 8, 8, 2, 2)
    cfg = dc.DwCoreConfig.covering([f], pe=4)
    assert (cfg.w_max, cfg.cb_max, cfg.w_bits, cfg.acc_bits, cfg.lanes.in_bits, cfg.lanes.depth) == (6, 2, 8, 21, 21, 2)
    assert dc.frame_config(f, cfg) == {"h": 4, "w": 8, "tiles": 2, "cb": 2, "stride2": 1, "in_unsigned": 0,
                                       "unsigned": 0, "open_l": 0, "open_r": 0, "window": 0}
    pb = rl.param_bytes(cfg.lanes)  # the lanes' 13 + 21 + 4 parameter bits: 5 bytes a beat
    assert pb == 5 and (cfg.lanes.s_bits, cfg.lanes.b_bits, cfg.lanes.t_bits) == (13, 21, 4)
    wb = dc.weight_beats(f, cfg)  # 2 groups x 9 taps of 4 lanes of a byte: a beat each, the byte above them zero
    assert len(wb) == 18 * pb and wb[pb * 10 + 2] == f.weights[4 + 2, 1] & 0xFF and wb[pb * 10 + 4] == 0
    assert len(dc.param_stream(f, cfg)) == (18 + 8) * pb  # then a parameter beat per channel
    wide = replace(cfg, pe=8)  # 64 weight bits a tap: two beats, low bits first
    w8 = dc.weight_beats(replace(f, weights=f.weights, rq=f.rq), wide)
    assert len(w8) == 9 * 2 * pb and w8[pb:pb + 3] == bytes(int(v) & 0xFF for v in f.weights[5:8, 0])
    assert [len(p) for p in dc.input_packets(f)] == [4 * 5 * 8] * 2  # 4 columns and the halo, both strips
    with pytest.raises(ValueError, match="weights \\(8, 3\\)"):
        dc.DwFrame(f.fmap, f.weights[:, :3], f.rq)
    with pytest.raises(ValueError, match="are not INT8"):
        dc.DwFrame(f.fmap + 200, f.weights, f.rq)
    with pytest.raises(ValueError, match="8 columns are not 3 whole strips"):
        dc.DwFrame(f.fmap, f.weights, f.rq, tiles=3)
    with pytest.raises(ValueError, match="strips of 8 columns on a unit of 4"):
        dc.frame_config(replace(f, tiles=1), cfg)


def test_windows_are_the_convs_patches():
    """A window frame's beats (per output pixel the beats g of 9 taps x PE channels) are FINN's sliding-window
    patches (tap-major, channel-minor: the conv's weight rows) permuted by ``patch_index``, in 1 and 2 strips and
    strips sent alone, at stride 1 and 2; a padded channel's index is -1; weights on a window frame are refused."""
    from samfpga.kernels.swg import sliding_window

    rng = np.random.default_rng(5)
    for tiles, stride in ((1, 1), (1, 2), (2, 1), (2, 2)):
        x = rng.integers(0, 256, (6, 8, 8))
        f = dc.DwFrame(x, None, None, stride, in_unsigned=True, window=True)
        want = sliding_window(np.pad(x, ((1, 1), (1, 1), (0, 0)))[None], (3, 3), (stride, stride))[0]
        oh, ow = want.shape[:2]
        want = want.reshape(-1, 72)[:, dc.patch_index(8, 4)]  # (tokens, 2 beats x 9 taps x 4 lanes)
        parts = dc.strip_frames(f, tiles) if tiles > 1 else [f]
        got = [dc.windows(p, 4).reshape(oh, -1, 72) for p in parts]
        np.testing.assert_array_equal(np.concatenate(got, axis=1).reshape(-1, 72), want, err_msg=f"{tiles} x {stride}")
    idx = dc.patch_index(3, 4)  # 3 channels in a beat of 4: tap t's values t*3 .. t*3 + 2, then a padded lane
    assert list(idx[:8]) == [0, 1, 2, -1, 3, 4, 5, -1] and sorted(idx[idx >= 0]) == list(range(27))
    with pytest.raises(ValueError, match="a window frame has no weights"):
        dc.DwFrame(x, rng.integers(-8, 8, (8, 9)), None, window=True)


@pytest.mark.timeout(900)
def test_rtl_runs_every_depthwise_layer_of_the_program(tmp_path):
    """The program's 7 depthwise layers (32, 48 and 64 channels; 16 x 16 to 4 x 4 maps; stride 1 and 2; UINT8 and
    INT8 inputs; signed and unsigned outputs), layers in 2 and 4 strips at stride 1 and 2, and layers launched strip
    by strip (each strip alone, its interior sides open: 4 at stride 2, the program's first in 2), back to back on one
    build of 16 channels per beat, with refused configurations among them (no channels, more than the build has,
    a map not in whole strips, odd strips at stride 2 in strips or alone, a strip too wide for the window's banks,
    an open side on a map in strips, strips of one column), under stalls and
    free-running: every output equal to the reference. Controls: a layer with one tap's weights negated gives its
    own reference and not the original's; a strip sent as two packets (tlast off its end) raises err[1]."""
    rng = np.random.default_rng(3)
    frames = _program_frames()
    frames += [_strip_frame(rng, 8, 32, 32, 2, 1), _strip_frame(rng, 6, 32, 16, 4, 2),
               _strip_frame(rng, 5, 16, 48, 2, 2)]
    frames += dc.strip_frames(_strip_frame(rng, 5, 32, 16, 1, 2), 4) + dc.strip_frames(frames[0], 2)
    cfg = dc.DwCoreConfig.covering(frames, pe=16)
    assert (cfg.w_max, cfg.cb_max) == (18, 4)
    flipped = replace(frames[0], weights=frames[0].weights * np.where(np.arange(9) == 4, -1, 1))
    closed = {"open_l": 0, "open_r": 0}
    bad = [{"h": 4, "w": 4, "tiles": 1, "cb": 0, "stride2": 0, **closed},
           {"h": 4, "w": 4, "tiles": 1, "cb": 5, "stride2": 0, **closed},
           {"h": 4, "w": 9, "tiles": 2, "cb": 1, "stride2": 0, **closed},
           {"h": 4, "w": 6, "tiles": 2, "cb": 1, "stride2": 1, **closed},
           {"h": 4, "w": 40, "tiles": 1, "cb": 4, "stride2": 0, **closed},
           {"h": 4, "w": 8, "tiles": 2, "cb": 1, "stride2": 0, "open_l": 1, "open_r": 0},  # open side on strips
           {"h": 4, "w": 6, "tiles": 1, "cb": 1, "stride2": 1, "open_l": 1, "open_r": 0},  # 5 columns at stride 2
           {"h": 4, "w": 2, "tiles": 2, "cb": 1, "stride2": 0, **closed}]  # strips of one column
    # the window alone (a 3 x 3 conv's patches for the GEMM unit): a program layer's map, a map in 2 strips at
    # stride 2, a strip sent alone; UINT8 and INT8
    wins = [replace(frames[0], weights=None, rq=None, window=True),
            dc.DwFrame(rng.integers(0, 256, (6, 16, 32)), None, None, 2, 2, in_unsigned=True, window=True)]
    wins += dc.strip_frames(replace(frames[2], weights=None, rq=None, window=True), 2)[1:]
    runs = frames[:3] + wins[:2] + bad[:2] + frames[3:6] + [flipped] + bad[2:] + wins[2:] + frames[6:] + [frames[1]]
    at_flipped = 10
    split = frames[1]
    one = dc.input_packets(split)[0]
    half = len(one) // 2 // 32 * 32  # whole pixels
    dc.build(cfg, tmp_path)
    res = dc.simulate(cfg, runs, PASSES, tmp_path, packets={len(runs) - 1: [one[:half], one[half:]]})
    assert not res.error, res.error
    assert [p["name"] for p in res.passes] == ["stalls", "free"]
    for p in res.passes:
        assert not p["timed_out"] and p["busy"] == 0 and p["extra_beats"] == 0, p["name"]
        for i, (f, out, err) in enumerate(zip(runs, p["outputs"], p["frame_err"], strict=True)):
            if isinstance(f, dict):
                assert out == "" and err == 1, f"{p['name']}: refused frame {i} {f}: err {err}"
                continue
            if f.window:
                got = np.frombuffer(bytes.fromhex(out), np.uint8).reshape(-1, 9 * 16)
                want = (dc.windows(f, 16) & 0xFF).astype(np.uint8)
                np.testing.assert_array_equal(got, want, err_msg=f"{p['name']}: window frame {i}")
                assert err == 0, f"{p['name']}: window frame {i}: err {err}"
                continue
            got = dc.unpack_outputs(bytes.fromhex(out), f, cfg)
            np.testing.assert_array_equal(got, dc.reference(f), err_msg=f"{p['name']}: frame {i}")
            assert err == (2 if i == len(runs) - 1 else 0), f"{p['name']}: frame {i}: err {err}"
        got = dc.unpack_outputs(bytes.fromhex(p["outputs"][at_flipped]), flipped, cfg)
        assert not np.array_equal(got, dc.reference(frames[0]))
