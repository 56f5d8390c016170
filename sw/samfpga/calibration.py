"""Post-hoc calibration of the decoder's outputs (host runtime, numpy only; fitted by ``samfpga.models.calibrate``).

Two small maps, stored in a bundle's ``bundle.json`` under the optional field ``calibration`` and applied by
``samfpga.decoder.OnnxDecoder`` to every output, so the predictor, segment-everything and the evaluators all see
calibrated values:

- **IoU head**: a monotone piecewise-linear map ``iou_x -> iou_y`` (knots of an isotonic regression of actual
  on predicted IoU; linear between knots, slope ``TAIL_SLOPE`` beyond the end knots), so that a predicted IoU
  of 0.88 means masks whose IoU with the object is about 0.88 on average. The map is increasing, so the order
  of predictions (SAM's choice among multimask outputs) is kept.
- **Mask logits**: ``calibrated = logit_scale * raw + logit_offset`` (Platt scaling of the per-pixel logits),
  so that a logit is the log-odds of the pixel belonging to the object: TinySAM's "covered" threshold 8.5
  and the stability score's +-1 offset then mean what they mean for a calibrated model. Logits fed back as
  ``mask_input`` are mapped back to raw logits first, so iterative prompting is unchanged.

A bundle without the field loads with ``IDENTITY``, which changes nothing (the arrays are returned as given)::

    "calibration": {"iou_x": [x0, ..., xn], "iou_y": [y0, ..., yn], "logit_scale": a, "logit_offset": b,
                    "fitted_on": {...}}   # fitted_on: free-form provenance, not read by the runtime
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TAIL_SLOPE = 1e-3  # slope of the IoU map below its first and above its last knot


class CalibrationError(ValueError):
    """A ``calibration`` object is malformed; the message names the field."""


@dataclass(frozen=True)
class Calibration:
    """Calibration maps (see module docstring). Empty ``iou_x``/``iou_y`` leave IoU predictions as they are."""

    iou_x: tuple[float, ...] = ()
    iou_y: tuple[float, ...] = ()
    logit_scale: float = 1.0
    logit_offset: float = 0.0
    fitted_on: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        _check(self.iou_x, self.iou_y, self.logit_scale, self.logit_offset, "Calibration")

    @property
    def is_identity(self) -> bool:
        return not self.iou_x and self.logit_scale == 1.0 and self.logit_offset == 0.0

    def iou(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated IoU predictions, same shape, float32 (``raw`` itself when there is no IoU map)."""
        if not self.iou_x:
            return raw
        x = np.asarray(raw, dtype=np.float64)
        y = np.interp(x, self.iou_x, self.iou_y)
        # strictly increasing tails rather than np.interp's constant ones: no ties among out-of-range predictions
        y = y + TAIL_SLOPE * (np.minimum(x - self.iou_x[0], 0.0) + np.maximum(x - self.iou_x[-1], 0.0))
        return y.astype(np.float32)

    def logits(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated mask logits, same shape, float32 (``raw`` itself under the identity)."""
        if self.logit_scale == 1.0 and self.logit_offset == 0.0:
            return raw
        return (raw * np.float32(self.logit_scale) + np.float32(self.logit_offset)).astype(np.float32, copy=False)

    def raw_logits(self, calibrated: np.ndarray) -> np.ndarray:
        """The inverse of ``logits`` (for logits fed back as ``mask_input``)."""
        if self.logit_scale == 1.0 and self.logit_offset == 0.0:
            return calibrated
        return ((calibrated - np.float32(self.logit_offset)) / np.float32(self.logit_scale)).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"iou_x": [float(v) for v in self.iou_x], "iou_y": [float(v) for v in self.iou_y],
                               "logit_scale": float(self.logit_scale), "logit_offset": float(self.logit_offset)}
        if self.fitted_on:
            out["fitted_on"] = self.fitted_on
        return out

    @classmethod
    def from_json(cls, meta: Any, where: str = "calibration") -> Calibration:
        """Parse a ``calibration`` object; raises CalibrationError naming ``where`` and the field."""
        if not isinstance(meta, dict):
            raise CalibrationError(f"{where}: must be an object, got {type(meta).__name__}")
        unknown = set(meta) - {"iou_x", "iou_y", "logit_scale", "logit_offset", "fitted_on"}
        if unknown:
            raise CalibrationError(f"{where}: unknown field(s) {sorted(unknown)}")
        xs, ys = meta.get("iou_x", []), meta.get("iou_y", [])
        for name, v in (("iou_x", xs), ("iou_y", ys)):
            if not isinstance(v, list) or not all(_is_number(t) for t in v):
                raise CalibrationError(f"{where}: field {name!r} must be a list of numbers, got {v!r}")
        scale, offset = meta.get("logit_scale", 1.0), meta.get("logit_offset", 0.0)
        for name, v in (("logit_scale", scale), ("logit_offset", offset)):
            if not _is_number(v):
                raise CalibrationError(f"{where}: field {name!r} must be a number, got {v!r}")
        fitted = meta.get("fitted_on", {})
        if not isinstance(fitted, dict):
            raise CalibrationError(f"{where}: field 'fitted_on' must be an object")
        xs_t, ys_t = tuple(float(v) for v in xs), tuple(float(v) for v in ys)
        _check(xs_t, ys_t, float(scale), float(offset), where)
        return cls(xs_t, ys_t, float(scale), float(offset), fitted)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(xs: tuple[float, ...], ys: tuple[float, ...], scale: float, offset: float, where: str) -> None:
    if len(xs) != len(ys) or len(xs) == 1:
        raise CalibrationError(f"{where}: fields 'iou_x' and 'iou_y' must have the same length, 0 or >= 2; got "
                               f"{len(xs)} and {len(ys)}")
    if not all(math.isfinite(v) for v in (*xs, *ys)):
        raise CalibrationError(f"{where}: fields 'iou_x'/'iou_y' must be finite")
    if any(b <= a for a, b in zip(xs, xs[1:])):
        raise CalibrationError(f"{where}: field 'iou_x' must be strictly increasing, got {list(xs)}")
    if any(b <= a for a, b in zip(ys, ys[1:])):
        raise CalibrationError(f"{where}: field 'iou_y' must be strictly increasing (an order-keeping map), got "
                               f"{list(ys)}")
    if not (math.isfinite(scale) and scale > 0):
        raise CalibrationError(f"{where}: field 'logit_scale' must be a positive finite number, got {scale}")
    if not math.isfinite(offset):
        raise CalibrationError(f"{where}: field 'logit_offset' must be finite, got {offset}")


IDENTITY = Calibration()
