"""The pixel input (samfpga.hw.build.pixel_input): SAM's normalisation folded into the input quantizer's
thresholds, proved by enumeration (tolerance 0).

The float path: ``samfpga.transforms.normalize`` (float32, what the host ran) then the input quantizer as Brevitas
computes it and as its QONNX export computes it. The uint8 path: the graph after ``qonnx_to_finn`` and the
``pixel_input`` step, on the pixel itself. An input of shape (1, 3, 16, 16) holding every value 0..255 once per
channel enumerates all pixels of all channels in one run.
"""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.transforms import PIXEL_MEAN, PIXEL_STD, normalize

ALL_PIXELS = np.stack([np.roll(np.arange(256), 37 * c) for c in range(3)]).reshape(1, 3, 16, 16).astype(np.uint8)


def _normalised(pixels_nchw: np.ndarray, mean=PIXEL_MEAN, std=PIXEL_STD) -> np.ndarray:
    return np.ascontiguousarray(normalize(pixels_nchw.transpose(0, 2, 3, 1), mean, std).transpose(0, 3, 1, 2))


def _input_quantizer(tmp_path, bits: int, scale: str, spread: float):
    """A Brevitas input quantizer (the encoder's: ``act_quant``, signed, half-up rounding) calibrated on normalised
    images of std ``spread``; its QONNX export (the project's ``export_qonnx``)."""
    import torch

    from samfpga.models.quant import export_qonnx
    from samfpga.models.quant.layers import act_quant

    torch.manual_seed(0)
    q = act_quant(bits, True, scale)
    q.train()
    from brevitas.graph.calibrate import calibration_mode

    with calibration_mode(q), torch.no_grad():
        for _ in range(4):
            q(torch.randn(2, 3, 16, 16) * spread)
    q.eval()
    return q, export_qonnx(q, tmp_path / "q.onnx", (1, 3, 16, 16))


@pytest.mark.parametrize("bits, scale, spread", [(8, "po2", 1.0), (8, "float", 0.7),
                                                 pytest.param(6, "po2", 2.0, marks=pytest.mark.slow),
                                                 pytest.param(4, "float", 1.5, marks=pytest.mark.slow)])
def test_uint8_codes_equal_float_path_for_every_pixel(tmp_path, bits, scale, spread) -> None:
    """Every pixel of every channel: code on uint8 thresholds == Brevitas's == QONNX's on the normalised value;
    the pad codes quantize like normalised 0.0 in all three."""
    import torch
    from qonnx.core.modelwrapper import ModelWrapper

    from samfpga.hw.build.config import BuildConfig
    from samfpga.hw.build.context import BuildContext
    from samfpga.hw.build.steps import STEPS
    from samfpga.hw.build.verify import execute
    from samfpga.hw.finn_env import boot

    boot(tmp_path / "finn")
    q, path = _input_quantizer(tmp_path, bits, scale, spread)
    x = _normalised(ALL_PIXELS)
    qonnx_model = ModelWrapper(str(path))
    ref_qonnx = execute(qonnx_model, x)
    with torch.no_grad():
        ref_brevitas = q(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(ref_brevitas, ref_qonnx)
    step = float(np.min(np.diff(np.unique(ref_qonnx))))
    assert np.unique(ref_qonnx).size >= 8  # many levels reached: not a saturated case

    ctx = BuildContext(cfg=BuildConfig(board="kv260", output_dir=str(tmp_path / "b")), out=tmp_path)
    model = STEPS["qonnx_to_finn"](qonnx_model, ctx)
    assert model.get_nodes_by_op_type("MultiThreshold")
    model = STEPS["pixel_input"](model, ctx)
    assert model.get_tensor_datatype(model.graph.input[0].name).name == "UINT8"
    mt = model.get_nodes_by_op_type("MultiThreshold")[0]
    t = model.get_initializer(mt.input[1])
    assert t.shape == (3, 2 ** bits - 1) and np.array_equal(t, np.round(t)) and t.min() >= 0 and t.max() <= 256
    got = execute(model, ALL_PIXELS.astype(np.float32))
    assert int(np.count_nonzero(got != ref_qonnx)) == 0
    # pad codes: a pixel per channel that quantizes like SAM's normalised zero padding
    pads = ctx.results.pixel_input["pad_codes"]
    zero_ref = execute(qonnx_model, np.zeros((1, 3, 16, 16), np.float32))
    pad_img = np.broadcast_to(np.asarray(pads, np.float32)[None, :, None, None], (1, 3, 16, 16)).copy()
    np.testing.assert_array_equal(execute(model, pad_img), zero_ref)
    assert (tmp_path / "pixel_input.json").is_file() and step > 0


def test_fold_matches_enumeration_with_per_channel_thresholds() -> None:
    """Per-channel float thresholds (3, steps), arbitrary non-uniform: folded thresholds reproduce the float path's
    code on every pixel; non-decreasing; 256 where no pixel reaches a level."""
    from samfpga.hw.build.pixel_input import float_codes, fold_thresholds
    from samfpga.kernels.thresholding import multithreshold

    rng = np.random.default_rng(1)
    t = np.sort(rng.normal(size=(3, 40)) * 1.5, axis=1).astype(np.float32)
    folded = fold_thresholds(t, PIXEL_MEAN, PIXEL_STD)
    codes = float_codes(t, PIXEL_MEAN, PIXEL_STD)
    px = np.repeat(np.arange(256, dtype=np.float64)[:, None], 3, axis=1)
    np.testing.assert_array_equal(multithreshold(px, folded).T, codes)
    assert np.all(np.diff(folded, axis=1) >= 0) and folded.max() == 256 and folded.min() == 0


def test_no_pixel_like_zero_is_a_clear_error() -> None:
    """An input quantizer finer than one pixel step around 0 (step 1/1024, pixel step 1/58): SAM's zero padding
    has no uint8 equivalent -> PixelInputError naming the channel and the codes."""
    from samfpga.hw.build.pixel_input import PixelInputError, pad_codes

    t = ((np.arange(255) - 127.5) / 1024).astype(np.float32)[None]
    with pytest.raises(PixelInputError, match=r"channel 0: no uint8 pixel quantizes like normalised 0.0 \(code 128"):
        pad_codes(t, PIXEL_MEAN, PIXEL_STD)


def test_graph_without_input_quantizer_refused(tmp_path) -> None:
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper

    from samfpga.hw.build.pixel_input import PixelInputError, to_pixel_input

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    with pytest.raises(PixelInputError, match=r"does not feed one input quantizer .*consumers \['Relu'\]"):
        to_pixel_input(ModelWrapper(helper.make_model(g)), PIXEL_MEAN, PIXEL_STD)
