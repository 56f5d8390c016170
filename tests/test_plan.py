"""samfpga.hw.plan: layer list from the model, the planner's invariants (fit, rolled cycles, DDR arithmetic, what
binds) on a tiny encoder (a few seconds)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from samfpga.hw.boards import RESOURCES, get_board
from samfpga.hw.plan import PlanConfig, plan
from samfpga.hw.plan.layers import encoder_layers
from samfpga.hw.sim import strip_reader as sr
from samfpga.models.image_encoder.tiny_vit import TinyViTConfig


def tiny() -> TinyViTConfig:
    return TinyViTConfig(img_size=64, embed_dims=[8, 16, 16, 16], depths=[2, 2, 3, 2], num_heads=[1, 2, 2, 2],
                         window_sizes=[4, 4, 4, 4], out_chans=16, num_classes=0, activation="relu")


@pytest.fixture(scope="module")
def units():
    return encoder_layers(tiny())


def test_layers_macs_match_flop_counter(units):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from samfpga.models.image_encoder.tiny_vit import TinyViT

    with torch.device("meta"):
        enc = TinyViT(tiny())
    with FlopCounterMode(display=False) as fc:
        enc(torch.empty(1, 3, 64, 64, device="meta"))
    assert sum(u.macs for u in units) == fc.get_total_flops() // 2
    assert sum(u.weights for u in units) == sum(p.numel() for n, p in enc.named_parameters()
                                                if p.ndim > 1 and not n.startswith("head") and "attention_biases" not in n)
    names = [u.name for u in units]
    assert names[0] == "patch_embed" and names[-1] == "neck"
    stage2 = units[names.index("layers.2.blocks")]
    assert stage2.repeats == 3 and stage2.identical


def test_fits_means_within_limit_and_rolled_cycles(units, tmp_path):
    import json

    from samfpga.hw.plan.report import write

    p = plan(PlanConfig(board="zcu104", encoder_config=tiny()), units=units)
    files = write(p, tmp_path)
    rep = json.loads(files["json"].read_text())
    assert rep["fits"] and len(rep["layers"]) == len(p.layers) and files["png"].stat().st_size > 0
    assert f"{p.fps:.3g} fps" in files["md"].read_text()
    assert p.fits
    for r in RESOURCES:
        assert p.totals[r] <= 0.85 * p.budget[r] + 1e-9, r
    # every layer and memory is in the totals
    for r in RESOURCES:
        s = sum(x.res.get(r, 0.0) for x in p.layers) + sum(m.res.get(r, 0.0) for m in p.memories)
        assert math.isclose(s, p.totals[r], rel_tol=1e-9, abs_tol=1e-6), r
    for u in p.units:
        body = max(x.cycles for x in p.layers if x.unit == u.name and x.pe)
        if u.mode == "unrolled":
            assert u.cycles == body
        else:
            assert u.iteration == max(body, u.fetch_cycles)
            assert u.cycles == u.blocks * u.iteration
        assert u.cycles <= p.period_cycles
    assert p.fps == pytest.approx(p.clock_mhz * 1e6 / p.period_cycles)


def test_versal_counts_dsp58_dot_products(units):
    """On the VCK190 (DSP58) the planner prices MVAU layers as finn-rtllib's mvu_vvu_8sx9_dsp58 builds them: a
    3-element INT8 dot product per DSP58, PE x ceil(SIMD / 3) slices (DSP48E2 packs 2 lanes at W8A8 instead), and
    the roofline counts 3 MACs per DSP."""
    p = plan(PlanConfig(board="vck190", encoder_config=tiny()), units=units)
    assert p.fits and p.roofline["macs_per_dsp"] == 3 and "DSP58" in p.roofline["basis"]
    mvau = [x for x in p.layers if x.op_type == "MVAU_rtl" and x.simd > 3]
    assert mvau
    for x in mvau:
        assert x.pe * math.ceil(x.simd / 3) <= x.res["DSP"] < x.pe * x.simd, x.name
    zynq = plan(PlanConfig(board="zcu104", encoder_config=tiny()), units=units)
    assert zynq.roofline["macs_per_dsp"] == 2


def test_ddr_traffic_arithmetic(units):
    cfg = PlanConfig(board="zcu104", encoder_config=tiny(), modes=("rolled_streamed",), ddr_efficiency=0.5)
    p = plan(cfg, units=units)
    by = {u.name: u for u in units}
    streamed = [u for u in p.units if u.mode == "rolled_streamed"]
    assert len(streamed) == 4  # every unit with repeated blocks
    w = sum(by[u.name].weights for u in streamed)  # every block's weights once per frame, 8 bit
    assert p.ddr["weights_bytes"] == w
    assert p.ddr["io_bytes"] == 3 * 64 * 64 + 16 * 4 * 4
    spill = 0
    for m in p.memories:
        if m.placed == "DDR":
            fm = m.depth * m.width / 8  # one feature map (a frame buffer holds two: ping-pong)
            spill += (1 + m.read_factor) * fm * (1 if m.kind == "frame_buffer" else by[m.unit].repeats - 1)
    assert p.ddr["spill_bytes"] == pytest.approx(spill)
    assert p.ddr["bytes_per_frame"] == pytest.approx(w + spill + p.ddr["io_bytes"])
    bpc = 19.2e9 * 0.5 / 200e6
    assert p.ddr["bytes_per_cycle"] == pytest.approx(bpc)
    for u in streamed:
        assert u.fetch_cycles == math.ceil(by[u.name].blocks[0][0].weights * 0 + sum(
            x.weights for x in by[u.name].blocks[0]) / bpc)
    assert p.period_cycles >= p.ddr["bytes_per_frame"] / bpc - 1


def test_too_small_says_what_binds(units):
    p = plan(PlanConfig(board="pynq-z2", encoder_config=tiny(), limit=0.002, modes=("unrolled", "rolled_streamed"),
                        token_batches=(8,)), units=units)
    assert not p.fits
    assert p.binds and any(r in p.binds[0] for r in RESOURCES)
    assert "budget" in p.binds[0] or "none" in p.binds[0]
    assert get_board("pynq-z2").dsp == p.budget["DSP"]


def test_batched_ddr_traffic(units):
    """unrolled_batched: every conv/linear weight (not the depthwise ones) crosses DDR once per batch of tokens,
    each pass read in whole beats of the unit's AXI port (PlanConfig.dma_beat_bytes)."""
    cfg = PlanConfig(board="zcu104", encoder_config=tiny(), modes=("unrolled_batched",), token_batches=(4,),
                     batch_output="acc")
    p = plan(cfg, units=units)
    by = {u.name: u for u in units}
    batched = [u for u in p.units if u.mode == "unrolled_batched"]
    assert [u.name for u in batched] == [u.name for u in units if u.repeats == 1]
    beat = cfg.dma_beat_bytes
    want = sum(math.ceil(x.weights / beat) * beat * math.ceil(x.vectors / min(4, x.vectors)) for u in batched
               for x in by[u.name].layers if x.kind in ("conv", "linear"))
    assert want > sum(x.weights * math.ceil(x.vectors / min(4, x.vectors)) for u in batched
                      for x in by[u.name].layers if x.kind in ("conv", "linear"))  # the tiny layers round up
    assert p.ddr["weights_bytes"] == want
    kind = {x.name: x.kind for u in units for x in u.layers}
    on_chip = [m.name for m in p.memories if m.kind == "weights" and m.unit in {u.name for u in batched}]
    assert on_chip and all(kind[n[: -len(".weights")]] == "dwconv" for n in on_chip)


