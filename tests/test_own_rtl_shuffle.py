"""Outer permutations (FINN+: OuterShuffle, HLS only) as chains of FINN's InnerShuffle_rtl on regrouped views
(samfpga.hw.custom_ops.transforms.OuterShuffleToInnerShuffles). Checked: the block-swap decomposition equals
numpy's transpose for every permutation of rank 3-5 keeping the innermost axis; the rewritten FINN graph executes
exactly like FINN's OuterShuffle python model and specialises to RTL only on the Zynq part. The Verilator benches
(``outer_shuffle_*_as_inner``) run in tests/test_sim_benches.py with the whole catalogue."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from samfpga.hw.sim import nodes
from samfpga.hw.sim.finn_boot import boot_finn


def _apply_swaps(x: np.ndarray, perm: list[int]) -> np.ndarray:
    from samfpga.hw.custom_ops.transforms import block_swaps

    cur, shape = list(range(x.ndim)), list(x.shape)
    for pos, k in block_swaps(perm):
        batch = [shape[a] for a in cur[:pos]]
        i_dim, j_dim = int(np.prod([shape[a] for a in cur[pos:k]])), int(np.prod([shape[a] for a in cur[k:]]))
        x = np.swapaxes(x.reshape(*batch, i_dim, j_dim), -1, -2)
        cur = cur[:pos] + cur[k:] + cur[pos:k]
    return x.reshape([shape[a] for a in perm])


@pytest.mark.parametrize("rank", [3, 4, 5])
def test_block_swaps_equal_transpose(rank):
    from samfpga.hw.custom_ops.transforms import block_swaps

    shape = [2, 3, 4, 5, 6][:rank]
    x = np.arange(np.prod(shape)).reshape(shape)
    for head in itertools.permutations(range(rank - 1)):
        perm = [*head, rank - 1]
        assert len(block_swaps(perm)) <= rank - 1
        np.testing.assert_array_equal(_apply_swaps(x, perm), np.transpose(x, perm))


@pytest.mark.parametrize("shape,perm,simd", [
    ((1, 8, 2, 4), (0, 2, 1, 3), 2),               # attention head split
    ((1, 2, 2, 2, 2, 4), (0, 1, 3, 2, 4, 5), 1),   # window partition
    ((1, 2, 4, 6, 2), (0, 3, 1, 2, 4), 2),         # a 3-cycle of outer axes
])
def test_rewrite_executes_like_outer_shuffle(shape, perm, simd):
    boot_finn()
    from finn.core.onnx_exec import execute_onnx
    from finn.transformation.fpgadataflow.convert_to_hw.shuffle import InferShuffle
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from finn.transformation.fpgadataflow.transpose_decomposition import (
        InferInnerOuterShuffles,
        ShuffleDecomposition,
    )
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.basic import qonnx_make_model

    from samfpga.hw.custom_ops.transforms import OuterShuffleToInnerShuffles

    out = [shape[p] for p in perm]
    g = helper.make_graph([helper.make_node("Transpose", ["x"], ["y"], perm=list(perm))], "t",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)])
    m = ModelWrapper(qonnx_make_model(g))
    m.set_tensor_datatype("x", DataType["INT8"])
    m = m.transform(InferShapes()).transform(InferDataTypes()).transform(InferShuffle(_filter=lambda m, n: True))
    for n in m.get_nodes_by_op_type("Shuffle"):
        getCustomOp(n).set_nodeattr("SIMD", simd)
    m = m.transform(ShuffleDecomposition()).transform(InferInnerOuterShuffles())
    assert "OuterShuffle" in [n.op_type for n in m.graph.node]
    x = nodes._rand("INT8", shape, np.random.default_rng(0))
    ref = execute_onnx(m, {"x": x})["y"]
    np.testing.assert_array_equal(ref, np.transpose(x, perm))
    own = m.transform(OuterShuffleToInnerShuffles())
    assert "OuterShuffle" not in [n.op_type for n in own.graph.node]
    np.testing.assert_array_equal(execute_onnx(own, {"x": x})["y"], ref)
    spec = own.transform(SpecializeLayers(nodes.ZYNQ_PART))
    assert all(n.op_type.endswith("_rtl") for n in spec.graph.node), [n.op_type for n in spec.graph.node]
    # the same on a graph FINN has already specialised (OuterShuffle_hls), as after its transpose_decomposition step
    hls = m.transform(SpecializeLayers(nodes.ZYNQ_PART))
    assert "OuterShuffle_hls" in [n.op_type for n in hls.graph.node]
    rtl = hls.transform(OuterShuffleToInnerShuffles()).transform(SpecializeLayers(nodes.ZYNQ_PART))
    assert all(n.op_type.endswith("_rtl") for n in rtl.graph.node), [n.op_type for n in rtl.graph.node]
