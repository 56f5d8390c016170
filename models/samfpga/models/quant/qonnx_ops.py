"""QONNX custom ops of the quantized model's integer LayerNorm and softmax (``QuantConfig(int_norm=True)``).

The domain of these nodes is this module (qonnx finds an op by importing its node's domain and reading
``custom_op``), so qonnx's and FINN's python execution run them without any registration step. Their arithmetic
is the numpy kernels' (``samfpga.kernels.layernorm`` / ``.softmax``); the PyTorch modules of
``samfpga.models.quant.int_norm`` export to them and compute the same kernels, so Brevitas vs QONNX is exact.
``samfpga.hw.build.int_ops`` turns them into the HW layers IntLayerNorm / IntSoftmax (same attributes).

``QIntLayerNorm(x, gamma, beta)``: x (..., C) integers (a float tensor holding them; the export puts the input
quantizer's ``Mul(1/scale)`` in front), gamma / beta (C,) float initializers; attributes eps_int, frac_bits,
out_bits, lut_bits, r_bits (``IntLayerNormParams``). Output (..., C) float32:
``layernorm_affine(int_layernorm(x), gamma, beta)`` (samfpga.kernels.int_params), channels with gamma < 0 negated
inside the integer layer.
``QIntSoftmax(a[, bias])``: a (..., n) integer logits, bias an int64 (rows, n) initializer (the folded
relative-position bias, ``IntSoftmaxParams.bias``); attributes mult, pre_shift, out_num, recip_bits, out_bits,
exp_frac_bits, exp_bits. Output (..., n) unsigned integers (datatype UINT<out_bits>); the export puts the
output quantizer's ``Mul(scale)`` behind it.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.base import CustomOp

from samfpga.kernels.int_params import layernorm_affine
from samfpga.kernels.layernorm import IntLayerNormParams, int_layernorm
from samfpga.kernels.softmax import IntSoftmaxParams, int_softmax

DOMAIN = __name__


class _ShapePreserving(CustomOp):
    def make_shape_compatible_op(self, model):
        node = self.onnx_node
        return helper.make_node("Identity", [node.input[0]], [node.output[0]])

    def _int_input(self, context) -> np.ndarray:
        x = np.asarray(context[self.onnx_node.input[0]], dtype=np.float64)
        if not np.array_equal(x, np.round(x)):
            raise ValueError(f"{self.onnx_node.op_type} {self.onnx_node.name}: input {self.onnx_node.input[0]} "
                             "holds non-integer values (is its input quantizer's scale a power of two?)")
        return x


class QIntLayerNorm(_ShapePreserving):
    """Integer LayerNorm over the last axis plus gamma/beta (module doc)."""

    def get_nodeattr_types(self) -> dict:
        return {
            "eps_int": ("i", True, 0),
            "frac_bits": ("i", True, 8),
            "out_bits": ("i", True, 14),
            "lut_bits": ("i", True, 10),
            "r_bits": ("i", True, 16),
        }

    def params(self, gamma: np.ndarray) -> IntLayerNormParams:
        g = np.asarray(gamma, dtype=np.float64).ravel()
        return IntLayerNormParams(
            channels=g.size, eps_int=self.get_nodeattr("eps_int"), frac_bits=self.get_nodeattr("frac_bits"),
            out_bits=self.get_nodeattr("out_bits"), lut_bits=self.get_nodeattr("lut_bits"),
            r_bits=self.get_nodeattr("r_bits"), negate=tuple(int(v < 0) for v in g) if (g < 0).any() else None)

    def infer_node_datatype(self, model) -> None:
        model.set_tensor_datatype(self.onnx_node.output[0], DataType["FLOAT32"])

    def execute_node(self, context, graph) -> None:
        node = self.onnx_node
        gamma, beta = context[node.input[1]], context[node.input[2]]
        z = int_layernorm(self._int_input(context), self.params(gamma))
        context[node.output[0]] = layernorm_affine(z, gamma, beta, self.get_nodeattr("frac_bits"))

    def verify_node(self) -> list[str]:
        return [] if len(self.onnx_node.input) == 3 else ["QIntLayerNorm needs inputs x, gamma, beta"]


class QIntSoftmax(_ShapePreserving):
    """Integer softmax over the last axis with the logit scale, bias and output quantizer folded in (module doc)."""

    def get_nodeattr_types(self) -> dict:
        return {
            "mult": ("i", True, 1),
            "pre_shift": ("i", True, 1),
            "out_num": ("i", True, 1),
            "recip_bits": ("i", True, 1),
            "out_bits": ("i", True, 8),
            "exp_frac_bits": ("i", True, 6),
            "exp_bits": ("i", True, 16),
        }

    def params(self, n: int, bias: np.ndarray | None) -> IntSoftmaxParams:
        return IntSoftmaxParams(
            n=n, mult=self.get_nodeattr("mult"), pre_shift=self.get_nodeattr("pre_shift"),
            out_num=self.get_nodeattr("out_num"), recip_bits=self.get_nodeattr("recip_bits"),
            out_bits=self.get_nodeattr("out_bits"), exp_frac_bits=self.get_nodeattr("exp_frac_bits"),
            exp_bits=self.get_nodeattr("exp_bits"), bias=bias)

    def infer_node_datatype(self, model) -> None:
        model.set_tensor_datatype(self.onnx_node.output[0], DataType[f"UINT{self.get_nodeattr('out_bits')}"])

    def execute_node(self, context, graph) -> None:
        node = self.onnx_node
        a = self._int_input(context)
        bias = None
        if len(node.input) > 1 and node.input[1]:
            bias = np.asarray(context[node.input[1]])
            if not np.issubdtype(bias.dtype, np.integer):
                raise ValueError(f"QIntSoftmax {node.name}: bias table {node.input[1]} must be an integer "
                                 f"initializer (its entries exceed float32's 24-bit mantissa), got {bias.dtype}")
            bias = bias.astype(np.int64)
        context[node.output[0]] = int_softmax(a, self.params(a.shape[-1], bias)).astype(np.float32)

    def verify_node(self) -> list[str]:
        return []


custom_op = {"QIntLayerNorm": QIntLayerNorm, "QIntSoftmax": QIntSoftmax}