def test_batched_output_banks_and_requant_parameters(units):
    """Token-batched layers as token_batch_mvu.sv builds them: two output banks of B x MH values (8-bit when
    requantised inside the unit, accumulators otherwise), and with in-unit requantisation the parameter words of
    every output fold cross DDR with the weights of every pass."""
    from samfpga.hw.plan import pricing

    kw = dict(board="zcu104", encoder_config=tiny(), modes=("unrolled_batched",), token_batches=(4,))
    act = plan(PlanConfig(**kw), units=units)
    acc = plan(PlanConfig(**kw, batch_output="acc"), units=units)
    layer = {x.name: x for u in units for x in u.layers}
    for p, bits in ((act, lambda x: 8), (acc, lambda x: pricing.acc_bits(x, 8))):
        folds = {lp.name: lp for lp in p.layers}
        banks = [m for m in p.memories if m.kind == "output_bank"]
        assert banks and len(banks) == len([m for m in p.memories if m.kind == "token_batch"])
        fifos = [m for m in p.memories if m.kind == "read_fifo"]  # one AXI read FIFO per unit, in LUTs
        assert len(fifos) == len(banks) and all((m.depth, m.width, m.placed) == (32, 128, "LUTRAM") and m.res["LUT"]
                                                for m in fifos)
        for m in banks:
            x = layer[m.name[: -len(".output_banks")]]
            pe = folds[x.name].pe
            assert (m.depth, m.width, m.count) == (min(4, x.vectors) * x.mh // pe, pe * bits(x), 2)
    total = params = 0
    beat = PlanConfig(**kw).dma_beat_bytes
    for lp in act.layers:
        x = layer.get(lp.name)
        if x is None or x.kind not in ("conv", "linear") or not any(m.name == f"{x.name}.output_banks"
                                                                    for m in act.memories):
            continue
        word = lp.pe * lp.simd * 8
        pbytes = (x.mh // lp.pe) * math.ceil(lp.pe * 64 / word) * word // 8
        params += pbytes
        # a pass: the weights and the parameter words, read in whole AXI beats
        total += math.ceil(x.vectors / min(4, x.vectors)) * math.ceil((x.weights + pbytes) / beat) * beat
    assert params > 0
    assert act.ddr["weights_bytes"] == total


def test_token_batched_layers_are_priced_as_the_unit(units):
    """Token-batched layers are priced as token_batch_mvu.sv builds them (``pricing.price_token_batch``): on
    dot_chain.sv one DSP per product, on dot_pack.sv (even PE only) one per two products, plus one per PE for the
    in-unit requantiser (RQ = 1) and none with RQ = 0, and the unit's Yosys-fitted logic; each layer takes the cheaper
    datapath at its folding, and ``dot_products`` restricts the choice. Layers with weights on chip keep
    finn-rtllib's MVU price."""
    from samfpga.hw.plan import pricing

    kw = dict(board="kv260", encoder_config=tiny(), modes=("unrolled_batched",), token_batches=(4,))
    seen = set()
    for out, rq, dots in (("act", True, ("chain", "pack")), ("acc", False, ("chain", "pack")),
                          ("act", True, ("chain",))):
        p = plan(PlanConfig(**kw, batch_output=out, dot_products=dots), units=units)
        tb = [lp for lp in p.layers if lp.op_type == "token_batch_mvu"]
        assert tb
        for lp in tb:
            dot = "pack" if "dot_pack.sv" in lp.source else "chain"
            assert f"dot_{dot}.sv" in lp.source and dot in dots and (dot == "chain" or lp.pe % 2 == 0)
            seen.add(dot)
            assert lp.res["DSP"] == lp.pe * lp.simd // (2 if dot == "pack" else 1) + (lp.pe if rq else 0)
            layer = next(x for u in units for x in u.layers if x.name == lp.name)
            unit = pricing.token_batch_unit(layer, lp.pe, lp.simd, 8, 4, rq, 128, dot)
            assert lp.res["LUT"] == pricing.token_batch_logic(unit)["LUT"]
            # the other datapath at this folding is not cheaper
            for other in set(dots) - {dot}:
                if other == "pack" and lp.pe % 2:
                    continue
                r = pricing.token_batch_logic(pricing.token_batch_unit(layer, lp.pe, lp.simd, 8, 4, rq, 128, other))
                board = get_board("kv260")
                assert (r["LUT"] / board.lut + r["DSP"] / board.dsp
                        >= lp.res["LUT"] / board.lut + lp.res["DSP"] / board.dsp - 1e-12)
    assert seen == {"chain", "pack"}
    unrolled = plan(PlanConfig(board="kv260", encoder_config=tiny(), modes=("unrolled",)), units=units)
    assert not [lp for lp in unrolled.layers if lp.op_type == "token_batch_mvu"]
    with pytest.raises(ValueError, match="dot_products"):
        PlanConfig(board="kv260", dot_products=("tree",))


def test_token_batch_model_is_the_committed_yosys_fit():
    """``pricing.TOKEN_BATCH_FIT`` is the fit bench/token_batch_synth.py wrote; every xc7 unit it synthesised is
    within ``TOKEN_BATCH_FIT_ERROR`` of the model's LUTs (excluding LUTRAM) and equal in DSPs, the chain and pack
    units included (the model adds the datapath's fabric to the unit without it); dot_chain.sv's shift-register LUTs
    are exactly the model's; dot_pack.sv's fabric (slices as black boxes) within 6% of Yosys's LUTs, its SRLs
    within 10% (exact in 8 of the 9 cases; PE 2 x SIMD 32 INT8 gets 522 SRLs from Yosys against the model's 480)."""
    import json
    from pathlib import Path

    from samfpga.hw.plan import pricing
    from samfpga.hw.sim.token_batch_mvu import TokenBatchConfig

    synth = json.loads((Path(__file__).parents[1] / "bench" / "results" / "token_batch_synth.json").read_text())
    for rq in (True, False):
        for k in ("LUT", "FF"):
            assert list(pricing.TOKEN_BATCH_FIT[rq][k]) == synth["fit"][str(int(rq))][k], (rq, k)
    kinds = {"chain": 0, "pack": 0}
    for u in synth["units"]:
        cfg = TokenBatchConfig(u["mw"], u["mh"], u["simd"], u["pe"], u["batch"], requant=bool(u["rq"]), axi_dw=128,
                               dot=u["dot"])
        m = pricing.token_batch_logic(cfg)
        assert m["DSP"] == u["DSP"], u
        if u["family"] == "xc7":
            y = u["LUT"] - u["lutram_luts"]
            assert abs(m["LUT"] / y - 1) <= pricing.TOKEN_BATCH_FIT_ERROR, (u, m)
            kinds[u["dot"]] = kinds.get(u["dot"], 0) + 1
    assert kinds["chain"] >= 3 and kinds["pack"] >= 3
    for d in synth["dot_chain"]:
        assert d["srl_luts"] == d["LUT"] == pricing.dot_chain_srl_luts(d["pe"], d["simd"], 8, 8)
        assert d["DSP"] == d["pe"] * d["simd"]
    assert {d["w_bits"] for d in synth["dot_pack"]} == {4, 8}
    for d in synth["dot_pack"]:
        m = pricing.dot_pack_fabric(d["pe"], d["simd"], 8, d["w_bits"], d["acc_bits"])
        srl = m["LUT"] - (d["pe"] // 2) * (2 * 24 * (math.ceil(d["simd"] / pricing.pack_segment(8, d["w_bits"])) - 1)
                                          + 19 * math.ceil(d["simd"] / pricing.pack_segment(8, d["w_bits"])) + 4)
        assert abs(srl / d["srl_luts"] - 1) <= 0.10, (d, srl)
        assert abs(m["LUT"] / d["LUT"] - 1) <= 0.06, (d, m)
        assert d["slices"] == d["pe"] * d["simd"] // 2 and d["DSP"] == 0


def test_pack_segment_matches_the_products_bound():
    """The segment length keeps K x max|a x w| below 2^17 and K + 1 would not: 7 for INT8 x INT8, 127 for INT8 x
    INT4, 64 for UINT8 x INT4."""
    from samfpga.hw.plan.pricing import pack_segment

    assert (pack_segment(8, 8), pack_segment(8, 4), pack_segment(8, 4, a_signed=False)) == (7, 127, 64)
    for ab, wb, sa in ((8, 8, True), (8, 4, True), (8, 4, False), (6, 8, True)):
        k = pack_segment(ab, wb, sa)
        worst = (1 << (ab - 1) if sa else (1 << ab) - 1) * (1 << (wb - 1))
        assert k * worst < 1 << 17 <= (k + 1) * worst


def test_spilled_buffers_are_written_and_read(units):
    """A frame buffer in DDR costs one write and one read of the unit's input per frame (its reads carry the strips'
    halo columns), a loop buffer one of each per block after the first; nothing on chip then."""
    from samfpga.hw.plan.planner import Memory, _place

    board = get_board("kv260")
    u = next(x for x in units if x.repeats == 3)
    full = {r: 0.85 * board.budget()[r] for r in RESOURCES}  # no memory left on chip
    mems = [Memory(f"{u.name}.frame_buffer", u.name, "frame_buffer", u.in_elems // 8, 64, 2, read_factor=1.25),
            Memory(f"{u.name}.loop_buffer", u.name, "loop_buffer", u.out_elems // 8, 64, 1, read_factor=1.25)]
    fits, spilled = _place(mems, dict(full), board, 0.85, units)
    assert all(m.placed == "DDR" for m in mems)
    assert spilled == pytest.approx(u.in_elems * (1 + 1.25) + u.out_elems * (1 + 1.25) * (3 - 1))


def test_strips_narrow_the_buffers_and_count_the_halo(units):
    """The same plan in 2 column strips: every line buffer and window band is narrower, every strip-cut layer
    computes more vectors (halo), the tiled units and the unit after each read from a frame buffer with its halo."""
    from samfpga.hw.plan.planner import _strips

    base = dict(board="zcu104", encoder_config=tiny(), token_batches=(8,), modes=("unrolled",))
    one = plan(PlanConfig(**base, strip_choices=(1,)), units=units)
    two = plan(PlanConfig(**base, strip_choices=(2,), min_strip=4), units=units)
    assert two.config["strips"] == 2 and all(u.strips == 1 for u in one.units)
    tiled = [u.name for u in two.units if u.strips == 2]
    assert len(tiled) == 4  # stem, stage 0, its merge, stage 1 (grid 8, windows 4); stages 2-3 have 4x4 grids
    for kind in ("line_buffer", "window_buffer"):
        # bits, not depth: the two plans fold differently and a line buffer's depth divides by the PE
        a = {m.name: (m.bits, m.unit) for m in one.memories if m.kind == kind}
        b = {m.name: m.bits for m in two.memories if m.kind == kind}
        assert a.keys() == b.keys() and a
        assert all(b[k] <= d and (b[k] == d or unit in tiled) for k, (d, unit) in a.items()), kind
        # stage 1 unrolled (2 blocks of 4-token windows on an 8-token grid): block 0's halo is the whole grid, so
        # its window band and local conv do not narrow, block 1's line buffer does (tests/test_plan_strips.py has
        # narrower window bands)
        if kind == "line_buffer":
            assert {unit for k, (d, unit) in a.items() if b[k] < d} == set(tiled)
    by = {u.name: u for u in units}
    cfg2 = PlanConfig(**base, strips=2, min_strip=4)
    for up in two.units:
        st = _strips(by[up.name], up.mode.startswith("rolled"), cfg2)
        assert (up.halo_macs > 0) == (st.tiles > 1 and st.in_factor > 1)
        if up.halo_macs:
            assert up.halo_macs < up.macs  # a halo, not a second copy
    names = [u.name for u in two.units]
    fb = {m.unit: m for m in two.memories if m.kind == "frame_buffer"}
    for i, n in enumerate(names[1:], 1):
        if n in tiled or names[i - 1] in tiled:
            st = _strips(by[n], two.units[i].mode.startswith("rolled"), cfg2)
            # the strip reader's own model (the RTL's reference) of the same read: bytes over a 128-bit AXI port
            w = st.in_width
            fmap = np.zeros((w, w, by[n].in_elems // (w * w)), np.uint8)
            axi = sr.axi_bytes(sr.StripFrame(fmap, st.tiles, st.in_halo), sr.ReaderConfig(axi_dw=128))
            assert n in fb and fb[n].read_factor == axi / by[n].in_elems >= st.in_factor
            # written by the previous unit in its strips: the strip writer's model of the same writes, bus bytes
            from samfpga.hw.sim import strip_writer as sw

            prev = _strips(by[names[i - 1]], two.units[i - 1].mode.startswith("rolled"), cfg2)
            wcfg = sw.WriterConfig(axi_dw=128)
            beats = sum(b for _, b, _, _ in sw.write_bursts(sr.StripFrame(fmap, prev.tiles, 0), wcfg))
            assert fb[n].write_factor == beats * 16 / by[n].in_elems >= 1.0
            if fmap.shape[2] % cfg2.dma_beat_bytes == 0:
                assert fb[n].read_factor == st.in_factor  # whole beats: only the halo columns are extra
    # layer cycles carry the halo: the strip-cut layers of a tiled unit run more vectors than the model's
    lp = {x.name: x for x in two.layers}
    lp1 = {x.name: x for x in one.layers}
    grown = [n for n in lp if n in lp1 and lp[n].pe == lp1[n].pe and lp[n].simd == lp1[n].simd and lp[n].cycles > lp1[n].cycles]
    assert grown


def test_priced_foldings_are_the_cheapest_at_each_speed(units):
    """Each entry of ``priced_foldings`` is the cheapest legal folding (PE | MH, SIMD | MW) by board-normalised
    LUT + DSP at its cycle count or below, found here by brute force; cycles strictly fall along the list."""
    from samfpga.hw.plan import pricing

    board = get_board("kv260")
    layer = next(x for u in units for x in u.layers if x.kind == "linear" and x.mh > x.mw)
    for wb in (8, 4):
        fs = pricing.priced_foldings(layer, wb, board)
        assert [f[0] for f in fs] == sorted({f[0] for f in fs}, reverse=True)

        def cost(pe: int, simd: int, wb: int = wb) -> float:
            r = pricing.price(layer, pe, simd, wb, board).res
            return r["LUT"] / board.lut + r["DSP"] / board.dsp
        legal = [(pe, simd) for pe in range(1, layer.mh + 1) if layer.mh % pe == 0
                 for simd in range(1, layer.mw + 1) if layer.mw % simd == 0]
        for c, pe, simd, dot in fs:
            assert dot == ""  # finn-rtllib's MVU: no choice of datapath
            assert pricing.cycles(layer, pe, simd) == c
            best = min(cost(p, s) for p, s in legal if pricing.cycles(layer, p, s) <= c)
            assert cost(pe, simd) == pytest.approx(best)
        assert fs[-1][0] == layer.vectors  # fully parallel is on the list (the only folding that fast)


@pytest.mark.parametrize("h,w,c,tiles,halo,beat", [(5, 16, 3, 2, 1, 8), (7, 12, 5, 4, 2, 16), (4, 32, 16, 2, 3, 16),
                                                    (9, 24, 3, 1, 0, 16), (3, 20, 7, 4, 1, 8)])
def test_read_bytes_equal_the_strip_readers_model(h, w, c, tiles, halo, beat):
    """``strips.read_bytes`` (the planner's DMA traffic) equals the AXI bytes of the strip reader's reference model
    (samfpga.hw.sim.strip_reader, checked burst for burst against the RTL in tests/test_sim_strip_reader.py),
    including rows whose length is not a whole number of beats."""
    from samfpga.hw.plan.strips import _columns, read_bytes

    got = read_bytes(h, w, c, tiles, halo, beat)
    frame = sr.StripFrame(np.zeros((h, w, c), np.uint8), tiles, halo)
    assert got == sr.axi_bytes(frame, sr.ReaderConfig(axi_dw=beat * 8))
    assert got >= _columns(w, tiles, halo)[0] * h * c


@pytest.mark.parametrize("mw,mh,simd,pe,batch,t,axi_dw,requant", [
    (64, 64, 8, 8, 16, 100, 64, True),   # requantising, partial last batch
    (64, 64, 16, 16, 4, 37, 64, False),  # 2048-bit words, 4 tokens a pass: the port binds
    (128, 32, 4, 4, 16, 64, 128, True),  # MAC-bound
    (32, 32, 32, 32, 8, 20, 128, True),  # one word per pass, partial last batch
])
def test_stream_cycles_equal_the_units_schedule(mw, mh, simd, pe, batch, t, axi_dw, requant):
    """The planner's closed form of a token-batched layer's non-MAC cycles (token_batch_mvu.stream_cycles) equals
    the unit's schedule (schedule_cycles: params + weight_bound, the model the RTL bench matched cycle for cycle)."""
    from samfpga.hw.sim.token_batch_mvu import TokenBatchConfig, schedule_cycles, stream_cycles

    cfg = TokenBatchConfig(mw, mh, simd, pe, batch, axi_dw=axi_dw, requant=requant)
    s = schedule_cycles(cfg, 1, t)
    assert stream_cycles(cfg, t) == s["params"] + s["weight_bound"]
    if (pe, simd, batch) == (16, 16, 4):
        assert s["weight_bound"] > 0  # the case where the port, not the MACs, sets the pace


def test_dma_prices_are_the_committed_yosys_counts():
    """pricing.DMA (what the planner adds per strip DMA engine) equals bench/results/dma_synth.json, the Yosys run of
    the engines' RTL (``python bench/dma_synth.py``): a change to either is seen here."""
    import json
    from pathlib import Path

    from samfpga.hw.plan.pricing import DMA

    synth = json.loads((Path(__file__).parents[1] / "bench" / "results" / "dma_synth.json").read_text())["engines"]
    assert set(DMA) == set(synth)
    for engine, res in DMA.items():
        for r in RESOURCES:
            assert res[r] == synth[engine][r], (engine, r)


def test_dma_engines_follow_what_lives_in_ddr(units):
    """One reader per unit whose frame or loop buffer is in DDR (shared by both), one writer per unit whose loop
    buffer or successor's frame buffer is; the image's reader and the embedding's writer always; a weight fetch per
    rolled_streamed unit. Nothing in DDR: only the frame I/O (and the fetches). An engine is the aligned build where
    its maps' channels fill whole beats: the tiny encoder's 16 channels at 16-byte beats, not at 32; the 3-channel
    image never."""
    from samfpga.hw.plan.planner import Memory, _dma_engines

    modes = tuple("rolled_streamed" if u.repeats > 1 else "unrolled" for u in units)
    names = [u.name for u in units]
    s2 = names.index("layers.2.blocks")
    none = _dma_engines(units, modes, [], 16)
    assert [e for n, _, e in none if not n.endswith("weight_fetch")] == ["strip_reader", "strip_writer_aligned"]
    assert sum(n.endswith("weight_fetch") for n, _, _ in none) == sum(m == "rolled_streamed" for m in modes)
    mems = [Memory("fb", names[s2], "frame_buffer", 1, 1, 2, placed="DDR"),
            Memory("lb", names[s2], "loop_buffer", 1, 1, 1, placed="DDR"),
            Memory("fb1", names[s2 + 1], "frame_buffer", 1, 1, 2, placed="URAM")]
    got = {(n, u, e) for n, u, e in _dma_engines(units, modes, mems, 16)} - set(none)
    # the stage reads its buffers through one engine and writes its loop buffer and the previous unit's frame buffer
    assert got == {(f"{names[s2]}.input_dma", names[s2], "strip_reader_aligned"),
                   (f"{names[s2]}.output_dma", names[s2], "strip_writer_aligned"),
                   (f"{names[s2 - 1]}.output_dma", names[s2 - 1], "strip_writer_aligned")}
    wide = {(n, e) for n, _, e in _dma_engines(units, modes, mems, 32)}
    assert (f"{names[s2]}.input_dma", "strip_reader") in wide and (f"{names[s2]}.output_dma", "strip_writer") in wide


def test_dma_engines_are_in_the_totals(units):
    """The plan's totals include every DMA engine it lists, as layer rows of their own."""
    p = plan(PlanConfig(board="zcu104", encoder_config=tiny()), units=units)
    dma = [x for x in p.layers if x.op_type.startswith(("strip_reader", "strip_writer"))]
    assert len(dma) >= 2 and {x.name.split(".")[-1] for x in dma} >= {"image_dma", "embedding_dma"}
    for r in RESOURCES:
        s = sum(x.res.get(r, 0.0) for x in p.layers) + sum(m.res.get(r, 0.0) for m in p.memories)
        assert math.isclose(s, p.totals[r], rel_tol=1e-9, abs_tol=1e-6), r


def test_strip_pad_price_is_the_committed_yosys_fit():
    """pricing.STRIP_PAD (what the planner adds per padded convolution of a unit in strips) equals the fit in
    bench/results/strip_pad_synth.json (``python bench/strip_pad_synth.py``), and that fit is within 2% of every
    measured width."""
    import json
    from pathlib import Path

    from samfpga.hw.plan.pricing import STRIP_PAD, strip_pad

    synth = json.loads((Path(__file__).parents[1] / "bench" / "results" / "strip_pad_synth.json").read_text())
    assert {r: list(c) for r, c in STRIP_PAD.items()} == synth["fit"]
    for u in synth["units"].values():
        got = strip_pad(u["params"]["BW"])
        assert u["DSP"] == got["DSP"] == 0 and u["BRAM36"] == got["BRAM36"] == 0
        for r in ("LUT", "FF"):
            assert abs(got[r] - u[r]) <= 0.02 * u[r], (u["params"], r)


def test_strip_pads_only_in_units_in_strips(units):
    """One strip_pad row per padded k x k convolution of each unit that runs in strips (a rolled unit's body counted
    once), none in a plan without strips, and the rows are in the totals."""
    from samfpga.hw.plan.planner import _strips
    from samfpga.hw.plan.pricing import STRIP_PAD

    base = dict(board="zcu104", encoder_config=tiny(), token_batches=(8,), modes=("unrolled",))
    one = plan(PlanConfig(**base, strip_choices=(1,)), units=units)
    two = plan(PlanConfig(**base, strip_choices=(2,), min_strip=4), units=units)
    assert not [x for x in one.layers if x.op_type == "strip_pad"]
    cfg2 = PlanConfig(**base, strips=2, min_strip=4)
    by = {u.name: u for u in units}
    want = set()
    for up in two.units:
        rolled = up.mode.startswith("rolled")
        if _strips(by[up.name], rolled, cfg2).tiled:
            hw = by[up.name].blocks[0] if rolled else by[up.name].layers
            want |= {f"{x.name}.strip_pad" for x in hw if x.kernel > 1}
    pads = {x.name: x for x in two.layers if x.op_type == "strip_pad"}
    assert want and set(pads) == want
    for x in pads.values():
        assert x.res["LUT"] == pytest.approx(STRIP_PAD["LUT"][0] + STRIP_PAD["LUT"][1] * 8 * x.simd)
        assert x.res["DSP"] == 0
    for r in RESOURCES:
        s = sum(x.res.get(r, 0.0) for x in two.layers) + sum(m.res.get(r, 0.0) for m in two.memories)
        assert math.isclose(s, two.totals[r], rel_tol=1e-9, abs_tol=1e-6), r


def test_reserved_resources_count_in_every_configuration(units):
    """``PlanConfig.reserved`` (what the plan does not count, e.g. as a build measured it) adds to the totals of every
    configuration: FF set aside where FF does not bind leaves the plan and adds exactly itself; LUT beyond the
    budget leaves no fit, LUT binding; an unknown resource or a negative amount is refused."""
    kw = dict(board="zcu104", encoder_config=tiny(), token_batches=(8,), strip_choices=(1,))
    base = plan(PlanConfig(**kw), units=units)
    ff = plan(PlanConfig(**kw, reserved=(("FF", 1000.0),)), units=units)
    assert base.fits and ff.fits and ff.fps == base.fps
    assert ff.totals["FF"] == pytest.approx(base.totals["FF"] + 1000.0)
    assert all(ff.totals[r] == pytest.approx(base.totals[r]) for r in RESOURCES if r != "FF")
    assert any(x.op_type == "reserved" and x.res["FF"] == 1000.0 for x in ff.layers)
    full = plan(PlanConfig(**kw, reserved=(("LUT", float(get_board("zcu104").lut)),)), units=units)
    assert not full.fits and full.binds[0].startswith("LUT")
    for bad in ((("LUTS", 1.0),), (("LUT", -1.0),)):
        with pytest.raises(ValueError, match="reserved"):
            PlanConfig(**kw, reserved=bad)
