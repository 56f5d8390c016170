"""Own resource models (samfpga.hw.resources): memory placement, DSP packing and per-layer models on hand-computed
configurations, the analytic FIFO depths, and every op type of a real FINN graph priced non-zero."""

from __future__ import annotations

import math

import pytest

from samfpga.hw.boards import get_board
from samfpga.hw.resources import memory
from samfpga.hw.resources.models import CALIBRATION, mvu_lanes
from samfpga.hw.sim import nodes

KV260 = get_board("kv260")


def test_memory_primitives_by_hand() -> None:
    assert memory.bram36(1024, 36) == 1.0 and memory.bram36(512, 72) == 1.0
    assert memory.bram36(512, 36) == 0.5  # one 18 Kib half
    # 16384 x 19: 19 BRAM18 at 16Kx1 = 9.5 (BRAM36 at 16Kx2 would need 10)
    assert memory.bram36(16384, 19) == 9.5
    assert memory.uram(5000, 80) == 4.0  # 2 deep x 2 wide
    assert memory.lutram(64, 8) == 8.0 and memory.lutram(256, 8) == 32.0  # F7/F8 muxes free up to 4 cells
    assert memory.lutram(1024, 1) == 16 + 4  # 16 cells, +1 LUT per 4 extra cells and the final stage
    assert memory.srl(32, 10) == 10.0
    u = memory.place(8192, 72, "ultra")
    assert u.kind == "URAM" and u.URAM == 2 and u.runtime_load
    assert memory.place(32, 16, "auto").kind == "LUTRAM"
    assert memory.place(4096, 36, "auto").BRAM36 == 4
    with pytest.raises(ValueError, match="ram_style"):
        memory.place(8, 8, "flash")


def test_mvu_lane_packing_as_mvu_sv() -> None:
    # NUM_LANES = 1 + (A_WIDTH - !NARROW - W) / (W + A - 1), A_WIDTH 27 on DSP48E2, 25 on DSP48E1
    assert mvu_lanes(2, 8, 8) == 2
    assert mvu_lanes(2, 4, 8) == 3
    assert mvu_lanes(2, 4, 4) == 4
    assert mvu_lanes(2, 8, 8, narrow=True) == 2
    assert mvu_lanes(1, 8, 8) == 2 and mvu_lanes(1, 16, 16) == 1


def _costs(*specs):
    nodes.boot_finn()
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.transformation.general import GiveUniqueNodeNames

    import samfpga.hw.custom_ops  # noqa: F401
    from samfpga.hw.resources import layer_costs

    model = nodes._make_graph(list(specs)).transform(SpecializeLayers(nodes.ZYNQ_PART))
    model = model.transform(GiveUniqueNodeNames())
    return model, layer_costs(model, KV260)


def test_mvau_model_by_hand() -> None:
    _, (c,) = _costs(nodes.mvau(mw=32, mh=16, simd=4, pe=4, idt="INT8", wdt="INT8", odt="INT24"))
    assert c.source == "own model" and c.op_type == "MVAU_rtl"
    assert c.DSP == 8  # ceil(PE 4 / 2 lanes) x SIMD 4
    assert c.LUT > 0 and c.FF > 0
    # weights: MW*MH/(PE*SIMD) = 32 words of PE*SIMD*8 = 128 bits -> LUTRAM under auto
    w = c.detail["terms"]["weights"]
    assert w["kind"] == "LUTRAM" and w["shape"] == "1x 32x128"
    assert w["LUT"] == memory.lutram(32, 128)
    _, (c4,) = _costs(nodes.mvau(mw=64, mh=30, simd=8, pe=3, idt="INT8", wdt="INT4", odt="INT20"))
    assert c4.DSP == 8  # W4A8 packs 3 lanes: ceil(3/3) x 8


