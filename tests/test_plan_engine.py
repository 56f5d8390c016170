"""samfpga.hw.plan.engine: the layer-sequential engine's schedule (every MAC once, each step the unit's own
schedule or a port / DDR bound), its resources (the sum of its parts, the unit's DSPs exact), the search (the
fastest fit of the space, checked by brute force) and the CLI, on a tiny encoder (seconds)."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace

import pytest

from samfpga.hw.boards import RESOURCES
from samfpga.hw.plan.engine import (
    LN_INPUT,
    PORT_BYTES,
    RAW_OUTPUT,
    START_GAP,
    EngineConfig,
    components,
    ddr_bytes_per_cycle,
    dw_tiles,
    evaluate,
    gemm_unit,
    layer_batch,
    layer_config,
    layernorm_row_cycles,
    mbconv,
    on_window,
    path_runs,
    residual_lanes,
    schedule,
    search,
    window_channels,
)
from samfpga.hw.plan.layers import encoder_layers
from samfpga.hw.sim.strip_reader import payload_bytes
from samfpga.hw.sim.token_batch_mvu import TokenBatchConfig, max_batch, schedule_cycles
from tests.test_plan import tiny


@pytest.fixture(scope="module")
def units():
    return encoder_layers(tiny())


def cfg(**kw) -> EngineConfig:
    base = dict(board="kv260", encoder_config=tiny(), pe=8, simd=8, batch=16, dw_pe=8, ln_lanes=2, sm_lanes=4,
                launch_cycles=100)
    return EngineConfig(**{**base, **kw})


def test_every_mac_once_and_the_units_schedule(units):
    c = cfg()
    steps = schedule(c, units)
    layers = [x for u in units for x in u.layers]
    model = [s for s in steps if not s.name.endswith(("(V transpose)", "(LayerNorm alone)", ".requant"))]
    assert [s.name for s in model[:len(layers)]] == [x.name for x in layers]
    assert sum(s.macs for s in steps if s.engine != "requant") == sum(x.macs for x in layers)
    # each MBConv block after the first: its input's re-quantisation first, C -> C on the GEMM unit (its own engine)
    rq = [s for s in steps if s.engine == "requant"]
    mb = [u for u in units if mbconv(u)]
    assert len(rq) == sum(u.repeats - 1 for u in mb) > 0
    for s in rq:
        nxt = steps[steps.index(s) + 1]
        first = next(x for u in mb for x in u.layers if x.name == nxt.name)
        assert s.name.endswith(".requant") and s.macs == first.in_channels ** 2 * first.vectors
    assert steps[-1].engine == "layernorm"  # the neck's closing LayerNorm2d
    # each AV product right after its V transpose (no model MACs; its cycles are the unit's transposing frame)
    for k, s in enumerate(steps):
        if s.name.endswith("(V transpose)"):
            assert steps[k + 1].name == s.name.removesuffix(" (V transpose)") and s.macs == 0
            assert s.cycles > c.launch_cycles and s.bounds["unit"] > 0
    assert sum(s.name.endswith("(V transpose)") for s in steps) == sum(x.name.endswith("matmul_av") for x in layers)
    by = {s.name: s for s in steps}
    for u in units:
        for x in u.layers:
            s = by[x.name]
            # its registers written while the step before runs: its own cycles or the host's, and the start's gap
            assert s.cycles == max(max(s.bounds.values()), c.launch_cycles) + START_GAP
            assert s.bounds["reader"] == math.ceil(s.bytes_read / PORT_BYTES) or "residual" in s.bounds
            if on_window(x):  # a launch per strip behind the depthwise unit's window (its 9 C' patch values)
                cp, w = window_channels(c, x), x.in_width
                t = dw_tiles(c, w, cp)
                assert cp % 8 == 0 and cp >= x.in_channels
                tbc = layer_config(c, u, replace(x, mw=9 * cp), gemm_unit(c, units))
                unit = t * schedule_cycles(tbc, 1, x.vectors // t)["total"] + (t - 1) * c.launch_cycles
                assert s.bounds["window"] == t * (w + 2) * (w // t + 2) * cp // 8
                words = -(-tbc_acc(units[-1].layers[0]) // 8) if x.name.endswith(LN_INPUT) else 1
                assert s.bytes_read == payload_bytes(w, w, cp, t, 1) * words
                if x.name.endswith(LN_INPUT):  # the LayerNorm before the window, on every pixel read (the neck's)
                    row = layernorm_row_cycles(x.in_channels, c.ln_lanes)
                    assert words > 1 and s.bounds["layernorm"] == payload_bytes(w, w, cp, t, 1) // cp * row
                    unit += t * (2 * (w // t + 2) + 3) * row  # per strip, the window's first output waits
                assert s.bounds["unit"] == unit
            elif x.kind in ("conv", "linear"):
                b = layer_batch(c, x)
                raw = x.name.endswith(RAW_OUTPUT)  # the neck's convs: sums to the LayerNorm, ceil(acc / 8) bytes each
                if raw:
                    b = layer_config(c, u, x, gemm_unit(c, units)).batch
                    assert s.bytes_written == x.out_elems * -(-tbc_acc(x) // 8)
                tbc = TokenBatchConfig(-(-x.mw // 8) * 8, -(-x.mh // 8) * 8, 8, 8, b, acc_bits=tbc_acc(x),
                                       requant=True, axi_dw=128, dot="pack", raw=raw, raw_bits=tbc_acc(x) if raw else 0)
                sch = schedule_cycles(tbc, 1, x.vectors)
                wait = 0  # a LayerNorm before the unit: its first batch waits for the LayerNorm's rows
                if x.name.endswith(LN_INPUT):
                    wait = min(x.vectors, b) * layernorm_row_cycles(x.in_channels, c.ln_lanes)
                if "residual" in s.bounds:  # the last batch drains through the residual lanes (fewer than PE)
                    lanes, mh = residual_lanes(c, units), -(-x.mh // 8) * 8
                    assert lanes < 8
                    wait = -(-min(x.vectors, b) * mh // lanes) - min(x.vectors, b) * mh // 8
                assert s.bounds["unit"] == sch["total"] + wait and (sch["raw_wait"] > 0) == raw
                assert s.weight_bytes == math.ceil(x.vectors / b) * tbc.pass_bytes
                # a unit cycle applies at most PE x SIMD MACs
                assert s.bounds["unit"] * 64 >= x.macs
            elif x.kind == "matmul":
                t = u.window * u.window
                assert s.bounds["unit"] * 64 >= x.macs
                qk = x.name.endswith("matmul_qk")
                assert ("softmax" in s.bounds) == qk
                if qk:  # per row N/lanes beats and the bias read's priming cycle (rows overlapped); per step
                    # the pipeline's latency: two phases of N/lanes and 21 divider stages (57 - 16 bits, 2 a stage)
                    beats = -(-x.mh // c.sm_lanes)
                    assert s.bounds["softmax"] == x.vectors * (beats + 1) + 2 * beats + 21 + 2
                # QK^T's sums leave the unit raw (RAW_OUT), ceil(acc / 8) words each, the unit waiting as many
                # cycles per finished sum (token_batch_mvu.issue_cycles)
                tbc = TokenBatchConfig(-(-x.mw // 8) * 8, -(-x.mh // 8) * 8, 8, 8, t, acc_bits=tbc_acc(x),
                                       requant=True, axi_dw=128, dot="pack", raw=qk, raw_bits=tbc_acc(x) if qk else 0)
                sch = schedule_cycles(tbc, x.vectors // t, t)
                assert s.bounds["unit"] == sch["total"]
                assert (sch["raw_wait"] > 0 and sch["params"] == 0) if qk else (sch["raw_wait"] == 0 < sch["params"])
                assert s.weight_bytes % (x.vectors // t) == 0  # one pass of K or V per window and head
            else:  # dw_core.sv at 8 channels, a launch per strip: per strip its weights (a 64-bit parameter beat
                # per tap) and lanes' parameters, then the larger of its padded strips' input beats and its output
                # beats, and the launches after the first
                g, w = math.ceil(x.mh / 8), x.in_width
                t = dw_tiles(c, w, x.in_channels)
                assert s.bounds["unit"] == t * (9 * g + 8 * g) + max(t * (w + 2) * (w // t + 2) * g,
                                                                     x.vectors * g) + (t - 1) * c.launch_cycles
    # LayerNorm: per token max(its beats, 5) cycles (layernorm_lanes.sv: int_layernorm.sv PIPELINED)
    lns = [s for s in steps if "layernorm" in s.bounds]
    assert lns
    for s in lns:
        x = next((x for x in layers if x.name == s.name), None)
        ch = x.in_channels if x else units[-1].layers[-1].mh
        # the layer's input map (no residual read on these steps), the neck's raw sums at their width
        src = units[-1].layers[-1] if x is None else next((p for p in layers if p.name == "neck.0"), None)
        words = -(-tbc_acc(src) // 8) if (x is None or x.name.endswith("neck.2")) and src is not None else 1
        rows = s.bytes_read // ch // words
        assert s.bounds["layernorm"] == rows * max(-(-ch // c.ln_lanes), 5), s.name
    # residual reads on the layers that close a residual branch, nowhere else
    res = {s.name for s in steps if "residual" in s.bounds}
    assert res and all(n.endswith(("attn.proj", "mlp.fc2", "conv3.c")) and ".blocks." in n for n in res)


def test_attention_passes_hold_what_the_units_banks_hold(units):
    """A window's queries run in passes of as many as the GEMM unit's buffers hold (token_batch_mvu.max_batch; a
    raw QK^T row takes raw_words bank words per fold): with batch 4 a 16-query window takes 4 passes over its K or V,
    so the weight bytes are 4x the single-pass figure."""
    from samfpga.hw.plan.engine import gemm_unit

    c = cfg(batch=4)
    gemm = gemm_unit(c, units)
    assert gemm.rt_shape and gemm.raw_out and gemm.raw_words == 3
    steps = {s.name: s for s in schedule(c, units)}
    checked = 0
    for u in units:
        t = u.window * u.window
        for x in (x for x in u.layers if x.kind == "matmul"):
            qk = x.name.endswith("matmul_qk")
            mw, mh = -(-x.mw // 8) * 8, -(-x.mh // 8) * 8
            nb = max_batch(gemm, mw, mh, raw=qk)
            assert 1 <= nb <= 4 < t
            one = TokenBatchConfig(mw, mh, 8, 8, nb, acc_bits=tbc_acc(x), requant=True, axi_dw=128, dot="pack",
                                   raw=qk, raw_bits=tbc_acc(x) if qk else 0)
            assert steps[x.name].weight_bytes == x.vectors // t * -(-t // nb) * one.pass_bytes
            checked += 1
    assert checked


def tbc_acc(x) -> int:
    from samfpga.hw.plan.pricing import acc_bits

    return acc_bits(x, 8)


def test_wide_vectors_run_with_fewer_tokens(units):
    x = next(x for u in units for x in u.layers if x.kind == "conv" and x.kernel == 3 and x.mw > 16)
    assert layer_batch(cfg(mw_cap=4096), x) == 16
    small = cfg(mw_cap=8)
    assert layer_batch(small, x) == max(1, 16 * 8 // (-(-x.mw // 8) * 8)) < 16


def test_a_step_shorter_than_the_hosts_launch_waits_for_it(units):
    """The host writes each step's registers while the one before runs: a step costs its own cycles or the host's
    launch, whichever is more, plus the start's gap; so a host 100x slower leaves the long steps as they were and
    costs only where steps are shorter than it."""
    fast, slow = schedule(cfg(launch_cycles=10), units), schedule(cfg(launch_cycles=1000), units)
    for a, b in zip(fast, slow, strict=True):
        own = max(a.bounds.values())
        assert a.cycles == max(own, 10) + START_GAP and b.cycles == max(own, 1000) + START_GAP
    assert any(max(a.bounds.values()) > 1000 for a in fast) and any(max(a.bounds.values()) < 1000 for a in fast)


def test_a_starved_ddr_binds_every_step(units):
    c = cfg(ddr_efficiency=0.001)
    bpc = ddr_bytes_per_cycle(c)
    for s in schedule(c, units):
        assert s.binding == "ddr"
        assert s.cycles == math.ceil((s.bytes_read + s.bytes_written + s.weight_bytes) / bpc) + START_GAP


def test_resources_are_the_sum_of_the_parts(units):
    c = cfg()
    comps = components(c, units)
    p = evaluate(c, units)
    for r in RESOURCES:
        assert p.totals[r] == pytest.approx(sum(v[r] for v in comps.values()))
        assert p.pressure[r] == pytest.approx(p.totals[r] / (0.85 * p.budget[r]))
    # the GEMM unit: PE x SIMD / 2 packed products, one requantiser DSP per PE (sums <= 27 bits here), the
    # run-time shape's and the raw output's
    from samfpga.hw.plan.engine import RAW_OUT_DSP, RT_SHAPE_DSP

    assert comps["gemm unit logic"]["DSP"] == 8 * 8 // 2 + 8 + RT_SHAPE_DSP + RAW_OUT_DSP
    dw = next(v for k, v in comps.items() if k.startswith("depthwise unit (dw_core.sv"))
    assert dw["DSP"] == 3 + 8 * (9 + 1)  # PE x 9 taps, a lane each, the geometry's products
    wider = components(cfg(pe=16), units)
    assert wider["gemm unit logic"]["LUT"] > comps["gemm unit logic"]["LUT"]
    scaled = components(cfg(unit_logic_scale=1.5), units)
    assert scaled["gemm unit logic"]["LUT"] == pytest.approx(1.5 * comps["gemm unit logic"]["LUT"])
    assert p.fits == all(v <= 1 for v in p.pressure.values())
    assert p.fps == pytest.approx(p.clock_mhz * 1e6 / sum(s.cycles for s in p.steps))


def test_search_is_the_fastest_fit(units):
    space = {"pe": (2, 4, 8), "simd": (4, 8), "batch": (8, 16), "dw_pe": (4,), "ln_lanes": (2,), "sm_lanes": (4,)}
    combos = [dict(zip(space, v, strict=True)) for v in itertools.product(*space.values())]
    # the engines whose steps the GEMM path runs: SIMD 8 (the heads' dims), PE at least the softmax's 4 lanes
    combos = [k for k in combos if path_runs(cfg(axi_dw=64, **k), units)]
    assert len(combos) == 4 and {k["simd"] for k in combos} == {8} and min(k["pe"] for k in combos) == 4
    # a limit at which about half of the space fits (pressure = totals / (limit x budget))
    # a 64-bit port: words of whole beats at every PE x SIMD here (the run-time-shaped unit needs them)
    worst = sorted(max(evaluate(cfg(limit=1.0, axi_dw=64, **k), units).pressure.values()) for k in combos)
    base = cfg(limit=worst[len(worst) // 2], axi_dw=64)
    best = search(base, space, units)
    plans = [evaluate(replace(base, **k), units) for k in combos]
    fitting = [p for p in plans if p.fits]
    assert fitting and len(fitting) < len(plans)
    assert best.fits and best.fps == max(p.fps for p in fitting)
    assert best.searched == len(plans)
    small = replace(base, limit=worst[0] / 2)
    none = search(small, space, units)
    assert not none.fits and none.pressure[none.binding] > 1
    assert max(none.pressure.values()) == pytest.approx(
        min(max(evaluate(replace(small, **k), units).pressure.values()) for k in combos))


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="pe"):
        EngineConfig(pe=0)
    with pytest.raises(ValueError, match="even PE"):
        EngineConfig(pe=3)
    with pytest.raises(ValueError, match="whole 128-bit AXI beats"):
        EngineConfig(pe=2, simd=4)
    with pytest.raises(ValueError, match="unknown board"):
        EngineConfig(board="nope")
    with pytest.raises(ValueError, match="ddr_efficiency"):
        EngineConfig(ddr_efficiency=0)


def test_cli_writes_the_report(tmp_path, capsys):
    from samfpga.hw.plan.__main__ import main, parse_space

    assert parse_space("pe=32,48; simd=32") == {"pe": (32, 48), "simd": (32,)}
    for bad in ("pe", "pe=x", "foo=1", "pe=0"):
        with pytest.raises(ValueError, match="engine space"):
            parse_space(bad)
    out = tmp_path / "eng"
    assert main(["--engine", "--image-size", "512", "--out", str(out), "--engine-space",
                 "pe=32;simd=32;batch=128;dw_pe=16;ln_lanes=4;sm_lanes=16"]) == 0
    d = json.loads((out / "report.json").read_text())
    assert d["config"]["pe"] == 32 and d["config"]["sm_lanes"] == 16 and d["searched"] == 1 and d["fits"] in (True, False)
    assert "softmax" in d["components"] and "softmax bias tables" in d["components"]
    assert "own model" in d["label"] and d["not_built"]
    md = (out / "report.md").read_text()
    assert "fps" in md and "gemm unit logic" in md and "](report.png)" in md
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert "engine PE 32 x SIMD 32" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--engine", "--out", str(out), "--engine-space", "pe=x"])


def test_window_order_is_a_strip_read_and_write():
    """The engine reads the attention layers' tokens window by window with the strip reader (strips of ``window``
    columns, no halo) and writes them back with the strip writer: the reader's stream is the window partition
    (windows column-major, tokens row-major within each; the order of windows does not matter to attention), and
    the writer puts that stream back as the HWC map (both numpy models, tolerance 0)."""
    import numpy as np

    from samfpga.hw.sim import strip_reader as sr
    from samfpga.hw.sim import strip_writer as sw

    h = w = 16
    c, ws = 3, 4
    fmap = np.random.default_rng(0).integers(0, 256, (h, w, c), dtype=np.uint8)
    f = sr.StripFrame(fmap, tiles=w // ws, halo=0)
    stream = b"".join(sr.reference(f))
    windows = fmap.reshape(h // ws, ws, w // ws, ws, c).transpose(2, 0, 1, 3, 4)  # (wx, wy, y, x, c)
    assert stream == windows.tobytes()
    per_strip = len(stream) // (w // ws)
    strips = [stream[i * per_strip:(i + 1) * per_strip] for i in range(w // ws)]
    assert sw.reference(bytes(h * w * c), [f], [strips]) == fmap.tobytes()
    # row-major window order would be another stream (the check can fail)
    assert stream != fmap.reshape(h // ws, ws, w // ws, ws, c).transpose(0, 2, 1, 3, 4).tobytes()


def test_depthwise_strips_and_their_halo_bytes():
    """The window's banks are sized for strips of dw_strip columns at the widest layer's channels; each layer runs
    in the fewest even strips that fit them (a layer of fewer channels in wider strips), its halos read twice."""
    from samfpga.hw.plan.engine import dw_bank_words, dw_tiles, strip_tiles
    from samfpga.hw.sim.strip_reader import payload_bytes

    c = cfg(dw_strip=32)
    assert [strip_tiles(c, w) for w in (16, 32, 64, 96, 128, 256)] == [1, 1, 2, 3, 4, 8]
    # the default: whole maps, as the compiled program launches them (the banks hold the widest map's rows)
    assert cfg().dw_strip == 0 and [strip_tiles(cfg(), w) for w in (16, 256)] == [1, 1]
    units = encoder_layers(tiny())
    dws = [x for u in units for x in u.layers if x.kind == "dwconv"]
    small = cfg(dw_strip=4)
    words = dw_bank_words(small)
    for dw in dws:
        t = dw_tiles(small, dw.in_width, dw.in_channels)
        cb = -(-dw.in_channels // 8)
        assert dw.in_width % t == 0 and -(-(dw.in_width // t + 2) // 3) * cb <= words
        assert t == 1 or -(-(dw.in_width // (t - 1) + 2) // 3) * cb > words or dw.in_width % (t - 1)  # fewest
    dw = max(dws, key=lambda x: (x.in_channels, x.in_width))
    t = dw_tiles(small, dw.in_width, dw.in_channels)
    s = next(s for s in schedule(small, units) if s.name == dw.name)
    assert t > 1 and s.bytes_read == payload_bytes(dw.in_width, dw.in_width, dw.in_channels, t, 1)
    assert s.bytes_read > dw.in_width ** 2 * dw.in_channels  # the halo columns are read twice


def test_unit_calibration_is_the_committed_yosys_run():
    """The engine prices its GEMM unit as the planner's model x the largest Yosys / model ratio measured at the
    engine's sizes with a run-time shape (bench/results/engine_unit_synth.json); the model's DSPs are exact for a
    fixed shape, the run-time shape adds RT_SHAPE_DSP and the raw output RAW_OUT_DSP; before calibration the model's LUTs are within 15%."""
    from pathlib import Path

    from samfpga.hw.plan.engine import RAW_OUT_DSP, RT_SHAPE_DSP, UNIT_YOSYS_RATIO

    d = json.loads((Path(__file__).resolve().parents[1] / "bench/results/engine_unit_synth.json").read_text())
    units = d["units"]
    assert any(u["rt_shape"] for u in units) and any(not u["rt_shape"] for u in units)
    assert any(u.get("raw_bits") for u in units)  # the engine's unit (RAW_OUT) is among them

    def measured(u, r):
        return u["yosys"]["LUT"] - u["yosys"]["lutram_luts"] if r == "LUT" else u["yosys"][r]

    for r in ("LUT", "FF"):
        ratio = max(measured(u, r) / u["model"][r] for u in units if u["rt_shape"])
        assert UNIT_YOSYS_RATIO[r] == pytest.approx(ratio, abs=0.001)
    for u in units:
        assert u["yosys"]["DSP"] == u["model"]["DSP"] + (RT_SHAPE_DSP if u["rt_shape"] else 0) + \
            (RAW_OUT_DSP if u.get("raw_bits") else 0)
        assert 0.85 <= u["model"]["LUT"] / measured(u, "LUT") <= 1.0


