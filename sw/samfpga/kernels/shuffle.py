"""Data movement layers: Reshape, InnerShuffle (swap of the two innermost axes), OuterShuffle (permutation of
the outer axes), StreamingSplit (channel split). Pure re-indexing: values pass unchanged."""

from __future__ import annotations

import numpy as np


def reshape(x: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
    return np.reshape(x, out_shape)


def inner_shuffle(x: np.ndarray, in_shape: tuple[int, ...]) -> np.ndarray:
    """View ``x`` as ``in_shape`` and swap its last two axes."""
    y = x.reshape(in_shape)
    return np.swapaxes(y, -1, -2)


def outer_shuffle(x: np.ndarray, in_shape: tuple[int, ...], perm: tuple[int, ...],
                  out_shape: tuple[int, ...]) -> np.ndarray:
    """View ``x`` as ``in_shape``, permute by ``perm``, view as ``out_shape`` (also FINN's undecomposed Shuffle)."""
    return np.transpose(x.reshape(in_shape), perm).reshape(out_shape)


def split(x: np.ndarray, channels: list[int]) -> list[np.ndarray]:
    """Split the last axis into parts of ``channels`` widths."""
    if sum(channels) != x.shape[-1]:
        raise ValueError(f"StreamingSplit: parts {channels} do not add up to {x.shape[-1]} channels")
    return np.split(x, np.cumsum(channels[:-1]), axis=-1)
