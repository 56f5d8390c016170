"""``ProposalMaskGenerator``: segment-everything from object-aware prompts (issue 16, ``--mode proposals``).

A small CNN head (``samfpga.models.proposals``, exported to ONNX) reads the image encoder's embedding and
predicts, per embedding cell, a prompt-point score, the point's offset inside the cell and the object's box.
Cells over the score threshold become proposals; each proposal is prompted by its point (three masks; optionally
also by its box, one mask), so the decoder sees one prompt per proposal instead of a whole grid. The bundled
head is trained on the grid points whose prompts produced the teacher's dense masks (``centre: prompt`` in
``samfpga.models.proposals.train``): this model's masks depend on where it is prompted. By default
(``refine=RefineConfig()``, ``samfpga.everything.refine``) the points are snapped to that dense grid and a second
pass prompts the grid neighbours of first-pass prompts that narrowly missed the IoU filter or won an NMS
contest, up to ``max_prompts`` prompts in all. With ``RefineConfig(first_pass="cells")`` the first pass is
instead every dense grid point of the head's best cells (the head ranks cells; which grid point of a cell gives
the mask is not something it learns). The masks then go through the dense generator's filters, box NMS
and RLE-after-NMS (``dense.filter_batch`` / ``encode_rles``), and come back as the official records.

Head output (``decode_head``): (7, h, w) float32 for an (C, h, w) embedding: 0 centre logit; 1-2 the centre's
(dx, dy) from the cell centre, in cells; 3-6 the box's (left, top, right, bottom) distances from the centre,
in units of the grid size (distance / (h or w cells)). Cells are ``image_size / w`` encoder-input pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .amg import MaskData, batched_nms, build_point_grid
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
from .refine import RefineConfig, cell_grid_points, neighbour_points, snap_to_grid, suppressor_prompts
from .timing import StageTimes, stage

HEAD_CHANNELS = 7


def decode_head(out: np.ndarray, image_size: int, score_thresh: float, max_proposals: int,
                peak_window: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head output (7, h, w) -> proposals in encoder-input pixels, best first.

    A proposal is a cell whose centre probability (sigmoid of channel 0) is > ``score_thresh`` and is the
    maximum of its ``peak_window`` x ``peak_window`` neighbourhood (1: every cell over the threshold, so an
    object can get several prompts); at most ``max_proposals``.

    Returns:
        points (K, 2) float32 (x, y); boxes (K, 4) float32 XYXY clipped to [0, image_size]; scores (K,) float32.
    """
    if out.ndim != 3 or out.shape[0] != HEAD_CHANNELS:
        raise ValueError(f"proposal head output must be ({HEAD_CHANNELS}, h, w), got {out.shape}")
    _, h, w = out.shape
    prob = 1.0 / (1.0 + np.exp(-out[0].astype(np.float64)))
    if peak_window < 1 or peak_window % 2 == 0:
        raise ValueError(f"peak_window must be odd and >= 1, got {peak_window}")
    r = peak_window // 2
    padded = np.pad(prob, r, constant_values=-1.0)
    neigh = np.max(np.stack([padded[dy:dy + h, dx:dx + w] for dy in range(peak_window)
                             for dx in range(peak_window)]), axis=0)
    ys, xs = np.nonzero((prob >= neigh) & (prob > score_thresh))
    order = np.argsort(-prob[ys, xs], kind="stable")[:max_proposals]
    ys, xs = ys[order], xs[order]
    cell_w, cell_h = image_size / w, image_size / h
    cx = (xs + 0.5 + out[1, ys, xs]) * cell_w
    cy = (ys + 0.5 + out[2, ys, xs]) * cell_h
    left, top = out[3, ys, xs] * image_size, out[4, ys, xs] * image_size
    right, bottom = out[5, ys, xs] * image_size, out[6, ys, xs] * image_size
    points = np.clip(np.stack([cx, cy], axis=1), 0, image_size - 1).astype(np.float32)
    boxes = np.clip(np.stack([cx - left, cy - top, cx + right, cy + bottom], axis=1), 0, image_size)
    return points.reshape(-1, 2), boxes.astype(np.float32).reshape(-1, 4), prob[ys, xs].astype(np.float32)


