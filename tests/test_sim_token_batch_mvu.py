"""Token-batched MVU (hw/samfpga/hw/rtl/token_batch_mvu.sv): the DDR packer and the numpy model of its schedule
against the plain matrix product (tolerance 0), and the RTL under Verilator + cocotb against the same reference
(tolerance 0) with cocotbext-axi's AxiRamRead as the DDR, random backpressure on both streams and random stalls on
the AXI read address and data channels. One Verilator build per parameter set (about 20-25 s each)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from samfpga.hw.sim import token_batch_mvu as tb
from samfpga.hw.sim.token_batch_mvu import TokenBatchConfig


def _rand(cfg: TokenBatchConfig, n: int, t: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    alo, ahi = (-(1 << (cfg.a_bits - 1)), 1 << (cfg.a_bits - 1)) if cfg.a_signed else (0, 1 << cfg.a_bits)
    wlo, whi = (-(1 << (cfg.w_bits - 1)), 1 << (cfg.w_bits - 1)) if cfg.w_signed else (0, 1 << cfg.w_bits)
    return rng.integers(alo, ahi, (n, t, cfg.mw)), rng.integers(wlo, whi, (n, cfg.mh, cfg.mw))


# ---------------------------------------------------------------------------------------------------------------
# packer and numpy model (no simulator)

def test_weight_word_order():
    """Word nf*SF + sf, element p*SIMD + s = W[nf*PE + p, sf*SIMD + s]; words back to back in one bit string."""
    cfg = TokenBatchConfig(mw=6, mh=4, simd=3, pe=2, batch=2, w_bits=4, w_signed=False)
    w = (np.arange(24).reshape(4, 6) * 7) % 16
    words = tb.weight_words(w, cfg)
    assert len(words) == cfg.nf * cfg.sf == 4
    for nf in range(2):
        for sf in range(2):
            word = words[nf * 2 + sf]
            for p in range(2):
                for s in range(3):
                    assert (word >> ((p * 3 + s) * 4)) & 15 == w[nf * 2 + p, sf * 3 + s]
    data = tb.pack_weights(w[None], cfg)
    bits = int.from_bytes(data, "little")
    assert [(bits >> (k * cfg.word_bits)) & ((1 << cfg.word_bits) - 1) for k in range(4)] == words
    # 4 words x 24 bits = 96 bits -> 2 beats of 64 bits, padded to one 128-byte burst
    assert cfg.beats == 2 and cfg.pass_bytes == 16 and len(data) == cfg.min_stride == 128
    assert not any(data[12:])


@pytest.mark.parametrize("cfg", [
    TokenBatchConfig(mw=16, mh=12, simd=4, pe=3, batch=4),
    TokenBatchConfig(mw=24, mh=8, simd=8, pe=2, batch=3, a_signed=False, w_bits=4, axi_dw=32),
    TokenBatchConfig(mw=8, mh=4, simd=8, pe=1, batch=8, axi_dw=128, max_burst=8),
])
def test_packer_roundtrip_and_unit_model_equal_reference(cfg):
    x, w = _rand(cfg, 3, 10, 1)
    stride = 2 * cfg.min_stride
    data = tb.pack_weights(w, cfg, stride)
    assert len(data) == 3 * stride
    np.testing.assert_array_equal(tb.unpack_weights(data, 3, cfg, stride), w)
    ref = tb.reference(x, w, cfg)
    np.testing.assert_array_equal(tb.unit_model(x, data, cfg, stride=stride), ref)
    # the output stream round trip
    np.testing.assert_array_equal(tb.unpack_outputs(tb.pack_outputs(ref, cfg), 3, 10, cfg), ref)


def test_corrupted_weight_word_changes_the_result():
    """Negative control of the comparison: one weight word of iteration 2 corrupted in the DDR image makes the
    unit model differ from the reference in exactly the outputs that word feeds."""
    cfg = TokenBatchConfig(mw=16, mh=12, simd=4, pe=3, batch=4)
    x, w = _rand(cfg, 3, 10, 2)
    data = bytearray(tb.pack_weights(w, cfg))
    word = 5  # (nf, sf) = (1, 1): outputs 3..5 of iteration 2
    bit = 2 * cfg.min_stride * 8 + word * cfg.word_bits + 3
    data[bit // 8] ^= 1 << (bit % 8)
    got = tb.unit_model(x, bytes(data), cfg)
    ref = tb.reference(x, w, cfg)
    bad = np.argwhere(got != ref)
    assert len(bad) > 0
    assert set(bad[:, 0]) == {2} and set(bad[:, 2]) <= {3, 4, 5}


def test_bad_input_is_named():
    cfg = TokenBatchConfig(mw=16, mh=12, simd=4, pe=3, batch=4)
    x, w = _rand(cfg, 2, 3, 3)
    with pytest.raises(ValueError, match="exceed INT8"):
        tb.pack_weights(w * 2, cfg)
    with pytest.raises(ValueError, match="shape"):
        tb.pack_weights(w[:, :, :8], cfg)
    with pytest.raises(ValueError, match="multiple of the burst size"):
        tb.pack_weights(w, cfg, stride=100)
    with pytest.raises(ValueError, match="overflow the INT12"):
        tb.reference(x, w, TokenBatchConfig(mw=16, mh=12, simd=4, pe=3, batch=4, acc_bits=12))
    with pytest.raises(ValueError, match="must divide"):
        TokenBatchConfig(mw=16, mh=12, simd=5, pe=3, batch=4)
    with pytest.raises(ValueError, match="power of 2"):
        TokenBatchConfig(mw=16, mh=12, simd=4, pe=3, batch=4, max_burst=12)


def test_schedule_and_traffic():
    cfg = TokenBatchConfig(mw=16, mh=12, simd=4, pe=3, batch=4)
    # T = 10 -> batches 4, 4, 2: 3 passes per iteration, 24 beats (192 bytes) each
    assert tb.ddr_bytes_per_frame(cfg, 3, 10) == 3 * 3 * 192
    c = tb.schedule_cycles(cfg, 3, 10)
    assert c["compute"] == 3 * 10 * 16
    # a 2-token pass applies 16 words in 32 cycles and needs 24 beats: not weight bound; a 1-token pass is
    assert c["weight_bound"] == 0
    assert tb.schedule_cycles(cfg, 3, 9)["weight_bound"] == 3 * (24 - 16)


def test_schedule_matches_the_planners_cycle_model():
    """The unit's MAC cycles per frame are the planner's for a rolled_batched layer: N x pricing.cycles."""
    from samfpga.hw.plan import pricing
    from samfpga.hw.plan.layers import Layer

    cfg = TokenBatchConfig(mw=160, mh=640, simd=32, pe=2, batch=8, axi_dw=128, max_burst=32, wfifo_depth=64)
    layer = Layer("fc1", "linear", "u", 0, cfg.mw, cfg.mh, 1024, cfg.mw * cfg.mh)
    c = tb.schedule_cycles(cfg, 6, 1024)
    assert c["compute"] == 6 * pricing.cycles(layer, cfg.pe, cfg.simd)
    assert c["weight_bound"] == 0  # 512-bit words over 8 tokens: 64 bit/cycle on a 128-bit port
    assert tb.ddr_bytes_per_frame(cfg, 6, 1024) == 6 * cfg.mw * cfg.mh * 1024 // 8


# ---------------------------------------------------------------------------------------------------------------
# RTL (Verilator + cocotb)

def _passes():
    from samfpga.hw.sim.token_batch_runner import Pass

    return [Pass("stalls", pause=0.3, ar_pause=0.3, r_pause=0.4), Pass("free")]


def _check(res, frames, cfg) -> None:
    assert not res.error, res.error
    total = sum(int(np.prod(f.x.shape[:2])) * cfg.nf for f in frames)
    for p in res.passes:
        assert p["words_compared"] == total and p["mismatches"] == 0, p["first_mismatches"]
        assert p["err"] == 0
        # every pass of every batch read exactly once, in bursts within 4 KiB pages and the burst limit
        assert p["ddr_bytes"] == sum(tb.ddr_bytes_per_frame(cfg, *f.x.shape[:2]) for f in frames)
        for addr, beats in p["bursts"]:
            assert 1 <= beats <= cfg.max_burst
            assert addr // 4096 == (addr + beats * cfg.axi_dw // 8 - 1) // 4096
    assert res.passed


@pytest.fixture(scope="module")
def unit_a(tmp_path_factory):
    """MW=12 MH=9 SIMD=4 PE=3 B=4, INT8 x INT8, 64-bit AXI: 96-bit weight words (gearbox in 32-bit chunks), 9 words
    = 13.5 beats per pass (the last beat of every pass half padding)."""
    cfg = TokenBatchConfig(mw=12, mh=9, simd=4, pe=3, batch=4)
    assert cfg.nf * cfg.sf * cfg.word_bits % cfg.axi_dw != 0
    return _built(tmp_path_factory, "tbmvu_a", cfg)


def _built(tmp_path_factory, tag: str, cfg: TokenBatchConfig):
    """(cfg, work dir) of a Verilator build of the unit at ``cfg``, shared by a module's tests."""
    from samfpga.hw.sim.token_batch_runner import build

    work = tmp_path_factory.mktemp(tag)
    build(cfg, work)
    return cfg, work


