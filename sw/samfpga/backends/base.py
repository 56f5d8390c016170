"""The encoder-backend interface and the registry of backends by name."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import numpy as np

from ..bundle import Bundle


class BackendError(RuntimeError):
    """A backend cannot be created or was fed an input it does not accept."""


class EncoderBackend(abc.ABC):
    """Computes image embeddings.

    Implementations declare ``image_size`` (S: the encoder input is (1, 3, S, S)) and ``embedding_shape``
    ((C, h, w) of the output) and implement ``encode``.
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
