"""The chain tests' encoder (test_quant, test_finn_chain, test_finn_streamline): the default student family at
64x64 with one block per stage (``samfpga.models.quant.source``, shared with bench/sim_encoder.py), and the
tensor names of the slices the FINN chain tests cut out of its QONNX export."""

from __future__ import annotations

from samfpga.models.quant.source import TINY_STUDENT as TINY
from samfpga.models.quant.source import statistics_images as images
from samfpga.models.quant.source import tiny_encoder_qonnx, tiny_quant_encoder
from samfpga.models.quant.source import tiny_student_encoder as tiny_encoder

__all__ = ["INT_NECK", "INT_VIT_BLOCK", "STEM_MBCONV", "TINY", "VIT_BLOCK", "images", "tiny_encoder", "tiny_encoder_qonnx",
           "tiny_quant_encoder"]

# tensor names of the exported tiny encoder (qonnx GiveReadableTensorNames, deterministic for this architecture)
STEM_MBCONV = (["global_in"], ["Quant_37_out0"])
# first TinyViT block (window attention with QK^T/softmax/AV, local depthwise conv, LayerNorm + MLP, residuals),
# from the float output of the preceding PatchMerging conv to the quantized input of the next PatchMerging
VIT_BLOCK = (["Conv_7_out0"], ["Quant_51_out0"])
# the same cuts in the int_norm export (QuantConfig(int_norm=True): no softmax Quant nodes, a quantizer before each
# neck LayerNorm): the first TinyViT block, and the neck from the last block's output (before its half-step Add)
# to the graph output (conv 1x1, quantizer, IntLayerNorm, conv 3x3, quantizer, IntLayerNorm, output quantizer)
INT_VIT_BLOCK = (["Conv_7_out0"], ["Quant_50_out0"])
INT_NECK = (["Transpose_25_out0"], ["global_out"])