def _runtime_frames(cfg: TokenBatchConfig) -> list:
    """Four frames back to back with different runtime configurations: N=3 x T=10 (partial batch of 2), N=1 x T=4
    (one full batch) at another base with other weights and a wider stride, N=4 x T=3 (T < B), and the same
    configuration and weights again with other inputs."""
    from samfpga.hw.sim.token_batch_runner import Frame

    x0, w0 = _rand(cfg, 3, 10, 10)
    x1, w1 = _rand(cfg, 1, 4, 11)
    x2, w2 = _rand(cfg, 4, 3, 12)
    x3, _ = _rand(cfg, 4, 3, 13)
    return [Frame(x0, w0), Frame(x1, w1, base=0x2000, stride=2 * cfg.min_stride), Frame(x2, w2, base=0x3000),
            Frame(x3, w2, base=0x3000)]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rtl_rolled_frames_with_runtime_config(unit_a):
    """Three frames with different runtime configurations, back to back: N=3 x T=10 (partial batch of 2),
    N=1 x T=4 (one full batch) at another base with other weights and a wider stride, N=4 x T=3 (T < B)."""
    from samfpga.hw.sim.token_batch_runner import simulate

    cfg, work = unit_a
    frames = _runtime_frames(cfg)
    assert not np.array_equal(frames[0].w[0], frames[0].w[1]) and not np.array_equal(frames[0].w[1], frames[0].w[2])
    res = simulate(cfg, frames, _passes(), work, seed=1, tag="frames")
    _check(res, frames, cfg)
    # free-running, not weight bound: the 4th frame (same configuration) follows the 3rd after exactly its MAC
    # cycles (N * T * NF * SF, the planner's and FINN's MVAU count): no bubble between passes or iterations
    done = res.passes[1]["frame_done_cycles"]
    assert done[3] - done[2] == tb.schedule_cycles(cfg, 4, 3)["compute"] == 4 * 3 * 3 * 3


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("dot,mh,pe", [("chain", 9, 3), ("pack", 8, 2), ("pack", 16, 4)])
def test_rtl_dsp_datapaths_rolled_frames_at_the_same_rate(tmp_path, dot, mh, pe):
    """``unit_a``'s frames with the dot products on dot_chain.sv (DOT = 1) or on dot_pack.sv (DOT = 2: two PE lanes
    per slice; PE even, so MH 8 or 16): outputs bit-exact against the model under stalls and free-running, DDR
    traffic as without, and back-to-back frames still exactly their MAC cycles apart (the datapaths add latency, no
    bubbles)."""
    from samfpga.hw.sim.token_batch_runner import build, simulate

    cfg = TokenBatchConfig(mw=12, mh=mh, simd=4, pe=pe, batch=4, dot=dot)
    build(cfg, tmp_path)
    frames = _runtime_frames(cfg)
    res = simulate(cfg, frames, _passes(), tmp_path, seed=1, tag="frames")
    _check(res, frames, cfg)
    done = res.passes[1]["frame_done_cycles"]
    assert done[3] - done[2] == tb.schedule_cycles(cfg, 4, 3)["compute"] == 4 * 3 * cfg.nf * cfg.sf


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rtl_pack_extreme_products(tmp_path):
    """dot_pack.sv at its bound: SIMD 16 in segments of 7, 7 and 2 slices, every product at its extremes (all
    -128 x -128 = +16384, the largest low-lane sum a segment of 7 can hold, then -128 x 127), beside random values;
    accumulators out (RQ = 0), so nothing clips what the lanes computed."""
    from samfpga.hw.sim.token_batch_runner import Frame, build, simulate

    cfg = TokenBatchConfig(mw=32, mh=4, simd=16, pe=2, batch=3, dot="pack")
    build(cfg, tmp_path)
    lo = np.full((1, 5, cfg.mw), -128)
    w_lo = np.full((1, cfg.mh, cfg.mw), -128)
    w_mixed = w_lo.copy()
    w_mixed[:, 1::2] = 127  # the high lane of every pair negative, the low lane positive
    x, w = _rand(cfg, 2, 7, 90)
    frames = [Frame(lo, w_lo), Frame(lo, w_mixed, base=0x1000), Frame(x, w, base=0x2000)]
    res = simulate(cfg, frames, _passes(), tmp_path, seed=9)
    _check(res, frames, cfg)


