"""Prompt encoder + mask decoder on onnxruntime: the bundle's ``decoder.onnx``, or its split decoder.

A bundle with the split decoder (``samfpga.bundle``) runs the prompt-independent part once per image
(``prepare``), the transformer per prompt batch and the mask upscaling only for the prompts whose masks are
wanted (``decode_above``); mask prompts, and bundles without the split, run ``decoder.onnx``. Both compute the
same function (tests/test_decoder_split.py).

Each graph run takes at most ``prompts_per_run`` prompts; a larger batch is decoded in runs of that size and
the results concatenated (the same values: every prompt is decoded on its own). onnxruntime's memory plan keeps
several (hw, C) float32 maps per prompt alive, 29 MB per prompt for the prompt graph and 43 MB for the mask graph
at vit_t 1024² (measured), so a batch of 64 would take 1.9 + 2.7 GB: more than a Kria board has to spare. The
run size bounds the decoder's working memory by ``run_budget_mb`` instead of by the caller's batch.

The bundle's calibration (``samfpga.calibration``) is applied here and nowhere else: to the IoU predictions and
mask logits as each graph returns them (so ``decode_above`` filters on calibrated IoU), and inverted on
``mask_input`` logits going in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .backends.ort_session import make_session
from .bundle import MASK_SIDE_INPUTS, Bundle

#: (hw, C) float32 maps per prompt alive at the peak of one decoder graph run (onnxruntime's memory plan;
#: measured at vit_t 1024², 64 x 64 x 256: 7.3 for decoder_prompt.onnx, 10.6 for decoder_masks.onnx, rounded up)
MAPS_PER_PROMPT = 12


def prompts_per_run(embedding_shape: tuple[int, int, int], run_budget_mb: float) -> int:
    """How many prompts one graph run may take so that its working memory stays within ``run_budget_mb``:
    embedding_shape (C, h, w) (the bundle's) -> prompts (>= 1)."""
    if run_budget_mb <= 0:
        raise ValueError(f"run_budget_mb must be > 0, got {run_budget_mb}")
    per_prompt = MAPS_PER_PROMPT * 4 * int(np.prod(embedding_shape))
    return max(1, int(run_budget_mb * 2**20 // per_prompt))


@dataclass(frozen=True)
class DecoderImage:
    """One image as the decoder takes it: the embedding (1, C, h, w) float32 and, with the split decoder, the
    image-side tensors by name (``samfpga.bundle.IMAGE_SIDE_OUTPUTS``), else None."""

    embeddings: np.ndarray
    side: dict[str, np.ndarray] | None = None


class OnnxDecoder:
    """Runs a bundle's decoder graphs (inputs in the encoder-input frame; see ``samfpga.bundle``).

    Args:
        bundle: a loaded bundle.
        threads: onnxruntime intra-op threads (0: onnxruntime's default).
        run_budget_mb: working memory of one graph run; sets ``prompts_per_run`` (vit_t 1024²: 21 prompts at
            the default 1024 MB; the bundled default's 128 x 16 x 16 embedding: 682). Smaller runs cost time at
            2 threads here (vit_t, every mask wanted: 10 / 21 / 64 prompts per run 48.4 / 45.9 / 41.8 ms per prompt,
            an interleaved /tmp A/B; dense everything's prompt side within noise).
    """

    def __init__(self, bundle: Bundle, threads: int = 0, run_budget_mb: float = 1024.0) -> None:
        self.bundle = bundle
        self.prompts_per_run = prompts_per_run(tuple(bundle.embedding_shape), run_budget_mb)
        self.threads = threads
        self.embedding_shape = tuple(bundle.embedding_shape)
        self.mask_input_size = tuple(bundle.mask_input_size)
        self.num_mask_tokens = bundle.num_mask_tokens
        self.calibration = bundle.calibration
        self._session = None  # decoder.onnx, made on first use when the split serves the rest
        self.split = None
        if bundle.decoder_split is not None:
            self.split = {k: make_session(p, threads) for k, p in bundle.decoder_split.items()}
        else:
            self._session = make_session(bundle.decoder_path, threads)
        self._no_mask = np.zeros((1, 1, *self.mask_input_size), dtype=np.float32)
        self.calls = 0  # decoder invocations (prompt batches), for benchmarks
        # wall seconds per graph since construction: image side, prompt side, mask side, single graph
        self.seconds = {"image": 0.0, "prompt": 0.0, "masks": 0.0, "single": 0.0}

    @property
    def session(self):
        """The single-graph ``decoder.onnx`` session."""
        if self._session is None:
            self._session = make_session(self.bundle.decoder_path, self.threads)
        return self._session

    def prepare(self, image_embeddings: np.ndarray) -> DecoderImage:
        """The per-image part: (1, C, h, w) embedding -> ``DecoderImage`` (runs decoder_image.onnx if present)."""
        emb = np.ascontiguousarray(image_embeddings, dtype=np.float32)
        if self.split is None:
            return DecoderImage(emb)
        sess = self.split["decoder_image"]
        names = [o.name for o in sess.get_outputs()]
        t0 = time.perf_counter()
        outs = sess.run(None, {"image_embeddings": emb})
        self.seconds["image"] += time.perf_counter() - t0
        return DecoderImage(emb, dict(zip(names, outs)))

    def __call__(
        self,
        image: np.ndarray | DecoderImage,
        point_coords: np.ndarray,
        point_labels: np.ndarray,
        mask_input: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decode masks for a batch of prompts on one image.

        Args:
            image: ``prepare``'s result (reused across prompt batches), or the (1, C, h, w) float32 embedding.
            point_coords: (B, N, 2) float32 in encoder-input pixels, padding point / box corners included.
            point_labels: (B, N) float32 (1, 0, 2, 3, -1 padding).
            mask_input: (1 or B, 1, 4h, 4w) float32 low-res logits, or None.

        Returns:
            low-res logits (B, num_mask_tokens, 4h, 4w) float32 and IoU predictions (B, num_mask_tokens) float32.
        """
        if not isinstance(image, DecoderImage):
            image = self.prepare(image) if mask_input is None else DecoderImage(np.asarray(image, np.float32))
        lows, ious = [], []
        for run in self._runs(len(point_coords)):
            if mask_input is not None or image.side is None:
                masks = mask_input if mask_input is None or len(mask_input) == 1 else mask_input[run]
                low, iou = self._full(image.embeddings, point_coords[run], point_labels[run], masks)
            else:
                iou, hyper_in, image_tokens = self._tokens(image, point_coords[run], point_labels[run])
                low = self._masks(image_tokens, hyper_in)
            lows.append(low)
            ious.append(iou)
        return _cat(lows), _cat(ious)

    def _runs(self, batch: int) -> list[slice]:
        """The prompt batch in runs of at most ``prompts_per_run`` (one empty run for an empty batch, so the
        outputs keep their shapes)."""
        n = self.prompts_per_run
        return [slice(i, i + n) for i in range(0, batch, n)] or [slice(0, 0)]

    def decode_above(self, image: DecoderImage, point_coords: np.ndarray, point_labels: np.ndarray,
                     tokens: slice, iou_thresh: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks of the ``tokens`` outputs whose predicted IoU is above ``iou_thresh`` (all if None).

        With the split decoder the mask upscaling runs only for prompts with a mask above the threshold; the
        kept masks are the same as ``__call__``'s filtered afterwards.

        Returns:
            kept (K,) int64 flat indices into the (B, T') selected outputs (prompt i, output j -> T' i + j);
            low-res logits (K, 4h, 4w) float32; IoU (K,) float32.
        """
        width = len(range(self.num_mask_tokens)[tokens])  # T'
        kept_all, lows, ious = [], [], []
        for run in self._runs(len(point_coords)):
            kept, low, iou = self._decode_above(image, point_coords[run], point_labels[run], tokens, iou_thresh)
            kept_all.append(kept + run.start * width)
            lows.append(low)
            ious.append(iou)
        return _cat(kept_all), _cat(lows), _cat(ious)

    def _decode_above(self, image: DecoderImage, point_coords: np.ndarray, point_labels: np.ndarray,
                      tokens: slice, iou_thresh: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``decode_above`` for one run."""
        if image.side is None:
            low_res, iou = self._full(image.embeddings, point_coords, point_labels, None)
            iou = np.ascontiguousarray(iou[:, tokens])
            kept = _above(iou, iou_thresh)
            low = low_res[:, tokens].reshape(-1, *low_res.shape[2:])[kept]
            return kept, low, iou.reshape(-1)[kept]
        iou, hyper_in, image_tokens = self._tokens(image, point_coords, point_labels)
        iou = np.ascontiguousarray(iou[:, tokens])
        kept = _above(iou, iou_thresh)
        t = iou.shape[1]
        prompts, inverse = np.unique(kept // t, return_inverse=True)
        if len(prompts) == 0:
            return kept, np.zeros((0, *self.mask_input_size), np.float32), np.zeros((0,), np.float32)
        low = self._masks(image_tokens[prompts], hyper_in[prompts][:, tokens])  # (P, T', 4h, 4w)
        return kept, low[inverse.reshape(-1), kept % t], iou.reshape(-1)[kept]

    def _full(self, emb: np.ndarray, point_coords: np.ndarray, point_labels: np.ndarray,
              mask_input: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        has_mask = np.array([0.0 if mask_input is None else 1.0], dtype=np.float32)
        feeds = {
            "image_embeddings": np.ascontiguousarray(emb, dtype=np.float32),
            "point_coords": np.ascontiguousarray(point_coords, dtype=np.float32),
            "point_labels": np.ascontiguousarray(point_labels, dtype=np.float32),
            "mask_input": self._no_mask if mask_input is None else np.ascontiguousarray(
                self.calibration.raw_logits(np.asarray(mask_input, dtype=np.float32))),
            "has_mask_input": has_mask,
        }
        self.calls += 1
        t0 = time.perf_counter()
        low_res, iou = self.session.run(None, feeds)
        self.seconds["single"] += time.perf_counter() - t0
        return self.calibration.logits(low_res), self.calibration.iou(iou)

    def _tokens(self, image: DecoderImage, point_coords: np.ndarray,
                point_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        feeds = dict(image.side)
        feeds["point_coords"] = np.ascontiguousarray(point_coords, dtype=np.float32)
        feeds["point_labels"] = np.ascontiguousarray(point_labels, dtype=np.float32)
        self.calls += 1
        t0 = time.perf_counter()
        iou, hyper_in, image_tokens = self.split["decoder_prompt"].run(None, feeds)
        self.seconds["prompt"] += time.perf_counter() - t0
        return self.calibration.iou(iou), hyper_in, image_tokens

    def _masks(self, image_tokens: np.ndarray, hyper_in: np.ndarray) -> np.ndarray:
        feeds = dict(zip(MASK_SIDE_INPUTS, (np.ascontiguousarray(image_tokens), np.ascontiguousarray(hyper_in))))
        t0 = time.perf_counter()
        out = self.split["decoder_masks"].run(None, feeds)[0]
        self.seconds["masks"] += time.perf_counter() - t0
        return self.calibration.logits(out)


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _above(iou: np.ndarray, thresh: float | None) -> np.ndarray:
    flat = iou.reshape(-1)
    return np.arange(len(flat)) if thresh is None else np.flatnonzero(flat > thresh)
