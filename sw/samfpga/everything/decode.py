"""Decode a batch of single-point prompts for segment-everything, upscaling only the masks that can survive.

``SamAutomaticMaskGenerator`` upscales all three masks of every prompt to the image size and then drops those
with predicted IoU <= ``pred_iou_thresh``. The IoU prediction does not depend on the mask, and upscaling is
per mask, so filtering first gives the same kept masks for a fraction of the work: the decoder's own mask
upscaling (``Predictor.predict_low_res_above``; with the split decoder it runs only for prompts that have a mask
above the threshold) and the resize to the image (``samfpga.transforms.postprocess_masks``) see only survivors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from samfpga.decoder_prompts import FOREGROUND_LABEL
from samfpga.transforms import postprocess_masks

from .timing import StageTimes, stage


def decode_points(predictor: Any, coords: np.ndarray, pred_iou_thresh: float,
                  times: StageTimes | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three masks for each single-point prompt, those with IoU > ``pred_iou_thresh`` upscaled.

    Args:
        predictor: a ``samfpga.predictor.Predictor`` (or anything with its ``predict_low_res_above``, ``image_size``,
            ``input_size`` and ``original_size``) with an image set.
        coords: (B, 2) float32 points in the encoder-input frame (``transform.apply_coords``).
        pred_iou_thresh: masks with predicted IoU <= this are dropped (0 keeps all).
        times: accumulates the ``decoder``, ``masks`` (the split decoder's mask side, from ``OnnxDecoder.seconds``)
            and ``upscale`` stages when given.

    Returns:
        kept (K,) int64 flat indices into the (B, 3) outputs (prompt i, mask j -> 3 i + j), in order;
        logits (K, H, W) float32 upscaled to the original image; iou (K,) float32.
    """
    b = len(coords)
    labels = np.full((b, 1), FOREGROUND_LABEL, dtype=np.float32)
    seconds = getattr(getattr(predictor, "decoder", None), "seconds", None)
    masks_before = seconds["masks"] if seconds is not None else 0.0
    with stage(times, "decoder"):
        kept, low, iou = predictor.predict_low_res_above(coords[:, None, :], labels,
                                                         pred_iou_thresh if pred_iou_thresh > 0.0 else None)
    if times is not None and seconds is not None:
        times.move("decoder", "masks", seconds["masks"] - masks_before)
    with stage(times, "upscale"):
        logits = postprocess_masks(low, predictor.image_size, predictor.input_size, predictor.original_size)
    return kept, logits, iou
