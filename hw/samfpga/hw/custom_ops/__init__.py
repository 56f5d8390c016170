"""Own RTL blocks registered as FINN+ custom ops (python execution model + HDL generation).

Importing this package registers, in FINN's own registries (so ``getCustomOp`` and ``SpecializeLayers`` find them):
    AddStreams            (domain finn.custom_op.fpgadataflow)      integer residual add of two streams
    AddStreams_rtl        (domain finn.custom_op.fpgadataflow.rtl)  its RTL variant, hw/samfpga/hw/rtl/add_streams.sv
    DuplicateStreams_rtl  (domain finn.custom_op.fpgadataflow.rtl)  RTL variant of FINN's DuplicateStreams,
                                                                     hw/samfpga/hw/rtl/duplicate_streams.sv
    IntLayerNorm(_rtl)    integer LayerNorm (integer statistics + rsqrt table), hw/samfpga/hw/rtl/int_layernorm.sv
    IntSoftmax(_rtl)      integer softmax with logit scale, attention bias and output quantizer folded in,
                          hw/samfpga/hw/rtl/int_softmax.sv
FINN+ has only HLS (or Versal DSP58) implementations of these for Zynq UltraScale+.
"""

from samfpga.hw.custom_ops import int_cost  # noqa: F401  (registers the own cost model of the Int* ops)
from samfpga.hw.custom_ops.addstreams import AddStreams, AddStreams_rtl
from samfpga.hw.custom_ops.duplicatestreams_rtl import DuplicateStreams_rtl
from samfpga.hw.custom_ops.intlayernorm import IntLayerNorm, IntLayerNorm_rtl
from samfpga.hw.custom_ops.intsoftmax import IntSoftmax, IntSoftmax_rtl

__all__ = ["AddStreams", "AddStreams_rtl", "DuplicateStreams_rtl", "IntLayerNorm", "IntLayerNorm_rtl",
           "IntSoftmax", "IntSoftmax_rtl"]
