"""Prompt coordinates far outside any image are refused with an error naming the argument (board environment).

Found by tests/test_predictor_parity.py's property test: a box corner at 2**31 - 1 pixels on a 150 x 230 image gave
logits 0.036 apart between the official SamPredictor (torch) and the host (onnxruntime): SAM's positional encoding
takes sin/cos of float32 arguments around 1e8 there, which the two libraries round to different phases.
"""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.decoder_prompts import MAX_COORD, decoder_prompts


def test_coordinates_beyond_the_limit_are_refused() -> None:
    with pytest.raises(ValueError, match=r"boxes has a coordinate of 2\.14748e\+09 encoder-input pixels"):
        decoder_prompts(None, None, np.array([0, 2147483647, 0, 0], dtype=np.int32))
    with pytest.raises(ValueError, match="point_coords"):
        decoder_prompts(np.array([[[10.0, -MAX_COORD - 1]]]), np.ones((1, 1)), None)


def test_coordinates_at_the_limit_are_kept() -> None:
    c, lab = decoder_prompts(np.array([[[MAX_COORD, -MAX_COORD]]]), np.ones((1, 1)),
                             np.array([-MAX_COORD, 0, MAX_COORD, 5]))
    assert c.shape == (1, 3, 2) and lab.tolist() == [[1, 2, 3]]
    assert float(np.abs(c).max()) == MAX_COORD
