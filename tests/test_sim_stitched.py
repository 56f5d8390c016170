"""Stitched RTL simulation (samfpga.hw.sim.stitched): FIFO insertion at the build's estimated depths, frames
streamed back to back with the frame interval measured, FIFO fill read back; bit-exact against FINN's python
execution (tolerance 0). The whole 64x64 encoder runs in bench/sim_stitched.py (``make sim-stitched``)."""

from __future__ import annotations

import numpy as np
import pytest


def _residual_without_fifo():
    """The residual segment's fork/join (DuplicateStreams -> skip + MVAU -> AddStreams) with no FIFO on the skip
    path: the stitcher must place one at the estimated depth."""
    from samfpga.hw.sim import nodes

    specs = [s for s in nodes.residual_segment(n=12) if s.op_type != "StreamingFIFO"]
    add = specs[-1]
    add.inputs = {"res_skip": add.inputs.pop("res_skip_q"), **add.inputs}
    return nodes.build_hw_graph(specs)


def test_insert_fifos_at_estimated_depths() -> None:
    from samfpga.hw.resources.fifo import estimate_fifo_depths
    from samfpga.hw.sim.runner import finn_reference
    from samfpga.hw.sim.stitched import insert_fifos

    model = _residual_without_fifo()
    est = {(e.producer, e.consumer): e.depth for e in estimate_fifo_depths(model)}
    x = {model.graph.input[0].name: np.random.default_rng(0).integers(-128, 128, (1, 12, 8)).astype(np.float32)}
    before = finn_reference(model, x)[model.graph.output[0].name]
    model, fifos = insert_fifos(model)
    assert len(fifos) == len(est) == 3  # dup->add (skip), dup->mvau, mvau->add
    for out, f in fifos.items():
        assert f.depth == est[(f.producer, f.consumer)]
        consumer = model.get_node_from_name(f.consumer)
        assert out in consumer.input and model.find_producer(out).op_type == "StreamingFIFO"
    skip = next(f for f in fifos.values() if f.producer.startswith("Duplicate") and f.consumer.startswith("Add"))
    assert "fork" in skip.reason  # sized as a fork/join branch (here the minimum depth holds it)
    after = finn_reference(model, x)[model.graph.output[0].name]
    assert np.array_equal(before, after)


def _assert_residual_run(res, fifos) -> None:
    """What every bench run of the stitched residual segment must show: 4 frames (1 under backpressure, 3 free) of
    48 words compared, frames spaced by the slowest layer's cycles (within 15%), every FIFO's fill within its
    depth."""
    assert res.words_compared == 12 * 8 // 2 * 4  # 4 frames (1 under backpressure, 3 free) of 48 words
    assert len(res.frame_done_cycles) == 3 and res.frame_done_cycles == sorted(res.frame_done_cycles)
    assert abs(res.frame_interval / res.finn_max_node_cycles - 1) <= 0.15, (res.frame_interval,
                                                                             res.finn_max_node_cycles)
    for f in fifos:
        assert 0 < res.probes[f.name] <= f.depth, (f, res.probes)


@pytest.mark.slow
def test_stitched_frames_interval_and_fifo_fill(tmp_path) -> None:
    """Three frames through the stitched residual segment: bit-exact, output frames spaced by the slowest layer's
    cycles (within 15% of FINN's estimate), each FIFO's highest fill read back and within its depth."""
    from samfpga.hw.sim.finn_boot import boot_finn
    from samfpga.hw.sim.runner import run_bench
    from samfpga.hw.sim.stitched import stitched_model

    boot_finn(tmp_path / "finn")
    model, fifos, dwcs = stitched_model(_residual_without_fifo())
    rng = np.random.default_rng(1)
    name = model.graph.input[0].name
    frames = [{name: rng.integers(-128, 128, (1, 12, 8)).astype(np.float32)} for _ in range(3)]
    res = run_bench("res3", model, frames, tmp_path / "sim", bp_frames=1,
                    probes={f.name: f"{f.name}_i.maxcount" for f in fifos})
    assert res.error == "" and res.mismatches == 0
    _assert_residual_run(res, fifos)


