"""Brevitas quantization of the TinyViT image encoder, PTQ/QAT and QONNX export (see docs/quantization.md)."""

from . import compat  # noqa: F401  (torch 2.13 / Brevitas 0.13 shim, before anything uses brevitas)
from .config import QuantConfig
from .encoder import quant_site_names, quantize_encoder
from .export import export_qonnx
from .ptq import calibrate

__all__ = ["QuantConfig", "calibrate", "export_qonnx", "quant_site_names", "quantize_encoder"]
