"""``AutomaticMaskGenerator``: SAM's ``SamAutomaticMaskGenerator`` on the host runtime (numpy, no torch).

A grid of single-point prompts over the image (and optionally over overlapping crops), each answered with
three masks; masks are kept when their predicted IoU and stability score pass the thresholds and they are not
cut by a crop edge, then de-duplicated by box NMS within each crop and across crops. Same parameters, defaults,
order of operations and record fields as the official generator (tests/test_everything.py checks the mask
sets agree on the same weights). One difference in order, with the same records: kept masks are held
bit-packed and run-length coded only once NMS has chosen the survivors (``encode_rles``), and each batch's
full-resolution logits are dropped with the batch, so memory follows the batch and the kept masks, not the grid.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from .amg import (
    MaskData,
    area_from_rle,
    batch_iterator,
    batched_mask_to_box,
    batched_nms,
    box_area,
    box_xyxy_to_xywh,
    build_all_layer_point_grids,
    calculate_stability_score,
    coco_encode_rle,
    generate_crop_boxes,
    is_box_near_crop_edge,
    mask_to_rle,
    remove_small_regions,
    rle_to_mask,
    uncrop_boxes_xyxy,
    uncrop_masks,
    uncrop_points,
)
from .decode import decode_points
from .timing import StageTimes, stage

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")


class PromptPredictor(Protocol):
    """What the generators need of a predictor (``samfpga.predictor.Predictor`` provides it)."""

    mask_threshold: float
    transform: Any
    image_size: int
    input_size: tuple[int, ...] | None
    original_size: tuple[int, ...] | None

    def set_image(self, image: np.ndarray) -> None: ...

    def reset_image(self) -> None: ...

    def predict_low_res_above(self, point_coords: np.ndarray, point_labels: np.ndarray, iou_thresh: float | None,
                              multimask_output: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


class DecoderCounter:
    """Counts the prompts and prompt batches sent to the decoder and drives an optional tqdm bar."""

    def __init__(self, progress: bool, total_batches: int | None, desc: str) -> None:
        self.prompts = 0
        self.batches = 0
        self._bar = None
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(total=total_batches, desc=desc, unit="batch")

    def add(self, n_prompts: int) -> None:
        self.prompts += n_prompts
        self.batches += 1
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def check_common(points_per_side: int | None, point_grids: list[np.ndarray] | None, output_mode: str,
                 points_per_batch: int) -> None:
    if (points_per_side is None) == (point_grids is None):
        raise ValueError("Exactly one of points_per_side or point_grids must be provided.")
    if points_per_side is not None and points_per_side < 1:
        raise ValueError(f"points_per_side must be >= 1, got {points_per_side}")
    if points_per_batch < 1:
        raise ValueError(f"points_per_batch must be >= 1, got {points_per_batch}")
    if output_mode not in OUTPUT_MODES:
        raise ValueError(f"Unknown output_mode {output_mode!r}; expected one of {', '.join(OUTPUT_MODES)}")
    if output_mode == "coco_rle":
        from pycocotools import mask as mask_utils  # noqa: F401  (fail early, as the official generator)


def check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"generate expects an (H, W, 3) uint8 image, got "
                         f"{getattr(image, 'shape', type(image).__name__)} {getattr(image, 'dtype', '')}")


def filter_batch(
    masks: np.ndarray, iou_preds: np.ndarray, points: np.ndarray, crop_box: list[int], orig_size: tuple[int, int],
    mask_threshold: float, pred_iou_thresh: float, stability_score_thresh: float, stability_score_offset: float,
    high_score_thresh: float | None = None, times: StageTimes | None = None,
) -> tuple[MaskData, np.ndarray | None]:
    """Decoded masks of one prompt batch -> the masks that pass the filters, bit-packed, not yet run-length coded.

    Run-length coding waits for NMS (``encode_rles``): see ``encode_rles`` for why that gives the same records.

    Args:
        masks: (N, h, w) float32 logits in the crop frame (all masks of the batch, or those already past the
            IoU filter); iou_preds (N,) float32; points (N, 2) the prompt of each mask, crop pixels.
        high_score_thresh: if given, also return the (h, w) bool union of ``logits > high_score_thresh`` over
            the kept masks (TinySAM's covered map), else None.
        times: accumulates the ``filters`` and ``rle`` (bit packing) stages when given.

    Returns:
        MaskData with iou_preds (K,), points (K, 2), stability_score (K,), boxes (K, 4) int64 crop-frame XYXY,
        packed (K arrays of ceil(h w / 8) uint8: the binary crop-frame mask, ``np.packbits`` of its row-major
        flattening); and the covered map or None. Held until NMS: h w / 8 bytes per kept mask, where the batch's
        float logits are 4 h w bytes per mask and are dropped with the batch.
    """
    with stage(times, "filters"):
        data, covered = _filter(masks, iou_preds, points, crop_box, orig_size, mask_threshold, pred_iou_thresh,
                                stability_score_thresh, stability_score_offset, high_score_thresh)
    with stage(times, "rle"):
        kept = data["masks"]
        data["packed"] = list(np.packbits(kept.reshape(len(kept), -1), axis=1)) if len(kept) else []
    del data["masks"]
    return data, covered


def encode_rles(data: MaskData, crop_boxes: np.ndarray, orig_size: tuple[int, int],
                times: StageTimes | None = None) -> MaskData:
    """Replace ``data["packed"]`` by ``data["rles"]``: uncompressed RLEs of the whole image, in place.

    Called once NMS has chosen the survivors, so only they are unpacked, uncropped and run-length coded. The
    records equal those of coding every filtered mask before NMS (the official order) because nothing before
    this point reads an RLE: the stability score is computed from the full-resolution logits and the NMS boxes
    (within a crop and across crops) from the full-resolution binary masks in ``_filter``, before packing;
    packing is lossless; and ``MaskData.filter`` moves each row's packed mask with its box and scores. Full-
    resolution upscaling itself cannot be deferred the same way: the stability score, the boxes and the
    crop-edge test are all taken on the upscaled masks, and the low-res logits do not determine them.

    Args:
        data: rows with ``packed`` (see ``filter_batch``).
        crop_boxes: (K, 4) int XYXY crop of each row in the original image (its mask is (y1-y0, x1-x0)).
        orig_size: (H, W) of the original image.
    """
    with stage(times, "rle"):
        h, w = orig_size
        rles = []
        for packed, crop in zip(data["packed"], np.asarray(crop_boxes).reshape(-1, 4)):
            x0, y0, x1, y1 = (int(v) for v in crop)
            ch, cw = y1 - y0, x1 - x0
            mask = np.unpackbits(packed, count=ch * cw).reshape(1, ch, cw).view(bool)
            rles.extend(mask_to_rle(uncrop_masks(mask, [x0, y0, x1, y1], h, w)))
        data["rles"] = rles
        del data["packed"]
    return data


def _filter(masks: np.ndarray, iou_preds: np.ndarray, points: np.ndarray, crop_box: list[int],
            orig_size: tuple[int, int], mask_threshold: float, pred_iou_thresh: float,
            stability_score_thresh: float, stability_score_offset: float,
            high_score_thresh: float | None) -> tuple[MaskData, np.ndarray | None]:
    """``filter_batch`` before run-length encoding: the kept masks as (K, h, w) bool under ``masks``."""
    orig_h, orig_w = orig_size
    data = MaskData(masks=masks, iou_preds=iou_preds, points=points)
    if pred_iou_thresh > 0.0:
        data.filter(data["iou_preds"] > pred_iou_thresh)
    data["stability_score"] = calculate_stability_score(data["masks"], mask_threshold, stability_score_offset)
    if stability_score_thresh > 0.0:
        data.filter(data["stability_score"] >= stability_score_thresh)
    if high_score_thresh is not None:
        data["high"] = data["masks"] > high_score_thresh
    data["masks"] = data["masks"] > mask_threshold
    data["boxes"] = batched_mask_to_box(data["masks"])
    keep = ~is_box_near_crop_edge(data["boxes"], crop_box, [0, 0, orig_w, orig_h])
    if not np.all(keep):
        data.filter(keep)
    covered = None
    if high_score_thresh is not None:
        covered = data["high"].any(axis=0) if len(data["high"]) else np.zeros(orig_size, dtype=bool)
        del data["high"]
    return data, covered


def small_region_postprocess(mask_data: MaskData, min_area: int, nms_thresh: float) -> MaskData:
    """Remove holes and islands smaller than ``min_area`` from every mask, then box-NMS again preferring the
    masks that did not change (as ``SamAutomaticMaskGenerator.postprocess_small_regions``); edits in place."""
    if len(mask_data["rles"]) == 0:
        return mask_data
    new_masks, scores = [], []
    for rle in mask_data["rles"]:
        mask = rle_to_mask(rle)
        mask, changed = remove_small_regions(mask, min_area, mode="holes")
        unchanged = not changed
        mask, changed = remove_small_regions(mask, min_area, mode="islands")
        unchanged = unchanged and not changed
        new_masks.append(mask)
        scores.append(float(unchanged))
    masks = np.stack(new_masks)
    boxes = batched_mask_to_box(masks)
    keep = batched_nms(boxes.astype(np.float32), np.asarray(scores), np.zeros(len(boxes)), nms_thresh)
    for i in keep:
        if scores[i] == 0.0:
            mask_data["rles"][i] = mask_to_rle(masks[i][None])[0]
            mask_data["boxes"][i] = boxes[i]
    mask_data.filter(keep)
    return mask_data


def to_records(data: MaskData, output_mode: str) -> list[dict[str, Any]]:
    """Mask records with the official fields: segmentation (per ``output_mode``), area, bbox XYWH,
    predicted_iou, point_coords, stability_score, crop_box XYWH."""
    if output_mode == "coco_rle":
        segs = [coco_encode_rle(rle) for rle in data["rles"]]
    elif output_mode == "binary_mask":
        segs = [rle_to_mask(rle) for rle in data["rles"]]
    else:
        segs = data["rles"]
    return [
        {
            "segmentation": segs[i],
            "area": area_from_rle(data["rles"][i]),
            "bbox": box_xyxy_to_xywh(data["boxes"][i]).tolist(),
            "predicted_iou": float(data["iou_preds"][i]),
            "point_coords": [data["points"][i].tolist()],
            "stability_score": float(data["stability_score"][i]),
            "crop_box": box_xyxy_to_xywh(data["crop_boxes"][i]).tolist(),
        }
        for i in range(len(segs))
    ]


class AutomaticMaskGenerator:
    """Segment everything with a grid of point prompts (``SamAutomaticMaskGenerator``'s algorithm).

    Args:
        predictor: the host ``Predictor`` (anything with ``set_image``, ``predict_low_res_above``, ``transform``,
            ``mask_threshold``, ``reset_image``).
        points_per_side: grid points per side (points_per_side**2 prompts), or None with ``point_grids``.
        points_per_batch: prompts per decoder run.
        pred_iou_thresh: keep masks with predicted IoU > this (0 disables).
        stability_score_thresh: keep masks with stability >= this (0 disables).
        stability_score_offset: logit offset of the stability score.
        box_nms_thresh: box IoU of the NMS within a crop.
        crop_n_layers: extra crop layers; layer i has (2**i)**2 crops.
        crop_nms_thresh: box IoU of the NMS across crops.
        crop_overlap_ratio: overlap of the first crop layer's crops, as a fraction of the short side.
        crop_n_points_downscale_factor: points per side in layer n are divided by this**n.
        point_grids: explicit (P, 2) grids in [0, 1] per crop layer.
        min_mask_region_area: if > 0, remove holes and islands smaller than this (numpy, no OpenCV).
        output_mode: "binary_mask", "uncompressed_rle" or "coco_rle".
        progress: show a tqdm bar over prompt batches.
    """

    def __init__(
        self,
        predictor: PromptPredictor,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
        progress: bool = False,
    ) -> None:
        check_common(points_per_side, point_grids, output_mode, points_per_batch)
        if crop_n_layers < 0:
            raise ValueError(f"crop_n_layers must be >= 0, got {crop_n_layers}")
        if points_per_side is not None:
            self.point_grids = build_all_layer_point_grids(points_per_side, crop_n_layers,
                                                           crop_n_points_downscale_factor)
        else:
            self.point_grids = [np.asarray(g, dtype=np.float64) for g in point_grids]
            if len(self.point_grids) < crop_n_layers + 1:
                raise ValueError(f"point_grids has {len(self.point_grids)} grids; crop_n_layers={crop_n_layers} "
                                 f"needs {crop_n_layers + 1}")
        self.predictor = predictor
        self.points_per_batch = points_per_batch
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.box_nms_thresh = box_nms_thresh
        self.crop_n_layers = crop_n_layers
        self.crop_nms_thresh = crop_nms_thresh
        self.crop_overlap_ratio = crop_overlap_ratio
        self.crop_n_points_downscale_factor = crop_n_points_downscale_factor
        self.min_mask_region_area = min_mask_region_area
        self.output_mode = output_mode
        self.progress = progress
        # decoder work of the last generate(): prompts sent and decoder runs
        self.stats: dict[str, int] = {"decoder_prompts": 0, "decoder_batches": 0, "images_encoded": 0}
        # seconds per stage of the last generate() (samfpga.everything.timing)
        self.timings: dict[str, float] = {}

    def generate(self, image: np.ndarray) -> list[dict[str, Any]]:
        """Masks for the whole of ``image`` (H, W, 3) uint8 RGB: a list of records (see ``to_records``)."""
        check_image(image)
        self._times = times = StageTimes()
        data = self._generate_masks(image)
        if self.min_mask_region_area > 0:
            with times.stage("postprocess"):
                data = small_region_postprocess(data, self.min_mask_region_area,
                                                max(self.box_nms_thresh, self.crop_nms_thresh))
        with times.stage("records"):
            records = to_records(data, self.output_mode)
        times.stop()
        self.timings = times.as_dict()
        return records

    def _generate_masks(self, image: np.ndarray) -> MaskData:
        orig_size = image.shape[:2]
        crop_boxes, layer_idxs = generate_crop_boxes(orig_size, self.crop_n_layers, self.crop_overlap_ratio)
        n_batches = sum(-(-len(self.point_grids[i]) // self.points_per_batch) for i in layer_idxs)
        counter = DecoderCounter(self.progress, n_batches, "everything (dense)")
        try:
            data = MaskData()
            for crop_box, layer_idx in zip(crop_boxes, layer_idxs):
                data.cat(self._process_crop(image, crop_box, layer_idx, orig_size, counter))
        finally:
            counter.close()
        self.stats = {"decoder_prompts": counter.prompts, "decoder_batches": counter.batches,
                      "images_encoded": len(crop_boxes)}
        if "boxes" not in data:
            return _empty_data()
        if len(crop_boxes) > 1:
            # prefer masks from smaller crops
            scores = 1.0 / box_area(data["crop_boxes"]).astype(np.float32)
            with self._times.stage("nms"):
                keep = batched_nms(data["boxes"].astype(np.float32), scores, np.zeros(len(data["boxes"])),
                                   self.crop_nms_thresh)
            data.filter(keep)
        return encode_rles(data, data["crop_boxes"], orig_size, self._times)

    def _process_crop(self, image: np.ndarray, crop_box: list[int], crop_layer_idx: int,
                      orig_size: tuple[int, int], counter: DecoderCounter) -> MaskData:
        x0, y0, x1, y1 = crop_box
        cropped = np.ascontiguousarray(image[y0:y1, x0:x1, :])
        cropped_size = cropped.shape[:2]
        with self._times.stage("encoder"):
            self.predictor.set_image(cropped)
        points_for_image = self.point_grids[crop_layer_idx] * np.array(cropped_size)[None, ::-1]
        data = MaskData()
        for (points,) in batch_iterator(self.points_per_batch, points_for_image):
            coords = self.predictor.transform.apply_coords(points, cropped_size).astype(np.float32)
            kept, masks, iou_preds = decode_points(self.predictor, coords, self.pred_iou_thresh, self._times)
            counter.add(len(points))
            batch, _ = filter_batch(masks, iou_preds, points[kept // 3], crop_box, orig_size,
                                    self.predictor.mask_threshold, self.pred_iou_thresh, self.stability_score_thresh,
                                    self.stability_score_offset, times=self._times)
            data.cat(batch)
            del masks
        self.predictor.reset_image()
        if "boxes" not in data:
            return MaskData()
        with self._times.stage("nms"):
            keep = batched_nms(data["boxes"].astype(np.float32), data["iou_preds"], np.zeros(len(data["boxes"])),
                               self.box_nms_thresh)
        data.filter(keep)
        data["boxes"] = uncrop_boxes_xyxy(data["boxes"], crop_box)
        data["points"] = uncrop_points(data["points"], crop_box)
        data["crop_boxes"] = np.array([crop_box for _ in range(len(data["packed"]))], dtype=np.int64).reshape(-1, 4)
        return data


def _empty_data() -> MaskData:
    return MaskData(iou_preds=np.zeros((0,), np.float32), points=np.zeros((0, 2)),
                    stability_score=np.zeros((0,), np.float32), boxes=np.zeros((0, 4), np.int64), rles=[],
                    crop_boxes=np.zeros((0, 4), np.int64))
