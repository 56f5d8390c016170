"""``samfpga.transforms.postprocess_masks`` (composed resampling matrices over the low-res rows and columns that
reach the image, banded in blocks of output samples, columns or rows first by cost, a chunk of masks at a time)
against torch's two ``interpolate`` calls as ``Sam.postprocess_masks`` makes them, for landscape, portrait,
square, odd and upscaled image sizes and for more masks than one chunk: max abs diff <= 1e-5 x max(1, max
|logit|), and no pixel changes side of 0 where torch's logit is further than that from 0."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from samfpga.transforms import postprocess_masks, preprocess_shape


def _torch(low: np.ndarray, size: int, input_size: tuple[int, int], original: tuple[int, int]) -> np.ndarray:
    x = F.interpolate(torch.from_numpy(low), (size, size), mode="bilinear", align_corners=False)
    x = x[..., : input_size[0], : input_size[1]]
    return F.interpolate(x, original, mode="bilinear", align_corners=False).numpy()


@pytest.mark.parametrize(("original", "lead"), [((480, 640), (2, 3)), ((640, 480), (2, 3)), ((500, 500), (2, 3)),
                                               ((333, 517), (2, 3)), ((900, 70), (2, 3)), ((1080, 1920), (1, 3)),
                                               ((480, 640), (3, 3))])
def test_postprocess_masks_equals_torch(original, lead):
    size = 256
    input_size = preprocess_shape(*original, size)
    low = (np.random.default_rng(sum(original)).normal(size=(*lead, 64, 64)) * 8).astype(np.float32)
    ref = _torch(low, size, input_size, original)
    got = postprocess_masks(low, size, input_size, original)
    assert got.shape == ref.shape == (*lead, *original) and got.dtype == np.float32
    tol = 1e-5 * max(1.0, float(np.abs(ref).max()))
    assert float(np.abs(got - ref).max()) <= tol
    flips = (got > 0) != (ref > 0)
    assert np.all(np.abs(ref[flips]) <= tol)
    # a low-res row the crop drops does not reach the image (the rows are dropped before the products)
    if input_size[0] < size:
        bumped = low.copy()
        bumped[..., -1, :] += 1e3
        assert np.array_equal(postprocess_masks(bumped, size, input_size, original), got)
