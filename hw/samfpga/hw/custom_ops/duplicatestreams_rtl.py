"""DuplicateStreams_rtl: RTL variant of FINN's DuplicateStreams (hw/samfpga/hw/rtl/duplicate_streams.sv)."""

from __future__ import annotations

from finn.custom_op.fpgadataflow.duplicatestreams import DuplicateStreams
from finn.custom_op.fpgadataflow.rtl import register_custom_op

from samfpga.hw.custom_ops.rtl_base import OwnRTLBackend, core_instance_text


@register_custom_op
class DuplicateStreams_rtl(DuplicateStreams, OwnRTLBackend):
    """Copies every input beat to ``NumOutputStreams`` outputs; python model = FINN's DuplicateStreams."""

    RTL_SOURCES = ("duplicate_streams.sv",)

    def core_instance(self, model) -> str:
        n, w = self.get_num_output_streams(), self.get_instream_width_padded()
        return core_instance_text("duplicate_streams", f".N({n}), .WIDTH({w})", {"s": "in0"}, fanout=(n, w))
