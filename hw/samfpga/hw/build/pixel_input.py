"""The accelerator takes the resized uint8 RGB image: SAM's normalisation folded into the first threshold table.

The float path the host ran until now: ``x = (p - mean_c) / std_c`` in float32 (``samfpga.transforms.normalize``,
the one place that computes it), zero padding to a square, then the input quantizer, the graph's first
MultiThreshold ``q(x) = #{k : x >= T_k}`` (+ ActVal). ``x_c(p)`` is monotone in the pixel ``p`` (float32
subtraction and division by a positive std are monotone), so ``q(x_c(p))`` is monotone too, and thresholds on the
pixel itself,

    T'_c,k = min{p in 0..255 : x_c(p) >= T_k}      (256 where no pixel reaches level k),

give every pixel the code the float path gives it. ``fold_thresholds`` computes them and proves the equality by
enumerating all 256 pixels of every channel (``PixelInputError`` if any code differed).

Padding: SAM pads the *normalised* image with 0.0, which is no pixel value. The host pads with a per-channel pad
code ``p0_c``: a pixel whose code equals ``q(0.0)`` (the one nearest to ``mean_c``). Where no pixel has that code
(an input quantizer finer than one pixel step ``1 / std_c`` around 0) the build stops with ``PixelInputError``.

The graph change (``to_pixel_input``): the graph input becomes UINT8; when the input only feeds a Transpose to
NHWC in front of the quantizer, the Transpose is removed and the graph input is
the (1, S, S, 3) NHWC image the host holds, sent without any host layer (likewise a Transpose right after the
quantizer, where streamlining leaves it: per-channel thresholds commute with it). ``step_pixel_input`` runs it in the build
(after streamlining, before the HW conversion) and writes ``pixel_input.json`` (``PIXEL_INPUT_FILE``) into the
build directory; ``samfpga deploy`` puts its fields into the package's manifest (``input``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from samfpga.kernels.thresholding import multithreshold
from samfpga.transforms import normalize

#: written into the build directory by ``step_pixel_input``; read by ``samfpga.hw.build.package``
PIXEL_INPUT_FILE = "pixel_input.json"
PIXELS = np.arange(256)


class PixelInputError(ValueError):
    """The normalisation cannot be folded exactly (message names the channel and the codes)."""


@dataclass(frozen=True)
class PixelInput:
    """What the host needs to feed the pixel-input graph.

    dtype:      graph input datatype ("UINT8")
    layout:     "NHWC" (graph input (1, S, S, 3)) or "NCHW" ((1, 3, S, S))
    pad_codes:  per channel (R, G, B), the uint8 pixel whose quantized code equals that of normalised 0.0
    pixel_mean, pixel_std: the normalisation folded into the thresholds (the bundle's must equal them)
    """

    dtype: str
    layout: str
    pad_codes: tuple[int, int, int]
    pixel_mean: tuple[float, float, float]
    pixel_std: tuple[float, float, float]

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def float_codes(thresholds: np.ndarray, mean, std) -> np.ndarray:
    """(3, 256) int64: the input quantizer's code (count of thresholds reached) of every pixel value per channel,
    on the float path (``normalize`` in float32, then float32 comparison with ``thresholds`` (1 or 3, steps))."""
    x = normalize(np.repeat(PIXELS.astype(np.uint8)[:, None], 3, axis=1), mean, std)  # (256, 3) float32
    return multithreshold(x, np.asarray(thresholds, np.float32)).astype(np.int64).T


def fold_thresholds(thresholds: np.ndarray, mean, std) -> np.ndarray:
    """(1 or 3, steps) float32 thresholds on the normalised input -> (3, steps) float32 integer thresholds
    (0..256) on the uint8 pixel; exactness checked on all 256 pixels of each channel."""
    t = np.asarray(thresholds, np.float32)
    if t.ndim != 2 or t.shape[0] not in (1, 3):
        raise PixelInputError(f"input quantizer thresholds must be (1 or 3, steps), got {t.shape}")
    codes = float_codes(t, mean, std)  # (3, 256), non-decreasing in the pixel
    if np.any(np.diff(codes, axis=1) < 0):
        raise PixelInputError("the float path's codes are not monotone in the pixel value (negative std?)")
    steps = t.shape[1]
    # level k (1-based) is reached from the first pixel whose code is >= k
    folded = np.stack([np.searchsorted(codes[c], np.arange(1, steps + 1), side="left") for c in range(3)])
    folded = folded.astype(np.float32)
    got = multithreshold(PIXELS.astype(np.float64)[:, None].repeat(3, axis=1), folded).astype(np.int64).T
    bad = np.argwhere(got != codes)
    if bad.size:
        c, p = bad[0]
        raise PixelInputError(f"channel {c}: pixel {p} gets code {got[c, p]} on uint8 thresholds, "
                              f"{codes[c, p]} on the float path ({len(bad)} pixels differ)")
    return folded


def pad_codes(thresholds: np.ndarray, mean, std) -> tuple[int, int, int]:
    """Per channel, the pixel (nearest to the channel mean) whose code equals the code of normalised 0.0."""
    t = np.asarray(thresholds, np.float32)
    zero = multithreshold(np.zeros((1, t.shape[0]), np.float32), t).astype(np.int64)[0]
    codes = float_codes(t, mean, std)
    out = []
    for c in range(3):
        z = zero[0 if t.shape[0] == 1 else c]
        cand = np.flatnonzero(codes[c] == z)
        if cand.size == 0:
            near = int(np.clip(round(float(mean[c])), 0, 255))
            raise PixelInputError(
                f"channel {c}: no uint8 pixel quantizes like normalised 0.0 (code {z}; pixels "
                f"{max(near - 1, 0)}..{min(near + 1, 255)} give codes {codes[c, max(near - 1, 0):near + 2].tolist()}): "
                f"the input quantizer is finer than one pixel step (1/std = {1 / float(std[c]):.4g}); SAM's zero "
                "padding has no pixel equivalent. Build without the pixel input (--no-pixel-input)")
        out.append(int(cand[np.argmin(np.abs(cand - float(mean[c])))]))
    return tuple(out)  # type: ignore[return-value]


def _consumers(model, tensor: str) -> list:
    return [n for n in model.graph.node if tensor in n.input]


def _is_to_nhwc(node) -> bool:
    perm = [list(a.ints) for a in node.attribute if a.name == "perm"]
    return node.op_type == "Transpose" and perm == [[0, 2, 3, 1]]


def to_pixel_input(model, mean, std):
    """``model`` (ModelWrapper; streamlined, before HW conversion) whose input feeds the input quantizer
    (MultiThreshold), directly or through a Transpose to NHWC -> (model taking UINT8 pixels, ``PixelInput``).
    A Transpose to NHWC right before or right after the quantizer is removed: the graph input becomes NHWC."""
    from onnx import helper
    from qonnx.core import data_layout as DataLayout
    from qonnx.core.datatype import DataType
    from qonnx.custom_op.registry import getCustomOp

    inp = model.graph.input[0]
    users = _consumers(model, inp.name)
    transpose, after = None, False
    if len(users) == 1 and _is_to_nhwc(users[0]) and len(_consumers(model, users[0].output[0])) == 1:
        transpose = users[0]  # input -> Transpose -> quantizer (after convolution lowering moved it up)
        users = _consumers(model, transpose.output[0])
    if len(users) != 1 or users[0].op_type != "MultiThreshold":
        raise PixelInputError(f"graph input {inp.name} does not feed one input quantizer (MultiThreshold), "
                              f"directly or through a Transpose to NHWC: consumers {[n.op_type for n in users]}")
    mt = users[0]
    nxt = _consumers(model, mt.output[0])
    if transpose is None and len(nxt) == 1 and _is_to_nhwc(nxt[0]):
        transpose, after = nxt[0], True  # input -> quantizer (NCHW) -> Transpose: thresholds commute with it
    shape = model.get_tensor_shape(inp.name)
    if len(shape) != 4 or shape[1] != 3:
        raise PixelInputError(f"graph input {inp.name}: shape {shape}, expected (1, 3, S, S)")
    layout = "NHWC" if transpose is not None else "NCHW"
    if transpose is None and getCustomOp(mt).get_nodeattr("data_layout") not in ("NCHW", ""):
        raise PixelInputError(f"{mt.name}: data_layout {getCustomOp(mt).get_nodeattr('data_layout')!r} on an "
                              "NCHW graph input")
    t = model.get_initializer(mt.input[1])
    folded = fold_thresholds(t, mean, std)
    pads = pad_codes(t, mean, std)
    model.set_initializer(mt.input[1], folded)
    if transpose is not None:
        # the host sends the image as it holds it: (1, S, S, 3), no transpose layer (per-channel thresholds
        # commute with a transpose that keeps the channel axis whole)
        n, c, h, w = shape
        if after:
            old_out = mt.output[0]
            mt.output[0] = transpose.output[0]
            for vi in [v for v in model.graph.value_info if v.name == old_out]:
                model.graph.value_info.remove(vi)
        else:
            mt.input[0] = inp.name
        model.graph.node.remove(transpose)
        new = helper.make_tensor_value_info(inp.name, inp.type.tensor_type.elem_type, [n, h, w, c])
        model.graph.input.remove(inp)
        model.graph.input.insert(0, new)
        getCustomOp(mt).set_nodeattr("data_layout", "NHWC")
    model.set_tensor_datatype(inp.name, DataType["UINT8"])
    # InferDataLayouts assumes NCHW for a 4-d graph input without an annotation
    model.set_tensor_layout(inp.name, DataLayout.NHWC if layout == "NHWC" else DataLayout.NCHW)
    info = PixelInput("UINT8", layout, pads, tuple(float(v) for v in mean), tuple(float(v) for v in std))
    return model, info


def step_pixel_input(model, ctx):
    """The graph input becomes the uint8 image (``options.pixel_input``): normalisation folded into the input
    quantizer's thresholds, the input transpose removed (NHWC), pad codes into ``pixel_input.json``. A graph whose
    input is not a (1, 3, H, W) image (a slice of the encoder) is left as it is (``results.pixel_input``
    says so); an image input that cannot be folded exactly stops the build (``PixelInputError``)."""
    opts = ctx.cfg.options
    if not opts.pixel_input:
        return model
    shape = model.get_tensor_shape(model.graph.input[0].name)
    if shape is None or len(shape) != 4 or shape[1] != 3:
        # a slice of the encoder (tests, benches) whose input is not the image: nothing to fold
        ctx.results.pixel_input = {"skipped": f"graph input {model.graph.input[0].name} {shape} is not an image "
                                              "(1, 3, H, W)"}
        return model
    model, info = to_pixel_input(model, opts.pixel_mean, opts.pixel_std)
    ctx.results.pixel_input = info.to_json()
    (ctx.out / PIXEL_INPUT_FILE).write_text(json.dumps(info.to_json(), indent=2) + "\n")
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    return model.transform(InferShapes()).transform(InferDataTypes()).transform(InferDataLayouts())
