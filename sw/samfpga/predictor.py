"""``Predictor``: SAM's ``SamPredictor`` on the host runtime (numpy + onnxruntime, no torch).

Same methods, arguments, shapes, coordinate conventions and misuse errors as
``segment_anything.SamPredictor``; the image encoder is an ``EncoderBackend`` (ONNX reference, FPGA, ...)
and the prompt encoder + mask decoder run as one ONNX graph (``OnnxDecoder``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .backends import EncoderBackend, create_backend
from .bundle import Bundle, load_bundle
from .decoder import OnnxDecoder
from .transforms import ResizeLongestSide, _linear_weights

# decoder.onnx labels (SAM's ONNX convention): box corners are points with labels 2 and 3, -1 pads.
PAD_LABEL = -1.0
BOX_LABELS = (2.0, 3.0)


@functools.lru_cache(maxsize=16)
def _resample_matrix(in_size: int, padded_size: int, crop: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) float32 matrix of the 1-D map of ``Sam.postprocess_masks``: bilinear
    (align_corners=False) ``in_size -> padded_size``, keep the first ``crop`` samples, bilinear
    ``crop -> out_size``. Both steps are linear, so their product applies the whole chain at once."""

    def interp(n_in: int, n_out: int) -> np.ndarray:
        i0, i1, lam = _linear_weights(n_in, n_out)
        m = np.zeros((n_out, n_in), dtype=np.float64)
        rows = np.arange(n_out)
        np.add.at(m, (rows, i0), 1.0 - lam.astype(np.float64))
        np.add.at(m, (rows, i1), lam.astype(np.float64))
        return m

    up = interp(in_size, padded_size)[:crop]
    return (interp(crop, out_size) @ up).astype(np.float32)


def postprocess(low_res: np.ndarray, image_size: int, input_size: tuple[int, int],
                original_size: tuple[int, int]) -> np.ndarray:
    """Low-res logits (..., 4h, 4w) -> (..., H0, W0) float32, as ``Sam.postprocess_masks``: upscale to the
    padded encoder input, crop the padding, resize to the original image.

    Computed as ``R @ x @ C.T`` with the composed resampling matrices (two matrix products per mask instead of
    a (S, S) intermediate): the same linear map as torch's two ``interpolate`` calls, equal up to float32
    rounding (max abs diff ~1e-6 on logits of order 10; tests/test_predictor_parity.py).
    """
    r = _resample_matrix(low_res.shape[-2], image_size, int(input_size[0]), int(original_size[0]))
    c = _resample_matrix(low_res.shape[-1], image_size, int(input_size[1]), int(original_size[1]))
    return np.matmul(np.matmul(r, low_res.astype(np.float32, copy=False)), c.T)


