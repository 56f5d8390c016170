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


# Output samples per block of the banded products: each block reads only the few low-res samples its bilinear
# taps touch (a 32-row block of a 480-row image reads about 16 of 193 low-res rows), so the products cost ~10x
# fewer multiply-adds than the whole matrices; smaller blocks make more, smaller BLAS calls.
_BLOCK = 32
# Masks per chunk: keeps a chunk's intermediate (masks x low-res rows x image columns) in cache when a batch of
# prompts brings hundreds of masks.
_CHUNK = 4


@functools.lru_cache(maxsize=16)
def _resample_blocks(n_low: int, padded: int, crop: int, out: int) -> tuple[tuple, int]:
    """``resample_matrix`` cut into blocks of ``_BLOCK`` output samples, each with the span of low-res samples it
    reads: (((o0, o1, lo, hi, m[o0:o1, lo:hi], its transpose), ...), n). ``n``: the low-res samples read at all
    (the crop of the padding leaves the last rows or columns of a non-square image with weight 0 in every output:
    a 480x640 image reads 193 of 256 rows). A block skips only weights that are exactly 0, so the products sum
    the same nonzero terms as the whole matrix."""
    m = resample_matrix(n_low, padded, crop, out)
    nonzero = m != 0
    n = int(np.flatnonzero(nonzero.any(axis=0))[-1]) + 1
    blocks = []
    for o0 in range(0, out, _BLOCK):
        o1 = min(out, o0 + _BLOCK)
        read = np.flatnonzero(nonzero[o0:o1].any(axis=0))  # every output sample has a tap of weight > 0
        lo, hi = int(read[0]), int(read[-1]) + 1
        blk = np.ascontiguousarray(m[o0:o1, lo:hi])
        blocks.append((o0, o1, lo, hi, blk, np.ascontiguousarray(blk.T)))
    return tuple(blocks), n


def _resample_rows(x: np.ndarray, blocks: tuple, out: np.ndarray) -> None:
    """(k, n_in, w) float32 -> ``out`` (k, n_out, w): the blocked matrix applied along axis 1."""
    for o0, o1, lo, hi, blk, _t in blocks:
        np.matmul(blk, x[:, lo:hi, :], out=out[:, o0:o1, :])


def _resample_cols(x: np.ndarray, blocks: tuple, n_out: int) -> np.ndarray:
    """(k, h, n_in) float32 -> (k, h, n_out): the blocked matrix applied along the last axis."""
    k, h, n_in = x.shape
    x2 = x.reshape(k * h, n_in)
    out = np.empty((k * h, n_out), dtype=np.float32)
    for o0, o1, lo, hi, _b, blk_t in blocks:
        np.matmul(x2[:, lo:hi], blk_t, out=out[:, o0:o1])
    return out.reshape(k, h, n_out)


def postprocess_masks(low_res: np.ndarray, image_size: int, input_size: tuple[int, int],
                      original_size: tuple[int, int]) -> np.ndarray:
    """Low-res logits (..., h, w) -> (..., H0, W0) float32, as ``Sam.postprocess_masks``: upscale to the
    padded encoder input (``image_size``), crop the padding (``input_size``), resize to ``original_size``.

    Computed as ``R @ x @ C.T`` with the composed resampling matrices, banded: each block of output rows (or
    columns) multiplies only the low-res samples its taps reach (``_resample_blocks``), columns first,
    ``_CHUNK`` masks at a time. The same linear map as torch's two ``interpolate`` calls, equal up to
    float32 rounding (max abs diff ~1e-6 on logits of order 10; tests/test_postprocess_masks.py,
    tests/test_predictor_parity.py).
    """
    *lead, h, w = low_res.shape
    big_h, big_w = int(original_size[0]), int(original_size[1])
    k = int(np.prod(lead, dtype=np.int64))
    out = np.empty((k, big_h, big_w), dtype=np.float32)
    if k == 0:
        return out.reshape(*lead, big_h, big_w)
    rows, nh = _resample_blocks(h, image_size, int(input_size[0]), big_h)
    cols, nw = _resample_blocks(w, image_size, int(input_size[1]), big_w)
    flat = low_res.reshape(k, h, w)
    for i in range(0, k, _CHUNK):
        # columns first: the row step then writes the output in contiguous (block rows x W0) slabs; the other
        # order's strided column-block writes over a large output measured up to 4x slower
        x = np.ascontiguousarray(flat[i:i + _CHUNK, :nh, :nw], dtype=np.float32)
        _resample_rows(_resample_cols(x, cols, big_w), rows, out[i:i + _CHUNK])
    return out.reshape(*lead, big_h, big_w)
