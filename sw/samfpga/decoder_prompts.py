"""The prompt contract of a bundle's ``decoder.onnx``, defined by its reader (the writer,
``samfpga.models.export.onnx_models``, imports it).

SAM's ONNX convention: points arrive in the encoder-input frame (after ``ResizeLongestSide``); box corners are
two more points with labels 2 (top-left) and 3 (bottom-right); a point labelled -1 is padding and gets the
"not a point" embedding; without a box one padding point (0, 0) is appended, as the official prompt encoder
does; a 0/1 flag selects the mask prompt.
"""

from __future__ import annotations

import numpy as np

DECODER_INPUTS = ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input")
DECODER_OUTPUTS = ("low_res_masks", "iou_predictions")

PAD_LABEL = -1
BACKGROUND_LABEL = 0
FOREGROUND_LABEL = 1
BOX_LABELS = (2, 3)
# the labels a caller may give a point (-1: ignored point, as in SamPredictor)
POINT_LABELS = (PAD_LABEL, BACKGROUND_LABEL, FOREGROUND_LABEL)
# largest |coordinate| in encoder-input pixels (64 x a 1024 input). SAM's positional encoding takes sin/cos of
# coordinate x random frequency; far beyond the image, float32 arguments in the 1e8 range round to arbitrary phases,
# which torch and onnxruntime compute differently, so no answer there is meaningful: refused, as a caller's bug
MAX_COORD = 65536.0


def decoder_prompts(point_coords: np.ndarray | None, point_labels: np.ndarray | None,
                    boxes: np.ndarray | None, batch: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Points, box corners and padding as ``decoder.onnx`` takes them: (B, N', 2) and (B, N') float32.

    Args:
        point_coords: (B, N, 2) (x, y) in encoder-input pixels, or None.
        point_labels: (B, N) in ``POINT_LABELS``; required with ``point_coords``, refused without.
        boxes: (B, 4) or (4,) XYXY in encoder-input pixels, or None.
        batch: B when there are neither points nor boxes (a mask-only or empty prompt).

    Raises:
        ValueError: naming the argument whose shape, values or batch is wrong.
    """
    parts_c: list[np.ndarray] = []
    parts_l: list[np.ndarray] = []
    b_points = None
    if point_coords is None and point_labels is not None:
        raise ValueError("point_labels given without point_coords; pass both or neither")
    if point_coords is not None:
        if point_labels is None:
            raise ValueError("point_labels must be supplied if point_coords is supplied.")
        c = _in_range(as_finite(point_coords, "point_coords"), "point_coords")
        lab = _numeric(point_labels, "point_labels")
        if c.ndim != 3 or c.shape[2] != 2:
            raise ValueError(f"point_coords must be (B, N, 2), got shape {c.shape}")
        if lab.shape != c.shape[:2]:
            raise ValueError(f"point_labels must be (B, N) = {c.shape[:2]} to match point_coords, got shape {lab.shape}")
        bad = ~np.isin(lab, POINT_LABELS)
        if bad.any():
            raise ValueError(f"point_labels must be 1 (foreground), 0 (background) or -1 (ignored), got "
                             f"{np.unique(lab[bad]).tolist()}")
        b_points = batch = c.shape[0]
        parts_c.append(c)
        parts_l.append(lab.astype(np.float32))
    if boxes is not None:
        b = _in_range(as_finite(boxes, "boxes"), "boxes")
        if b.ndim == 1:
            b = b[None]
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f"boxes must be (B, 4) XYXY, got shape {np.shape(boxes)}")
        if b_points is not None and b.shape[0] != b_points:
            raise ValueError(f"boxes batch {b.shape[0]} does not match point_coords batch {b_points}")
        batch = b.shape[0]
        parts_c.append(b.reshape(-1, 2, 2))
        parts_l.append(np.tile(np.array(BOX_LABELS, dtype=np.float32), (batch, 1)))
    elif point_coords is not None:
        parts_c.append(np.zeros((batch, 1, 2), dtype=np.float32))
        parts_l.append(np.full((batch, 1), PAD_LABEL, dtype=np.float32))
    if not parts_c:
        return np.zeros((batch, 0, 2), dtype=np.float32), np.zeros((batch, 0), dtype=np.float32)
    return np.concatenate(parts_c, axis=1), np.concatenate(parts_l, axis=1)


def _numeric(value: object, name: str) -> np.ndarray:
    """``value`` as a real-number (or bool) array, or a ValueError naming ``name``."""
    a = np.asarray(value)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) \
            or np.issubdtype(a.dtype, np.complexfloating):
        raise ValueError(f"{name} must be an array of real numbers, got dtype {a.dtype}")
    return a


def _in_range(a: np.ndarray, name: str) -> np.ndarray:
    """``a`` when every coordinate is within +-``MAX_COORD`` encoder-input pixels, else a ValueError naming ``name``."""
    if a.size and float(np.abs(a).max()) > MAX_COORD:
        raise ValueError(f"{name} has a coordinate of {float(np.abs(a).max()):.6g} encoder-input pixels, beyond "
                         f"+-{MAX_COORD:g}: far outside any image")
    return a


def as_finite(value: object, name: str, dtype: type = np.float32) -> np.ndarray:
    """``value`` as a finite ``dtype`` array, or a ValueError naming ``name``."""
    a = _numeric(value, name)
    with np.errstate(over="ignore", invalid="ignore"):
        f = a.astype(dtype)
    if not np.all(np.isfinite(f)):
        raise ValueError(f"{name} contains NaN or infinite values (or values beyond {np.dtype(dtype).name})")
    return f