class ProposalHead:
    """The exported head on onnxruntime: ``(1, C, h, w)`` float32 embedding -> ``(7, h, w)`` float32."""

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"proposal head {path}: no such file (train one with `make train-proposals`)")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, embedding: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(embedding, dtype=np.float32)})[0]
        return out[0]


class ProposalMaskGenerator:
    """Segment everything from the proposal head's prompts; records as ``AutomaticMaskGenerator``'s.

    Args:
        predictor: the host ``Predictor``.
        head: a ``ProposalHead`` or the path of its ONNX file (default: the bundle's ``files.proposals``).
        score_thresh: centre probability a proposal needs.
        max_proposals: at most this many proposals (one decoder prompt per kind in ``prompts``).
        peak_window: a proposal must be the best cell of this window (1: every cell over ``score_thresh``).
        prompts: which prompts each proposal gets: "point" (its centre, three masks) and/or "box" (one mask).
        refine: snapping to the dense grid and the second pass of point prompts (``RefineConfig``), or None: the
            head's points only, as they are.
        pred_iou_thresh, stability_score_thresh, stability_score_offset, box_nms_thresh, min_mask_region_area,
        output_mode: as the dense generator.

    After ``generate``, ``stats`` holds decoder_prompts, decoder_batches, proposals, first_pass_prompts (point
    prompts after snapping, or the cells' grid points), first_pass_cells (the "cells" first pass's cells, else 0),
    refine_prompts (the second pass's) and images_encoded;
    ``timings`` the seconds per stage (the head counts under ``encoder``).
    """

    def __init__(
        self,
        predictor: PromptPredictor,
        head: ProposalHead | str | Path | None = None,
        score_thresh: float = 0.2,
        max_proposals: int = 100,
        peak_window: int = 1,
        prompts: tuple[str, ...] = ("point",),
        refine: RefineConfig | None = RefineConfig(),
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        box_nms_thresh: float = 0.7,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
    ) -> None:
        check_common(1, None, output_mode, points_per_batch)
        if not prompts or set(prompts) - {"point", "box"}:
            raise ValueError(f"prompts must be a non-empty subset of ('point', 'box'), got {prompts!r}")
        if max_proposals < 1:
            raise ValueError(f"max_proposals must be >= 1, got {max_proposals}")
        if head is None:
            bundle = getattr(predictor, "bundle", None)
            head = getattr(bundle, "proposals_path", None)
            if head is None:
                where = getattr(bundle, "root", "the predictor's model")
                raise ValueError(f"{where}: the bundle has no proposal head (files.proposals); pass one or add it "
                                 f"with `python -m samfpga.models.proposals.install HEAD.onnx BUNDLE_DIR`")
        self.head = head if isinstance(head, ProposalHead) else ProposalHead(head)
        self.predictor = predictor
        self.score_thresh = score_thresh
        self.max_proposals = max_proposals
        self.peak_window = peak_window
        self.prompts = tuple(prompts)
        if refine is not None and not isinstance(refine, RefineConfig):
            raise ValueError(f"refine must be a RefineConfig or None, got {type(refine).__name__}")
        self.refine = refine
        self.points_per_batch = points_per_batch
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.box_nms_thresh = box_nms_thresh
        self.min_mask_region_area = min_mask_region_area
        self.output_mode = output_mode
        self.stats: dict[str, Any] = {}
        self.timings: dict[str, float] = {}

    def generate(self, image: np.ndarray) -> list[dict[str, Any]]:
        """Masks for the whole of ``image`` (H, W, 3) uint8 RGB: records as ``AutomaticMaskGenerator``'s."""
        check_image(image)
        h, w = image.shape[:2]
        self._times = times = StageTimes()
        pred = self.predictor
        counter = DecoderCounter(False, None, "everything (proposals)")
        try:
            with times.stage("encoder"):
                pred.set_image(image)
                out = self.head(pred.get_image_embedding())
                points, boxes, _ = decode_head(out, pred.image_size, self.score_thresh, self.max_proposals,
                                               self.peak_window)
                prob = 1.0 / (1.0 + np.exp(-out[0].astype(np.float64)))
            # encoder-input frame -> original image frame (the records' point_coords)
            scale = np.array([w / pred.input_size[1], h / pred.input_size[0]], dtype=np.float64)
            data = MaskData()
            first = second = cells = 0
            if "point" in self.prompts:
                point_data, first, second, cells = self._points(points, prob, scale, (h, w), counter)
                data.cat(point_data)
            if "box" in self.prompts:
                centres = (boxes[:, :2] + boxes[:, 2:]) / 2 * scale
                data.cat(self._run_boxes(boxes, centres, (h, w), counter))
        finally:
            pred.reset_image()
        self.stats = {"decoder_prompts": counter.prompts, "decoder_batches": counter.batches,
                      "proposals": len(points), "first_pass_prompts": first, "first_pass_cells": cells,
                      "refine_prompts": second,
                      "images_encoded": 1}
        if "boxes" not in data:
            data = _empty_data()
        with times.stage("nms"):
            keep = batched_nms(data["boxes"].astype(np.float32), data["iou_preds"], np.zeros(len(data["boxes"])),
                               self.box_nms_thresh)
        data.filter(keep)
        data["crop_boxes"] = np.tile(np.array([[0, 0, w, h]], dtype=np.int64), (len(data["boxes"]), 1))
        if "packed" in data:
            encode_rles(data, data["crop_boxes"], (h, w), times)
        if self.min_mask_region_area > 0:
            with times.stage("postprocess"):
                data = small_region_postprocess(data, self.min_mask_region_area, self.box_nms_thresh)
        with times.stage("records"):
            records = to_records(data, self.output_mode)
        times.stop()
        self.timings = times.as_dict()
        return records

    def _filter(self, masks, iou, points, orig_size) -> MaskData:
        batch, _ = filter_batch(masks, iou, points, [0, 0, orig_size[1], orig_size[0]], orig_size,
                                self.predictor.mask_threshold, self.pred_iou_thresh, self.stability_score_thresh,
                                self.stability_score_offset, times=self._times)
        return batch

    def _points(self, head_points: np.ndarray, prob: np.ndarray, scale: np.ndarray, orig_size: tuple[int, int],
                counter: DecoderCounter) -> tuple[MaskData, int, int, int]:
        """Both passes of point prompts: their filtered masks, first-pass and second-pass prompt counts, and the
        first pass's cells ("cells" first pass; else 0).

        ``head_points`` (K, 2) float32 encoder-input pixels; ``prob`` (h, w) the head's cell probabilities;
        ``scale`` (2,) input -> original image.
        """
        ref = self.refine
        if ref is None:
            data, _ = self._run_points(head_points, head_points * scale, orig_size, counter, None)
            return data, len(head_points), 0, 0
        transform = self.predictor.transform
        cells = 0
        if ref.first_pass == "cells":
            # the dense generator's own grid points (image pixels), so every prompt is one dense makes
            grid = build_point_grid(ref.points_per_side) * np.array([orig_size[1], orig_size[0]], np.float64)[None]
            grid_input = transform.apply_coords(grid, orig_size)
            idx, chosen = cell_grid_points(prob, grid_input, self.predictor.image_size, self.score_thresh,
                                           ref.max_cells)
            cells = len(chosen)
            coords, orig = grid_input[idx].astype(np.float32), grid[idx]
        elif ref.snap:
            orig = snap_to_grid(head_points * scale, orig_size, ref.points_per_side)
            coords = transform.apply_coords(orig, orig_size).astype(np.float32)
        else:
            coords, orig = head_points, head_points * scale
        coords, orig = coords[:ref.max_prompts], orig[:ref.max_prompts]  # best first: a bound on both passes
        # the best predicted IoU per prompt ranks the parents; near misses need it down to the margin
        near = self.pred_iou_thresh - (ref.margin if "near_miss" in ref.parents else 0.0)
        data, best = self._run_points(coords, orig, orig_size, counter, near)
        budget = ref.max_prompts - len(orig)
        if budget <= 0 or not len(orig):
            return data, len(orig), 0, cells
        ids = _prompt_ids(data, orig)
        parents: list[np.ndarray] = []
        if "near_miss" in ref.parents:
            miss = np.setdiff1d(np.flatnonzero(best > -np.inf), ids)
            parents.append(miss[np.argsort(-best[miss], kind="stable")])
        if "suppressor" in ref.parents and len(ids):
            won = suppressor_prompts(data["boxes"], data["iou_preds"], ids, self.box_nms_thresh)
            parents.append(won[np.argsort(-best[won], kind="stable")])
        order = np.concatenate(parents) if parents else np.zeros((0,), np.int64)
        extra = neighbour_points(orig[order], orig_size, ref.points_per_side, ref.neighbours, orig)[:budget]
        # later rounds expand each suppressor once: those of the first round are done
        expanded = set(parents[-1].tolist()) if "suppressor" in ref.parents and len(ids) else set()
        prompted = orig
        for round_ in range(1, ref.rounds + 1):
            if not len(extra):
                break
            # the best IoUs rank the next round's suppressors; the last round needs none
            more, more_best = self._run_points(transform.apply_coords(extra, orig_size).astype(np.float32), extra,
                                               orig_size, counter, near if round_ < ref.rounds else None)
            data.cat(more)
            prompted, best = np.concatenate([prompted, extra]), np.concatenate([best, more_best])
            budget = ref.max_prompts - len(prompted)
            if round_ == ref.rounds or budget <= 0:
                break
            ids = _prompt_ids(data, prompted)
            won = np.asarray([i for i in suppressor_prompts(data["boxes"], data["iou_preds"], ids,
                                                            self.box_nms_thresh) if i not in expanded], np.int64)
            won = won[np.argsort(-best[won], kind="stable")]
            expanded.update(won.tolist())
            extra = neighbour_points(prompted[won], orig_size, ref.points_per_side, ref.neighbours, prompted)[:budget]
        return data, len(orig), len(prompted) - len(orig), cells

    def _run_points(self, coords: np.ndarray, points: np.ndarray, orig_size: tuple[int, int],
                    counter: DecoderCounter, near_thresh: float | None) -> tuple[MaskData, np.ndarray]:
        """Decode and filter single-point prompts: coords (P, 2) float32 encoder-input pixels, points (P, 2) the
        same in image pixels. Returns the filtered masks and, per prompt, the best predicted IoU above
        ``near_thresh`` (-inf where none; all -inf when ``near_thresh`` is None), (P,) float64."""
        data = MaskData()
        best = np.full(len(coords), -np.inf)
        decode_thresh = self.pred_iou_thresh if near_thresh is None else min(near_thresh, self.pred_iou_thresh)
        for start in range(0, len(coords), self.points_per_batch):
            c = coords[start:start + self.points_per_batch]
            kept, masks, iou = decode_points(self.predictor, c, decode_thresh, self._times)
            counter.add(len(c))
            if near_thresh is not None:
                np.maximum.at(best, start + kept // 3, iou.astype(np.float64))
                above = iou > self.pred_iou_thresh if self.pred_iou_thresh > 0 else np.ones(len(iou), bool)
                kept, masks, iou = kept[above], masks[above], iou[above]
            data.cat(self._filter(masks, iou, points[start:start + len(c)][kept // 3], orig_size))
        return data, best

    def _run_boxes(self, boxes: np.ndarray, centres: np.ndarray, orig_size: tuple[int, int],
                   counter: DecoderCounter) -> MaskData:
        from samfpga.transforms import postprocess_masks

        pred = self.predictor
        data = MaskData()
        for start in range(0, len(boxes), self.points_per_batch):
            b = boxes[start:start + self.points_per_batch]
            with stage(self._times, "decoder"):
                low, iou = pred.predict_low_res(None, None, b, None, multimask_output=False)
            counter.add(len(b))
            low, iou = low[:, 0], iou[:, 0]
            kept = np.flatnonzero(iou > self.pred_iou_thresh) if self.pred_iou_thresh > 0 else np.arange(len(b))
            with stage(self._times, "upscale"):
                masks = postprocess_masks(low[kept], pred.image_size, pred.input_size, pred.original_size)
            data.cat(self._filter(masks, iou[kept], centres[start:start + len(b)][kept], orig_size))
        return data


def _prompt_ids(data: MaskData, points: np.ndarray) -> np.ndarray:
    """The prompt (row of ``points`` (P, 2), distinct rows) each row of ``data`` came from: (N,) int64."""
    if "points" not in data or not len(data["points"]):
        return np.zeros((0,), np.int64)
    index = {(float(x), float(y)): i for i, (x, y) in enumerate(np.asarray(points, np.float64))}
    return np.asarray([index[(float(x), float(y))] for x, y in np.asarray(data["points"], np.float64)], np.int64)
