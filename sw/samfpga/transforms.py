"""Image and prompt geometry shared by every front end (numpy + Pillow; no torch).

Mirrors SAM's ``ResizeLongestSide`` and ``Sam.preprocess`` / ``Sam.postprocess_masks`` so that the host
runtime feeds the encoder exactly what the official predictor would.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

PIXEL_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)


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


def normalize_and_pad(image: np.ndarray, size: int) -> np.ndarray:
    """(h, w, 3) uint8 resized image -> (1, 3, size, size) float32: normalised, zero-padded bottom/right."""
    h, w = image.shape[:2]
    x = (image.astype(np.float32) - PIXEL_MEAN) / PIXEL_STD
    out = np.zeros((1, 3, size, size), dtype=np.float32)
    out[0, :, :h, :w] = x.transpose(2, 0, 1)
    return out


def _linear_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of 1-D linear resampling with half-pixel centres (torch's
    ``align_corners=False``, no antialias)."""
    scale = in_size / out_size
    src = (np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    lam = (src - i0).astype(np.float32)
    return i0, i1, lam


def resize_bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize the last two axes of ``x`` (..., H, W) float32 to ``size`` like
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``."""
    out_h, out_w = size
    r0, r1, ly = _linear_weights(x.shape[-2], out_h)
    c0, c1, lx = _linear_weights(x.shape[-1], out_w)
    rows = x[..., r0, :] * (1.0 - ly)[:, None] + x[..., r1, :] * ly[:, None]
    return (rows[..., c0] * (1.0 - lx) + rows[..., c1] * lx).astype(np.float32)


def postprocess_masks(
    low_res: np.ndarray, input_size: tuple[int, int], original_size: tuple[int, int], img_size: int
) -> np.ndarray:
    """Low-res logits (..., h, w) -> (..., H0, W0): upscale to the padded input, crop padding, resize."""
    up = resize_bilinear(low_res.astype(np.float32), (img_size, img_size))
    up = up[..., : input_size[0], : input_size[1]]
    return resize_bilinear(up, tuple(original_size))
