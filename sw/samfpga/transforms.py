"""Image and mask geometry shared by every front end (numpy + Pillow; no torch): the one home of SAM's
``ResizeLongestSide``, ``Sam.preprocess`` (normalise and pad) and ``Sam.postprocess_masks`` (mask upscaling).

The predictor, segment-everything and the parity tests all call these functions, so the host runtime feeds
the encoder and returns masks exactly as the official predictor would.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from PIL import Image

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


def preprocess_shape(oldh: int, oldw: int, long_side: int) -> tuple[int, int]:
    """(h, w) after scaling the long side to ``long_side`` (rounded half up, as SAM)."""
    scale = long_side * 1.0 / max(oldh, oldw)
    newh, neww = oldh * scale, oldw * scale
    return int(newh + 0.5), int(neww + 0.5)


class ResizeLongestSide:
    """Resize images and coordinates so the long side is ``target_length`` (SAM's transform, numpy)."""

    def __init__(self, target_length: int) -> None:
        self.target_length = int(target_length)

    def apply_image(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (h, w, 3) uint8, bilinear (PIL, as torchvision does on PIL images)."""
        h, w = preprocess_shape(image.shape[0], image.shape[1], self.target_length)
        return np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))

    def apply_coords(self, coords: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        """(..., 2) float (x, y) in original pixels -> encoder-input pixels."""
        old_h, old_w = original_size
        new_h, new_w = preprocess_shape(old_h, old_w, self.target_length)
        coords = np.array(coords, dtype=np.float64, copy=True)
        coords[..., 0] = coords[..., 0] * (new_w / old_w)
        coords[..., 1] = coords[..., 1] * (new_h / old_h)
        return coords

    def apply_boxes(self, boxes: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        """(B, 4) XYXY in original pixels -> encoder-input pixels."""
        return self.apply_coords(np.asarray(boxes).reshape(-1, 2, 2), original_size).reshape(-1, 4)


def normalize(pixels: np.ndarray, mean: Sequence[float] = PIXEL_MEAN, std: Sequence[float] = PIXEL_STD) -> np.ndarray:
    """(..., 3) uint8 -> (..., 3) float32 ``(x - mean) / std`` per channel, in float32 (the one place the host
    normalises: the build folds exactly this arithmetic into the accelerator's first threshold table)."""
    return (pixels.astype(np.float32) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


def normalize_and_pad(image: np.ndarray, size: int, mean: Sequence[float] = PIXEL_MEAN,
                      std: Sequence[float] = PIXEL_STD) -> np.ndarray:
    """(h, w, 3) uint8 resized image -> (1, 3, size, size) float32: ``(x - mean) / std`` per channel,
    zero-padded bottom/right (``Sam.preprocess``)."""
    h, w = image.shape[:2]
    x = normalize(image, mean, std)
    out = np.zeros((1, 3, size, size), dtype=np.float32)
    out[0, :, :h, :w] = x.transpose(2, 0, 1)
    return out


def pad_pixels(image: np.ndarray, size: int, pad_codes: Sequence[int]) -> np.ndarray:
    """(h, w, 3) uint8 resized image -> (size, size, 3) uint8 padded bottom/right with ``pad_codes`` (R, G, B):
    the pixel-input accelerator's ``Sam.preprocess`` (the pad codes quantize like normalised 0.0)."""
    h, w = image.shape[:2]
    out = np.empty((size, size, 3), dtype=np.uint8)
    out[:] = np.asarray(pad_codes, dtype=np.uint8)
    out[:h, :w] = image
    return out


def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float64 matrix of 1-D linear resampling with half-pixel centres (torch's
    ``interpolate(mode="bilinear", align_corners=False)`` along one axis, no antialias)."""
    src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = (src - i0).astype(np.float32).astype(np.float64)  # torch computes the weights in float32
    m = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    np.add.at(m, (rows, i0), 1.0 - lam)
    np.add.at(m, (rows, i1), lam)
    return m


@functools.lru_cache(maxsize=16)
def resample_matrix(n_low: int, padded: int, crop: int, out: int) -> np.ndarray:
    """(out, n_low) float32: the 1-D map of ``Sam.postprocess_masks`` along one axis: bilinear
    ``n_low -> padded``, keep the first ``crop`` samples, bilinear ``crop -> out``. Both steps are linear, so
    their product applies the whole chain at once."""
    return (_interp_matrix(crop, out) @ _interp_matrix(n_low, padded)[:crop]).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _used_resample(n_low: int, padded: int, crop: int, out: int) -> tuple[np.ndarray, int]:
    """``resample_matrix`` restricted to the low-res samples it reads: ((out, n) float32, n). The crop of the
    padding leaves the last low-res rows (or columns) of a non-square image with weight 0 in every output, so
    they are dropped from the products (a 480x640 image reads 193 of 256 rows)."""
    m = resample_matrix(n_low, padded, crop, out)
    n = int(np.flatnonzero(m.any(axis=0))[-1]) + 1
    return np.ascontiguousarray(m[:, :n]), n


def postprocess_masks(low_res: np.ndarray, image_size: int, input_size: tuple[int, int],
                      original_size: tuple[int, int]) -> np.ndarray:
    """Low-res logits (..., h, w) -> (..., H0, W0) float32, as ``Sam.postprocess_masks``: upscale to the
    padded encoder input (``image_size``), crop the padding (``input_size``), resize to ``original_size``.

    Computed as ``R @ x @ C.T`` with the composed resampling matrices, all masks in two large GEMMs (no
    (S, S) intermediate), over the low-res rows and columns that reach the image only: the same linear map as
    torch's two ``interpolate`` calls, equal up to float32 rounding (max abs diff ~1e-6 on logits of order 10;
    tests/test_predictor_parity.py).
    """
    *lead, h, w = low_res.shape
    big_h, big_w = int(original_size[0]), int(original_size[1])
    k = int(np.prod(lead, dtype=np.int64))
    if k == 0:
        return np.zeros((*lead, big_h, big_w), dtype=np.float32)
    r, nh = _used_resample(h, image_size, int(input_size[0]), big_h)
    c, nw = _used_resample(w, image_size, int(input_size[1]), big_w)
    x = np.ascontiguousarray(low_res.reshape(k, h, w)[:, :nh, :nw], dtype=np.float32)
    if nh * big_w * (nw + big_h) <= big_h * nw * (nh + big_w):  # columns first costs fewer multiply-adds
        cols = (x.reshape(k * nh, nw) @ c.T).reshape(k, nh, big_w)
        rows = r @ cols.transpose(1, 0, 2).reshape(nh, k * big_w)
        out = np.ascontiguousarray(rows.reshape(big_h, k, big_w).transpose(1, 0, 2))
    else:
        out = ((r @ x).reshape(k * big_h, nw) @ c.T).astype(np.float32, copy=False)
    return out.reshape(*lead, big_h, big_w)