def test_segment_graph_cuts_a_node_range() -> None:
    """A node range becomes a graph of its own (one tensor in, one out): the stem chain cut in two, the second
    part executed by FINN on the first part's output, equals the whole; a cut through a fork/join is refused,
    naming the crossing tensors."""
    from samfpga.hw.sim import nodes
    from samfpga.hw.sim.runner import finn_reference
    from samfpga.hw.sim.stitched import cut_points, segment_graph

    stem = nodes.build_hw_graph(nodes.stem_segment())
    assert cut_points(stem) == list(range(1, len(stem.graph.node) + 1))  # a chain: a cut after every node
    shape = stem.get_tensor_shape(stem.graph.input[0].name)
    x = {stem.graph.input[0].name: np.random.default_rng(2).integers(0, 256, shape).astype(np.float32)}
    whole = finn_reference(stem, x)[stem.graph.output[0].name]
    head, tail = segment_graph(stem, 0, 2), segment_graph(stem, 2, len(stem.graph.node))
    assert [n.name for n in tail.graph.node] == [n.name for n in stem.graph.node[2:]]
    assert tail.graph.input[0].name == head.graph.output[0].name == stem.graph.node[1].output[0]
    y = finn_reference(head, x)[head.graph.output[0].name]
    z = finn_reference(tail, {tail.graph.input[0].name: y})[tail.graph.output[0].name]
    assert np.array_equal(z, whole)

    res = nodes.build_hw_graph(nodes.residual_segment())
    assert cut_points(res) == [len(res.graph.node)]  # inside the fork/join no single tensor crosses
    with pytest.raises(ValueError, match=r"\['res_branch', 'res_skip'\] leave the range"):
        segment_graph(res, 0, 1)  # both outputs of the fork cross the cut
    with pytest.raises(ValueError, match="enter the range"):
        segment_graph(res, 1, len(res.graph.node))
    with pytest.raises(ValueError, match="node range"):
        segment_graph(res, 2, 2)


@pytest.mark.slow
def test_cpp_bench_matches_and_catches_wrong_words(tmp_path) -> None:
    """The C++-only bench (cpp_bench) on the stitched residual segment: bit-exact, frames spaced by the slowest
    layer's cycles (within 15%), FIFO fill within depth; the same simulator run against expected words with 3
    flipped bits reports exactly those words, in both passes."""
    from samfpga.hw.sim.cpp_bench import run_cpp_bench
    from samfpga.hw.sim.finn_boot import boot_finn
    from samfpga.hw.sim.stitched import stitched_model

    boot_finn(tmp_path / "finn")
    model, fifos, _ = stitched_model(_residual_without_fifo())
    rng = np.random.default_rng(1)
    name = model.graph.input[0].name
    frames = [{name: rng.integers(-128, 128, (1, 12, 8)).astype(np.float32)} for _ in range(3)]
    probes = {f.name: f"{f.name}_i.fifo.MaxCount" for f in fifos}
    res = run_cpp_bench("res3", model, frames, tmp_path / "sim", probes=probes)
    assert res.error == "" and res.mismatches == 0, res.first_mismatches
    _assert_residual_run(res, fifos)
    bad = run_cpp_bench("res3", model, frames, tmp_path / "sim", probes=probes, resume=True, tamper=3)
    assert bad.mismatches == 6 and not bad.passed  # 3 words of the first frame, compared in both passes


def test_fifo_model_holds_an_mvau_input_vector() -> None:
    """The FIFO model gives the edge into an MVAU's data input at least MW / SIMD words (one input vector, read in
    one burst); stage 4 of the default ran 32.7% slow with 32 words in front of an MVAU with MW/SIMD = 64."""
    from samfpga.hw.resources.fifo import estimate_fifo_depths
    from samfpga.hw.sim import nodes

    th = nodes.thresholding(ch=192, pe=2, n=4, idt="INT12", odt="UINT4")
    mv = nodes.mvau(mw=192, mh=8, simd=2, pe=2, n=4, idt="UINT4", wdt="INT4", odt="INT16")
    model = nodes.build_hw_graph(nodes.chain(th, mv))
    (e,) = estimate_fifo_depths(model)
    assert e.consumer.startswith("MVAU") and e.depth == 192 // 2 and "burst" in e.reason
    (small,) = estimate_fifo_depths(model, min_depth=128)  # a larger floor still wins
    assert small.depth == 128


def test_hw_inputs_of_a_pixel_input_build(tmp_path) -> None:
    """A pixel-input build has no host node before the dataflow partition: its HW input is the uint8 frame itself
    (FINN's execution of the empty host part failed on it)."""
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    from samfpga.hw.sim.stitched import hw_inputs

    shape = [1, 8, 8, 3]
    sdp = helper.make_node("StreamingDataflowPartition", ["x"], ["y"], name="sdp", domain="finn.custom_op.fpgadataflow",
                           model="child.onnx")
    graph = helper.make_graph([sdp], "parent", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])])
    (tmp_path / "finn" / "p").mkdir(parents=True)
    ModelWrapper(qonnx_make_model(graph)).save(str(tmp_path / "finn" / "p" / "dataflow_parent.onnx"))
    frames = np.random.default_rng(0).integers(0, 256, size=(2, 8, 8, 3)).astype(np.float32)
    got = hw_inputs(tmp_path, frames)
    assert len(got) == 2
    for g, f in zip(got, frames):
        np.testing.assert_array_equal(g["hw_in"], f[None])