class Predictor:
    """Predict masks for one image from point, box and mask prompts (``SamPredictor`` API).

    Args:
        encoder: the image-encoder backend.
        decoder: the prompt encoder + mask decoder.
        bundle: the bundle both came from (normalisation, sizes, mask threshold).
    """

    image_format = "RGB"

    def __init__(self, encoder: EncoderBackend, decoder: OnnxDecoder, bundle: Bundle) -> None:
        if encoder.image_size != bundle.image_size or tuple(encoder.embedding_shape) != tuple(bundle.embedding_shape):
            raise ValueError(f"encoder backend ({encoder.image_size}, {encoder.embedding_shape}) does not match the "
                             f"bundle ({bundle.image_size}, {bundle.embedding_shape})")
        self.encoder = encoder
        self.decoder = decoder
        self.bundle = bundle
        self.image_size = bundle.image_size
        self.mask_threshold = bundle.mask_threshold
        self._mean = np.asarray(bundle.pixel_mean, dtype=np.float32)
        self._std = np.asarray(bundle.pixel_std, dtype=np.float32)
        self.transform = ResizeLongestSide(bundle.image_size)
        self.timings: dict[str, float] = {}
        # called with the prompt-batch size after every decoder run (progress bars, call counting)
        self.batch_callbacks: list[Callable[[int], None]] = []
        self.reset_image()

    @classmethod
    def from_bundle(cls, bundle: str | Path | Bundle, backend: str = "onnx", threads: int = 0,
                    **backend_options: Any) -> Predictor:
        """Load a bundle directory and build the predictor with the encoder backend named ``backend``."""
        b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        if backend == "onnx":
            backend_options.setdefault("threads", threads)
        return cls(create_backend(backend, b, **backend_options), OnnxDecoder(b, threads), b)

    @classmethod
    def from_deploy(cls, package: str | Path, backend: str = "quant", threads: int = 0,
                    **backend_options: Any) -> Predictor:
        """Load a deployment package (``samfpga deploy``) and build the predictor with its encoder backend:
        ``quant`` (integer graph on the CPU), ``pynq`` (the accelerator; needs the bitfile), ``pynq-sim``
        (the pynq driver on a simulated device) or ``onnx`` (the package bundle's float encoder)."""
        from .deploy import load_package

        pkg = load_package(package)
        if backend != "onnx":
            backend_options.setdefault("package", pkg)
        return cls.from_bundle(pkg.bundle, backend=backend, threads=threads, **backend_options)

    # ------------------------------------------------------------------ image
    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        """Compute the embedding of ``image``.

        Args:
            image: (H, W, 3) uint8.
            image_format: "RGB" or "BGR".
        """
        assert image_format in ["RGB", "BGR"], f"image_format must be in ['RGB', 'BGR'], is {image_format}."
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"set_image expects an (H, W, 3) uint8 array, got "
                             f"{getattr(image, 'shape', type(image).__name__)} {getattr(image, 'dtype', '')}")
        if image_format != self.image_format:
            image = image[..., ::-1]
        t0 = time.perf_counter()
        input_image = self.transform.apply_image(np.ascontiguousarray(image))
        self.set_resized_image(input_image, image.shape[:2], _t0=t0)

    def set_resized_image(self, input_image: np.ndarray, original_image_size: tuple[int, ...],
                          _t0: float | None = None) -> None:
        """Like ``SamPredictor.set_torch_image``: ``input_image`` (h, w, 3) uint8 already resized so its long
        side is ``image_size``; ``original_image_size`` (H, W) of the image prompts refer to."""
        assert (
            input_image.ndim == 3 and input_image.shape[2] == 3 and max(*input_image.shape[:2]) == self.image_size
        ), f"set_resized_image input must be HWC with long side {self.image_size}."
        t0 = time.perf_counter() if _t0 is None else _t0
        self.reset_image()
        self.original_size = tuple(int(v) for v in original_image_size)
        self.input_size = tuple(int(v) for v in input_image.shape[:2])
        x = self._preprocess(input_image)
        t1 = time.perf_counter()
        self.features = self.encoder.encode(x)
        t2 = time.perf_counter()
        self.timings = {"preprocess_s": t1 - t0, "encode_s": t2 - t1}
        self.is_image_set = True

    def _preprocess(self, input_image: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8 -> (1, 3, S, S) float32: normalise, zero-pad bottom/right (``Sam.preprocess``)."""
        h, w = input_image.shape[:2]
        x = (input_image.astype(np.float32) - self._mean) / self._std
        out = np.zeros((1, 3, self.image_size, self.image_size), dtype=np.float32)
        out[0, :, :h, :w] = x.transpose(2, 0, 1)
        return out

    def get_image_embedding(self) -> np.ndarray:
        """The current image's embedding, (1, C, h, w) float32."""
        if not self.is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) to generate an embedding.")
        assert self.features is not None, "Features must exist if an image has been set."
        return self.features

    def reset_image(self) -> None:
        self.is_image_set = False
        self.features: np.ndarray | None = None
        self.original_size: tuple[int, ...] | None = None
        self.input_size: tuple[int, ...] | None = None
        self.orig_h = self.orig_w = self.input_h = self.input_w = None

    # ---------------------------------------------------------------- prompts
    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks for one prompt set, coordinates in the original image frame (as ``SamPredictor.predict``).

        Args:
            point_coords: (N, 2) (x, y) pixels of the original image, or None.
            point_labels: (N,) 1 foreground, 0 background (-1 ignored point).
            box: (4,) XYXY pixels of the original image, or None.
            mask_input: (1, 4h, 4w) low-res logits of a previous prediction (256x256 for a 1024 model).
            multimask_output: three masks if True, else one.
            return_logits: upscaled logits instead of thresholded masks.

        Returns:
            masks (C, H, W) bool (float32 logits with ``return_logits``), iou predictions (C,) float32 and
            low-res logits (C, 4h, 4w) float32, C = 3 or 1.
        """
        if not self.is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        coords = labels = boxes = masks_in = None
        if point_coords is not None:
            assert point_labels is not None, "point_labels must be supplied if point_coords is supplied."
            coords = self.transform.apply_coords(np.asarray(point_coords), self.original_size)
            coords = np.asarray(coords, dtype=np.float32)[None, :, :]
            labels = np.asarray(point_labels)[None, :]
        if box is not None:
            boxes = self.transform.apply_boxes(np.asarray(box), self.original_size).astype(np.float32)[None, :]
            boxes = boxes.reshape(1, 4)
        if mask_input is not None:
            masks_in = np.asarray(mask_input, dtype=np.float32)[None, :, :, :]
        masks, iou, low_res = self.predict_batch(coords, labels, boxes, masks_in, multimask_output, return_logits)
        return masks[0], iou[0], low_res[0]

    def predict_batch(
        self,
        point_coords: np.ndarray | None,
        point_labels: np.ndarray | None,
        boxes: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A batch of prompt sets on the current image, coordinates already in the encoder-input frame
        (``transform.apply_coords``), as ``SamPredictor.predict_torch``.

        Args:
            point_coords: (B, N, 2) float32 (x, y) in input-frame pixels, or None.
            point_labels: (B, N) 1 foreground, 0 background, -1 ignored point.
            boxes: (B, 4) XYXY in input-frame pixels, or None.
            mask_input: (B or 1, 1, 4h, 4w) low-res logits, or None.
            multimask_output: three masks per prompt set if True, else one.
            return_logits: upscaled logits instead of thresholded masks.

        Returns:
            masks (B, C, H, W) bool (float32 with ``return_logits``), iou predictions (B, C) float32,
            low-res logits (B, C, 4h, 4w) float32.
        """
        if not self.is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        t0 = time.perf_counter()
        coords, labels = self._decoder_points(point_coords, point_labels, boxes, mask_input)
        if mask_input is not None:
            mask_input = np.asarray(mask_input, dtype=np.float32)
            want = (1, *self.bundle.mask_input_size)
            if mask_input.ndim != 4 or mask_input.shape[1:] != want or mask_input.shape[0] not in (1, coords.shape[0]):
                raise ValueError(f"mask_input must be (B or 1, {', '.join(map(str, want))}), got {mask_input.shape}")
        low_res, iou = self.decoder(self.features, coords, labels, mask_input)
        t1 = time.perf_counter()
        sel = slice(1, None) if multimask_output else slice(0, 1)
        low_res = np.ascontiguousarray(low_res[:, sel])
        iou = np.ascontiguousarray(iou[:, sel])
        masks = postprocess(low_res, self.image_size, self.input_size, self.original_size)
        if not return_logits:
            masks = masks > self.mask_threshold
        self.timings.update({"decode_s": t1 - t0, "postprocess_s": time.perf_counter() - t1})
        for callback in self.batch_callbacks:
            callback(int(coords.shape[0]))
        return masks, iou, low_res

    def _decoder_points(
        self, point_coords: np.ndarray | None, point_labels: np.ndarray | None, boxes: np.ndarray | None,
        mask_input: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Points, box corners and padding as ``decoder.onnx`` takes them: (B, N', 2) and (B, N').

        Mirrors the official prompt encoder: points first; box corners (labels 2, 3) after them; the padding
        point (0, 0) with label -1 appended when there is no box.
        """
        parts_c: list[np.ndarray] = []
        parts_l: list[np.ndarray] = []
        batch = None
        if point_coords is not None:
            if point_labels is None:
                raise ValueError("point_labels must be supplied if point_coords is supplied.")
            c = np.asarray(point_coords, dtype=np.float32)
            lab = np.asarray(point_labels)
            if c.ndim != 3 or c.shape[2] != 2:
                raise ValueError(f"point_coords must be (B, N, 2), got {c.shape}")
            if lab.shape != c.shape[:2]:
                raise ValueError(f"point_labels must be (B, N) = {c.shape[:2]}, got {lab.shape}")
            if not np.all(np.isfinite(c)):
                raise ValueError("point_coords contain NaN or infinite values")
            bad = ~np.isin(lab, (-1, 0, 1))
            if bad.any():
                raise ValueError(f"point_labels must be 1 (foreground), 0 (background) or -1 (ignored), got "
                                 f"{np.unique(lab[bad]).tolist()}")
            batch = c.shape[0]
            parts_c.append(c)
            parts_l.append(lab.astype(np.float32))
        if boxes is not None:
            b = np.asarray(boxes, dtype=np.float32)
            if b.ndim == 1:
                b = b[None]
            if b.ndim != 2 or b.shape[1] != 4:
                raise ValueError(f"boxes must be (B, 4) XYXY, got {b.shape}")
            if not np.all(np.isfinite(b)):
                raise ValueError("boxes contain NaN or infinite values")
            if batch is not None and b.shape[0] != batch:
                raise ValueError(f"boxes batch {b.shape[0]} does not match point batch {batch}")
            batch = b.shape[0]
            parts_c.append(b.reshape(-1, 2, 2))
            parts_l.append(np.tile(np.array(BOX_LABELS, dtype=np.float32), (batch, 1)))
        if batch is None:
            batch = 1 if mask_input is None else int(np.asarray(mask_input).shape[0])
        if point_coords is not None and boxes is None:
            parts_c.append(np.zeros((batch, 1, 2), dtype=np.float32))
            parts_l.append(np.full((batch, 1), PAD_LABEL, dtype=np.float32))
        if not parts_c:
            return np.zeros((batch, 0, 2), dtype=np.float32), np.zeros((batch, 0), dtype=np.float32)
        return np.concatenate(parts_c, axis=1), np.concatenate(parts_l, axis=1)
