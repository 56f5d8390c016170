"""DepthwiseVVAU: FINN's VVAU (depthwise convolution, no activation) with the project's fabric RTL for Zynq.

FINN+'s ``VVAU_rtl`` needs Versal DSP58; on Zynq UltraScale+ a VVAU specialises to HLS. ``DepthwiseVVAU`` keeps
FINN's VVAU attributes, shapes, folding and accumulator minimisation (it subclasses FINN's
``VectorVectorActivation``) and computes through ``samfpga.kernels.vvau``; ``DepthwiseVVAU_rtl`` wraps
hw/samfpga/hw/rtl/dw_vvau.sv with the weights as a wrapper constant. Supported: integer inputs and weights,
``noActivation=1`` (FINN's standalone-threshold mode: the thresholds are a separate Thresholding layer).
In a rolled body the layer may serve several blocks with their own weights (``samfpga.hw.custom_ops.looped``:
the weight initializer, input 1, per iteration); the wrapper then holds every set and the RTL counts its passes.
"""

from __future__ import annotations

import numpy as np
from finn.custom_op.fpgadataflow import register_custom_op as register_hw_op
from finn.custom_op.fpgadataflow.rtl import register_custom_op as register_rtl_op
from finn.custom_op.fpgadataflow.vectorvectoractivation import VVAU

from samfpga.hw.custom_ops import looped
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
class DepthwiseVVAU(looped.LoopedAttrs, VVAU):
    """FINN's VVAU semantics (depthwise conv, accumulators out), python execution by ``samfpga.kernels.vvau``."""

    # what the RTL takes per iteration of a rolled body (samfpga.hw.custom_ops.looped): the weights, input 1
    LOOP_ATTRS = ()
    LOOP_INPUTS = {"weights": 1}

    def pass_tokens(self) -> int:
        """Output pixels of one pass (``looped.tokens_per_pass``): Dim[0] x Dim[1]."""
        dim_h, dim_w = self.get_nodeattr("Dim")
        return int(dim_h * dim_w)

    def verify_node(self) -> list[str]:
        reason = unsupported_reason(self)
        return [f"DepthwiseVVAU: unsupported {reason}"] if reason else []

    def kernel_weights(self, model_or_graph, iteration: int | None = None) -> np.ndarray:
        """Weights as (Channels, Kh*Kw) from the (C, 1, Kh, Kw) initializer, or of a looped layer's
        ``iteration`` (its ``loop_values``)."""
        init = self.onnx_node.input[1]
        if iteration is not None and looped.iterations(self) > 1:
            w = np.asarray(looped.iteration_attrs(self, iteration)["weights"], dtype=np.float32)
        else:
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
        weight of channel nf*PE + p at kernel position sf*SIMD + s (two's complement, W_BITS each); a looped
        layer's iteration i follows at word i*NF*SF."""
        pe, simd = self.get_nodeattr("PE"), self.get_nodeattr("SIMD")
        wdt = self.get_input_datatype(1)
        bits = wdt.bitwidth()
        n = looped.iterations(self)
        sets = [self.kernel_weights(model, i if n > 1 else None).astype(np.int64) for i in range(n)]  # (C, K)
        parts = []
        for i, w in enumerate(sets):
            if w.min() < wdt.min() or w.max() > wdt.max():
                where = f" (iteration {i})" if n > 1 else ""
                raise ValueError(f"{self.onnx_node.name}: weights{where} outside {wdt.name}")
            ch, k = w.shape
            # (NF, PE, SF, SIMD) -> (NF, SF, SIMD, PE): word-major, then element s*PE + p
            parts.append(w.reshape(ch // pe, pe, k // simd, simd).transpose(0, 2, 3, 1).reshape(-1))
        order = np.concatenate(parts)
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
        n = looped.iterations(self)
        tokens = looped.tokens_per_pass(self) if n > 1 else 1
        params = (f".PE({pe}), .SIMD({simd}), .SF({kh * kw // simd}), .NF({ch // pe}), "
                  f"{dt_params('A', self.get_input_datatype(0))}, {dt_params('W', self.get_input_datatype(1))}, "
                  f".ACC_BITS({self.get_output_datatype().bitwidth()}), .ITERS({n}), .TOKENS({tokens}),\n"
                  f"\t\t.WEIGHTS({self.weight_words(model)})")
        return core_instance_text("dw_vvau", params, {"s": "in0", "m": "out0"})
