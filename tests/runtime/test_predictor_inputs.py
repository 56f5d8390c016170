"""``Predictor``'s own input checks in the board environment (no torch, so no official oracle here; the dev-env
twin, tests/test_predictor_parity.py, compares the same kind of inputs with the official SamPredictor).

Property-based (Hypothesis, derandomized: every run draws the same examples): any prompt (shape, dtype,
NaN/inf, empty, out of range) and any image array either gives well-formed outputs, equal to those of the same
prompt given as float64 / int64 arrays, or is refused with a ValueError naming the argument. Plus the three
refusals the issue names, spelled out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samfpga.predictor import Predictor
from tests.support.prompts import arrays, check_error, prompts

pytestmark = pytest.mark.board
BUNDLE = Path(__file__).parent / "data" / "tiny_bundle"
SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def predictor():
    p = Predictor.from_bundle(BUNDLE)
    p.set_image(np.asarray(np.random.default_rng(0).integers(0, 256, (48, 72, 3)), dtype=np.uint8))
    return p


def test_empty_image_is_refused_naming_it(predictor):
    fresh = Predictor(predictor.encoder, predictor.decoder, predictor.bundle)
    for shape in ((0, 0, 3), (0, 7, 3), (7, 0, 3)):
        with pytest.raises(ValueError, match="image is empty"):
            fresh.set_image(np.zeros(shape, np.uint8))
    with pytest.raises(ValueError, match="image of shape .* too elongated"):
        fresh.set_image(np.zeros((1, 500, 3), np.uint8))  # 64 * 1/500 rounds to 0 rows


def test_box_of_three_numbers_is_refused_naming_it(predictor):
    with pytest.raises(ValueError, match=r"box must be \(4,\) XYXY, got shape \(3,\)"):
        predictor.predict(box=np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match=r"boxes must be \(B, 4\)"):
        predictor.predict_batch(None, None, np.array([[1.0, 2.0, 3.0]]))


def test_labels_without_points_are_refused_naming_them(predictor):
    with pytest.raises(ValueError, match="point_labels given without point_coords"):
        predictor.predict(point_labels=np.array([1]))
    with pytest.raises(ValueError, match="point_labels given without point_coords"):
        predictor.predict_batch(None, np.ones((1, 1)), np.array([[1.0, 2.0, 30.0, 40.0]]))


def _canonical(kw: dict) -> dict:
    out = dict(kw)
    for k in ("point_coords", "box", "mask_input"):
        if k in out:
            out[k] = np.asarray(out[k], dtype=np.float64)
    if "point_labels" in out:
        out["point_labels"] = np.asarray(out["point_labels"]).astype(np.int64)
    return out


@settings(max_examples=200, **SETTINGS)
@given(data=st.data())
def test_any_prompt_works_or_is_refused_naming_the_argument(predictor, data):
    kw = data.draw(prompts(72, 48, tuple(predictor.bundle.mask_input_size)))
    try:
        logits, iou, low = predictor.predict(return_logits=True, **kw)
    except Exception as err:  # noqa: BLE001 -- any other exception type fails check_error
        check_error(err)
        return
    c = 3 if kw["multimask_output"] else 1
    assert logits.shape == (c, 48, 72) and iou.shape == (c,) and low.shape == (c, 16, 16)
    assert logits.dtype == iou.dtype == low.dtype == np.float32
    assert np.isfinite(logits).all() and np.isfinite(iou).all()
    masks, iou2, _ = predictor.predict(**kw)
    assert masks.dtype == np.bool_ and np.array_equal(masks, logits > predictor.mask_threshold)
    assert np.array_equal(iou, iou2)
    # the input dtype changes nothing beyond float rounding of the coordinates
    l2, i2, _ = predictor.predict(return_logits=True, **_canonical(kw))
    assert np.abs(l2 - logits).max() <= 1e-3 * max(1.0, float(np.abs(logits).max()))
    assert np.abs(i2 - iou).max() <= 1e-3


@settings(max_examples=40, **SETTINGS)
@given(image=arrays(((0, 0, 3), (0, 5, 3), (1, 1, 3), (1, 500, 3), (3, 70, 3), (40, 1, 3),
                                     (17, 29, 3), (17, 29), (17, 29, 4), (2, 17, 29, 3)), 0, 255, special=0.0))
def test_any_image_works_or_is_refused_naming_it(predictor, image):
    fresh = Predictor(predictor.encoder, predictor.decoder, predictor.bundle)
    try:
        fresh.set_image(image)
    except Exception as err:  # noqa: BLE001
        check_error(err, ("image",))
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) > 0
    emb = fresh.get_image_embedding()
    assert emb.shape == (1, *predictor.bundle.embedding_shape) and np.isfinite(emb).all()
    assert max(fresh.input_size) == predictor.image_size and fresh.original_size == image.shape[:2]