def test_uram_weights_are_marked_for_runtime_loading() -> None:
    spec = nodes.mvau(mw=512, mh=256, simd=4, pe=4, idt="INT8", wdt="INT8", odt="INT24")
    spec.attrs["ram_style"] = "ultra"
    _, (c,) = _costs(spec)
    assert c.URAM == memory.uram(512 * 256 // 16, 128) == 4.0
    assert c.detail["runtime_load"] == ["weights"] and "driver" in c.detail["note"]


def test_thresholding_model_by_hand() -> None:
    _, (c,) = _costs(nodes.thresholding(ch=16, pe=2, idt="INT16", odt="UINT4"))
    # UINT4: 4 stages of depth CF * 2^s = 8, 16, 32, 64 per PE, 16-bit thresholds, all LUTRAM under auto
    mem = sum(v["LUT"] for k, v in c.detail["terms"].items() if k.startswith("thresholds_stage"))
    assert mem == 2 * sum(memory.lutram(8 * 2 ** s, 16) for s in range(4))
    assert c.LUT > mem and c.BRAM36 == 0 and c.DSP == 0


def test_addstreams_model_by_hand() -> None:
    _, (c,) = _costs(nodes.addstreams(ch=16, pe=8, n=4))
    cal = CALIBRATION.get("AddStreams_rtl", {})
    # 8 lanes of a 9-bit adder + output register (9 x 8 + valid)
    assert c.LUT == math.ceil((8 * 9 + 3) * cal.get("LUT", 1.0))
    assert c.FF == math.ceil((8 * 9 + 1) * cal.get("FF", 1.0))


def test_every_rtl_op_type_of_the_node_library_is_priced() -> None:
    """Each RTL layer type the simulator builds gets an own-model figure with LUT > 0 (FINN gives 0 for several),
    or a documented reason why the hardware is free (Reshape_rtl: dwc_axi at equal widths is wires)."""
    specs = [nodes.mvau(), nodes.thresholding(), nodes.swg(), nodes.fmpadding(), nodes.dwc(), nodes.fifo(),
             nodes.addstreams(), nodes.duplicatestreams(), nodes.reshape()]
    free = []
    for s in specs:
        _, costs = _costs(s)
        for c in costs:
            assert c.source == "own model", c.op_type
            if c.detail.get("free"):
                free.append(c.op_type)
                assert c.LUT == 0 and c.FF == 0
            else:
                assert c.LUT > 0 and c.FF > 0, c.op_type
    assert free == ["Reshape_rtl"]


def test_fifo_depth_on_a_residual_fork() -> None:
    """DuplicateStreams -> (skip) + (SWG? no: MVAU) -> AddStreams: the skip edge buffers the MVAU's start-up
    (one input row of MW elements = 1/n of the frame) plus slack; other edges get the minimum depth."""
    from samfpga.hw.resources import estimate_fifo_depths, fifo_costs
    from samfpga.hw.resources.fifo import SLACK_PER_LAYER

    n, ch, pe = 64, 32, 4
    specs = [s for s in nodes.residual_segment(n=n, ch=ch, pe=pe) if s.op_type != "StreamingFIFO"]
    add = specs[-1]
    add.inputs = {"res_skip": add.inputs.pop("res_skip_q"), **add.inputs}
    model, _ = _costs(*specs)
    est = {(f.producer.split("_")[0], f.consumer.split("_")[0]): f for f in estimate_fifo_depths(model, 16)}
    skip = est[("DuplicateStreams", "AddStreams")]
    words = n * ch // pe  # folded words per frame on the skip edge
    assert skip.depth == max(16, math.ceil(words / n) + SLACK_PER_LAYER)
    assert skip.width == pe * 8
    assert est[("DuplicateStreams", "MVAU")].depth == 16
    costs = fifo_costs(model, KV260, min_depth=16)
    assert len(costs) == 3 and all(c.LUT > 0 and c.detail["estimated"] for c in costs)
    # depth 16 x 32 bit: RAM32M16 storage, 3 x 8 LUTs (fifo.sv keeps its words in a dual-port LUTRAM)
    assert costs[0].detail["terms"]["storage"]["LUT"] == memory.lutram_sdp(16, 32) == 24


def test_stream_costs_price_width_converters_and_their_fifos() -> None:
    """MVAU with PE 4 into an AddStreams with PE 2: the stitched pipeline has a width converter on that edge (FINN's
    InsertDWC) and FIFOs on both of its sides; ``stream_costs`` prices all of them, ``fifo_costs`` (no DWCs) one
    edge fewer."""
    from samfpga.hw.resources import fifo_costs, stream_costs

    n, ch = 64, 32
    specs = [s for s in nodes.residual_segment(n=n, ch=ch, pe=4) if s.op_type != "StreamingFIFO"]
    add = specs[-1]
    add.inputs = {"res_skip": add.inputs.pop("res_skip_q"), **add.inputs}
    add.attrs["PE"] = 2
    specs[0].attrs["PE"] = 2  # the fork at the add's width: only the MVAU's output needs converting
    specs[1].attrs["SIMD"] = 2
    model, _ = _costs(*specs)
    costs = stream_costs(model, KV260, min_depth=16)
    dwcs = [c for c in costs if c.op_type.startswith("StreamingDataWidthConverter")]
    fifos = [c for c in costs if c.op_type.startswith("StreamingFIFO")]
    assert len(dwcs) == 1 and dwcs[0].LUT > 0 and dwcs[0].detail["estimated"]
    assert len(fifos) == 4 == len(fifo_costs(model, KV260, min_depth=16)) + 1
    assert all(c.LUT > 0 for c in fifos)


def test_fifo_storage_by_depth() -> None:
    from samfpga.hw.resources.models import fifo_terms

    assert fifo_terms(64, 32).fixed["storage"]["LUT"] == 40  # 5 x RAM64M8 (Yosys: the same 5 cells)
    deep = fifo_terms(256, 16).fixed["storage"]
    assert deep["kind"] == "BRAM" and deep["BRAM36"] == 0.5  # Yosys: one RAMB18E2


def test_requant_model_by_hand() -> None:
    """FINN+'s Requant_rtl (requant.sv): one DSP per PE for x * scale + bias, a per-channel parameter ROM of
    CF = C / PE words per PE holding the bits that differ between channels (FINN itself has no estimate for it)."""
    import numpy as np
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.resources.models import requant_rom_bits

    ch, pe = 32, 4

    def spec(bias):
        return nodes.NodeSpec(
            "Requant",
            dict(PE=pe, NumChannels=ch, inputDataType="INT20", outputDataType="UINT8", numInputVectors=[1, 4],
                 preferred_impl_style="rtl"),
            {"rq_in": ((1, 4, ch), "INT20")},
            {"rq_out": ((1, 4, ch), "UINT8")},
            {"rq_scale": (np.full(ch, 0.01, dtype=np.float32), "FLOAT32"), "rq_bias": (bias, "FLOAT32")},
        )

    # the same parameters in every channel: nothing to look up, no ROM
    _, (c,) = _costs(spec(np.zeros(ch, dtype=np.float32)))
    assert c.op_type == "Requant_rtl" and c.source == "own model"
    assert c.DSP == pe and not any(k.startswith("parameters") for k in c.detail["terms"])
    # biases 0 and 1 alternating along each PE's channel fold (channel c = cf * PE + pe): the aligned bias
    # B = 2**T * bias + 2**(T-1) differs in bit T only
    model, (c,) = _costs(spec((np.arange(ch) // pe % 2).astype(np.float32)))
    # K = 20 > 18 (B port): x = 20 bits, scale 18 bits; declared word = 18 + (18 + 20) + 1 (one shift) = 57 bits
    assert requant_rom_bits(getCustomOp(model.graph.node[0]), model, KV260) == (57, 1, 8)
    assert c.detail["terms"]["parameters_bias"]["shape"] == f"{pe}x 8x1"
    assert not {"parameters_scale", "parameters_shift"} & set(c.detail["terms"])
    assert c.LUT > 0 and c.FF > 0


def test_finn_estimate_drops_uram_of_a_dynamic_mvau() -> None:
    """FINN's MVAU.uram_estimation has no case for mem_mode "dynamic" and adds URAM on top of the BRAM that
    bram_estimation already gives the buffered operand; finn_estimate keeps the BRAM and drops the URAM (and says
    so), for dynamic MVAUs only."""
    from types import SimpleNamespace

    from samfpga.hw.boards import get_board
    from samfpga.hw.resources.cost import finn_estimate

    def node(mode: str) -> SimpleNamespace:
        attrs = {"mem_mode": mode}
        return SimpleNamespace(
            onnx_node=SimpleNamespace(name=f"MVAU_hls_{mode}", op_type="MVAU_hls"),
            node_res_estimation=lambda part: {"LUT": 427, "BRAM_18K": 1, "URAM": 1, "DSP": 0},
            get_nodeattr_types=lambda: attrs, get_nodeattr=attrs.__getitem__)

    dyn = finn_estimate(node("dynamic"), get_board("pynq-z2"))
    assert (dyn.URAM, dyn.BRAM36, dyn.LUT) == (0.0, 0.5, 427.0) and dyn.detail["finn_uram_dropped"] == 1.0
    dec = finn_estimate(node("internal_decoupled"), get_board("kv260"))
    assert dec.URAM == 1.0 and "finn_uram_dropped" not in dec.detail