def test_engine_softmax_bias_tables_hold_every_block():
    """The softmax's bias tables: every attention block's compact table (vit_t at 1024²: 2 blocks x 4 heads, 6 x 5,
    2 x 10, each head a 64-entry window table) at the width int_softmax.sv stores BQ = B log2(e) 2^(G+P) with
    |B| <= 4 (35 bits at P = 25, G = 6), a block-RAM copy per two lanes."""
    from samfpga.hw.plan.engine import EngineConfig, encoder_units, softmax_bias, softmax_bias_bits

    assert softmax_bias_bits() == (round(4.0 / math.log(2.0) * 2.0 ** 31)).bit_length() + 1 == 35
    cfg = EngineConfig(board="kv260", image_size=1024, sm_lanes=16)
    r = softmax_bias(cfg, encoder_units(cfg))
    entries = (2 * 4 + 6 * 5 + 2 * 10) * 64  # 3,712: four 1K x 36 RAMB36 per copy, 8 copies
    assert r["BRAM36"] == 8 * 4 * math.ceil(entries / 4096)
    assert softmax_bias(EngineConfig(board="kv260", image_size=1024, sm_lanes=4), encoder_units(cfg))["BRAM36"] == \
        r["BRAM36"] / 4


def test_engine_softmax_feed_model_matches_yosys():
    """engine.softmax_feed (raw_rows.sv, the unit's raw QK^T sums as the softmax's rows) against the Yosys run at the
    KV260 1024² engine's size (bench/results/raw_rows_synth.json): LUT within 2%, FF exact; the engine counts it."""
    from pathlib import Path

    from samfpga.hw.plan.engine import EngineConfig, components, encoder_units, softmax_feed
    from samfpga.hw.sim.raw_rows import RawRowsConfig

    d = json.loads((Path(__file__).resolve().parents[1] / "bench/results/raw_rows_synth.json").read_text())
    p = d["params"]
    m = softmax_feed(RawRowsConfig(p["PE"], p["K"], p["NF"], p["N"], p["L"], p["OUT_BITS"]))
    assert abs(m["LUT"] - d["synth"]["LUT"]) <= 0.02 * d["synth"]["LUT"] and m["FF"] == d["synth"]["FF"]
    cfg = EngineConfig(board="kv260", image_size=1024, pe=40, simd=32, batch=256, sm_lanes=16)
    c = components(cfg, encoder_units(cfg))["softmax feed (raw_rows)"]
    assert (c["LUT"], c["FF"]) == (m["LUT"], m["FF"])