def test_pack_needs_an_even_pe():
    with pytest.raises(ValueError, match="PE even"):
        TokenBatchConfig(mw=12, mh=9, simd=4, pe=3, batch=4, dot="pack")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rtl_bench_detects_a_corrupted_weight(unit_a):
    """Negative control of the bench: the reference from the true weights, the DDR holding one flipped weight
    bit of iteration 1: the RTL's outputs of exactly that iteration's affected channels mismatch."""
    from samfpga.hw.sim.token_batch_runner import Frame, Pass, ddr_image, simulate

    cfg, work = unit_a
    x, w = _rand(cfg, 3, 6, 20)
    x[1, :, 8] = 5  # the input the corrupted weight multiplies: nonzero in every token
    frames = [Frame(x, w)]
    img = bytearray(ddr_image(frames, cfg))
    bit = cfg.min_stride * 8 + 2 * cfg.word_bits + 7  # iteration 1, word (nf, sf) = (0, 2)
    img[bit // 8] ^= 1 << (bit % 8)
    res = simulate(cfg, frames, [Pass("free")], work, seed=2, ddr=bytes(img), tag="corrupt")
    assert res.passes and res.passes[0]["words_compared"] == 3 * 6 * cfg.nf
    # iteration 1's 6 tokens x beat nf=0 differ, nothing else: 6 of 72 words
    assert res.passes[0]["mismatches"] == 6, res.passes[0]
    assert not res.passed


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("dot", ["tree", "chain", "pack"])
def test_rtl_unsigned_inputs_int4_weights_narrow_axi(tmp_path, dot):
    """UINT8 activations x INT4 weights, B=3 (not a power of 2), 32-bit AXI: 64-bit words = 2 beats each; with the
    adder-tree dot products, dot_chain.sv and dot_pack.sv (more cycles of latency; B = 3 tokens between a token's
    accumulator write and its next read, as without; packed: UINT8 x INT4 products fit 64 slices a segment)."""
    from samfpga.hw.sim.token_batch_runner import Frame, build, simulate

    cfg = TokenBatchConfig(mw=24, mh=8, simd=8, pe=2, batch=3, a_signed=False, w_bits=4, axi_dw=32, acc_bits=20,
                           dot=dot)
    build(cfg, tmp_path)
    x, w = _rand(cfg, 3, 7, 30)
    frames = [Frame(x, w, base=0x1000)]
    res = simulate(cfg, frames, _passes(), tmp_path, seed=3)
    _check(res, frames, cfg)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rtl_single_fold_wide_axi(tmp_path):
    """SF = 1 (no accumulation across beats), PE = 1, 128-bit AXI carrying two 64-bit weight words per beat,
    B = 8 with T = 20 (partial batch of 4), two frames back to back. (At SF = 1 the output stream is as busy as the
    MACs, so the hand-over of an output bank costs a few cycles per pass: correctness only here.)"""
    from samfpga.hw.sim.token_batch_runner import Frame, build, simulate

    cfg = TokenBatchConfig(mw=8, mh=4, simd=8, pe=1, batch=8, axi_dw=128, max_burst=8, wfifo_depth=16)
    build(cfg, tmp_path)
    x, w = _rand(cfg, 3, 20, 40)
    frames = [Frame(x, w), Frame(x[::-1].copy(), w)]
    res = simulate(cfg, frames, _passes(), tmp_path, seed=4)
    _check(res, frames, cfg)


@pytest.mark.timeout(900)
def test_rtl_a_frame_of_more_than_65535_tokens(tmp_path):
    """The engine builds the unit with counts of ENGINE_CNT_BITS = 20 bits (vit_t at 1024² runs its stem's first conv
    over 512 x 512 = 2^18 tokens, stage 0 over 2^16; a 16-bit TOKENS register held 0 for both): one frame of
    65,560 tokens (past 2^16, a partial last batch of 24) and a second of 2 x 40, back to back, free-running."""
    from samfpga.backends.unit_regs import ENGINE_CNT_BITS
    from samfpga.hw.sim.token_batch_runner import Frame, Pass, build, simulate

    cfg = TokenBatchConfig(mw=8, mh=4, simd=8, pe=4, batch=32, axi_dw=64, max_burst=8, cnt_bits=ENGINE_CNT_BITS)
    assert cfg.rtl_params()["CNT_BITS"] == 20
    build(cfg, tmp_path)
    x, w = _rand(cfg, 1, (1 << 16) + 24, 21)
    x2, w2 = _rand(cfg, 2, 40, 22)
    frames = [Frame(x, w), Frame(x2, w2, base=0x1000)]
    res = simulate(cfg, frames, [Pass("free")], tmp_path, seed=5)
    _check(res, frames, cfg)


# ---------------------------------------------------------------------------------------------------------------
# requantisation inside the unit (RQ = 1): parameters from DDR ahead of each output fold, values to the banks

def _rand_rq(cfg: TokenBatchConfig, n: int, seed: int) -> tb.RequantParams:
    return tb.sample_requant(cfg, n, np.random.default_rng(seed))


def test_requantize_by_hand():
    """floor((acc * scale + bias) / 2**shift), clipped: values worked out by hand."""
    cfg = TokenBatchConfig(mw=4, mh=2, simd=4, pe=1, batch=1, requant=True, out_bits=4)
    rq = tb.RequantParams(scale=np.array([[3, -2]]), bias=np.array([[2, 1]]), shift=np.array([[2, 0]]))
    acc = np.array([[[-5, 3], [1, -4], [40, 100]]])
    # ch0: (-15+2)>>2 = -4, (3+2)>>2 = 1, (120+2)>>2 = 30 -> 7; ch1: -6+1 = -5, 9, -199 -> -8
    np.testing.assert_array_equal(tb.requantize(acc, rq, cfg), [[[-4, -5], [1, 7], [7, -8]]])
    u = TokenBatchConfig(mw=4, mh=2, simd=4, pe=1, batch=1, requant=True, out_bits=4, out_signed=False)
    np.testing.assert_array_equal(tb.requantize(acc, rq, u), [[[0, 0], [1, 9], [15, 0]]])


@pytest.mark.parametrize("cfg", [
    TokenBatchConfig(mw=12, mh=9, simd=4, pe=3, batch=4, requant=True),  # 2 parameter words per fold
    TokenBatchConfig(mw=32, mh=4, simd=16, pe=2, batch=3, requant=True, out_bits=4, out_signed=False),  # 1 word
])
def test_requant_packer_roundtrip_and_unit_model(cfg):
    x, w = _rand(cfg, 3, 10, 5)
    rq = _rand_rq(cfg, 3, 6)
    assert cfg.param_words == -(-cfg.pe * cfg.param_bits // cfg.word_bits)
    data = tb.pack_weights(w, cfg, rq=rq)
    assert cfg.pass_bytes * 8 >= cfg.nf * (cfg.param_words + cfg.sf) * cfg.word_bits
    np.testing.assert_array_equal(tb.unpack_weights(data, 3, cfg), w)
    back = tb.unpack_requant(data, 3, cfg)
    for k in ("scale", "bias", "shift"):
        np.testing.assert_array_equal(getattr(back, k), getattr(rq, k))
    ref = tb.reference(x, w, cfg, rq)
    lo, hi = (-128, 127) if cfg.out_signed else (0, (1 << cfg.out_bits) - 1)
    # the parameters exercise both clips and the inside of the range
    assert (ref == lo).any() and (ref == hi).any() and ((ref > lo) & (ref < hi)).mean() > 0.3
    np.testing.assert_array_equal(tb.unit_model(x, data, cfg), ref)
    np.testing.assert_array_equal(tb.unpack_outputs(tb.pack_outputs(ref, cfg), 3, 10, cfg), ref)
    # parameter cycles: NF * param_words per pass, no MACs
    c = tb.schedule_cycles(cfg, 3, 10)
    assert c["params"] == 3 * -(-10 // cfg.batch) * cfg.nf * cfg.param_words


def test_requant_bad_parameters_are_named():
    cfg = TokenBatchConfig(mw=12, mh=9, simd=4, pe=3, batch=4, requant=True)
    x, w = _rand(cfg, 2, 3, 7)
    rq = _rand_rq(cfg, 2, 8)
    with pytest.raises(ValueError, match="needed exactly when"):
        tb.pack_weights(w, cfg)
    with pytest.raises(ValueError, match="requant shift"):
        tb.pack_weights(w, cfg, rq=tb.RequantParams(rq.scale, rq.bias, rq.shift + 64))
    with pytest.raises(ValueError, match=r"requant scale: shape \(2, 8\)"):
        tb.reference(x, w, cfg, tb.RequantParams(rq.scale[:, :8], rq.bias, rq.shift))


@pytest.fixture(scope="module")
def unit_rq(tmp_path_factory):
    """unit A's shape with requantisation: 3 x 64 parameter bits per fold = 2 words of 96 bits."""
    cfg = TokenBatchConfig(mw=12, mh=9, simd=4, pe=3, batch=4, requant=True)
    assert cfg.param_words == 2
    return _built(tmp_path_factory, "tbmvu_rq", cfg)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rtl_requant_rolled_frames(unit_rq):
    """Requantised INT8 outputs, per-iteration parameters from DDR: N=3 x T=10 (partial batch), N=2 x T=3 at
    another base with other parameters, under stalls and free-running; the free-running frame interval is the
    MAC cycles plus the parameter cycles."""
    from samfpga.hw.sim.token_batch_runner import Frame, simulate

    cfg, work = unit_rq
    x0, w0 = _rand(cfg, 3, 10, 50)
    x1, w1 = _rand(cfg, 2, 3, 51)
    rq0, rq1 = _rand_rq(cfg, 3, 52), _rand_rq(cfg, 2, 53)
    x2, _ = _rand(cfg, 2, 3, 54)
    frames = [Frame(x0, w0, rq=rq0), Frame(x1, w1, base=0x2000, rq=rq1), Frame(x2, w1, base=0x2000, rq=rq1)]
    res = simulate(cfg, frames, _passes(), work, seed=5, tag="frames")
    _check(res, frames, cfg)
    done = res.passes[1]["frame_done_cycles"]
    c = tb.schedule_cycles(cfg, 2, 3)
    assert done[2] - done[1] == c["compute"] + c["params"] == 2 * 3 * 3 * 3 + 2 * 1 * 3 * 2


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rtl_requant_with_a_two_fold_parameter_queue(tmp_path_factory):
    """PQ_DEPTH = 2 (TokenBatchConfig.pq_depth, the depth the planner prices): bit-exact under stalls, and the
    free-running frame interval is still the MAC cycles plus the parameter cycles."""
    from samfpga.hw.sim.token_batch_runner import Frame, simulate

    cfg, work = _built(tmp_path_factory, "tbmvu_rq_pq2",
                       TokenBatchConfig(mw=12, mh=9, simd=4, pe=3, batch=4, requant=True, pq_depth=2))
    x0, w0 = _rand(cfg, 3, 10, 70)
    x1, _ = _rand(cfg, 3, 10, 71)
    rq0 = _rand_rq(cfg, 3, 72)
    frames = [Frame(x0, w0, rq=rq0), Frame(x1, w0, rq=rq0)]
    res = simulate(cfg, frames, _passes(), work, seed=7, tag="pq2")
    _check(res, frames, cfg)
    done = res.passes[1]["frame_done_cycles"]
    c = tb.schedule_cycles(cfg, 3, 10)
    assert done[1] - done[0] == c["compute"] + c["params"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rtl_requant_bench_detects_a_corrupted_parameter(unit_rq):
    """Negative control: one bit of one channel's bias flipped in the DDR image (iteration 1, fold 2, lane 1 =
    channel 7): the outputs of exactly that channel in that iteration change, and only where the flip moves them."""
    from samfpga.hw.sim.token_batch_runner import Frame, Pass, ddr_image, simulate

    cfg, work = unit_rq
    x, w = _rand(cfg, 3, 5, 60)
    rq = _rand_rq(cfg, 3, 61)
    frames = [Frame(x, w, rq=rq)]
    img = bytearray(ddr_image(frames, cfg))
    fold = 2
    bit = cfg.min_stride * 8 + fold * cfg.fold_words * cfg.word_bits + cfg.param_bits + cfg.rq_scale_bits + 30
    img[bit // 8] ^= 1 << (bit % 8)
    bad = tb.unit_model(x, bytes(img), cfg)
    ref = tb.reference(x, w, cfg, rq)
    diff = np.argwhere(bad != ref)
    assert len(diff) > 0 and set(diff[:, 0]) == {1} and set(diff[:, 2]) == {7}
    res = simulate(cfg, frames, [Pass("free")], work, seed=6, ddr=bytes(img), tag="corrupt")
    # one output word (beat) per affected token: beat nf = 2 holds channels 6..8
    assert res.passes[0]["mismatches"] == len(set(map(tuple, diff[:, :2]))), res.passes[0]
    assert not res.passed


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("dot", ["tree", "pack"])
def test_rtl_requant_unsigned_narrow_one_word(tmp_path, dot):
    """UINT4 outputs, PE=2 x SIMD=16 (256-bit words: one parameter word per fold), B=3, 64-bit AXI; with dot_pack.sv
    the 16 INT8 x INT8 lanes are three segments (7, 7 and 2 slices) and a two-level tree."""
    from samfpga.hw.sim.token_batch_runner import Frame, build, simulate

    cfg = TokenBatchConfig(mw=32, mh=4, simd=16, pe=2, batch=3, requant=True, out_bits=4, out_signed=False, dot=dot)
    assert cfg.param_words == 1
    build(cfg, tmp_path)
    x, w = _rand(cfg, 2, 7, 70)
    frames = [Frame(x, w, rq=_rand_rq(cfg, 2, 71))]
    res = simulate(cfg, frames, _passes(), tmp_path, seed=7)
    _check(res, frames, cfg)


def test_requant_from_finn_equals_finn_requant():
    """FINN+'s Requant (float32 scale/bias per channel; power-of-two scales, where its RTL is exact) on the unit's
    accumulators: the unit's requantisation with ``from_finn_requant`` parameters equals the fixed-point model of
    finn-rtllib requant.sv and FINN+'s Python execution of the layer, per iteration, tolerance 0."""
    from onnx import helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.basic import qonnx_make_model

    from samfpga.hw.finn_env import boot
    from samfpga.kernels.requant import fixed_point_params, requant_fixed

    boot(None)
    for signed in (True, False):
        cfg = TokenBatchConfig(mw=16, mh=6, simd=4, pe=3, batch=4, requant=True, acc_bits=24, out_signed=signed)
        x, w = _rand(cfg, 2, 9, 80)
        acc = tb.reference(x, w, TokenBatchConfig(mw=16, mh=6, simd=4, pe=3, batch=4, acc_bits=24))
        rng = np.random.default_rng(81 + signed)
        finn = []
        for _ in range(2):
            scale = (2.0 ** -rng.integers(6, 11, cfg.mh)).astype(np.float32)
            bias = (rng.integers(-40, 40, cfg.mh) + 0.5).astype(np.float32)
            finn.append((scale, bias, fixed_point_params(scale, bias, cfg.acc_bits, cfg.out_bits)))
        got = tb.requantize(acc, tb.from_finn_requant([f[2] for f in finn], cfg), cfg)
        odt = DataType[f"{'INT' if signed else 'UINT'}8"]
        for i, (scale, bias, p) in enumerate(finn):
            np.testing.assert_array_equal(got[i], requant_fixed(acc[i], p, 8, signed))
            node = helper.make_node("Requant", ["x", "s", "b"], ["y"], domain="finn.custom_op.fpgadataflow",
                                    backend="fpgadataflow", NumChannels=cfg.mh, PE=1, inputDataType="INT24",
                                    outputDataType=odt.name, numInputVectors=[1, acc.shape[1]])
            shape = [1, acc.shape[1], cfg.mh]
            g = helper.make_graph([node], "rq", [helper.make_tensor_value_info("x", 1, shape)],
                                  [helper.make_tensor_value_info("y", 1, shape)])
            m = ModelWrapper(qonnx_make_model(g))
            m.set_initializer("s", scale)
            m.set_initializer("b", bias)
            y = execute_onnx(m, {"x": acc[i][None].astype(np.float32)})["y"][0]
            np.testing.assert_array_equal(got[i], y)
        lo, hi = (-128, 127) if signed else (0, 255)
        assert (got == lo).any() and ((got > lo) & (got < hi)).mean() > 0.3
    # 16-bit accumulators: the DSP48E2 decomposition uses 25-bit scales, wider than the unit's 18
    narrow = TokenBatchConfig(mw=16, mh=6, simd=4, pe=3, batch=4, requant=True, acc_bits=16)
    p16 = fixed_point_params(np.full(6, 2.0**-8, np.float32), np.zeros(6, np.float32), 16, 8)
    with pytest.raises(ValueError, match="25-bit scales need rq_scale_bits >= 25"):
        tb.from_finn_requant([p16], narrow)


# ---------------------------------------------------------------------------------------------------------------
# run-time shapes (RT_SHAPE = 1: the layer-sequential engine's unit, docs/engine.md)

def _rt_unit() -> TokenBatchConfig:
    """MW=16 MH=8 SIMD=4 PE=2 B=4, requantising, two products per DSP (the engine's datapath), 64-bit words on a
    64-bit port (whole beats, as RT_SHAPE needs); raw frames (RAW_OUT) send 20-bit sums of the 26-bit accumulator
    as three 8-bit words (the accumulator's low 24 bits: the truncating case)."""
    return TokenBatchConfig(mw=16, mh=8, simd=4, pe=2, batch=4, requant=True, dot="pack", rt_shape=True,
                            acc_bits=26, raw_out=True, raw_bits=20)


def test_layer_shape_limits():
    unit = _rt_unit()
    s = tb.layer_shape(unit, 32, 8, 2)  # wider than MW: fewer tokens per pass (2 x 8 beats = 4 x 4)
    assert (s.sf, s.nf, s.batch, s.rt_shape) == (8, 4, 2, False)
    assert tb.layer_shape(unit, 8, 4).batch == 4
    for args, msg in (((32, 8, 3), "beyond the unit's buffers"), ((4, 24, 2), "beyond"), ((8, 4, 5), "beyond"),
                      ((6, 4), "SIMD=4 must divide"), ((8, 3), "PE=2")):
        with pytest.raises(ValueError, match=msg):
            tb.layer_shape(unit, *args)
    with pytest.raises(ValueError, match="not run-time shaped"):
        tb.layer_shape(TokenBatchConfig(mw=16, mh=8, simd=4, pe=2, batch=4), 8, 4)
    with pytest.raises(ValueError, match="whole AXI beats"):
        TokenBatchConfig(mw=12, mh=9, simd=4, pe=3, batch=4, rt_shape=True)


@pytest.fixture(scope="module")
def unit_rt(tmp_path_factory):
    return _built(tmp_path_factory, "tbmvu_rt", _rt_unit())


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_rtl_runtime_shapes_back_to_back(unit_rt):
    """One unit built at the largest shape runs five layers of other shapes back to back, as the engine does:
    8 -> 4 at batch 3 over 2 iterations (partial batches); 32 -> 8, wider than MW, at batch 2; 4 -> 16, taller
    than MH, at batch 2; the full shape; and that layer again with other inputs. Each is bit-exact against a unit
    built at its shape (the same reference, DDR layout and streams) under stalls and free-running, every pass read
    exactly once, and the free-running interval of the repeated layer is its own MAC + parameter cycles
    (``schedule_cycles``). (A unit built at 8 -> 4, B = 3 takes the same 98 cycles per frame as this one run at
    that shape, 18 more than the model: short passes pay the output banks' hand-over, which the model leaves out.)"""
    from samfpga.hw.sim.token_batch_runner import Frame, simulate

    unit, work = unit_rt
    layers = [(tb.layer_shape(unit, 8, 4, 3), 2, 7), (tb.layer_shape(unit, 32, 8, 2), 1, 5),
              (tb.layer_shape(unit, 4, 16, 2), 1, 3), (tb.layer_shape(unit, 16, 8), 1, 8)]
    frames, base = [], 0
    for k, (s, n, t) in enumerate(layers):
        x, w = _rand(s, n, t, 90 + k)
        frames.append(Frame(x, w, base=base, rq=_rand_rq(s, n, 95 + k), shape=s))
        base += -(-n * s.min_stride // 4096) * 4096
    s, n, t = layers[-1]
    x, _ = _rand(s, n, t, 99)
    frames.append(Frame(x, frames[-1].w, base=frames[-1].base, rq=frames[-1].rq, shape=s))
    res = simulate(unit, frames, _passes(), work, seed=11, tag="shapes")
    assert not res.error, res.error
    total = sum(int(np.prod(f.x.shape[:2])) * f.shape.nf for f in frames)
    reads = sum(tb.ddr_bytes_per_frame(f.shape, *f.x.shape[:2]) for f in frames)
    for p in res.passes:
        assert p["words_compared"] == total and p["mismatches"] == 0, p["first_mismatches"]
        assert p["err"] == 0 and p["ddr_bytes"] == reads
    done = res.passes[1]["frame_done_cycles"]
    c = tb.schedule_cycles(s, n, t)
    assert c["weight_bound"] == 0 and done[4] - done[3] == c["compute"] + c["params"] == 8 * 4 * 4 + 2 * 4 * 2


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_rtl_runtime_shape_out_of_range_raises_err(unit_rt):
    """Negative control: 32 -> 8 at batch 3 (3 x 8 beats > 4 x 4 the input banks hold) raises err[1] and the frame
    runs at the unit's own shape, so its outputs are not the layer's; the register check is on, not a no-op."""
    from dataclasses import replace

    from samfpga.hw.sim.token_batch_runner import Frame, simulate

    unit, work = unit_rt
    bad = replace(tb.layer_shape(unit, 32, 8, 2), batch=3)
    x, w = _rand(bad, 1, 6, 120)
    res = simulate(unit, [Frame(x, w, rq=_rand_rq(bad, 1, 121), shape=bad)], [_passes()[1]], work, seed=3,
                   tag="bad")
    p = res.passes[0]
    assert p["err"] == 2 and not res.passed


# ---------------------------------------------------------------------------------------------------------------
# raw frames (RAW_OUT = 1: the engine's QK^T, sums to the softmax unrequantised)

def test_raw_frame_layout_and_model():
    """A raw frame: no parameter words in DDR (the layout of a unit without requant), sums out unrequantised as
    raw_words beats per fold (beat k = bits k*PE*8 .. of the PE sums of 24 bits), the batch bounded by
    B'*NF'*K <= B*NF, issue cycles K per finished sum, and the sums must fit raw_bits' words."""
    unit = _rt_unit()
    s = tb.layer_shape(unit, 4, 4, raw=True)  # SF' = 1 (QK^T: head dim = SIMD), NF' = 2: B' x 2 x 3 <= 16
    assert (s.raw, s.raw_words, s.out_words, s.batch, s.param_words, s.out_stream_bits) == (True, 3, 3, 2, 0, 16)
    assert tb.layer_shape(unit, 4, 4).batch == 4 and tb.layer_shape(unit, 4, 4).param_words == 2
    plain = TokenBatchConfig(mw=4, mh=4, simd=4, pe=2, batch=2, acc_bits=26)
    x, w = _rand(s, 2, 5, 130)
    assert tb.pack_weights(w, s) == tb.pack_weights(w, plain)
    y = tb.reference(x, w, s)
    np.testing.assert_array_equal(y, tb.reference(x, w, plain))
    beats = tb.pack_outputs(y, s)
    assert len(beats) == 2 * 5 * 2 * 3 and max(beats) < 1 << 16
    v = y[0, 0, 0] & 0xFFFFFF | (y[0, 0, 1] & 0xFFFFFF) << 24  # token 0's fold 0: two 24-bit sums in 3 beats
    assert beats[:3] == [v & 0xFFFF, v >> 16 & 0xFFFF, v >> 32]
    np.testing.assert_array_equal(tb.unpack_outputs(beats, 2, 5, s), y)
    np.testing.assert_array_equal(tb.unit_model(x, tb.pack_weights(w, s), s), y)
    with pytest.raises(ValueError, match="requant parameters are needed exactly"):
        tb.reference(x, w, s, _rand_rq(s, 2, 1))
    with pytest.raises(ValueError, match="do not fit the 16 bits"):
        tb.reference(np.full((1, 1, 4), -128), np.full((1, 4, 4), -128), replace(s, raw_bits=12, acc_bits=20))
    with pytest.raises(ValueError, match=r"beyond the unit's buffers .* x 3 <= 16"):
        tb.layer_shape(unit, 4, 4, batch=3, raw=True)
    with pytest.raises(ValueError, match="raw needs a unit built with raw_out"):
        tb.layer_shape(replace(unit, raw_out=False), 4, 4, raw=True)
    # a raw frame of low bytes (the V transpose: raw_bits = out_bits): a fold a beat, no waits, the batch bound K = 1,
    # cfg_unsigned = 1 selects it on the unit built for 3-word sums; requantised frames keep their clip flag
    low = tb.layer_shape(replace(unit, raw_bits=unit.out_bits), 4, 4, raw=True)
    assert (low.raw_low, low.raw_words, low.out_words, low.batch, low.unsigned_flag) == (True, 1, 1, 4, 1)
    assert tb.issue_cycles(low, 4) == 2 * 1 * 4 and not s.raw_low and s.unsigned_flag == 0
    assert tb.layer_shape(unit, 4, 4).unsigned_flag == 0
    assert replace(tb.layer_shape(unit, 4, 4), out_signed=False).unsigned_flag == 1
    with pytest.raises(ValueError, match="raw_out needs requant and rt_shape"):
        TokenBatchConfig(mw=16, mh=8, simd=4, pe=2, batch=4, requant=True, raw_out=True)
    # SF' = 1: K cycles per finished sum; SF' = 3: (SF' - 1) x nb MAC cycles, then the finished sums K apart
    assert tb.issue_cycles(s, 2) == 2 * 2 * 3
    s3 = tb.layer_shape(unit, 12, 2, raw=True)
    assert s3.batch == 4 and tb.issue_cycles(s3, 4) == 1 * (3 * 3 + max(3, 2 * 4 + 1))
    c = tb.schedule_cycles(s, 2, 5)
    assert c["raw_wait"] == 2 * (12 - 4 + 12 - 4 + 6 - 2) and c["params"] == 0 and c["drain"] == 1 * 2 * 3


def _raw_frames(unit: TokenBatchConfig) -> list:
    """Requantised and raw frames interleaved on one unit, as the engine's attention runs them: a requantised layer;
    QK^T-like raw (4 -> 4, SF' = 1, batch 2) over 2 iterations of 5 tokens; a requantised layer right after it (its
    first sums wait out the raw frame's last K writes); raw 12 -> 2 (SF' = 3, batch 4); the QK^T-like frame again
    with other inputs (its interval is the raw schedule's); a V transpose's raw frame of low bytes (one-hot inputs,
    2 iterations: the weights transposed, a fold a beat, batch 4)."""
    from samfpga.hw.sim.token_batch_runner import Frame

    layers = [(tb.layer_shape(unit, 16, 8), 1, 6), (tb.layer_shape(unit, 4, 4, raw=True), 2, 5),
              (tb.layer_shape(unit, 8, 4, 3), 1, 7), (tb.layer_shape(unit, 12, 2, raw=True), 1, 9)]
    frames, base = [], 0
    for k, (s, n, t) in enumerate(layers):
        x, w = _rand(s, n, t, 140 + k)
        frames.append(Frame(x, w, base=base, rq=_rand_rq(s, n, 145 + k) if s.requantises else None, shape=s))
        base += -(-n * s.min_stride // 4096) * 4096
    f = frames[1]
    frames.append(Frame(_rand(f.shape, 2, 5, 149)[0], f.w, base=f.base, shape=f.shape))
    # the V transpose's frame: one-hot inputs against 8-bit weights, each sum's low byte a fold a beat (cfg_unsigned)
    low = tb.layer_shape(replace(unit, raw_bits=unit.out_bits), 4, 4, raw=True)
    w = _rand(low, 2, 4, 151)[1]
    frames.append(Frame(np.tile(np.eye(4, dtype=np.int64), (2, 1, 1)), w, base=base, shape=low))
    return frames


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_rtl_raw_frames_between_requantised(unit_rt):
    """Raw frames between requantised ones on one unit (``_raw_frames``): every output word bit-exact under stalls
    and free-running (raw sums as three words each, the 26-bit accumulator's low 24 bits), DDR bytes = the model's
    (no parameter words in raw passes), no err; the repeated raw frame's free-running interval is its issue cycles
    (``schedule_cycles`` compute + raw_wait, K = 3 cycles per finished sum) within the pipeline's few cycles."""
    from samfpga.hw.sim.token_batch_runner import simulate

    unit, work = unit_rt
    frames = _raw_frames(unit)
    res = simulate(unit, frames, _passes(), work, seed=13, tag="raw")
    assert not res.error, res.error
    total = sum(int(np.prod(f.x.shape[:2])) * f.shape.nf * f.shape.out_words for f in frames)
    reads = sum(tb.ddr_bytes_per_frame(f.shape, *f.x.shape[:2]) for f in frames)
    for p in res.passes:
        assert p["words_compared"] == total and p["mismatches"] == 0, p["first_mismatches"]
        assert p["err"] == 0 and p["ddr_bytes"] == reads
    done = res.passes[1]["frame_done_cycles"]
    c = tb.schedule_cycles(frames[4].shape, 2, 5)
    passes = 2 * 3
    # measured: 102 cycles = the model's 60 + 7 per pass: passes of 12 issue cycles are as short as the unit's
    # pipeline (issue -> dot_pack -> requantiser stages -> bank -> drain queue), so each pays its output bank's
    # hand-over; a requantised 12-cycle pass pays the same (the first frame of test_rtl_runtime_shapes_back_to_back,
    # docs/token_batch_mvu.md). At the engine's 64-token passes that is about 2% (bench/engine_unit_sim.py).
    assert c["compute"] + c["raw_wait"] == 60 <= done[4] - done[3] <= 60 + 8 * passes


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_rtl_raw_frame_over_the_banks_raises_err(unit_rt):
    """Negative control: raw 4 -> 4 at batch 3 (3 x 2 folds x 3 words > the 16 bank words) raises err[1] and the
    frame runs requantised at the unit's own shape, so its outputs are not the layer's sums."""
    from samfpga.hw.sim.token_batch_runner import Frame, simulate

    unit, work = unit_rt
    bad = replace(tb.layer_shape(unit, 4, 4, raw=True), batch=3)
    x, w = _rand(bad, 1, 6, 150)
    res = simulate(unit, [Frame(x, w, shape=bad)], [_passes()[1]], work, seed=5, tag="rawbad")
    p = res.passes[0]
    assert p["err"] == 2 and not res.passed
