"""Small hand-built ONNX graphs for the streamlining tests (test_finn_streamline, test_channels_last)."""

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


def thresholds(channels: int) -> np.ndarray:
    return np.sort(np.random.default_rng(0).uniform(-2, 2, size=(channels, 15)), axis=1)
