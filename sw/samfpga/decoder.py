"""Prompt encoder + mask decoder on onnxruntime: the bundle's ``decoder.onnx``."""

from __future__ import annotations

import numpy as np

from .backends.ort_session import make_session
from .bundle import Bundle


class OnnxDecoder:
    """Runs ``decoder.onnx`` (inputs in the encoder-input frame; see ``samfpga.bundle``).

    Args:
        bundle: a loaded bundle.
        threads: onnxruntime intra-op threads (0: onnxruntime's default).
    """

    def __init__(self, bundle: Bundle, threads: int = 0) -> None:
        self.bundle = bundle
        self.embedding_shape = tuple(bundle.embedding_shape)
        self.mask_input_size = tuple(bundle.mask_input_size)
        self.num_mask_tokens = bundle.num_mask_tokens
        self.session = make_session(bundle.decoder_path, threads)
        self._no_mask = np.zeros((1, 1, *self.mask_input_size), dtype=np.float32)
        self.calls = 0  # decoder invocations, for benchmarks

    def __call__(
        self,
        image_embeddings: np.ndarray,
        point_coords: np.ndarray,
        point_labels: np.ndarray,
        mask_input: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decode masks for a batch of prompts on one image.

        Args:
            image_embeddings: (1, C, h, w) float32.
            point_coords: (B, N, 2) float32 in encoder-input pixels, padding point / box corners included.
            point_labels: (B, N) float32 (1, 0, 2, 3, -1 padding).
            mask_input: (1 or B, 1, 4h, 4w) float32 low-res logits, or None.

        Returns:
            low-res logits (B, num_mask_tokens, 4h, 4w) float32 and IoU predictions (B, num_mask_tokens) float32.
        """
        has_mask = np.array([0.0 if mask_input is None else 1.0], dtype=np.float32)
        feeds = {
            "image_embeddings": np.ascontiguousarray(image_embeddings, dtype=np.float32),
            "point_coords": np.ascontiguousarray(point_coords, dtype=np.float32),
            "point_labels": np.ascontiguousarray(point_labels, dtype=np.float32),
            "mask_input": self._no_mask if mask_input is None else np.ascontiguousarray(mask_input, dtype=np.float32),
            "has_mask_input": has_mask,
        }
        self.calls += 1
        low_res, iou = self.session.run(None, feeds)
        return low_res, iou
