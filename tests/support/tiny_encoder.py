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


def tiny_encoder_qonnx(out_dir):
    """The chain tests' W8A8 QONNX export of the tiny encoder (seeded weights, PTQ on 4 images) in ``out_dir``:
    the path of ``enc.onnx``."""
    import torch

    from samfpga.models.build import variant_config
    from samfpga.models.quant import calibrate, export_qonnx, quantize_encoder
    from samfpga.models.quant.source import random_student

    torch.set_num_threads(1)
    enc = random_student(seed=3, config=variant_config("vit_t", **TINY)).image_encoder
    q = quantize_encoder(enc)
    calibrate(q, images(4, seed=0))
    return export_qonnx(q, out_dir / "enc.onnx", (1, 3, 64, 64))
