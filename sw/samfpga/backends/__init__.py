"""Image-encoder backends: image in, embedding out, behind one interface.

``OnnxEncoderBackend`` (name ``"onnx"``) runs the bundle's float ``encoder.onnx`` and is the reference.
FPGA overlay, FINN execution and RTL-simulation backends register themselves under their own names with
``register_backend`` and are created with ``create_backend(name, bundle, **options)``.
"""

from __future__ import annotations

from .base import BackendError, EncoderBackend, available_backends, create_backend, register_backend
from .onnx_backend import OnnxEncoderBackend

register_backend("onnx", OnnxEncoderBackend)

__all__ = [
    "BackendError",
    "EncoderBackend",
    "OnnxEncoderBackend",
    "available_backends",
    "create_backend",
    "register_backend",
]
