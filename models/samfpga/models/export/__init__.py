"""ONNX export of the model for the host runtime (needs torch).

A *bundle* is a directory with ``bundle.json`` (format, shapes, normalisation, model config, sha256 of the
graphs), ``encoder.onnx`` (float image encoder, the reference encoder backend) and ``decoder.onnx`` (prompt
encoder + mask decoder in one graph, dynamic prompt batch and point count). ``samfpga.bundle`` reads it
without torch.
"""

from .bundle import BUNDLE_FORMAT, BUNDLE_VERSION, ONNX_OPSET, export_bundle, export_decoder, export_encoder
from .onnx_models import DecoderOnnxModel, EncoderOnnxModel

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "ONNX_OPSET",
    "DecoderOnnxModel",
    "EncoderOnnxModel",
    "export_bundle",
    "export_decoder",
    "export_encoder",
]
