"""The encoder-backend interface and the registry of backends by name."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..bundle import Bundle
from ..transforms import normalize_and_pad


class BackendError(RuntimeError):
    """A backend cannot be created or was fed an input it does not accept."""


class EncoderBackend(abc.ABC):
    """Computes image embeddings.

    Implementations declare ``image_size`` (S: the encoder input is (1, 3, S, S)) and ``embedding_shape``
    ((C, h, w) of the output) and implement ``_encode``.

    The predictor calls ``encode_image`` with the resized uint8 image: by default it normalises and zero-pads it
    (``normalize_and_pad``) and calls ``encode`` on the float image. Backends whose accelerator takes the pixels
    themselves (a deployment package whose input is UINT8: the normalisation is folded into its first threshold
    table) override ``_encode_image`` and pad with the package's pad codes instead.
    """

    image_size: int
    embedding_shape: tuple[int, int, int]

    @abc.abstractmethod
    def _encode(self, x: np.ndarray) -> np.ndarray:
        """(1, 3, S, S) float32 -> (1, C, h, w) float32 (input already validated)."""

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Embed one preprocessed image.

        Args:
            x: (1, 3, S, S) float32, normalised with the bundle's pixel mean/std and zero-padded bottom/right.

        Returns:
            (1, C, h, w) float32 image embedding.
        """
        s = self.image_size
        if not isinstance(x, np.ndarray) or x.shape != (1, 3, s, s):
            raise BackendError(f"{type(self).__name__}.encode expects a (1, 3, {s}, {s}) array, got "
                               f"{getattr(x, 'shape', type(x).__name__)}")
        out = self._encode(np.ascontiguousarray(x, dtype=np.float32))
        if out.shape != (1, *self.embedding_shape):
            raise BackendError(f"{type(self).__name__} returned {out.shape}, expected {(1, *self.embedding_shape)}")
        return out.astype(np.float32, copy=False)


    def _encode_image(self, image: np.ndarray, pixel_mean: Sequence[float], pixel_std: Sequence[float]) -> np.ndarray:
        """(h, w, 3) uint8 (validated) -> (1, C, h, w): the float path."""
        return self.encode(normalize_and_pad(image, self.image_size, pixel_mean, pixel_std))

    def encode_image(self, image: np.ndarray, pixel_mean: Sequence[float], pixel_std: Sequence[float]) -> np.ndarray:
        """Embed one resized image.

        Args:
            image: (h, w, 3) uint8 RGB, resized so that its long side is S (``ResizeLongestSide``).
            pixel_mean, pixel_std: the bundle's normalisation (3 values each).

        Returns:
            (1, C, h, w) float32 image embedding.
        """
        s = self.image_size
        if (not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3
                or max(image.shape[:2]) != s):
            raise BackendError(f"{type(self).__name__}.encode_image expects an (h, w, 3) uint8 image with long side "
                               f"{s}, got {getattr(image, 'shape', type(image).__name__)} "
                               f"{getattr(image, 'dtype', '')}")
        out = self._encode_image(np.ascontiguousarray(image), pixel_mean, pixel_std)
        if out.shape != (1, *self.embedding_shape):
            raise BackendError(f"{type(self).__name__} returned {out.shape}, expected {(1, *self.embedding_shape)}")
        return out.astype(np.float32, copy=False)


BackendFactory = Callable[..., EncoderBackend]
_REGISTRY: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Register ``factory(bundle, **options) -> EncoderBackend`` under ``name`` (replaces an existing one)."""
    _REGISTRY[name] = factory


def available_backends() -> list[str]:
    return sorted(_REGISTRY)


def create_backend(name: str, bundle: Bundle, **options: Any) -> EncoderBackend:
    """Instantiate the backend registered as ``name`` for ``bundle``."""
    if name not in _REGISTRY:
        raise BackendError(f"unknown encoder backend {name!r}; available: {available_backends()}")
    backend = _REGISTRY[name](bundle, **options)
    if backend.image_size != bundle.image_size or tuple(backend.embedding_shape) != tuple(bundle.embedding_shape):
        raise BackendError(
            f"backend {name!r} declares input {backend.image_size} / embedding {backend.embedding_shape}, the bundle "
            f"{bundle.root} has {bundle.image_size} / {bundle.embedding_shape}"
        )
    return backend
