"""The build's speed-ups give the same graphs as the qonnx/FINN+ code they replace (hw/samfpga/hw/build/
fast_names.py; FastStreamline is checked in tests/test_finn_streamline.py): serialized models compared byte for
byte."""

from __future__ import annotations

import random

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper


def _graph_with_edge_cases():
    """A small graph with what renaming must get right: a shared initializer (renamed once per user, the last
    wins), a node using one tensor twice (qonnx renames only the first slot), a dangling value_info, a
    quantization annotation, two graph outputs, a node with two outputs, a node name reused."""
    from qonnx.core.modelwrapper import ModelWrapper

    w = numpy_helper.from_array(np.arange(4, dtype=np.float32).reshape(2, 2), "w")
    b = numpy_helper.from_array(np.ones(2, np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "b"], ["h2"], name="add"),
        helper.make_node("Mul", ["h2", "h2"], ["sq"], name="sq"),
        helper.make_node("MatMul", ["sq", "w"], ["y"], name="mm2"),
        helper.make_node("Split", ["y"], ["s0", "s1"], name="split", axis=1, num_outputs=2),
        helper.make_node("Add", ["s0", "b1"], ["o1"], name="add"),
        helper.make_node("Relu", ["s1"], ["o2"], name="relu"),
    ]
    b1 = numpy_helper.from_array(np.ones((1, 1), np.float32), "b1")
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("o1", TensorProto.FLOAT, [1, 1]),
         helper.make_tensor_value_info("o2", TensorProto.FLOAT, [1, 1])],
        [w, b, b1],
        value_info=[helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in ("h", "h2", "sq", "y", "s0", "s1",
                                                                                       "gone")],
    )
    qa = onnx.TensorAnnotation(tensor_name="h2")
    qa.quant_parameter_tensor_names.add(key="finn_datatype", value="INT8")
    g.quantization_annotation.append(qa)
    return ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]))


def _outcome(model, transformation) -> bytes | str:
    """The serialized result, or the exception's type name (qonnx's cleanup names copies of shared
    initializers with ``random``: seeded alike)."""
    random.seed(0)
    try:
        return model.transform(transformation).model.SerializeToString()
    except Exception as e:  # noqa: BLE001 - the same failure is the same outcome
        return type(e).__name__


@pytest.mark.parametrize("unique_node_names", [True, False])
def test_fast_readable_names_are_qonnx_names(unique_node_names: bool) -> None:
    from qonnx.transformation.general import (
        GiveReadableTensorNames,
        GiveUniqueNodeNames,
        GiveUniqueTensorNames,
    )

    from samfpga.hw.build.fast_names import FastReadableTensorNames, FastUniqueTensorNames

    model = _graph_with_edge_cases()
    if unique_node_names:
        model = model.transform(GiveUniqueNodeNames())
    a, b = _outcome(model, GiveReadableTensorNames()), _outcome(model, FastReadableTensorNames())
    assert a == b
    if unique_node_names:
        assert b"global_in" in a  # it did rename
    else:
        assert a == "AssertionError"  # the reused node name "add" collides: qonnx's cleanup refuses, so does ours
    a, b = _outcome(model, GiveUniqueTensorNames()), _outcome(model, FastUniqueTensorNames())
    assert a == b and b"tensor_0" in a


def test_fast_sort_graph_is_qonnx_sort_graph() -> None:
    """Node order after sorting a shuffled graph (and a sorted one), and the qonnx classes restored after
    ``speedups.installed``."""
    import copy

    from qonnx.transformation.general import GiveUniqueNodeNames, SortGraph

    from samfpga.hw.build.fast_sort import FastSortGraph
    from samfpga.hw.build.speedups import installed

    model = _graph_with_edge_cases().transform(GiveUniqueNodeNames())
    for seed in range(4):
        m = copy.deepcopy(model)
        nodes = list(m.graph.node)
        random.Random(seed).shuffle(nodes)
        del m.graph.node[:]
        m.graph.node.extend(nodes)
        a, b = copy.deepcopy(m), copy.deepcopy(m)
        SortGraph().apply(a)
        FastSortGraph().apply(b)
        assert a.model.SerializeToString() == b.model.SerializeToString()
        assert b.graph.node[0].input[0] == "x"  # sorted: the graph input's consumer first
    original = SortGraph.apply
    with installed():
        assert SortGraph.apply is FastSortGraph.apply
    assert SortGraph.apply is original


@pytest.mark.parametrize("fix", [False, True])
def test_fast_shape_check_is_qonnx_shape_check(fix: bool) -> None:
    """Same answer and same value_info added: initializers without a value_info, an activation without one, and a
    tensor with two (qonnx's AssertionError)."""
    import copy

    from samfpga.hw.build.fast_shapes import check_all_tensor_shapes_specified

    model = _graph_with_edge_cases()
    for drop in (("gone", "w", "b", "b1"), ("gone", "sq", "w", "b", "b1")):  # ModelWrapper() added the w, b, b1
        m = copy.deepcopy(model)
        keep = [v for v in m.graph.value_info if v.name not in drop]
        del m.graph.value_info[:]
        m.graph.value_info.extend(keep)
        a, b = copy.deepcopy(m), copy.deepcopy(m)
        ra = a.check_all_tensor_shapes_specified(fix_missing_init_shape=fix)
        rb = check_all_tensor_shapes_specified(b, fix_missing_init_shape=fix)
        assert ra == rb == ("sq" not in drop)
        assert a.model.SerializeToString() == b.model.SerializeToString()
        assert fix == ("w" in [v.name for v in b.graph.value_info])  # the initializers' shapes were added
    m = copy.deepcopy(model)
    m.graph.value_info.append(copy.deepcopy(m.graph.value_info[0]))
    with pytest.raises(AssertionError, match="Multiple ValueInfoProto"):
        m.check_all_tensor_shapes_specified(fix_missing_init_shape=fix)
    with pytest.raises(AssertionError, match="Multiple ValueInfoProto"):
        check_all_tensor_shapes_specified(m, fix_missing_init_shape=fix)
