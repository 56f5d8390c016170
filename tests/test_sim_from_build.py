"""Benches pointed at an existing FINN HW graph (how the encoder build's nodes are simulated): every RTL node is
cut out, its HDL regenerated and compared bit-exact with FINN's execution; HLS nodes are listed as not simulated."""

from __future__ import annotations

import json

import pytest

from samfpga.hw.sim import nodes
from samfpga.hw.sim.finn_boot import boot_finn


@pytest.mark.timeout(300)
def test_bench_nodes_of_a_saved_finn_graph(tmp_path):
    boot_finn()
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.transformation.general import GiveUniqueNodeNames

    import samfpga.hw.custom_ops  # noqa: F401
    from samfpga.hw.sim.__main__ import main

    dup = nodes.duplicatestreams(ch=4, pe=2, n=6, dt="INT4")
    dup.attrs["preferred_impl_style"] = "hls"  # FINN's own DuplicateStreams: HLS, not simulable here
    specs = nodes.chain(nodes.dwc(shape=(1, 6, 4), in_width=16, out_width=8, dt="INT4"),
                        nodes.fifo(shape=(1, 6, 4), simd=2, depth=4, dt="INT4"), dup)
    model = nodes._make_graph(specs).transform(SpecializeLayers(nodes.ZYNQ_PART)).transform(GiveUniqueNodeNames())
    onnx_path = tmp_path / "hw.onnx"
    model.save(str(onnx_path))
    report_path = tmp_path / "report.json"
    rc = main(["--model", str(onnx_path), "--out", str(report_path), "--work", str(tmp_path / "work"),
               "--max-vectors", "4"])
    report = json.loads(report_path.read_text())
    assert rc == 0
    assert [b["layer_types"] for b in report["benches"]] == [["StreamingDataWidthConverter_rtl"],
                                                            ["StreamingFIFO_rtl"]]
    assert all(b["passed"] and b["mismatches"] == 0 and b["words_compared"] > 0 for b in report["benches"])
    assert [k["op_type"] for k in report["not_simulated"]] == ["DuplicateStreams_hls"]
    # shrunk from 6 to 4 vectors of 4 channels: DWC 16 -> 8 bits gives 8 output words, FIFO (2 per word) 8 words;
    # each compared in two passes
    assert [b["params"]["shrunk_to_vectors"] for b in report["benches"]] == [4, 4]
    assert [b["words_compared"] for b in report["benches"]] == [16, 16]
