"""Image-encoder backends: image in, embedding out, behind one interface.

``OnnxEncoderBackend`` (name ``"onnx"``) runs the bundle's float ``encoder.onnx`` and is the reference.
``quant`` runs the FINN build's integer graph on the CPU, ``pynq`` drives the accelerator on a PYNQ board and
``pynq-sim`` runs that same driver against a simulated PYNQ device; these three need a deployment package
(``package=``). Other backends register with ``register_backend`` and are created with
``create_backend(name, bundle, **options)``.
"""

from __future__ import annotations

from .base import BackendError, EncoderBackend, available_backends, create_backend, register_backend
from .onnx_backend import OnnxEncoderBackend
from .quant_backend import QuantEncoderBackend


def _pynq(bundle, **options):
    from .pynq_backend import PynqEncoderBackend

    return PynqEncoderBackend(bundle, **options)


def _pynq_sim(bundle, **options):
    from .pynq_backend import make_pynq_sim

    return make_pynq_sim(bundle, **options)


register_backend("onnx", OnnxEncoderBackend)
register_backend("quant", QuantEncoderBackend)
register_backend("pynq", _pynq)
register_backend("pynq-sim", _pynq_sim)

#: backends that run a deployment package (CLI: --deploy PKG)
PACKAGE_BACKENDS = ("quant", "pynq", "pynq-sim")

__all__ = [
    "PACKAGE_BACKENDS",
    "BackendError",
    "EncoderBackend",
    "OnnxEncoderBackend",
    "QuantEncoderBackend",
    "available_backends",
    "create_backend",
    "register_backend",
]
