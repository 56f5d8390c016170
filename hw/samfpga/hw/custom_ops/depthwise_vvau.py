"""DepthwiseVVAU: FINN's VVAU (depthwise convolution, no activation) with the project's fabric RTL for Zynq.

FINN+'s ``VVAU_rtl`` needs Versal DSP58; on Zynq UltraScale+ a VVAU specialises to HLS. ``DepthwiseVVAU`` keeps
FINN's VVAU attributes, shapes, folding and accumulator minimisation (it subclasses FINN's
``VectorVectorActivation``) and computes through ``samfpga.kernels.vvau``; ``DepthwiseVVAU_rtl`` wraps
hw/samfpga/hw/rtl/dw_vvau.sv with the weights as a wrapper constant. Supported: integer inputs and weights,
``noActivation=1`` (FINN's standalone-threshold mode: the thresholds are a separate Thresholding layer).
"""

from __future__ import annotations

import numpy as np
from finn.custom_op.fpgadataflow import register_custom_op as register_hw_op
from finn.custom_op.fpgadataflow.rtl import register_custom_op as register_rtl_op
from finn.custom_op.fpgadataflow.vectorvectoractivation import VVAU

from samfpga.hw.custom_ops.rtl_base import (
    OwnRTLBackend,
    check_output_range,
    core_instance_text,
    dt_params,
    initializer,
)
from samfpga.kernels import vvau as kernel


def unsupported_reason(op: VVAU) -> str:
    """Why the own RTL cannot implement this VVAU ('' when it can)."""
    if op.get_nodeattr("noActivation") != 1:
        return "fused thresholds (noActivation=0)"
    for i in (0, 1):
        dt = op.get_input_datatype(i)
        if not dt.is_integer() or dt.name == "BIPOLAR":
            return f"input {i} datatype {dt.name} is not a plain integer type"
    if op.get_nodeattr("mem_mode") == "external":
        return "external weight stream (mem_mode=external)"
    return ""


@register_hw_op
class DepthwiseVVAU(VVAU):
    """FINN's VVAU semantics (depthwise conv, accumulators out), python execution by ``samfpga.kernels.vvau``."""

    def verify_node(self) -> list[str]:
        reason = unsupported_reason(self)
        return [f"DepthwiseVVAU: unsupported {reason}"] if reason else []

    def kernel_weights(self, model_or_graph) -> np.ndarray:
        """Weights as (Channels, Kh*Kw) from the (C, 1, Kh, Kw) initializer."""
        init = self.onnx_node.input[1]
        w = initializer(model_or_graph, init)
        if w is None:
            raise ValueError(f"{self.onnx_node.name}: weight initializer {init!r} not found")
        ch = self.get_nodeattr("Channels")
        kh, kw = self.get_nodeattr("Kernel")
        if w.shape != (ch, 1, kh, kw):
            raise ValueError(f"{self.onnx_node.name}: weights of shape {w.shape}, expected {(ch, 1, kh, kw)}")
        return w.reshape(ch, kh * kw)

    def execute_node(self, context, graph) -> None:
        reason = unsupported_reason(self)
        if reason:
            raise ValueError(f"{self.onnx_node.name}: DepthwiseVVAU does not support {reason}")
        node = self.onnx_node
        x = context[node.input[0]]
        ch = self.get_nodeattr("Channels")
        kh, kw = self.get_nodeattr("Kernel")
        # exactly as FINN's VVAU: behind the abstract sliding-window generator (Im2Col / ConvolutionInputGenerator)
        # the window is in (K, C) order; otherwise (standalone, or behind a specialised ConvolutionInputGenerator_rtl,
        # whose python execution emits the hardware order) in the folded stream order with PE channels interleaved
        producer = [n for n in graph.node if node.input[0] in n.output]
        from_swg = bool(producer) and producer[0].op_type in ("Im2Col", "ConvolutionInputGenerator")
        pe = ch if from_swg else self.get_nodeattr("PE")
        out = kernel.depthwise(kernel.window_to_kc(x, ch, kh * kw, pe), self.kernel_weights(graph))
        check_output_range(node.name, out, self.get_output_datatype())
        context[node.output[0]] = out.astype(np.float32).reshape(self.get_normal_output_shape())


@register_rtl_op
class DepthwiseVVAU_rtl(DepthwiseVVAU, OwnRTLBackend):
    """RTL variant: hw/samfpga/hw/rtl/dw_vvau.sv, one input beat per cycle (FINN's VVAU cycle count)."""

    RTL_SOURCES = ("dw_vvau.sv",)

    def num_stream_inputs(self) -> int:
        return 1  # the weights are constants of the wrapper

    def weight_words(self, model) -> str:
        """The WEIGHTS parameter as a hex literal: word nf*SF + sf holds SIMD*PE weights, element s*PE + p =
        weight of channel nf*PE + p at kernel position sf*SIMD + s (two's complement, W_BITS each)."""
        w = self.kernel_weights(model).astype(np.int64)  # (C, K)
        ch, k = w.shape
        pe, simd = self.get_nodeattr("PE"), self.get_nodeattr("SIMD")
        wdt = self.get_input_datatype(1)
        bits = wdt.bitwidth()
        if w.min() < wdt.min() or w.max() > wdt.max():
            raise ValueError(f"{self.onnx_node.name}: weights outside {wdt.name}")
        # (NF, PE, SF, SIMD) -> (NF, SF, SIMD, PE): word-major, then element s*PE + p
        order = w.reshape(ch // pe, pe, k // simd, simd).transpose(0, 2, 3, 1).reshape(-1)
        value = 0
        for i, v in enumerate(order.tolist()):
            value |= (int(v) & ((1 << bits) - 1)) << (i * bits)
        return f"{len(order) * bits}'h{value:x}"

    def core_instance(self, model) -> str:
        if self.get_nodeattr("mem_mode") != "internal_embedded":
            raise ValueError(f"{self.onnx_node.name}: DepthwiseVVAU_rtl embeds its weights in the wrapper; set "
                             f"mem_mode=internal_embedded (got {self.get_nodeattr('mem_mode')})")
        pe, simd = self.get_nodeattr("PE"), self.get_nodeattr("SIMD")
        ch = self.get_nodeattr("Channels")
        kh, kw = self.get_nodeattr("Kernel")
        params = (f".PE({pe}), .SIMD({simd}), .SF({kh * kw // simd}), .NF({ch // pe}), "
                  f"{dt_params('A', self.get_input_datatype(0))}, {dt_params('W', self.get_input_datatype(1))}, "
                  f".ACC_BITS({self.get_output_datatype().bitwidth()}),\n\t\t.WEIGHTS({self.weight_words(model)})")
        return core_instance_text("dw_vvau", params, {"s": "in0", "m": "out0"})
