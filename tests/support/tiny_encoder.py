"""The chain tests' encoder (test_quant, test_finn_chain, test_finn_streamline): the default student family at
64x64 with one block per stage (``samfpga.models.quant.source``, shared with bench/sim_encoder.py), and the
tensor names of the slices the FINN chain tests cut out of its QONNX export."""

from __future__ import annotations

from samfpga.models.quant.source import TINY_STUDENT as TINY
from samfpga.models.quant.source import statistics_images as images
from samfpga.models.quant.source import tiny_student_encoder as tiny_encoder

__all__ = ["STEM_MBCONV", "TINY", "VIT_BLOCK", "images", "tiny_encoder"]

# tensor names of the exported tiny encoder (qonnx GiveReadableTensorNames, deterministic for this architecture)
STEM_MBCONV = (["global_in"], ["Quant_37_out0"])
# first TinyViT block (window attention with QK^T/softmax/AV, local depthwise conv, LayerNorm + MLP, residuals),
# from the float output of the preceding PatchMerging conv to the quantized input of the next PatchMerging
VIT_BLOCK = (["Conv_7_out0"], ["Quant_51_out0"])
