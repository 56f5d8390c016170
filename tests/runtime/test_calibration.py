"""Board environment (no torch): the bundle's optional output calibration (``samfpga.calibration``).

On the committed tiny bundle (``tests/runtime/data/tiny_bundle``, no calibration field) and a copy of it with a
calibration: the identity changes nothing; the calibrated decoder's outputs are exactly the maps applied to
the uncalibrated ones (split graphs, single graph, and ``decode_above``'s filter on calibrated IoU); logits fed
back as ``mask_input`` are mapped back; a malformed field is refused naming it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from samfpga.bundle import BundleError, load_bundle
from samfpga.calibration import IDENTITY, Calibration, CalibrationError
from samfpga.decoder import OnnxDecoder
from samfpga.predictor import Predictor

pytestmark = pytest.mark.board
BUNDLE = Path(__file__).parent / "data" / "tiny_bundle"
CAL = Calibration(iou_x=(-0.5, 0.0, 0.3, 0.9), iou_y=(0.0, 0.05, 0.2, 0.7), logit_scale=0.4, logit_offset=0.0)


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(48, 72, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def calibrated_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cal") / "bundle"
    shutil.copytree(BUNDLE, out)
    meta = json.loads((out / "bundle.json").read_text())
    meta["calibration"] = CAL.to_json()
    (out / "bundle.json").write_text(json.dumps(meta))
    return out


def test_old_bundle_loads_with_identity():
    b = load_bundle(BUNDLE)
    assert "calibration" not in json.loads((BUNDLE / "bundle.json").read_text())
    assert b.calibration is IDENTITY and b.calibration.is_identity


def test_identity_returns_inputs_unchanged():
    x = np.linspace(-3, 3, 17, dtype=np.float32)
    assert IDENTITY.iou(x) is x and IDENTITY.logits(x) is x and IDENTITY.raw_logits(x) is x


def test_calibrated_bundle_loads(calibrated_dir):
    b = load_bundle(calibrated_dir)
    assert b.calibration == CAL and not b.calibration.is_identity


def test_iou_map_keeps_order_and_knots():
    x = np.array([-2.0, -0.5, -0.1, 0.0, 0.15, 0.3, 0.6, 0.9, 1.2, 5.0], dtype=np.float32)
    y = CAL.iou(x)
    assert y.dtype == np.float32
    assert np.all(np.diff(y) > 0), y  # strictly increasing, tails included
    np.testing.assert_allclose(CAL.iou(np.array(CAL.iou_x)), CAL.iou_y, atol=1e-7)
    np.testing.assert_allclose(CAL.iou(np.array([0.15, 0.6])), [0.125, 0.45], atol=1e-6)


def test_logit_map_roundtrip():
    x = np.linspace(-20, 20, 41, dtype=np.float32)
    cal = replace(CAL, logit_offset=-0.7)
    np.testing.assert_allclose(cal.logits(x), 0.4 * x - 0.7, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(cal.raw_logits(cal.logits(x)), x, atol=1e-5)


def test_decoder_outputs_are_the_maps_of_the_raw_outputs(calibrated_dir):
    raw = Predictor.from_bundle(BUNDLE)
    cal = Predictor.from_bundle(calibrated_dir)
    assert cal.decoder.split is not None  # the split graphs path
    image = _image()
    raw.set_image(image)
    cal.set_image(image)
    pts, labels = np.array([[30.0, 20.0]]), np.array([1])
    lr, ir, lowr = raw.predict(pts, labels, return_logits=True)
    lc, ic, lowc = cal.predict(pts, labels, return_logits=True)
    np.testing.assert_array_equal(ic, CAL.iou(ir))
    np.testing.assert_allclose(lowc, CAL.logits(lowr), rtol=0, atol=1e-6)
    np.testing.assert_allclose(lc, CAL.logits(lr), rtol=0, atol=1e-5)
    mr, _, _ = raw.predict(pts, labels)
    mc, _, _ = cal.predict(pts, labels)
    np.testing.assert_array_equal(mr, mc)  # no offset: the binary masks are the raw ones
    # mask prompts run the single graph: the fed-back calibrated logits are mapped back to raw ones
    k = int(np.argmax(ir))
    _, ir2, lowr2 = raw.predict(pts, labels, mask_input=lowr[k:k + 1], multimask_output=False)
    _, ic2, lowc2 = cal.predict(pts, labels, mask_input=lowc[k:k + 1], multimask_output=False)
    np.testing.assert_allclose(ic2, CAL.iou(ir2), atol=1e-6)
    np.testing.assert_allclose(lowc2, CAL.logits(lowr2), atol=1e-4)


def test_decode_above_filters_on_calibrated_iou(calibrated_dir):
    raw = Predictor.from_bundle(BUNDLE)
    cal = Predictor.from_bundle(calibrated_dir)
    image = _image()
    raw.set_image(image)
    cal.set_image(image)
    rng = np.random.default_rng(1)
    coords = rng.uniform(0, 64, size=(12, 1, 2)).astype(np.float32)
    labels = np.ones((12, 1), np.float32)
    _, iou_raw = raw.predict_low_res(coords, labels)
    thresh = float(np.median(CAL.iou(iou_raw)))
    kept, low, iou = cal.predict_low_res_above(coords, labels, thresh)
    want = np.flatnonzero(CAL.iou(iou_raw).reshape(-1) > thresh)
    np.testing.assert_array_equal(kept, want)
    assert 0 < len(kept) < iou_raw.size
    np.testing.assert_array_equal(iou, CAL.iou(iou_raw).reshape(-1)[want])


def test_single_graph_bundle_applies_calibration(calibrated_dir):
    b = load_bundle(calibrated_dir)
    single = replace(b, decoder_split=None)
    d_raw, d_cal = OnnxDecoder(replace(single, calibration=IDENTITY)), OnnxDecoder(single)
    emb = np.random.default_rng(2).standard_normal((1, *b.embedding_shape)).astype(np.float32)
    coords = np.array([[[10.0, 20.0], [0.0, 0.0]]], np.float32)
    labels = np.array([[1.0, -1.0]], np.float32)
    low_r, iou_r = d_raw(emb, coords, labels)
    low_c, iou_c = d_cal(emb, coords, labels)
    np.testing.assert_array_equal(iou_c, CAL.iou(iou_r))
    np.testing.assert_allclose(low_c, CAL.logits(low_r), atol=1e-6)


@pytest.mark.parametrize("field, value, message", [
    ("logit_scale", 0.0, "logit_scale"),
    ("logit_scale", "2", "logit_scale"),
    ("iou_x", [0.1, 0.1], "strictly increasing"),
    ("iou_y", [0.5, 0.2], "strictly increasing"),
    ("iou_y", [0.5], "same length"),
    ("bogus", 1, "unknown field"),
])
def test_malformed_calibration_is_refused(tmp_path, field, value, message):
    out = tmp_path / "bundle"
    shutil.copytree(BUNDLE, out)
    meta = json.loads((out / "bundle.json").read_text())
    cal = {"iou_x": [0.1, 0.5], "iou_y": [0.2, 0.6], "logit_scale": 1.5, "logit_offset": 0.0}
    cal[field] = value
    meta["calibration"] = cal
    (out / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=message) as err:
        load_bundle(out)
    assert "calibration" in str(err.value)


def test_calibration_json_roundtrip():
    cal = replace(CAL, fitted_on={"seed": 2})
    again = Calibration.from_json(json.loads(json.dumps(cal.to_json())))
    assert again == cal and again.fitted_on == {"seed": 2}
    with pytest.raises(CalibrationError, match="must be an object"):
        Calibration.from_json([1, 2])
