"""The strip reader and writer behind their AXI4-Lite register block (rtl/axil_regs.sv + generated
rtl/<unit>_axil.sv, docs/unit_regs.md): the committed wrappers equal the generator's output from the Python register
map, and under Verilator + cocotb each unit is configured, started and polled only over AXI-Lite with the driver's
write list (``UnitMap.writes``), its output (reader: strips; writer: DDR image) compared byte for byte (tolerance 0)
with the numpy reference. One Verilator build per unit (15-35 s on the shared 2-core machine): RTL tests marked
slow."""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.backends.unit_regs import (
    AP_DONE,
    AP_IDLE,
    CTRL,
    STATUS,
    STRIP_READER,
    STRIP_WRITER,
    UNITS,
    describe,
)
from samfpga.hw import axil_gen
from samfpga.hw.sim import strip_reader as sr
from samfpga.hw.sim import strip_writer as sw
from samfpga.hw.sim.strip_reader import ReaderConfig, StripFrame
from samfpga.resources import package_path

CFG = ReaderConfig(axi_dw=64, stream_w=32, max_burst=4)
OKAY, SLVERR = 0, 2


def _map(h: int, w: int, c: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_committed_wrapper_is_generated_from_the_map(unit):
    text = package_path("samfpga.hw", "rtl", f"{unit}_axil.sv").read_text()
    assert text == axil_gen.render(UNITS[unit]), "run python -m samfpga.hw.axil_gen"
    for r in UNITS[unit].cfg_regs:  # the offsets as the wrapper's comments name them
        assert f"0x{r.offset:02X} {r.name}" in text


def test_docs_tables_are_the_maps():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "unit_regs.md").read_text()
    for m in UNITS.values():
        assert describe(m) in doc, m.unit


def test_writes_are_ordered_lo_hi_and_checked():
    w = STRIP_READER.writes({"base": 0x1_2345_6789, "h": 4, "w": 16, "c": 3, "tiles": 2, "halo": 1})
    assert w == [(0x10, 0x2345_6789), (0x14, 1), (0x18, 4), (0x1C, 16), (0x20, 3), (0x24, 2), (0x28, 1)]
    with pytest.raises(ValueError, match="fit 16 bits"):
        STRIP_READER.writes({"base": 0, "h": 1 << 16, "w": 16, "c": 3, "tiles": 2, "halo": 1})
    with pytest.raises(ValueError, match="lacks"):
        STRIP_READER.writes({"base": 0})