def test_softmax_price_is_its_model_corrected_to_the_committed_yosys_runs():
    """pricing.SOFTMAX_YOSYS is bench/results/int_softmax_synth.json's line (Yosys minus the own model through its 4-
    and 32-lane points); the plan's softmax at each measured lane count is within 1% of Yosys' LUTs and 2% of its
    FFs, with Yosys' DSPs (the model's alone was 8% over at 16 lanes)."""
    from pathlib import Path

    from samfpga.hw.plan.engine import _softmax
    from samfpga.hw.plan.pricing import SOFTMAX_YOSYS

    synth = json.loads((Path(__file__).parents[1] / "bench" / "results" / "int_softmax_synth.json").read_text())
    assert {k: tuple(v) for k, v in synth["correction"].items()} == SOFTMAX_YOSYS
    for run in synth["runs"]:
        got = _softmax(synth["keys"], run["lanes"])
        assert abs(got["LUT"] / run["LUT"] - 1) <= 0.01 and abs(got["FF"] / run["FF"] - 1) <= 0.02, run
        assert got["DSP"] == run["DSP"] == run["model"]["DSP"], run
    assert max(abs(r["model"]["LUT"] / r["LUT"] - 1) for r in synth["runs"]) > 0.05  # the correction matters


def test_engine_prices_no_attention_permute():
    """The attention's operands are laid out by the writer's address patterns (the qkv layer's Q / K / V regions,
    V^T's rows into AV's weight image: engine_gemm_path, bit-exact in RTL), not by a permutation unit: the path
    instantiates none and the plan prices none."""
    from samfpga.hw.plan.engine import EngineConfig, components, encoder_units
    from samfpga.hw.synth.own_rtl import own_modules

    cfg = EngineConfig(board="kv260", image_size=1024, pe=40, simd=32, batch=256, sm_lanes=16)
    assert "page_permute" not in own_modules("engine_gemm_path_axil")
    assert not any("permute" in k for k in components(cfg, encoder_units(cfg)))


