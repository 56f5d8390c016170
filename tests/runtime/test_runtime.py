"""Board environment (no torch): load a bundle, run ``Predictor`` and the CLI.

Uses the committed tiny seeded-random bundle ``tests/runtime/data/tiny_bundle`` (regenerate with
``python -m samfpga.models.export.testbundle --out tests/runtime/data/tiny_bundle`` in .venv) and ``expected.npz``: the torch model's outputs for a
fixed image and prompts (``Sam.forward``, the official predictor path). Tolerance: ONNX (onnxruntime 1.23)
vs torch float32 max abs diff <= 1e-4 on upscaled logits, IoU and low-res logits; boolean masks identical
where the torch logit is more than 1e-3 from the threshold. Also runs the bundled default model, if present,
on the bundled sample.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from samfpga import cli
from samfpga.assets import default_bundle_dir, sample_images, sample_prompt
from samfpga.backends import EncoderBackend, available_backends, create_backend
from samfpga.bundle import load_bundle
from samfpga.image_io import write_png
from samfpga.predictor import Predictor

pytestmark = pytest.mark.board
DATA = Path(__file__).parent / "data"
BUNDLE = DATA / "tiny_bundle"
TOL = 1e-4

# mirrors samfpga.models.export.testbundle.REFERENCE_PROMPTS (that module needs torch)
PROMPTS = {
    "point": (np.array([[30.0, 20.0]]), np.array([1]), None, True),
    "points_box": (np.array([[30.0, 20.0], [5.0, 40.0]]), np.array([1, 0]), np.array([15.0, 8.0, 55.0, 33.0]), False),
    "box": (None, None, np.array([15.0, 8.0, 55.0, 33.0]), True),
}


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(DATA / "expected.npz"))


@pytest.fixture(scope="module")
def predictor(expected):
    p = Predictor.from_bundle(BUNDLE)
    p.set_image(expected["image"])
    return p


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_predictor_matches_torch_reference(predictor, expected, name):
    pts, labels, box, multimask = PROMPTS[name]
    logits, iou, low = predictor.predict(pts, labels, box, multimask_output=multimask, return_logits=True)
    masks, iou2, _ = predictor.predict(pts, labels, box, multimask_output=multimask)
    ref = expected[f"{name}_logits"]
    assert logits.shape == ref.shape == (3 if multimask else 1, 48, 72)
    assert np.abs(logits - ref).max() <= TOL
    assert np.abs(iou - expected[f"{name}_iou"]).max() <= TOL
    assert np.abs(low - expected[f"{name}_low_res"]).max() <= TOL
    assert masks.dtype == np.bool_ and np.array_equal(iou, iou2)
    clear = np.abs(ref) > 1e-3
    assert np.array_equal(masks[clear], ref[clear] > 0)


def test_predict_batch_equals_predict(predictor):
    pts = np.array([[[10.0, 10.0]], [[40.0, 30.0]], [[60.0, 5.0]]])
    coords = predictor.transform.apply_coords(pts, predictor.original_size).astype(np.float32)
    masks, iou, low = predictor.predict_batch(coords, np.ones((3, 1), np.int64))
    assert masks.shape == (3, 3, 48, 72) and iou.shape == (3, 3) and low.shape == (3, 3, 16, 16)
    for i in range(3):
        m, s, lr = predictor.predict(pts[i], np.array([1]))
        assert np.abs(s - iou[i]).max() <= 1e-5 and np.abs(lr - low[i]).max() <= 1e-5


def test_mask_input_roundtrip_and_embedding(predictor):
    _, _, low = predictor.predict(np.array([[30.0, 20.0]]), np.array([1]), multimask_output=False)
    masks, iou, low2 = predictor.predict(np.array([[30.0, 20.0]]), np.array([1]), mask_input=low,
                                         multimask_output=False)
    assert masks.shape == (1, 48, 72) and low2.shape == (1, 16, 16)
    assert not np.array_equal(low, low2)  # the mask prompt changes the result
    assert predictor.get_image_embedding().shape == (1, 16, 4, 4)
    with pytest.raises(ValueError, match="mask_input"):
        predictor.predict(np.array([[30.0, 20.0]]), np.array([1]), mask_input=np.zeros((1, 8, 8), np.float32))


def test_backend_registry(predictor):
    assert "onnx" in available_backends()
    b = load_bundle(BUNDLE)
    backend = create_backend("onnx", b)
    assert isinstance(backend, EncoderBackend) and backend.image_size == 64
    with pytest.raises(Exception, match="unknown encoder backend 'fpga'"):
        create_backend("fpga", b)
    with pytest.raises(Exception, match=r"expects a \(1, 3, 64, 64\)"):
        backend.encode(np.zeros((1, 3, 32, 32), np.float32))


def test_cli_segment_and_error(tmp_path, expected, capsys):
    img = tmp_path / "img.png"
    write_png(img, expected["image"])
    out = tmp_path / "out"
    rc = cli.main(["segment", str(img), "--point", "30,20", "--box", "15,8,55,33", "--model", str(BUNDLE),
                   "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["mask_0.png", "overlay.png", "scores.json"]
    assert json.loads((out / "scores.json").read_text())["masks"][0]["file"] == "mask_0.png"
    rc = cli.main(["segment", str(img), "--point", "300,20", "--model", str(BUNDLE), "--out", str(tmp_path / "o2")])
    err = capsys.readouterr().err
    assert rc == 2 and "outside the image" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o2").exists()


def test_default_bundle_on_sample(tmp_path):
    """The bundled default model (sw/samfpga/assets/default) segments the bundled sample with its bundled prompt."""
    root = default_bundle_dir()
    samples = sample_images()
    assert root is not None, "sw/samfpga/assets/default/bundle.json is missing"
    assert samples, "no sample image in sw/samfpga/assets/samples"
    p = Predictor.from_bundle(root)
    from samfpga.image_io import read_image

    image, _ = read_image(samples[0], convert=True)
    prompt = sample_prompt(samples[0]) or {"points": [[image.shape[1] / 2, image.shape[0] / 2]], "labels": [1],
                                          "box": None}
    p.set_image(image)
    pts = np.array(prompt["points"]).reshape(-1, 2) if prompt["points"] else None
    masks, iou, _ = p.predict(pts, np.array(prompt["labels"]) if prompt["points"] else None,
                              None if prompt["box"] is None else np.array(prompt["box"]), multimask_output=False)
    assert masks.shape == (1, *image.shape[:2]) and 0 < masks.sum() < masks.size


def test_overlay_fills_outlines_and_marks():
    from samfpga.viz import BOX, FOREGROUND, outline, overlay, palette

    img = np.full((40, 50, 3), 100, np.uint8)
    m = np.zeros((40, 50), bool)
    m[10:30, 10:40] = True
    edge = outline(m)
    assert edge.sum() == 2 * 20 + 2 * 28 and not edge[15, 20] and edge[10, 20]
    out = overlay(img, [m], points=np.array([[25, 20]]), labels=np.array([1]), box=np.array([2, 2, 47, 37]))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out[10, 20], palette(1)[0])  # outline in the mask colour
    assert not np.array_equal(out[15, 15], img[15, 15]) and np.array_equal(out[35, 5], img[35, 5])
    assert np.array_equal(out[20, 25], FOREGROUND) and np.array_equal(out[2, 20], BOX)