def test_token_batch_shape_registers_are_optional():
    """SF, NF and BATCH (a run-time-shaped unit's layer shape), RAW and UNSIGNED may be left out of a config: written
    as 0, which a fixed-shape unit ignores (RAW = 0: requantised as before; UNSIGNED = 0: signed outputs); the other
    keys stay required, and given values land at 0x28-0x38."""
    from samfpga.backends.unit_regs import TOKEN_BATCH_MVU

    base = {"base": 0x1000, "stride": 0x400, "iters": 3, "tokens": 7}
    assert TOKEN_BATCH_MVU.writes(base)[-5:] == [(0x28, 0), (0x2C, 0), (0x30, 0), (0x34, 0), (0x38, 0)]
    assert TOKEN_BATCH_MVU.writes({**base, "sf": 5, "nf": 2, "batch": 16, "raw": 1, "unsigned": 1})[-5:] == \
        [(0x28, 5), (0x2C, 2), (0x30, 16), (0x34, 1), (0x38, 1)]
    with pytest.raises(ValueError, match=r"lacks \['tokens'\]"):
        TOKEN_BATCH_MVU.writes({k: v for k, v in base.items() if k != "tokens"})


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rtl_reader_driven_only_over_axi_lite(tmp_path):
    """Three frames, each configured over AXI-Lite with the driver's writes, started by ap_start and polled for
    ap_done (AW / W / AR pauses 0.3): two good frames with different configurations around one with a bad one
    (16 columns in 3 tiles: err[1], no strips, done all the same); then unmapped reads / writes answer SLVERR;
    then the board driver itself (``UnitDriver.run``, its MMIO bridged to AXI-Lite) runs a good and a bad frame."""
    sr.build_axil(CFG, tmp_path)
    good1 = StripFrame(_map(4, 16, 3, 30), tiles=2, halo=1, base=0x1000 - 37)
    good2 = StripFrame(_map(3, 24, 5, 31), tiles=4, halo=3, base=0x2005)
    bad = {"base": 0x40, "h": 2, "w": 16, "c": 3, "tiles": 3, "halo": 0}
    cfgs = [sr.frame_config(good1), bad, sr.frame_config(good2)]
    frames = [{"writes": STRIP_READER.writes(c), "strips": n} for c, n in zip(cfgs, (2, 0, 4))]
    probes = [["r", 0x08, 0], ["r", 0x0C, 0], ["r", 0x2C, 0], ["r", 0x3C, 0], ["w", 0x30, 0xDEAD],
              ["w", STATUS, 3], ["r", STATUS, 0], ["w", 0x18, 0xFFFF_FFFF], ["r", 0x18, 0], ["r", 0x10, 0],
              ["w", CTRL, AP_DONE | AP_IDLE], ["r", CTRL, 0]]
    drv = [{"cfg": sr.frame_config(good2), "strips": 4}, {"cfg": bad, "strips": 0}]
    res = sr.simulate_axil(frames, probes, tmp_path, sr.ddr_image([good1, good2]), seed=3, driver_frames=drv)
    assert not res.error, res.error
    p = res.passes[0]
    assert not p["timed_out"] and p["ctrl_reset"] == [AP_IDLE, OKAY]
    assert all(n > 0 for n in p["aw_w_order"]), p["aw_w_order"]  # AW first, together, W first all happened
    *got, tail, d_good, d_bad = p["frames"]
    assert len(got) == 3
    for r, c, f, err in zip(got, cfgs, (good1, None, good2), (0, 0b10, 0)):
        writes = STRIP_READER.writes(c)
        assert r["write_resp"] == [OKAY] * len(writes) and r["start_resp"] == OKAY
        assert r["readback"] == [[v, OKAY] for _, v in writes]
        assert r["ctrl_before"] == AP_IDLE  # done of the previous frame cleared by its read
        assert r["ctrl_done"] == AP_DONE | AP_IDLE and r["ctrl_after"] == AP_IDLE  # clear-on-read
        assert r["status"] == err and r["extra_beats"] == 0
        assert [bytes.fromhex(s) for s in r["strips"]] == ([] if f is None else sr.reference(f))
    assert got[0]["polls"] > 1  # really polled while busy
    assert p["ddr_bytes"] == sr.axi_bytes(good1, CFG) + 2 * sr.axi_bytes(good2, CFG)
    # the board driver itself (UnitDriver.run over AXI-Lite): its writes, then polls; strips bit-exact; bad config
    assert d_good["driver"] == "ok"
    assert [bytes.fromhex(s) for s in d_good["strips"]] == sr.reference(good2)
    assert [(o, v) for op, o, v in d_good["log"] if op == "w"] == [*STRIP_READER.writes(cfgs[2]), (CTRL, 1)]
    assert d_good["log"][-2:] == [["r", CTRL, AP_DONE | AP_IDLE], ["r", STATUS, 0]]
    assert d_bad["driver"].startswith("UnitError: strip_reader finished with err: CTRL(0x00)=0x6 STATUS(0x04)=0x2")
    assert tail["probes"] == [["r", 0x08, 0, SLVERR], ["r", 0x0C, 0, SLVERR], ["r", 0x2C, 0, SLVERR],
                              ["r", 0x3C, 0, SLVERR], ["w", 0x30, 0xDEAD, SLVERR], ["w", STATUS, 3, SLVERR],
                              ["r", STATUS, 0, OKAY], ["w", 0x18, 0xFFFF_FFFF, OKAY], ["r", 0x18, 0xFFFF, OKAY],
                              ["r", 0x10, good2.base, OKAY], ["w", CTRL, AP_DONE | AP_IDLE, OKAY],
                              ["r", CTRL, AP_IDLE, OKAY]]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rtl_writer_driven_only_over_axi_lite(tmp_path):
    """The strip writer the same way: two good frames with different configurations around a bad one (16 columns
    in 3 tiles: err[1], no input taken, done all the same); the DDR image equals the numpy reference byte for byte
    (every frame's strips in place, every other byte the background)."""
    sw.build_axil(CFG, tmp_path)
    good1 = StripFrame(_map(4, 16, 3, 40), tiles=2, halo=0, base=0x1000 - 37)
    good2 = StripFrame(_map(3, 24, 5, 41), tiles=4, halo=0, base=0x2005)
    bad = {"base": 0x40, "h": 2, "w": 16, "c": 3, "tiles": 3}
    cfgs = [sr.frame_config(good1), bad, sr.frame_config(good2)]
    strips = [sw.input_strips(good1), [], sw.input_strips(good2)]
    frames = [{"writes": STRIP_WRITER.writes(c), "strips": s} for c, s in zip(cfgs, strips)]
    background = np.random.default_rng(42).integers(0, 256, 0x3000, dtype=np.uint8).tobytes()
    res = sw.simulate_axil(frames, background, tmp_path, seed=4)
    assert not res.error, res.error
    p = res.passes[0]
    assert not p["timed_out"] and len(p["frames"]) == 3
    for r, c, err in zip(p["frames"], cfgs, (0, 0b10, 0)):
        writes = STRIP_WRITER.writes(c)
        assert r["write_resp"] == [OKAY] * len(writes) and r["start_resp"] == OKAY
        assert r["readback"] == [[v, OKAY] for _, v in writes]
        assert r["ctrl_before"] == AP_IDLE
        assert r["ctrl_done"] == AP_DONE | AP_IDLE and r["ctrl_after"] == AP_IDLE
        assert r["status"] == err and r["source_empty"]
    assert p["frames"][0]["polls"] > 1
    ref = sw.reference(background, [good1, good2])
    assert ref != background and res.images == [ref]
