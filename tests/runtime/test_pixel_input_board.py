"""The pixel-input accelerator in the board environment (no torch/finn): the committed tiny package
(tests/runtime/data/tiny_deploy, built with the pixel input: uint8 NHWC image in, SAM's normalisation folded into
the first threshold table) against the same build with the float input (tests/runtime/data/tiny_float_input: its
integer graph, made by tests/support/tiny_deploy.py --no-pixel-input --graph-only), tolerance 0.

The float path: ``normalize_and_pad`` (float32, zero padding) -> the float graph (host transpose, float32 input
quantizer). The pixel path: ``pad_pixels`` with the package's pad codes -> the pixel graph (uint8 thresholds).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samfpga.assets import sample_images
from samfpga.backends import BackendError, create_backend
from samfpga.backends.quant_backend import to_nchw
from samfpga.deploy import DeployError, load_package
from samfpga.intexec import load_intgraph
from samfpga.predictor import Predictor
from samfpga.transforms import ResizeLongestSide, normalize_and_pad

DATA = Path(__file__).parent / "data"
PKG = DATA / "tiny_deploy"
FLOAT_REF = DATA / "tiny_float_input"


def _images() -> list[np.ndarray]:
    """The 4 bundled samples and random images whose resized shapes are square, wide, tall and one pixel thin."""
    imgs = [np.asarray(Image.open(p).convert("RGB")) for p in sample_images()]
    rng = np.random.default_rng(5)
    for h, w in ((64, 64), (37, 100), (300, 120), (500, 9), (7, 64)):
        imgs.append(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
    return imgs


def test_package_input_fields() -> None:
    """manifest.json's input (UINT8, NHWC, pad codes, the normalisation folded), the graph's input (uint8 image,
    no host layer before the accelerator), the driver's input stream (8 bits, 1 byte per value)."""
    pkg = load_package(PKG)
    inp = pkg.input
    assert inp.pixels and inp.layout == "NHWC" and len(inp.pad_codes) == 3
    assert all(0 <= p <= 255 for p in inp.pad_codes)
    assert np.allclose(inp.pixel_mean, pkg.bundle.pixel_mean) and np.allclose(inp.pixel_std, pkg.bundle.pixel_std)
    g = json.loads((PKG / "graph.json").read_text())
    assert g["tensors"][g["input"]] == {"shape": [1, 64, 64, 3], "dtype": "UINT8"}
    assert g["nodes"][0]["on"] == "hw" and g["accelerator"]["input"] == g["input"]
    first = g["nodes"][0]
    assert first["attrs"]["inputDataType"] == "UINT8"
    io = pkg.driver["inputs"][0]
    assert io["dtype"] == "UINT8" and io["bits"] == 8 and int(np.prod(io["shape_packed"])) == 64 * 64 * 3
    ref = json.loads((FLOAT_REF / "driver.json").read_text())["inputs"][0]
    assert ref["dtype"] == "FLOAT32" and int(np.prod(ref["shape_packed"])) == 64 * 64 * 3 * 4


def test_quant_pixel_path_equals_float_path() -> None:
    """Embeddings of the pixel package (Predictor, quant backend: pad codes, uint8 graph) == the float build's
    graph on the normalised zero-padded image, on the samples and on square, wide, tall and thin images."""
    quant = Predictor.from_deploy(PKG, backend="quant")
    ref = load_intgraph(FLOAT_REF)
    shape = tuple(quant.bundle.embedding_shape)
    resize = ResizeLongestSide(64)
    padded = 0
    for img in _images():
        quant.set_image(img)
        got = quant.get_image_embedding()
        resized = resize.apply_image(img)
        padded += resized.shape[0] < 64 or resized.shape[1] < 64
        x = normalize_and_pad(resized, 64, quant.bundle.pixel_mean, quant.bundle.pixel_std)
        want = to_nchw(ref.run(x), shape)
        assert np.unique(want).size > 50
        assert int(np.count_nonzero(got != want)) == 0
    assert padded >= 4
    # the pad codes matter: pixel 0 as padding (normalised -2.1..-1.8, not 0.0) changes the padded embedding
    g = quant.encoder.graph
    x = quant.encoder.input.pixel_tensor(resized, 64)
    x[0, resized.shape[0]:, :] = 0
    x[0, :, resized.shape[1]:] = 0
    assert int(np.count_nonzero(to_nchw(g.run(x), shape) != want)) > 0


