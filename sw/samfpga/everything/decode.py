"""Decode a batch of single-point prompts for segment-everything, upscaling only the masks that can survive.

``SamAutomaticMaskGenerator`` upscales all three masks of every prompt to the image size and then drops those
with predicted IoU <= ``pred_iou_thresh``. Upscaling is linear and per mask, so doing the IoU filter first on
the low-res output gives the same kept masks for a fraction of the work (most masks fail the IoU filter).
With ``samfpga.predictor.Predictor`` this path runs the decoder graph directly (prompt layout of the bundle:
the point, then the padding point (0, 0) with label -1) and upscales with two large matrix products; any other
predictor goes through its ``predict_batch`` (as ``predict_torch``) and is filtered afterwards.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from samfpga.transforms import resize_bilinear

from .timing import StageTimes, stage


@functools.lru_cache(maxsize=16)
def _axis_matrix(n_low: int, padded: int, crop: int, out: int) -> np.ndarray:
    """(out, n_low) float32: the 1-D map of ``Sam.postprocess_masks`` along one axis (bilinear n_low -> padded,
    keep the first ``crop``, bilinear crop -> out), built by resizing identity matrices."""

    def interp(n_in: int, n_out: int) -> np.ndarray:
        eye = np.eye(n_in, dtype=np.float32)[:, :, None]  # n_in "images" of shape (n_in, 1)
        return resize_bilinear(eye, (n_out, 1))[:, :, 0].T.astype(np.float64)  # (n_out, n_in)

    return (interp(crop, out) @ interp(n_low, padded)[:crop]).astype(np.float32)


def upscale(low_res: np.ndarray, image_size: int, input_size: tuple[int, int],
            original_size: tuple[int, int]) -> np.ndarray:
    """(K, h, w) low-res logits -> (K, H, W) float32 logits of the original image, as two GEMMs."""
    k, h, w = low_res.shape
    big_h, big_w = int(original_size[0]), int(original_size[1])
    if k == 0:
        return np.zeros((0, big_h, big_w), dtype=np.float32)
    r = _axis_matrix(h, image_size, int(input_size[0]), big_h)
    c = _axis_matrix(w, image_size, int(input_size[1]), big_w)
    cols = (low_res.reshape(k * h, w).astype(np.float32, copy=False) @ c.T).reshape(k, h, big_w)
    rows = r @ cols.transpose(1, 0, 2).reshape(h, k * big_w)
    return np.ascontiguousarray(rows.reshape(big_h, k, big_w).transpose(1, 0, 2))


def decode_points(predictor: Any, coords: np.ndarray, pred_iou_thresh: float,
                  times: StageTimes | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three masks for each single-point prompt, those with IoU > ``pred_iou_thresh`` upscaled.

    Args:
        predictor: with an image set.
        coords: (B, 2) float32 points in the encoder-input frame (``transform.apply_coords``).
        pred_iou_thresh: masks with predicted IoU <= this are dropped (0 keeps all).
        times: accumulates the ``decoder`` and ``upscale`` stages when given.

    Returns:
        kept (K,) int64 flat indices into the (B, 3) outputs (prompt i, mask j -> 3 i + j), in order;
        logits (K, H, W) float32 upscaled to the original image; iou (K,) float32.
    """
    from samfpga.predictor import Predictor

    b = len(coords)
    if isinstance(predictor, Predictor):
        pts = np.concatenate([coords[:, None, :], np.zeros((b, 1, 2), np.float32)], axis=1)
        labels = np.tile(np.array([[1.0, -1.0]], dtype=np.float32), (b, 1))
        with stage(times, "decoder"):
            low_res, iou = predictor.decoder(predictor.get_image_embedding(), pts, labels, None)
        low_res, iou = low_res[:, 1:], iou[:, 1:]  # multimask output: tokens 1..3
        for callback in predictor.batch_callbacks:
            callback(b)
        iou = iou.reshape(-1)
        kept = np.flatnonzero(iou > pred_iou_thresh) if pred_iou_thresh > 0.0 else np.arange(len(iou))
        low = low_res.reshape(-1, *low_res.shape[2:])[kept]
        with stage(times, "upscale"):
            logits = upscale(low, predictor.image_size, predictor.input_size, predictor.original_size)
        return kept, logits, iou[kept]
    with stage(times, "decoder"):  # decoder and upscaling together: predict_batch does both
        masks, iou, _ = predictor.predict_batch(coords[:, None, :], np.ones((b, 1), dtype=np.int64),
                                                multimask_output=True, return_logits=True)
    masks = np.asarray(masks, dtype=np.float32)
    iou = np.asarray(iou, dtype=np.float32).reshape(-1)
    kept = np.flatnonzero(iou > pred_iou_thresh) if pred_iou_thresh > 0.0 else np.arange(len(iou))
    return kept, masks.reshape(-1, *masks.shape[2:])[kept], iou[kept]
