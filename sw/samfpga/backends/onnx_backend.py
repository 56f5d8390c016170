"""Reference encoder backend: the bundle's float ``encoder.onnx`` on onnxruntime (CPU)."""

from __future__ import annotations

import numpy as np

from ..bundle import Bundle
from .base import EncoderBackend
from .ort_session import make_session


class OnnxEncoderBackend(EncoderBackend):
    """Runs ``bundle.encoder_path`` with onnxruntime.

    Args:
        bundle: a loaded bundle.
        threads: onnxruntime intra-op threads (0: onnxruntime's default).
    """

    def __init__(self, bundle: Bundle, threads: int = 0) -> None:
        self.image_size = bundle.image_size
        self.embedding_shape = tuple(bundle.embedding_shape)  # type: ignore[assignment]
        self.session = make_session(bundle.encoder_path, threads)
        self._input = self.session.get_inputs()[0].name

    def _encode(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: x})[0]