def test_residual_adder_keeps_up_with_the_unit(units):
    """The residual adder and its requantisers run at ceil(PE / the smallest SF of a residual layer) lanes: the unit
    sends a fold of PE sums per SF cycles, so the adder's bound never exceeds the unit's on any residual step."""
    from samfpga.hw.plan.engine import residual_lanes

    for pe, simd in ((8, 8), (16, 8), (40, 32)):
        c = cfg(pe=pe, simd=simd)
        lanes = residual_lanes(c, units)
        sf = min(-(-x.mw // simd) for u in units for x in u.layers
                 if x.name.endswith(("attn.proj", "mlp.fc2", "conv3.c")) and ".blocks." in x.name)
        assert lanes >= -(-pe // sf) and pe % lanes == 0 and (lanes < pe or sf == 1)
        steps = [s for s in schedule(c, units) if "adder" in s.bounds]
        assert steps and all(s.bounds["adder"] <= s.bounds["unit"] for s in steps)
        assert any(k.startswith(f"residual adder ({lanes} lanes)") for k in components(c, units))


def test_residual_lanes_divide_pe_behind_two_gearboxes(units):
    """The residual lanes are the fewest that keep up and divide PE (requant_lanes.residual_lanes, the path's rule),
    priced with the two byte gearboxes the path puts around them (none at PE lanes)."""
    from samfpga.hw.plan.engine import residual_lanes
    from samfpga.hw.sim.requant_lanes import residual_lanes as rule

    assert [rule(40, sf) for sf in (1, 2, 3, 4, 5, 6, 40)] == [40, 20, 20, 10, 8, 8, 1]
    with pytest.raises(ValueError, match="min_sf"):
        rule(8, 0)
    c = cfg(pe=16, simd=8)
    lanes = residual_lanes(c, units)
    comps = components(c, units)
    assert lanes < 16 and 16 % lanes == 0
    assert sorted(k for k in comps if "residual lanes" in k) == [
        f"byte gearbox, residual lanes -> writer ({lanes} -> 16 bytes)",
        f"byte gearbox, unit -> residual lanes (16 -> {lanes} bytes)"]
    wide = cfg(simd=512)  # a fold per input beat: PE lanes, no gearboxes
    assert residual_lanes(wide, units) == 8 and not any("residual lanes" in k for k in components(wide, units))


def test_every_gearbox_and_the_glue_of_the_path_are_priced():
    """Each byte_gearbox engine_gemm_path.sv instantiates has a plan entry of its widths and form (the KV260 1024²
    engine: residual lanes 10 of PE 40; priced as whole beats where the path ties its tkeep high, as the reader's
    where tkeep is a port); the path's own logic and its AXI-Lite registers are priced as
    bench/results/engine_path_glue_synth.json's Yosys runs (pricing.PATH_GLUE is that file's fit, within 1% of every
    run; the registers, built without read-back, its larger measurement)."""
    import re
    from pathlib import Path

    from samfpga.hw.plan.engine import encoder_units, residual_lanes
    from samfpga.hw.plan.pricing import PATH_GLUE, path_glue, path_registers
    from samfpga.hw.synth.own_rtl import rtl_source

    sv = rtl_source("engine_gemm_path.sv").read_text()
    insts = re.findall(r"byte_gearbox #\(\.IN_B\(([^)]*)\), \.OUT_B\(([^)]*)\)\).*?\.s_axis_tkeep\(([^)]*)\)", sv, re.S)
    c = EngineConfig(board="kv260", image_size=1024, pe=40, simd=32, batch=128, dw_pe=16, ln_lanes=4, sm_lanes=16)
    comps = components(c, encoder_units(c))
    # the RTL's widths in the plan's terms (LN_RAW_B: the raw sums' bytes, 4 at the plan's 28-bit inputs)
    names = {"SIMD": c.simd, "NP": c.ln_lanes, "DW_PE": c.dw_pe, "SM_PE": c.sm_lanes, "OUT_W/8": c.pe,
             "9*DW_PE": 9 * c.dw_pe, "LN_RAW_B*NP": 4 * c.ln_lanes, "PE": c.pe, "RL": residual_lanes(c, encoder_units(c)),
             "8": 8, "RD_W/8": PORT_BYTES, "RS_W/8": PORT_BYTES, "RL_W/8": residual_lanes(c, encoder_units(c))}  # DMA_ALIGNED
    want = sorted((names[i], names[o], k == "'1") for i, o, k in insts)
    got = sorted((*(int(v) for v in re.search(r"\((\d+) -> (\d+) bytes\)", k).groups()),
                  "tkeep tied high" in v["source"]) for k, v in comps.items() if k.startswith("byte gearbox"))
    assert len(insts) == 14 and got == want and sum(w for *_, w in want) == 9
    # its DMAs: the reader, the residual and parameter readers, the writer (the unit fetches its weights itself); at
    # vit_t's PE 40 every read is on whole beats, so the input and residual readers are priced ALIGNED as the RTL
    # builds them with DMA_ALIGNED, the parameter reader always
    assert len(re.findall(r"^\taccess_reader #\(", sv, re.M)) == 3 == sum(k.endswith("reader") for k in comps)
    aligned = re.findall(r"\.ALIGNED\(([^)]*)\)\s*\) (\w+) \(", sv)
    assert sorted(aligned) == [("1", "param_reader"), ("DMA_ALIGNED", "reader"), ("DMA_ALIGNED", "res_reader")]
    assert all("access_reader_aligned" in v["source"] for k, v in comps.items() if k.endswith("reader"))
    assert len(re.findall(r"^\taccess_writer #\(", sv, re.M)) == 1 == sum(k == "writer" for k in comps)
    # the writer takes port beats (token_pack.sv: the unit side's PE bytes, each token's padding dropped), built
    # ALIGNED where every frame of it is on whole beats (WR_ALIGNED), without tails; at PE 40 priced aligned
    assert re.search(r"access_writer #\(\s*\.AXI_DW\(AXI_DW\), \.AXI_AW\(AXI_AW\), \.STREAM_W\(AXI_DW\), "
                     r"\.MAX_BURST\(DMA_BURST\), \.ALIGNED\(WR_ALIGNED\), \.TAIL\(0\)", sv)
    assert "access_writer_aligned," in comps["writer"]["source"]
    assert len(re.findall(r"^\ttoken_pack #\(", sv, re.M)) == 1
    assert "token_pack" in comps[f"writer's pack (token_pack.sv, 40 -> {PORT_BYTES} bytes)"]["source"]
    synth = json.loads((Path(__file__).parents[1] / "bench" / "results" / "engine_path_glue_synth.json").read_text())
    assert synth["model"]["LUT"] == PATH_GLUE["LUT"] and synth["model"]["registers"] == PATH_GLUE["registers"]
    for run in synth["runs"]:
        widths = {"pe": run["PE"], "simd": run["SIMD"], "dw_pe": run["DW_PE"], "ln_lanes": run["LN_PE"],
                  "sm_lanes": run["SM_PE"]}
        assert abs(path_glue(widths)["LUT"] / run["LUT"] - 1) <= 0.01 and run["FF"] <= PATH_GLUE["FF"], run
    built = [g for g in synth["registers"] if g["CFG_READ"] == 0]  # as the engine is built: no read-back
    assert len(built) == 2 and all(g[r] <= PATH_GLUE["registers"][r] for g in built for r in ("LUT", "FF"))
    assert all(g["LUT"] > 3 * PATH_GLUE["registers"]["LUT"] for g in synth["registers"] if g["CFG_READ"])
    glue = next(v for k, v in comps.items() if k.startswith("path glue"))
    assert glue["LUT"] == pytest.approx(path_glue({k: getattr(c, k) for k in
                                                   ("pe", "simd", "dw_pe", "ln_lanes", "sm_lanes")})["LUT"])
    assert next(v for k, v in comps.items() if k.startswith("path registers"))["FF"] == path_registers()["FF"]


def test_requant_lane_prices_are_the_committed_yosys_line():
    """pricing.REQUANT_LANES (what the engine's plan adds for the lanes after its depthwise unit, LayerNorm and
    residual adder) is the line through bench/results/requant_lanes_synth.json's Yosys runs of requant_lanes.sv, and
    reproduces both of its points per use: a change to either is seen here."""
    import json
    from pathlib import Path

    from samfpga.hw.plan.pricing import REQUANT_LANES, requant_lanes

    synth = json.loads((Path(__file__).parents[1] / "bench" / "results" / "requant_lanes_synth.json").read_text())
    assert {u: {r: tuple(v) for r, v in m.items() if r != "in_bits"} for u, m in synth["model"].items()} == \
        REQUANT_LANES
    for run in synth["runs"]:
        model = requant_lanes(run["use"], run["lanes"])
        assert all(abs(model[r] - run[r]) <= 0.5 for r in ("LUT", "FF", "DSP", "BRAM36")), run


def test_layernorm_prices_are_the_committed_yosys_line():
    """pricing.LAYERNORM_LANES (the engine's LayerNorm with its lanes) is the line through
    bench/results/layernorm_lanes_synth.json's Yosys runs of layernorm_lanes.sv, sized as the plan sizes the unit for
    vit_t (its widest LayerNorm's channels, not the neck conv's window of 9 x 256 values; the neck's raw sums), and
    within 100 LUT and 5 FF of the middle point; the plan's LayerNorm line is that price."""
    import json
    from pathlib import Path

    from samfpga.hw.plan.engine import encoder_units, layernorm_size
    from samfpga.hw.plan.pricing import LAYERNORM_LANES, layernorm_lanes

    synth = json.loads((Path(__file__).parents[1] / "bench" / "results" / "layernorm_lanes_synth.json").read_text())
    assert {r: tuple(v) for r, v in synth["model"].items()} == LAYERNORM_LANES
    for run in synth["runs"]:
        model = layernorm_lanes(run["lanes"])
        assert all(abs(model[r] - run[r]) <= (100 if r == "LUT" else 5) for r in ("LUT", "FF", "DSP", "BRAM36")), run
    c = EngineConfig(board="kv260", image_size=1024, ln_lanes=8)
    units = encoder_units(c)
    assert layernorm_size(c, units) == (synth["channels"], synth["in_bits"]) == (320, 28)
    parts = components(c, units)
    ln = parts["layernorm + lanes (320 channels, 28-bit inputs)"]
    assert {r: ln[r] for r in ("LUT", "DSP")} == {r: layernorm_lanes(8)[r] for r in ("LUT", "DSP")}


def test_depthwise_prices_are_the_committed_yosys_runs():
    """pricing.DW_CORE is bench/results/dw_core_synth.json's Yosys runs of dw_core.sv at PE 8, 16 and 32 (piecewise
    linear between: the plan's dw_pe is one of them), sized as the plan sizes the unit for vit_t and the
    design builds it (whole maps: its widest padded map and channels, its banks' RAM style the plan's); the window's
    banks by the memory model equal Yosys' block RAM and URAM at all three sizes (URAM, by the plan's rule); and
    pricing.BYTE_GEARBOX is bench/results/byte_gearbox_synth.json's fit of byte_gearbox.sv (per form and
    architecture), no measured point above it and none below 0.55 of it; its FF within 3 of each."""
    import json
    from dataclasses import replace
    from pathlib import Path

    from samfpga.hw.plan.engine import dw_bank_style, dw_banks, dw_size, encoder_units
    from samfpga.hw.plan.pricing import BYTE_GEARBOX, DW_CORE, byte_gearbox, dw_core

    synth = json.loads((Path(__file__).parents[1] / "bench" / "results" / "dw_core_synth.json").read_text())
    assert {r: tuple(tuple(p) for p in v) for r, v in synth["model"].items()} == DW_CORE
    c = EngineConfig(board="kv260", image_size=1024)
    units = encoder_units(c)
    assert dw_size(c, units) == (synth["strip_columns"], synth["channels"]) == (514, 320)
    for run in synth["runs"]:
        model, cp = dw_core(run["pe"]), replace(c, dw_pe=run["pe"])
        assert all(model[r] == run[r] for r in ("LUT", "FF", "DSP")), run
        assert run["params"]["RAM_STYLE"] == dw_bank_style(cp, 514, 320) == "ultra"
        banks = dw_banks(cp, 514, 320)
        assert (banks["BRAM36"], banks["URAM"]) == (run["BRAM36"], run["URAM"]) and run["URAM"] > 0, run
    synth = json.loads((Path(__file__).parents[1] / "bench" / "results" / "byte_gearbox_synth.json").read_text())
    assert synth["model"] == BYTE_GEARBOX
    assert {(g["in_b"], g["out_b"], g["form"]) for g in synth["runs"]} >= {(144, 32, "whole"), (40, 10, "whole")}
    for g in synth["runs"]:
        model = byte_gearbox(g["in_b"], g["out_b"], g["form"] == "whole")
        assert 0.55 <= g["LUT"] / model["LUT"] <= 1.0 and abs(model["FF"] - g["FF"]) <= 3, g
    assert byte_gearbox(16, 16)["LUT"] == 0


def test_image_window_prices_are_the_committed_yosys_runs():
    """pricing.IMAGE_WINDOW is the line through bench/results/image_window_synth.json's Yosys runs of image_window.sv
    at 1024 pixels by the patch's beats (OUT_B 64: 1, OUT_B 16: 2; the OUT_B 32 point on it), its block RAMs (rows
    and tables) by the memory model equal Yosys' at 512 and 1024 pixels, and the plan prices the KV260 1024² engine's
    image window as that line at SIMD 32 plus those memories."""
    import json
    from pathlib import Path

    from samfpga.hw.plan.engine import encoder_units, image_memories
    from samfpga.hw.plan.pricing import IMAGE_WINDOW, image_window
    from samfpga.hw.sim.image_window import patch_beats
    from samfpga.hw.synth.line_fit import line_error, line_through

    synth = json.loads((Path(__file__).parents[1] / "bench" / "results" / "image_window_synth.json").read_text())
    assert {r: tuple(v) for r, v in synth["model"].items()} == IMAGE_WINDOW
    at = {r["out_b"]: r for r in synth["runs"] if r["w_max"] == 1024}
    assert line_through({1: at[64], 2: at[16]}, 1, 2, ("LUT", "FF")) == synth["model"]
    assert (patch_beats(3, 16), patch_beats(3, 32), patch_beats(3, 64)) == (2, 1, 1)
    for run in synth["runs"]:
        assert image_memories(run["w_max"])["BRAM36"] == run["BRAM36"], run
        if run["w_max"] == 1024:
            assert all(image_window(run["out_b"])[r] == run[r] for r in ("LUT", "FF")), run
    assert line_error(synth["model"], {1: at[32]}, 1) == synth["line_error_at_32"] == {"LUT": 0.0, "FF": 0.0}
    c = EngineConfig(board="kv260", image_size=1024, pe=40, simd=32, batch=128, dw_pe=16, ln_lanes=4, sm_lanes=16)
    part = components(c, encoder_units(c))["image window (image_window.sv, images 1024 wide, 3 channels)"]
    assert (part["LUT"], part["BRAM36"]) == (image_window(32)["LUT"], image_memories(1024)["BRAM36"])


def test_committed_price_lines_are_line_fit_through_their_runs():
    """The Yosys lines the plan prices the LayerNorm and the requantiser lanes by (bench/results/*_synth.json
    "model") are samfpga.hw.synth.line_fit's line through each file's end points, and its error at the middle point
    is the one written beside it; the depthwise unit's model is its runs' own points."""
    import json
    from pathlib import Path

    from samfpga.hw.synth.line_fit import line_error, line_through

    res = Path(__file__).parents[1] / "bench" / "results"
    r4 = ("LUT", "FF", "DSP", "BRAM36")
    d = json.loads((res / "dw_core_synth.json").read_text())
    pts = {r["pe"]: r for r in d["runs"]}
    assert d["model"] == {r: [[pe, pts[pe][r]] for pe in (8, 16, 32)] for r in ("LUT", "FF", "DSP")}
    d = json.loads((res / "layernorm_lanes_synth.json").read_text())
    pts = {r["lanes"]: r for r in d["runs"]}
    assert line_through(pts, 2, 8, r4) == d["model"] and line_error(d["model"], pts, 4) == d["line_error_at_4"]
    d = json.loads((res / "requant_lanes_synth.json").read_text())
    for use, m in d["model"].items():
        pts = {r["lanes"]: r for r in d["runs"] if r["use"] == use}
        assert {"in_bits": m["in_bits"], **line_through(pts, min(pts), max(pts), r4)} == m, use


def test_the_engines_wider_counts_are_priced_as_measured():
    """The engine's counts are ENGINE_CNT_BITS (20) wide (vit_t's 1024² stem launches 2^18 tokens): the plan adds what
    Yosys measured going from 16 to 20 bits in each module that holds one (bench/results/engine_counts_synth.json),
    as a component of its own."""
    import json
    from pathlib import Path

    from samfpga.backends.unit_regs import ENGINE_CNT_BITS, ENGINE_GEMM_PATH
    from samfpga.hw.plan.engine import EngineConfig, components, encoder_units
    from samfpga.hw.plan.pricing import ENGINE_COUNTS

    synth = json.loads((Path(__file__).parents[1] / "bench" / "results" / "engine_counts_synth.json").read_text())
    assert synth["widths"] == [16, ENGINE_CNT_BITS] == [16, 20]
    assert {k: v for k, v in synth["total"].items() if v} == ENGINE_COUNTS
    assert set(synth["delta"]) == {"token_batch_mvu", "requant_lanes", "layernorm_lanes", "dw_core"}
    cfg = EngineConfig(board="kv260", variant="vit_t", image_size=1024)
    comp = components(cfg, encoder_units(cfg))
    (row,) = [v for k, v in comp.items() if k.startswith("counts at 20 bits")]
    assert row["LUT"] == ENGINE_COUNTS["LUT"] and row["DSP"] == ENGINE_COUNTS["DSP"]
    bits = {k: b for k, _, b in ENGINE_GEMM_PATH.params}
    assert all(bits[k] == ENGINE_CNT_BITS for k in ("wt_iters", "wt_tokens", "ln_tokens", "nm_tokens"))


def test_token_pack_prices_are_the_committed_yosys_counts():
    """pricing.TOKEN_PACK (the engine writer's pack at each PE the plan searches) equals
    bench/results/token_pack_synth.json, the Yosys runs of token_pack.sv (``python bench/token_pack_synth.py``); a PE
    not measured is priced as the dearest measured at or above it."""
    from pathlib import Path

    from samfpga.hw.plan.engine import SEARCH
    from samfpga.hw.plan.pricing import TOKEN_PACK, token_pack

    runs = json.loads((Path(__file__).parents[1] / "bench" / "results" / "token_pack_synth.json").read_text())["runs"]
    assert set(TOKEN_PACK) == {int(p) for p in runs} == set(SEARCH["pe"])
    for pe, res in TOKEN_PACK.items():
        assert all(res[r] == runs[str(pe)][r] for r in ("LUT", "FF", "BRAM36", "URAM", "DSP")), pe
    assert token_pack(36)["LUT"] == max(TOKEN_PACK[p]["LUT"] for p in TOKEN_PACK if p >= 36)


def test_bundled_defaults_attention_runs_with_av_keys_padded():
    """The bundled default's attention (sw/samfpga/assets/default/bundle.json: heads of 32 dims over 4 x 4 windows,
    16 keys) on an engine of SIMD 32: the path runs it (QK^T's dims one SIMD fold; AV's 16 keys padded to the fold,
    ``engine_gemm_path.av_read``), and the plan prices AV reading 32 bytes a token (the token's 16 probabilities
    and the next token's, cancelled by zero weights) at the unit's cycles of a 32-wide fold. A SIMD other than the
    head's dims is refused."""
    from pathlib import Path

    from samfpga.models.image_encoder.tiny_vit import TinyViTConfig

    root = Path(__file__).parent.parent
    enc = json.loads((root / "sw/samfpga/assets/default/bundle.json").read_text())["model_config"]["encoder_config"]
    ecfg = TinyViTConfig(**enc)
    us = encoder_layers(ecfg)
    c = EngineConfig(board="kv260", encoder_config=ecfg, pe=32, simd=32, batch=128, dw_pe=16, ln_lanes=4, sm_lanes=8)
    assert path_runs(c, us) and not path_runs(replace(c, simd=16), us)
    avs = [s for s in schedule(c, us) if s.name.endswith("matmul_av")]
    layers = {x.name: x for u in us for x in u.layers}
    assert avs and all(layers[s.name].mw == 16 for s in avs)
    assert all(s.bytes_read == layers[s.name].vectors * 32 for s in avs)  # 16 keys padded to the fold
    # the DMA's 3 cycles a run: AV reads a 2-beat run a token, the qkv layer writes a run per head's 32 dims, the V
    # transpose a run per row of V^T (16 keys: half a SIMD fold of AV's words)
    assert all(s.bounds["reader"] == 3 * layers[s.name].vectors for s in avs)
    qkvs = [s for s in schedule(c, us) if s.name.endswith("attn.qkv")]
    assert qkvs and all(s.bounds["writer"] == 3 * layers[s.name].vectors * layers[s.name].mh // 32 for s in qkvs)
    vts = [s for s in schedule(c, us) if s.name.endswith("(V transpose)")]
    assert vts and all(s.bounds["writer"] == 3 * s.bytes_written // 16 for s in vts)
    p = evaluate(c, us)
    assert p.fits and "matmul_av" in {s.name.rsplit(".", 1)[-1] for s in p.steps}


@pytest.mark.parametrize("pe,simd,keys,d", [(40, 32, 64, 32), (32, 32, 16, 32), (16, 16, 16, 16), (16, 16, 16, 32),
                                            (40, 32, 16, 32), (24, 16, 16, 16), (10, 16, 16, 16)])
def test_v_transpose_runs_are_the_paths(pe, simd, keys, d):
    """``vt_runs``, the V transpose writer's runs an iteration that the plan prices at ``RUN_CYCLES`` each, equals
    the runs of the path's own writer pattern (``engine_gemm_path._rows_write`` on AV's image at that shape)."""
    from types import SimpleNamespace

    import numpy as np

    from samfpga.hw.plan.engine import vt_runs
    from samfpga.hw.sim import engine_gemm_path as gp
    from samfpga.hw.sim import token_batch_mvu as tb

    u = TokenBatchConfig(mw=4 * simd, mh=4 * pe, simd=simd, pe=pe, batch=16, a_bits=9, w_bits=8, acc_bits=24,
                         requant=True, out_bits=8, axi_dw=128, rt_shape=True)
    layer = tb.layer_shape(u, tb.whole_folds(keys, simd), tb.whole_folds(d, pe), 16)
    iters, z = 3, np.zeros((3, layer.mh), np.int64)
    av = SimpleNamespace(layer=layer, iters=iters, mh=d, mw=keys, rq_params=tb.RequantParams(z + 1, z, z))
    rows = d if d <= pe or d % pe == 0 else layer.mh
    a = gp._rows_write(None, av, rows)
    assert a is not None and a.size == iters * rows * keys
    assert a.size // a.run == iters * vt_runs(keys, rows, simd, pe)
