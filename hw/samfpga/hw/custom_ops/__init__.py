"""Own RTL blocks registered as FINN+ custom ops (python execution model + HDL generation), for the layers FINN+
has only as HLS (or Versal DSP58 RTL) on Zynq UltraScale+.

Importing this package registers, in FINN's own registries (so ``getCustomOp`` and ``SpecializeLayers`` find them):
    AddStreams            (finn.custom_op.fpgadataflow)      integer residual add of two streams
    AddStreams_rtl        (finn.custom_op.fpgadataflow.rtl)  hw/samfpga/hw/rtl/add_streams.sv
    DepthwiseVVAU         (finn.custom_op.fpgadataflow)      FINN's VVAU (depthwise conv, no activation), integer
    DepthwiseVVAU_rtl     (finn.custom_op.fpgadataflow.rtl)  hw/samfpga/hw/rtl/dw_vvau.sv
    DuplicateStreams_rtl  (finn.custom_op.fpgadataflow.rtl)  FINN's DuplicateStreams, rtl/duplicate_streams.sv
    StreamingSplit_rtl    (finn.custom_op.fpgadataflow.rtl)  FINN's StreamingSplit, rtl/stream_split.sv
    TokenBatchMVU(_rtl)   an MVAU (no activation) and its Requant on the token-batched unit, weights in DDR,
                          rtl/token_batch_mvu_axil.sv (``token_batch``: also ``UseTokenBatchMVU``, ``ddr_image``)
    IntLayerNorm(_rtl)    integer LayerNorm (integer statistics + rsqrt table), rtl/int_layernorm.sv
    PagePermute(_rtl)     a Transpose (FINN's Shuffle) through one buffered page, rtl/page_permute.sv
    IntSoftmax(_rtl)      integer softmax with logit scale, attention bias and output quantizer folded in,
                          rtl/int_softmax.sv
    Requant_rtl           FINN+'s Requant_rtl, in its place, plus ``ram_style`` for its parameter ROM
                          (``requant_rom``: per-node copies of requant.sv with ``rom_style``) and per-iteration
                          parameters in a rolled body
    MVAU_rtl              FINN+'s MVAU_rtl, in its place, plus per-iteration weights in a rolled body (``mvau_rtl``)
    Thresholding_rtl      FINN+'s Thresholding_rtl, in its place, plus per-iteration thresholds and output offsets
                          in a rolled body (``thresholding_rtl``)
and their resource models (``costs``, ``int_cost``) with ``samfpga.hw.resources``. The common boilerplate is
``rtl_base``; the graph transformations that map FINN's layers onto these are in ``transforms`` (and, for the
integer LayerNorm/softmax, ``samfpga.hw.build.int_ops``).
"""

from samfpga.hw.custom_ops import costs, int_cost  # registers the resource models of the ops below
from samfpga.hw.custom_ops.addstreams import AddStreams, AddStreams_rtl
from samfpga.hw.custom_ops.depthwise_vvau import DepthwiseVVAU, DepthwiseVVAU_rtl
from samfpga.hw.custom_ops.duplicatestreams_rtl import DuplicateStreams_rtl
from samfpga.hw.custom_ops.intlayernorm import IntLayerNorm, IntLayerNorm_rtl
from samfpga.hw.custom_ops.intsoftmax import IntSoftmax, IntSoftmax_rtl
from samfpga.hw.custom_ops.mvau_rtl import MVAU_rtl
from samfpga.hw.custom_ops.page_permute import PagePermute, PagePermute_rtl
from samfpga.hw.custom_ops.requant_rom import Requant_rtl
from samfpga.hw.custom_ops.streamingsplit_rtl import StreamingSplit_rtl
from samfpga.hw.custom_ops.thresholding_rtl import Thresholding_rtl
from samfpga.hw.custom_ops.token_batch import TokenBatchMVU, TokenBatchMVU_rtl

__all__ = ["AddStreams", "AddStreams_rtl", "DepthwiseVVAU", "DepthwiseVVAU_rtl", "DuplicateStreams_rtl",
           "IntLayerNorm", "IntLayerNorm_rtl", "IntSoftmax", "IntSoftmax_rtl", "MVAU_rtl", "PagePermute", "PagePermute_rtl", "Requant_rtl",
           "StreamingSplit_rtl", "Thresholding_rtl", "TokenBatchMVU", "TokenBatchMVU_rtl", "costs", "int_cost"]