def test_pynq_sim_pixel_path_sends_bytes() -> None:
    """pynq-sim on the pixel package: the DMA input buffer holds one byte per value (12,288 bytes for 64x64x3;
    the float input took 49,152) and the embedding equals quant's, on a padded image."""
    img = np.random.default_rng(2).integers(0, 256, size=(40, 64, 3), dtype=np.uint8)
    sim = Predictor.from_deploy(PKG, backend="pynq-sim")
    quant = Predictor.from_deploy(PKG, backend="quant")
    try:
        assert sim.encoder.accel.ibuf.nbytes == 64 * 64 * 3
        sim.set_image(img)
        quant.set_image(img)
        np.testing.assert_array_equal(sim.get_image_embedding(), quant.get_image_embedding())
    finally:
        sim.encoder.close()


def test_float_input_refused_by_pixel_package() -> None:
    pkg = load_package(PKG)
    quant = create_backend("quant", pkg.bundle, package=pkg)
    with pytest.raises(BackendError, match="takes uint8 pixels .NHWC.*call encode_image"):
        quant.encode(np.zeros((1, 3, 64, 64), np.float32))
    with pytest.raises(BackendError, match="thresholds fold pixel_mean"):
        quant.encode_image(np.zeros((64, 64, 3), np.uint8), (0.0, 0.0, 0.0), pkg.bundle.pixel_std)
    with pytest.raises(BackendError, match=r"expects an \(h, w, 3\) uint8 image with long side 64"):
        quant.encode_image(np.zeros((64, 64, 3), np.float32), pkg.bundle.pixel_mean, pkg.bundle.pixel_std)


def _copy_with_manifest(tmp_path: Path, edit) -> Path:
    pkg = tmp_path / "pkg"
    shutil.copytree(PKG, pkg)
    man = json.loads((pkg / "manifest.json").read_text())
    edit(man)
    (pkg / "manifest.json").write_text(json.dumps(man))
    return pkg


@pytest.mark.parametrize("edit, expect", [
    (lambda m: m.pop("input"), "manifest.json: no field 'input' (dtype, layout, pad_codes) for a graph whose input "
                               "is UINT8"),
    (lambda m: m["input"].update(pad_codes=[1, 300, 2]), "field 'input': pad_codes [1, 300, 2] must be 3 values"),
    (lambda m: m["input"].pop("pad_codes"), "field 'input' is malformed (KeyError: 'pad_codes')"),
    (lambda m: m["input"].update(pixel_mean=[0.0, 0.0, 0.0]), "the accelerator's thresholds fold pixel_mean"),
    (lambda m: m["input"].update(dtype="FLOAT32"), "field 'input' says dtype FLOAT32, graph.json's input is UINT8"),
])
def test_package_input_field_checked(tmp_path, edit, expect) -> None:
    """A package whose manifest lacks or garbles the input description is refused with one line naming the
    field (manifest.json is not itself checksummed, so these reach the agreement checks)."""
    with pytest.raises(DeployError) as e:
        load_package(_copy_with_manifest(tmp_path, edit))
    assert expect in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_float_package_keeps_its_float_path(tmp_path) -> None:
    """A package made before the pixel input (float graph input, no 'input' field: the synthetic test package)
    still runs: encode_image normalises and zero-pads, as encode on normalize_and_pad's output."""
    from tests.support.synthetic_package import make_package

    pkg = load_package(make_package(tmp_path / "p"))
    assert "input" not in pkg.manifest and not pkg.input.pixels
    quant = create_backend("quant", pkg.bundle, package=pkg)
    img = np.random.default_rng(0).integers(0, 256, size=(64, 30, 3), dtype=np.uint8)
    mean, std = pkg.bundle.pixel_mean, pkg.bundle.pixel_std
    np.testing.assert_array_equal(quant.encode_image(img, mean, std),
                                  quant.encode(normalize_and_pad(img, 64, mean, std)))
