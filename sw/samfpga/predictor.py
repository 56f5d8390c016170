"""``Predictor``: SAM's ``SamPredictor`` on the host runtime (numpy + onnxruntime, no torch).

Same methods, arguments, shapes, coordinate conventions and misuse errors as
``segment_anything.SamPredictor``; the image encoder is an ``EncoderBackend`` (ONNX reference, FPGA, ...)
and the prompt encoder + mask decoder run on onnxruntime (``OnnxDecoder``: the bundle's decoder graph, or its split
decoder whose image-side part runs once in ``set_image``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .backends import EncoderBackend, create_backend
from .bundle import Bundle, load_bundle
from .decoder import DecoderImage, OnnxDecoder
from .decoder_prompts import as_finite, decoder_prompts
from .transforms import ResizeLongestSide, postprocess_masks, preprocess_shape


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
            raise ValueError(f"set_image: image must be an (H, W, 3) uint8 array, got "
                             f"{getattr(image, 'shape', type(image).__name__)} {getattr(image, 'dtype', '')}")
        if min(image.shape[:2]) == 0:
            raise ValueError(f"set_image: image is empty, shape {image.shape}")
        if min(preprocess_shape(image.shape[0], image.shape[1], self.image_size)) == 0:
            raise ValueError(f"set_image: image of shape {image.shape} is too elongated: its short side would "
                             f"resize to 0 pixels at long side {self.image_size}")
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
        t1 = time.perf_counter()
        # normalised + zero-padded float image, or (pixel-input accelerators) pixels padded with pad codes
        self.features = self.encoder.encode_image(np.ascontiguousarray(input_image, dtype=np.uint8), self._mean,
                                                  self._std)
        t2 = time.perf_counter()
        self._decoder_image = self.decoder.prepare(self.features)
        self.timings = {"preprocess_s": t1 - t0, "encode_s": t2 - t1, "decoder_prepare_s": time.perf_counter() - t2}
        self.is_image_set = True

    def get_image_embedding(self) -> np.ndarray:
        """The current image's embedding, (1, C, h, w) float32."""
        if not self.is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) to generate an embedding.")
        assert self.features is not None, "Features must exist if an image has been set."
        return self.features

    def reset_image(self) -> None:
        self.is_image_set = False
        self.features: np.ndarray | None = None
        self._decoder_image: DecoderImage | None = None
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
        # add the batch axis; decoder_prompts checks labels against coordinates (both or neither, matching shape)
        coords = labels = boxes = masks_in = None
        if point_coords is not None:
            c = as_finite(point_coords, "point_coords", np.float64)
            if c.ndim != 2 or c.shape[1] != 2:
                raise ValueError(f"point_coords must be (N, 2) (x, y), got shape {c.shape}")
            coords = self.transform.apply_coords(c, self.original_size)[None]
        if point_labels is not None:
            labels = np.asarray(point_labels)[None]
        if box is not None:
            b = as_finite(box, "box", np.float64)
            if b.shape not in ((4,), (1, 4)):
                raise ValueError(f"box must be (4,) XYXY, got shape {b.shape}")
            boxes = self.transform.apply_boxes(b, self.original_size)
        if mask_input is not None:
            masks_in = as_finite(mask_input, "mask_input")
            if masks_in.ndim != 3:
                raise ValueError(f"mask_input must be (1, {', '.join(map(str, self.bundle.mask_input_size))}), "
                                 f"got shape {masks_in.shape}")
            masks_in = masks_in[None]
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
        t0 = time.perf_counter()
        low_res, iou = self.predict_low_res(point_coords, point_labels, boxes, mask_input, multimask_output)
        t1 = time.perf_counter()
        masks = postprocess_masks(low_res, self.image_size, self.input_size, self.original_size)
        if not return_logits:
            masks = masks > self.mask_threshold
        self.timings.update({"decode_s": t1 - t0, "postprocess_s": time.perf_counter() - t1})
        return masks, iou, low_res

    def predict_low_res(self, point_coords: np.ndarray | None, point_labels: np.ndarray | None,
                        boxes: np.ndarray | None = None, mask_input: np.ndarray | None = None,
                        multimask_output: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``predict_batch`` without the upscaling: low-res logits (B, C, 4h, 4w) float32 and iou predictions
        (B, C) float32 (segment-everything upscales only the masks that pass its filters)."""
        if not self.is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        if mask_input is not None:
            mask_input = as_finite(mask_input, "mask_input")
            want = (1, *self.bundle.mask_input_size)
            if mask_input.ndim != 4 or mask_input.shape[1:] != want:
                raise ValueError(f"mask_input must be (B or 1, {', '.join(map(str, want))}), got {mask_input.shape}")
        coords, labels = decoder_prompts(point_coords, point_labels, boxes,
                                         1 if mask_input is None else mask_input.shape[0])
        if mask_input is not None and mask_input.shape[0] not in (1, coords.shape[0]):
            raise ValueError(f"mask_input batch {mask_input.shape[0]} must be 1 or the prompt batch {coords.shape[0]}")
        low_res, iou = self.decoder(self._decoder_image, coords, labels, mask_input)
        sel = slice(1, None) if multimask_output else slice(0, 1)
        for callback in self.batch_callbacks:
            callback(int(coords.shape[0]))
        return np.ascontiguousarray(low_res[:, sel]), np.ascontiguousarray(iou[:, sel])

    def predict_low_res_above(self, point_coords: np.ndarray, point_labels: np.ndarray, iou_thresh: float | None,
                              multimask_output: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The low-res masks whose predicted IoU is above ``iou_thresh`` (None keeps all), for segment-everything:
        the same kept masks as ``predict_low_res`` filtered afterwards, but with the split decoder only prompts
        with a mask above the threshold are upscaled.

        Args:
            point_coords: (B, N, 2) float32 (x, y) in input-frame pixels; point_labels (B, N).

        Returns:
            kept (K,) int64 flat indices into the (B, C) outputs (prompt i, mask j -> C i + j), low-res logits
            (K, 4h, 4w) float32 and IoU predictions (K,) float32; C = 3 or 1.
        """
        if not self.is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        coords, labels = decoder_prompts(point_coords, point_labels, None)
        sel = slice(1, None) if multimask_output else slice(0, 1)
        out = self.decoder.decode_above(self._decoder_image, coords, labels, sel, iou_thresh)
        for callback in self.batch_callbacks:
            callback(int(coords.shape[0]))
        return out
