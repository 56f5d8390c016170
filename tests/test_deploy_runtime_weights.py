"""Runtime-writeable layers in a package (compiler environment): memories in URAM, which the bitstream cannot
initialise, are listed in driver.json ``runtime_weights`` with their AXI-Lite address and written to
``runtime_weights/<node>.dat`` (FINN's ``decoupled_runtime`` words, the format the ``mvau_axilite`` and
``thresholding_axilite`` benches program bit-exactly); the Vivado TCL puts each on the control interconnect. The
board side (driver, simulated device) is tests/runtime/test_runtime_weights_board.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "runtime" / "data" / "tiny_runtime_weights"


def test_committed_package_is_what_the_export_writes(tmp_path) -> None:
    """tests/runtime/data/tiny_runtime_weights equals a fresh ``tests.support.runtime_weights_package`` export:
    both layers listed in graph order after the two DMAs, each at a multiple of its range, ports as FINN's stitched
    IP numbers them; the word files as FINN's make_weight_file writes them; and the integer executor equals FINN's
    python execution on the committed input."""
    from samfpga.intexec import load_intgraph
    from tests.support.runtime_weights_package import write

    write(tmp_path)
    for f in ("graph.json", "driver.json", "runtime_weights/MVAU_rtl_0.dat", "runtime_weights/Thresholding_rtl_0.dat"):
        assert (tmp_path / f).read_bytes() == (DATA / f).read_bytes(), f
    for f in ("weights.npz", "expected.npz"):
        a, b = np.load(tmp_path / f), np.load(DATA / f)
        assert set(a.files) == set(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files), f
    drv = json.loads((tmp_path / "driver.json").read_text())
    rw = drv["runtime_weights"]
    assert [e["name"] for e in rw] == ["MVAU_rtl_0", "Thresholding_rtl_0"]
    assert [e["axilite_port"] for e in rw] == ["s_axilite_0", "s_axilite_1"]
    end = drv["dma"]["odma0"]["base"] + drv["dma"]["odma0"]["range"]
    assert rw[0]["regs"] >= end and all(e["regs"] % e["range"] == 0 and 4 * e["words"] <= e["range"] for e in rw)
    assert rw[1]["regs"] >= rw[0]["regs"] + rw[0]["range"]
    # MVAU: 4 x 4 memory words of SIMD x PE = 6 INT4 weights (one 32-bit word each); thresholds: CF 4 x PE 2 x 16
    assert [e["words"] for e in rw] == [16, 128]
    exp = np.load(tmp_path / "expected.npz")
    np.testing.assert_array_equal(load_intgraph(tmp_path).run_accelerator(exp["x"]), exp["y"])


def test_runtime_words_are_the_weights() -> None:
    """The MVAU's words decode back to its weight matrix (FINN's memstream order: word nf*SF + sf holds PE x SIMD
    weights, element p * SIMD + s from the least significant bits), so the file is the layer's weights and not another tensor's."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.package import runtime_words
    from tests.support.runtime_weights_package import graph

    model = graph()
    node = model.graph.node[0]
    op = getCustomOp(node)
    words = runtime_words(op, model)
    w = model.get_initializer(node.input[1])  # (MW, MH)
    simd, pe = op.get_nodeattr("SIMD"), op.get_nodeattr("PE")
    mw, mh = w.shape
    got = np.zeros_like(w)
    for nf in range(mh // pe):
        for sf in range(mw // simd):
            word = int(words[nf * (mw // simd) + sf])
            for p in range(pe):
                for s in range(simd):
                    v = (word >> (4 * (p * simd + s))) & 0xF
                    got[sf * simd + s, nf * pe + p] = v - 16 if v >= 8 else v
    np.testing.assert_array_equal(got, w)


def test_tcl_connects_runtime_writeable_layers() -> None:
    """Each runtime-writeable layer's AXI-Lite on the control interconnect at its driver.json address; past 16
    slaves the control interconnect is an AXI Interconnect (a SmartConnect has 16 master ports), past 64 refused."""
    from samfpga.hw.vivado import project_tcl

    drv = json.loads((DATA / "driver.json").read_text())
    tcl = project_tcl(drv, "/ip")
    acc = drv["accelerator"]["name"]
    assert "smartconnect:1.0 axi_ctrl" in tcl and "CONFIG.NUM_MI {4}] [get_bd_cells axi_ctrl]" in tcl
    for k, e in enumerate(drv["runtime_weights"]):
        assert f"axi_ctrl/M{2 + k:02d}_AXI] [get_bd_intf_pins {acc}/{e['axilite_port']}]" in tcl
        assert (f"-offset {e['regs']:#010x} -range {e['range'] // 1024}K "
                f"[get_bd_addr_segs {acc}/{e['axilite_port']}/Reg]") in tcl
    many = dict(drv, runtime_weights=[dict(drv["runtime_weights"][0], name=f"L{i}", axilite_port=f"s_axilite_{i}",
                                           regs=drv["runtime_weights"][0]["regs"] + 0x1000 * i) for i in range(20)])
    tcl = project_tcl(many, "/ip")
    assert "axi_interconnect:2.1 axi_ctrl" in tcl and "CONFIG.NUM_MI {22}] [get_bd_cells axi_ctrl]" in tcl
    assert "axi_ctrl/M21_AXI] [get_bd_intf_pins" in tcl
    too_many = dict(many, runtime_weights=many["runtime_weights"] * 4)
    with pytest.raises(ValueError, match="82 AXI-Lite slaves"):
        project_tcl(too_many, "/ip")
