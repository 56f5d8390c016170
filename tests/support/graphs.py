"""Small hand-built ONNX graphs for the streamlining tests (test_finn_streamline, test_channels_last), HW-layer
graphs with every shape given (test_window_residual, test_rolled) and a single-Shuffle graph
(test_own_rtl_permute, test_fit_memory)."""

from __future__ import annotations

import numpy as np


def tiny_graph(nodes, inputs, output, inits, dtypes):
    """ModelWrapper of ``nodes`` with float inputs ``inputs`` {name: shape}, one output (shape inferred),
    initializers ``inits`` {name: array} and QONNX datatypes ``dtypes`` {tensor: name}."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.basic import qonnx_make_model

    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info(k, TensorProto.FLOAT, v) for k, v in inputs.items()],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)])
    model = ModelWrapper(qonnx_make_model(graph))
    for k, v in inits.items():
        model.set_initializer(k, np.asarray(v, dtype=np.float32 if k != "shape" else np.int64))
    for k, v in dtypes.items():
        model.set_tensor_datatype(k, DataType[v])
    return model.transform(InferShapes()).transform(InferDataTypes())


def hw_graph(nodes, shapes, inputs, outputs, inits, dtypes, name: str = "t"):
    """ModelWrapper of ``nodes`` with every tensor's shape given in ``shapes`` {tensor: shape} (ONNX shape
    inference sees neither HW custom ops nor a fork's second output), float inputs/outputs named in ``inputs`` /
    ``outputs``, float32 initializers ``inits`` {name: array} and QONNX datatypes ``dtypes`` {tensor: name}."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    def info(t):
        return helper.make_tensor_value_info(t, TensorProto.FLOAT, shapes[t])

    graph = helper.make_graph(nodes, name, [info(t) for t in inputs], [info(t) for t in outputs],
                              value_info=[info(t) for t in shapes if t not in inputs and t not in outputs])
    model = ModelWrapper(qonnx_make_model(graph))
    for k, v in inits.items():
        model.set_initializer(k, np.asarray(v, dtype=np.float32))
    for k, v in dtypes.items():
        model.set_tensor_datatype(k, DataType[v])
    return model


def thresholds(channels: int) -> np.ndarray:
    return np.sort(np.random.default_rng(0).uniform(-2, 2, size=(channels, 15)), axis=1)


def shuffle_model(shape, perm, simd, reshape_to=None):
    """ModelWrapper of one FINN ``Shuffle`` (INT8): a Transpose ``perm`` of ``shape`` (after a Reshape to
    ``reshape_to`` when given), folded at ``simd``."""
    from finn.transformation.fpgadataflow.convert_to_hw.shuffle import InferShuffle
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.basic import qonnx_make_model

    logical = reshape_to or shape
    out = [logical[p] for p in perm]
    nodes_, inits, t = [], [], "x"
    if reshape_to:
        inits.append(helper.make_tensor("s", TensorProto.INT64, [len(logical)], list(logical)))
        nodes_.append(helper.make_node("Reshape", ["x", "s"], ["r"]))
        t = "r"
    nodes_.append(helper.make_node("Transpose", [t], ["y"], perm=list(perm)))
    g = helper.make_graph(nodes_, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)], initializer=inits)
    m = ModelWrapper(qonnx_make_model(g))
    m.set_tensor_datatype("x", DataType["INT8"])
    m = m.transform(InferShapes()).transform(InferDataTypes()).transform(InferShuffle(_filter=lambda m, n: True))
    for n in m.get_nodes_by_op_type("Shuffle"):
        getCustomOp(n).set_nodeattr("SIMD", simd)
    return m
