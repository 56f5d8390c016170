"""StreamingSplit_rtl: RTL variant of FINN's StreamingSplit (the q/k/v split), hw/samfpga/hw/rtl/stream_split.sv.

Python execution is FINN's own (``np.split`` along the channels: a routing, nothing computed).
"""

from __future__ import annotations

from finn.custom_op.fpgadataflow.rtl import register_custom_op
from finn.custom_op.fpgadataflow.split import StreamingSplit

from samfpga.hw.custom_ops.rtl_base import OwnRTLBackend, core_instance_text


@register_custom_op
class StreamingSplit_rtl(StreamingSplit, OwnRTLBackend):
    """Routes the SIMD-wide beats of each vector to the outputs in turn, ``ChannelsPerStream[i] / SIMD`` each."""

    RTL_SOURCES = ("stream_split.sv",)

    def verify_node(self) -> list[str]:
        simd = self.get_nodeattr("SIMD")
        bad = [c for c in self.get_nodeattr("ChannelsPerStream") if simd <= 0 or c % simd]
        return [f"StreamingSplit_rtl: SIMD={simd} must divide every ChannelsPerStream, not {bad}"] if bad else []

    def core_instance(self, model) -> str:
        msgs = self.verify_node()
        if msgs:
            raise ValueError(f"{self.onnx_node.name}: {msgs[0]}")
        n, w = self.get_n_outputs(), self.get_instream_width_padded()
        simd = self.get_nodeattr("SIMD")
        # packed array literal: element N-1 first
        beats = "{" + ", ".join(f"32'd{c // simd}" for c in reversed(self.get_nodeattr("ChannelsPerStream"))) + "}"
        return core_instance_text("stream_split", f".N({n}), .WIDTH({w}), .BEATS({beats})", {"s": "in0"},
                                  fanout=(n, w))
