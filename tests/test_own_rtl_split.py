"""Own StreamingSplit RTL (the q/k/v split) for Zynq UltraScale+: specialisation picks it, its HDL encodes the
beats per output. The Verilator benches (``streaming_split*``, bit-exact against FINN's python execution of
StreamingSplit) run in tests/test_sim_benches.py with the whole catalogue."""

from __future__ import annotations

import pytest

from samfpga.hw.sim import nodes


def test_specialises_to_own_rtl_and_encodes_beats():
    from pathlib import Path

    from qonnx.custom_op.registry import getCustomOp

    model = nodes.build_hw_graph([nodes.streaming_split(channels=(4, 8, 12), simd=2, n=3, dt="INT20")])
    assert [n.op_type for n in model.graph.node] == ["StreamingSplit_rtl"]
    op = getCustomOp(model.graph.node[0])
    assert op.get_rtl_file_list() == ["stream_split.sv", f"{model.graph.node[0].name}.v"]
    text = Path(op.get_rtl_file_list(abspath=True)[-1]).read_text()
    # 40 bits of SIMD 2 x INT20 per beat; 2, 4 and 6 beats, element N-1 first in the packed literal
    assert ".N(3), .WIDTH(40), .BEATS({32'd6, 32'd4, 32'd2})" in text
    assert all(f"out{i}_V_TDATA" in text for i in range(3))


def test_refuses_simd_not_dividing_a_part():
    from qonnx.custom_op.registry import getCustomOp

    spec = nodes.streaming_split(channels=(4, 6), simd=4)
    model = nodes._make_graph([spec])
    model.graph.node[0].op_type = "StreamingSplit_rtl"
    model.graph.node[0].domain = "finn.custom_op.fpgadataflow.rtl"
    op = getCustomOp(model.graph.node[0])
    assert op.verify_node() and "[6]" in op.verify_node()[0]
    with pytest.raises(ValueError, match="must divide"):
        op.core_instance(model)
