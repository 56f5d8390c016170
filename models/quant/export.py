"""QONNX export of the quantized encoder with qonnx's cleanup."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from brevitas.export import export_qonnx as _brevitas_export_qonnx
from torch import nn

from . import compat  # noqa: F401


def export_qonnx(qmodel: nn.Module, path: str | Path, input_shape: tuple[int, ...]) -> Path:
    """Write ``qmodel`` as a cleaned-up QONNX graph to ``path`` and return the path.

    ``input_shape``: (B,3,S,S) of the float input. The graph has one input ``global_in`` (float32, that shape)
    and one output ``global_out``; quantization is expressed by QONNX ``Quant`` nodes, weights are float
    initializers behind ``Quant`` nodes. Cleanup: qonnx ``cleanup_model`` (InferShapes, FoldConstants,
    unique/readable names, unused tensors removed). The file is written to a temporary name and renamed.
    """
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.cleanup import cleanup_model

    path = Path(path)
    if len(input_shape) != 4:
        raise ValueError(f"export_qonnx: input_shape must be (B,C,H,W), got {tuple(input_shape)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    qmodel.eval()
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent, prefix=f".{path.stem}.")
    os.close(fd)
    try:
        with torch.no_grad():
            _brevitas_export_qonnx(qmodel, torch.zeros(*input_shape), tmp)
        model = cleanup_model(ModelWrapper(tmp))
        model = model.transform(InferShapes())
        model = model.transform(InferDataTypes())
        model = model.transform(GiveUniqueNodeNames())
        model = model.transform(GiveReadableTensorNames())
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if os.path.exists(tmp + ".data"):
            os.unlink(tmp + ".data")
    return path
