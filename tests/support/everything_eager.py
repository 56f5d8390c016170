"""The segment-everything generators as they were before run-length coding moved after NMS (issue 16).

Every mask that passes the filters is run-length coded in the batch that produced it, as in the official
``SamAutomaticMaskGenerator`` and TinySAM's generator, and NMS then drops rows of RLEs. The generators'
methods are overridden with that order (the code of samfpga 3c4be2f), everything else is shared, so a test
can check that coding only the NMS survivors gives the same records. numpy only (both environments).
"""

from __future__ import annotations

import numpy as np

from samfpga.everything import AutomaticMaskGenerator, HierarchicalMaskGenerator
from samfpga.everything.amg import (
    MaskData,
    batch_iterator,
    batched_nms,
    box_area,
    build_point_grid,
    mask_to_rle,
    uncrop_boxes_xyxy,
    uncrop_masks,
    uncrop_points,
)
from samfpga.everything.decode import decode_points
from samfpga.everything.dense import _empty_data, _filter, small_region_postprocess, to_records
from samfpga.everything.hierarchical import round2_points
from samfpga.everything.timing import StageTimes


def eager_filter_batch(masks, iou_preds, points, crop_box, orig_size, mask_threshold, pred_iou_thresh,
                       stability_score_thresh, stability_score_offset, high_score_thresh=None):
    """The filters, then RLEs of every kept mask at once (the order before issue 16's change)."""
    data, covered = _filter(masks, iou_preds, points, crop_box, orig_size, mask_threshold, pred_iou_thresh,
                            stability_score_thresh, stability_score_offset, high_score_thresh)
    data["rles"] = mask_to_rle(uncrop_masks(data["masks"], crop_box, *orig_size))
    del data["masks"]
    return data, covered


class EagerAutomaticMaskGenerator(AutomaticMaskGenerator):
    def _generate_masks(self, image):
        orig_size = image.shape[:2]
        from samfpga.everything.amg import generate_crop_boxes
        from samfpga.everything.dense import DecoderCounter

        crop_boxes, layer_idxs = generate_crop_boxes(orig_size, self.crop_n_layers, self.crop_overlap_ratio)
        counter = DecoderCounter(False, None, "eager")
        data = MaskData()
        for crop_box, layer_idx in zip(crop_boxes, layer_idxs):
            data.cat(self._process_crop(image, crop_box, layer_idx, orig_size, counter))
        self.stats = {"decoder_prompts": counter.prompts, "decoder_batches": counter.batches,
                      "images_encoded": len(crop_boxes)}
        if "boxes" not in data:
            return _empty_data()
        if len(crop_boxes) > 1:
            scores = 1.0 / box_area(data["crop_boxes"]).astype(np.float32)
            keep = batched_nms(data["boxes"].astype(np.float32), scores, np.zeros(len(data["boxes"])),
                               self.crop_nms_thresh)
            data.filter(keep)
        return data

    def _process_crop(self, image, crop_box, crop_layer_idx, orig_size, counter):
        x0, y0, x1, y1 = crop_box
        cropped = np.ascontiguousarray(image[y0:y1, x0:x1, :])
        cropped_size = cropped.shape[:2]
        self.predictor.set_image(cropped)
        points_for_image = self.point_grids[crop_layer_idx] * np.array(cropped_size)[None, ::-1]
        data = MaskData()
        for (points,) in batch_iterator(self.points_per_batch, points_for_image):
            coords = self.predictor.transform.apply_coords(points, cropped_size).astype(np.float32)
            kept, masks, iou_preds = decode_points(self.predictor, coords, self.pred_iou_thresh)
            counter.add(len(points))
            batch, _ = eager_filter_batch(masks, iou_preds, points[kept // 3], crop_box, orig_size,
                                          self.predictor.mask_threshold, self.pred_iou_thresh,
                                          self.stability_score_thresh, self.stability_score_offset)
            data.cat(batch)
        self.predictor.reset_image()
        if "boxes" not in data:
            return MaskData()
        keep = batched_nms(data["boxes"].astype(np.float32), data["iou_preds"], np.zeros(len(data["boxes"])),
                           self.box_nms_thresh)
        data.filter(keep)
        data["boxes"] = uncrop_boxes_xyxy(data["boxes"], crop_box)
        data["points"] = uncrop_points(data["points"], crop_box)
        data["crop_boxes"] = np.array([crop_box for _ in range(len(data["rles"]))], dtype=np.int64).reshape(-1, 4)
        return data


class EagerHierarchicalMaskGenerator(HierarchicalMaskGenerator):
    def generate(self, image):
        from samfpga.everything.dense import DecoderCounter

        h, w = image.shape[:2]
        self._times = StageTimes()
        self.predictor.set_image(image)
        counter = DecoderCounter(False, None, "eager")
        coarse = build_point_grid(self.points_per_side // 4) * np.array([w, h], dtype=np.float64)[None]
        round1, covered = self._run_eager(coarse, (h, w), counter, need_covered=True)
        fine = round2_points(coarse, covered, self.points_per_side)
        round2, _ = self._run_eager(fine, (h, w), counter, need_covered=False)
        self.predictor.reset_image()
        self.stats = {"decoder_prompts": counter.prompts}
        data = MaskData()
        data.cat(round2)
        data.cat(round1)
        if "boxes" not in data:
            data = _empty_data()
        keep = batched_nms(data["boxes"].astype(np.float32), data["iou_preds"], np.zeros(len(data["boxes"])),
                           self.box_nms_thresh)
        data.filter(keep)
        data["crop_boxes"] = np.tile(np.array([[0, 0, w, h]], dtype=np.int64), (len(data["rles"]), 1))
        if self.min_mask_region_area > 0:
            data = small_region_postprocess(data, self.min_mask_region_area, self.box_nms_thresh)
        return to_records(data, self.output_mode)

    def _run_eager(self, points, orig_size, counter, need_covered):
        h, w = orig_size
        data = MaskData()
        covered = np.zeros((h, w), dtype=bool) if need_covered else None
        if len(points) == 0:
            return data, covered
        for (batch_points,) in batch_iterator(self.points_per_batch, points):
            coords = self.predictor.transform.apply_coords(batch_points, orig_size).astype(np.float32)
            kept, masks, iou_preds = decode_points(self.predictor, coords, self.pred_iou_thresh)
            counter.add(len(batch_points))
            batch, high = eager_filter_batch(
                masks, iou_preds, batch_points[kept // 3], [0, 0, w, h], orig_size, self.predictor.mask_threshold,
                self.pred_iou_thresh, self.stability_score_thresh, self.stability_score_offset,
                self.high_score_thresh if need_covered else None)
            if covered is not None:
                covered |= high
            data.cat(batch)
        return data, covered
