"""QONNX export of the quantized encoder with qonnx's cleanup."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from brevitas.export import export_qonnx as _brevitas_export_qonnx
from torch import nn

from . import compat  # noqa: F401
from .rounding import HALF_UP, RoundHalfUpSte


def activation_rounding(qmodel: nn.Module) -> str | None:
    """``"half_up"`` when every enabled activation quantizer of ``qmodel`` rounds with ``RoundHalfUpSte``, None when
    none does (Brevitas' own modes, exported as they are); a mix is an error (the export could not tell them apart)."""
    from brevitas.proxy.runtime_quant import ActQuantProxyFromInjector

    kinds = set()
    for m in qmodel.modules():
        if isinstance(m, ActQuantProxyFromInjector) and m.is_quant_enabled:
            impl = m.fused_activation_quant_proxy.tensor_quant.int_quant.float_to_int_impl
            kinds.add(isinstance(impl, RoundHalfUpSte))
    if kinds == {True, False}:
        raise ValueError("export_qonnx: activation quantizers mix round-half-up and other rounding modes")
    return HALF_UP if kinds == {True} else None


def half_up_as_floor(model):
    """Every activation ``Quant`` (input not an initializer) written as ``Add(x, scale/2) -> Quant(FLOOR)``: QONNX's
    ``floor((x + s/2)/s)`` equals Brevitas' ``floor(x/s + 0.5)`` (exact for power-of-two ``s``); see ``.rounding``.
    Only per-tensor (scalar) scales, as the encoder's activation quantizers have."""
    from onnx import helper
    from qonnx.custom_op.registry import getCustomOp

    g = model.graph
    for n in [n for n in g.node if n.op_type == "Quant"]:
        if model.get_initializer(n.input[0]) is not None:
            continue  # weight quantizer: values pre-quantized by Brevitas, rounding irrelevant
        scale = model.get_initializer(n.input[1])
        if scale is None or scale.size != 1:
            raise ValueError(f"export_qonnx: activation Quant {n.name} needs a constant scalar scale, got {scale}")
        half = model.make_new_valueinfo_name()
        model.set_initializer(half, (scale.astype("float32") / 2).reshape(scale.shape))
        mid = model.make_new_valueinfo_name()
        g.node.insert(list(g.node).index(n), helper.make_node("Add", [n.input[0], half], [mid], name=f"{n.name}_half"))
        n.input[0] = mid
        getCustomOp(n).set_nodeattr("rounding_mode", "FLOOR")
    return model


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
        if activation_rounding(qmodel) == HALF_UP:
            model = half_up_as_floor(model)
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


def op_census(path: str | Path) -> dict[str, int]:
    """``{op_type: count}`` of an ONNX file's graph, most frequent first."""
    import collections

    import onnx

    counts = collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    return dict(counts.most_common())


def compare_with_qonnx(qmodel: nn.Module, path: str | Path, x: torch.Tensor) -> dict[str, float]:
    """Run the exported graph under qonnx execution and the Brevitas model on ``x`` ((1,3,S,S) float).

    Returns the fraction of output elements that differ and the largest difference, in units of the
    output quantizer's step (``lsb``) when the model has one.
    """
    import numpy as np
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    mw = ModelWrapper(str(path))
    out = execute_onnx(mw, {mw.graph.input[0].name: x.numpy()})[mw.graph.output[0].name]
    with torch.no_grad():
        ref = qmodel(x).numpy()
    if out.shape != ref.shape:
        raise ValueError(f"{path}: output shape {out.shape} differs from the Brevitas model's {ref.shape}")
    res = {"elements": int(ref.size), "mismatch_fraction": float((out != ref).mean()),
           "max_abs_diff": float(np.abs(out - ref).max())}
    sites = getattr(qmodel, "quant_sites", {}).get("act", {})
    if "output" in sites:
        lsb = float(sites["output"].act_quant.scale())
        res["max_diff_lsb"] = res["max_abs_diff"] / lsb
    return res
