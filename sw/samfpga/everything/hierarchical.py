"""``HierarchicalMaskGenerator``: TinySAM's hierarchical segment-everything (arXiv 2312.13789, Sec. 3.3).

Round 1 prompts a sparse grid (``points_per_side // 4`` per side). Masks passing the IoU and stability
filters are kept, and the pixels where any kept mask's logit exceeds ``high_score_thresh`` (8.5) are marked
covered: they already belong to a confidently segmented object. Round 2 prompts the dense-grid positions
around every coarse point (offsets {-1, 0, 1, 2} x the dense stride in x and y, the centre excluded) that are
not covered. Both rounds' masks are merged and box-NMSed. On images with large objects most of the dense
grid is covered after round 1, so far fewer decoder prompts are needed than with the dense grid.

Point generation, filters and NMS follow TinySAM's ``SamHierarchicalMaskGenerator.hierarchical_generate``
(the official repository's order of candidate points is kept, so results are reproducible against it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .amg import MaskData, batch_iterator, batched_nms, build_point_grid
from .decode import decode_points
from .dense import (
    DecoderCounter,
    PromptPredictor,
    _empty_data,
    check_common,
    check_image,
    encode_rles,
    filter_batch,
    small_region_postprocess,
    to_records,
)
from .timing import StageTimes


def round2_points(coarse_points: np.ndarray, covered: np.ndarray, points_per_side: int) -> np.ndarray:
    """Dense-grid prompts around the coarse points that are not on covered pixels.

    Args:
        coarse_points: (P, 2) float (x, y) image pixels of the round-1 prompts.
        covered: (H, W) bool, True where a kept round-1 mask is confident (logit > high_score_thresh).
        points_per_side: the dense grid's points per side; strides are W // pps and H // pps.

    Returns:
        (Q, 2) float64 (x, y) image pixels, Q <= 15 P. Per coarse point, in TinySAM's order: the 3x3
        neighbourhood {-1, 0, 1}^2 without the centre, then the column x + 2 strides (if inside the image),
        the row y + 2 strides (if inside), and the corner (+2, +2) (if inside). A candidate is dropped when
        the pixel at its truncated coordinates is covered.
    """
    ih, iw = covered.shape
    hstride = ih // points_per_side
    wstride = iw // points_per_side
    out: list[tuple[float, float]] = []

    def visit(x: float, y: float) -> None:
        xi, yi = int(x), int(y)
        if 0 <= xi < iw and 0 <= yi < ih and covered[yi, xi]:
            return
        out.append((x, y))

    for px, py in np.asarray(coarse_points, dtype=np.float64):
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                if dx or dy:
                    visit(px + wstride * dx, py + hstride * dy)
        if px + wstride * 2 < iw:
            for dy in (-1, 0, 1):
                visit(px + wstride * 2, py + hstride * dy)
        if py + hstride * 2 < ih:
            for dx in (-1, 0, 1):
                visit(px + wstride * dx, py + hstride * 2)
        if px + wstride * 2 < iw and py + hstride * 2 < ih:
            visit(px + wstride * 2, py + hstride * 2)
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


class HierarchicalMaskGenerator:
    """TinySAM's two-round segment-everything; parameters and defaults as TinySAM's generator.

    Args:
        predictor: the host ``Predictor``.
        points_per_side: the dense grid (round 1 uses points_per_side // 4 per side).
        points_per_batch: prompts per decoder run.
        pred_iou_thresh: keep masks with predicted IoU > this (0 disables).
        high_score_thresh: logit above which a kept round-1 mask marks pixels covered.
        stability_score_thresh: keep masks with stability >= this (0 disables).
        stability_score_offset: logit offset of the stability score.
        box_nms_thresh: box IoU of the final NMS.
        min_mask_region_area: if > 0, remove holes and islands smaller than this.
        output_mode: "binary_mask", "uncompressed_rle" or "coco_rle".
        progress: show a tqdm bar over prompt batches.

    After ``generate``, ``stats`` holds decoder_prompts, decoder_batches, round1_prompts, round2_prompts and
    covered_fraction (of the image after round 1).
    """

    def __init__(
        self,
        predictor: PromptPredictor,
        points_per_side: int = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.88,
        high_score_thresh: float = 8.5,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        box_nms_thresh: float = 0.7,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
        progress: bool = False,
    ) -> None:
        check_common(points_per_side, None, output_mode, points_per_batch)
        if points_per_side < 4:
            raise ValueError(f"points_per_side must be >= 4 (round 1 uses points_per_side // 4), got "
                             f"{points_per_side}")
        self.predictor = predictor
        self.points_per_side = points_per_side
        self.points_per_batch = points_per_batch
        self.pred_iou_thresh = pred_iou_thresh
        self.high_score_thresh = high_score_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.box_nms_thresh = box_nms_thresh
        self.min_mask_region_area = min_mask_region_area
        self.output_mode = output_mode
        self.progress = progress
        self.stats: dict[str, Any] = {}
        self.timings: dict[str, float] = {}  # seconds per stage of the last generate()

    def generate(self, image: np.ndarray) -> list[dict[str, Any]]:
        """Masks for the whole of ``image`` (H, W, 3) uint8 RGB: records as ``AutomaticMaskGenerator``'s
        (crop_box is the whole image)."""
        check_image(image)
        h, w = image.shape[:2]
        self._times = times = StageTimes()
        with times.stage("encoder"):
            self.predictor.set_image(image)
        counter = DecoderCounter(self.progress, None, "everything (hierarchical)")
        try:
            coarse = build_point_grid(self.points_per_side // 4) * np.array([w, h], dtype=np.float64)[None]
            round1, covered = self._run(coarse, (h, w), counter, need_covered=True)
            fine = round2_points(coarse, covered, self.points_per_side)
            round2, _ = self._run(fine, (h, w), counter, need_covered=False)
        finally:
            counter.close()
            self.predictor.reset_image()
        self.stats = {"decoder_prompts": counter.prompts, "decoder_batches": counter.batches,
                      "round1_prompts": len(coarse), "round2_prompts": len(fine),
                      "covered_fraction": float(covered.mean()), "images_encoded": 1}
        data = MaskData()
        data.cat(round2)  # TinySAM's order: round 2 first (matters only for NMS ties)
        data.cat(round1)
        if "boxes" not in data:
            data = _empty_data()
        with times.stage("nms"):
            keep = batched_nms(data["boxes"].astype(np.float32), data["iou_preds"], np.zeros(len(data["boxes"])),
                               self.box_nms_thresh)
        data.filter(keep)
        data["crop_boxes"] = np.tile(np.array([[0, 0, w, h]], dtype=np.int64), (len(data["boxes"]), 1))
        if "packed" in data:
            encode_rles(data, data["crop_boxes"], (h, w), times)  # only NMS survivors (see encode_rles)
        if self.min_mask_region_area > 0:
            with times.stage("postprocess"):
                data = small_region_postprocess(data, self.min_mask_region_area, self.box_nms_thresh)
        with times.stage("records"):
            records = to_records(data, self.output_mode)
        times.stop()
        self.timings = times.as_dict()
        return records

    def _run(self, points: np.ndarray, orig_size: tuple[int, int], counter: DecoderCounter,
             need_covered: bool) -> tuple[MaskData, np.ndarray | None]:
        """Prompt every point (image pixels, (P, 2)); filtered masks, and the covered map if asked."""
        h, w = orig_size
        data = MaskData()
        covered = np.zeros((h, w), dtype=bool) if need_covered else None
        if len(points) == 0:
            return data, covered
        for (batch_points,) in batch_iterator(self.points_per_batch, points):
            coords = self.predictor.transform.apply_coords(batch_points, orig_size).astype(np.float32)
            kept, masks, iou_preds = decode_points(self.predictor, coords, self.pred_iou_thresh, self._times)
            counter.add(len(batch_points))
            batch, high = filter_batch(
                masks, iou_preds, batch_points[kept // 3], [0, 0, w, h], orig_size, self.predictor.mask_threshold,
                self.pred_iou_thresh, self.stability_score_thresh, self.stability_score_offset,
                self.high_score_thresh if need_covered else None, times=self._times)
            if covered is not None:
                covered |= high
            data.cat(batch)
            del masks
        return data, covered
