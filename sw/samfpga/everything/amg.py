"""Mask utilities of segment-everything in numpy (no torch, no cv2, no torchvision).

Each function mirrors its namesake in ``segment_anything.utils.amg`` (and torchvision's ``batched_nms`` /
``box_area``) with numpy arrays in place of torch tensors: same arguments, same shapes, same results
(tests/test_everything.py compares them). Boxes are XYXY; masks are (..., H, W) bool; uncompressed RLEs are
``{"size": [H, W], "counts": [int, ...]}`` in column-major (Fortran) order, as pycocotools expects.
"""

from __future__ import annotations

import math
from collections.abc import Generator, ItemsView, Sequence
from itertools import product
from typing import Any

import numpy as np


class MaskData:
    """Per-mask columns (numpy arrays or lists, first axis = mask) filtered and concatenated together."""

    def __init__(self, **kwargs: Any) -> None:
        for k, v in kwargs.items():
            _check_column(k, v)
        self._stats: dict[str, Any] = dict(**kwargs)

    def __setitem__(self, key: str, item: Any) -> None:
        _check_column(key, item)
        self._stats[key] = item

    def __delitem__(self, key: str) -> None:
        del self._stats[key]

    def __getitem__(self, key: str) -> Any:
        return self._stats[key]

    def __contains__(self, key: str) -> bool:
        return key in self._stats

    def items(self) -> ItemsView[str, Any]:
        return self._stats.items()

    def filter(self, keep: np.ndarray) -> None:
        """Keep rows by a boolean mask (N,) or an index array (K,) (the order of the indices is kept)."""
        keep = np.asarray(keep)
        for k, v in self._stats.items():
            if v is None:
                continue
            if isinstance(v, np.ndarray):
                self._stats[k] = v[keep]
            elif keep.dtype == np.bool_:
                self._stats[k] = [a for a, flag in zip(v, keep) if flag]
            else:
                self._stats[k] = [v[int(i)] for i in keep]

    def cat(self, new_stats: MaskData) -> None:
        """Append ``new_stats``'s rows. The official code deep-copies every list it appends (26% of a dense run's
        wall time with vit_t, issue 16); here columns are shared with ``new_stats`` instead: arrays are never
        written in place and list items (RLE dicts) are replaced, never mutated, so the results are the same."""
        for k, v in new_stats.items():
            if k not in self._stats or self._stats[k] is None:
                self._stats[k] = list(v) if isinstance(v, list) else v
            elif isinstance(v, np.ndarray):
                self._stats[k] = np.concatenate([self._stats[k], v], axis=0)
            else:
                self._stats[k].extend(v)


def _check_column(key: str, value: Any) -> None:
    if not isinstance(value, (list, np.ndarray)):
        raise TypeError(f"MaskData column {key!r} must be a list or numpy array, got {type(value).__name__}")


# ----------------------------------------------------------------------------- boxes and NMS
def box_area(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) XYXY -> (N,) areas (no +1, as torchvision)."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) float XYXY -> (N, M) IoU, as ``torchvision.ops.box_iou``."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / (box_area(a)[:, None] + box_area(b)[None, :] - inter)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS as ``torchvision.ops.nms``: visit boxes by descending score (ties in input order), drop the
    ones with IoU > ``iou_threshold`` to a kept box. (N, 4) float32 XYXY, (N,) -> kept indices (K,) int64 by
    descending score."""
    n = len(boxes)
    if n == 0:
        return np.zeros((0,), dtype=np.int64)
    boxes = np.asarray(boxes, dtype=np.float32)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    suppressed = np.zeros(n, dtype=bool)
    keep: list[int] = []
    areas = box_area(boxes)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        # IoU of box i with all boxes, in float32 like torchvision's kernel
        lt = np.maximum(boxes[i, :2], boxes[:, :2])
        rb = np.minimum(boxes[i, 2:], boxes[:, 2:])
        wh = np.clip(rb - lt, 0, None)
        inter = wh[:, 0] * wh[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = inter / (areas[i] + areas - inter)
        suppressed |= iou > iou_threshold
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray, iou_threshold: float) -> np.ndarray:
    """NMS within each category ``idxs`` (torchvision's coordinate-offset trick): (N, 4), (N,), (N,) -> (K,)."""
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.size == 0:
        return np.zeros((0,), dtype=np.int64)
    offsets = np.asarray(idxs, dtype=np.float32) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def is_box_near_crop_edge(boxes: np.ndarray, crop_box: Sequence[int], orig_box: Sequence[int],
                          atol: float = 20.0) -> np.ndarray:
    """(N, 4) crop-frame XYXY boxes -> (N,) bool: a side within ``atol`` of the crop's edge that is not also
    the image's edge (a mask cut by the crop)."""
    crop = np.asarray(crop_box, dtype=np.float32)[None, :]
    orig = np.asarray(orig_box, dtype=np.float32)[None, :]
    b = uncrop_boxes_xyxy(boxes, crop_box).astype(np.float32)
    near_crop = np.abs(b - crop) <= atol
    near_image = np.abs(b - orig) <= atol
    return np.any(near_crop & ~near_image, axis=1)


def box_xyxy_to_xywh(box_xyxy: np.ndarray) -> np.ndarray:
    box = np.array(box_xyxy, copy=True)
    box[2] = box[2] - box[0]
    box[3] = box[3] - box[1]
    return box


def batched_mask_to_box(masks: np.ndarray) -> np.ndarray:
    """(..., H, W) bool -> (..., 4) int64 XYXY with inclusive max (x1 = last column); [0, 0, 0, 0] if empty."""
    masks = np.asarray(masks, dtype=bool)
    if masks.size == 0:
        return np.zeros((*masks.shape[:-2], 4), dtype=np.int64)
    h, w = masks.shape[-2:]
    rows = masks.any(axis=-1)  # (..., H)
    cols = masks.any(axis=-2)  # (..., W)
    bottom = np.where(rows.any(-1), h - 1 - np.argmax(rows[..., ::-1], axis=-1), 0)
    top = np.argmax(rows, axis=-1)
    right = np.where(cols.any(-1), w - 1 - np.argmax(cols[..., ::-1], axis=-1), 0)
    left = np.argmax(cols, axis=-1)
    out = np.stack([left, top, right, bottom], axis=-1).astype(np.int64)
    out[~rows.any(-1)] = 0
    return out


# ----------------------------------------------------------------------------- point grids and crops
def batch_iterator(batch_size: int, *args: Sequence[Any]) -> Generator[list[Any], None, None]:
    if not args or any(len(a) != len(args[0]) for a in args):
        raise ValueError("Batched iteration must have inputs of all the same size.")
    n_batches = len(args[0]) // batch_size + int(len(args[0]) % batch_size != 0)
    for b in range(n_batches):
        yield [arg[b * batch_size:(b + 1) * batch_size] for arg in args]


def build_point_grid(n_per_side: int) -> np.ndarray:
    """(n*n, 2) float64 (x, y) in [0, 1], cell centres, x fastest."""
    offset = 1 / (2 * n_per_side)
    one_side = np.linspace(offset, 1 - offset, n_per_side)
    xs = np.tile(one_side[None, :], (n_per_side, 1))
    ys = np.tile(one_side[:, None], (1, n_per_side))
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def build_all_layer_point_grids(n_per_side: int, n_layers: int, scale_per_layer: int) -> list[np.ndarray]:
    return [build_point_grid(int(n_per_side / (scale_per_layer ** i))) for i in range(n_layers + 1)]


def generate_crop_boxes(im_size: tuple[int, ...], n_layers: int,
                        overlap_ratio: float) -> tuple[list[list[int]], list[int]]:
    """XYXY crop boxes: the whole image, then (2**(i+1))**2 overlapping crops in layer i+1; and their layers."""
    crop_boxes, layer_idxs = [], []
    im_h, im_w = im_size
    short_side = min(im_h, im_w)
    crop_boxes.append([0, 0, im_w, im_h])
    layer_idxs.append(0)

    def crop_len(orig_len: int, n_crops: int, overlap: int) -> int:
        return int(math.ceil((overlap * (n_crops - 1) + orig_len) / n_crops))

    for i_layer in range(n_layers):
        n_crops_per_side = 2 ** (i_layer + 1)
        overlap = int(overlap_ratio * short_side * (2 / n_crops_per_side))
        crop_w = crop_len(im_w, n_crops_per_side, overlap)
        crop_h = crop_len(im_h, n_crops_per_side, overlap)
        crop_box_x0 = [int((crop_w - overlap) * i) for i in range(n_crops_per_side)]
        crop_box_y0 = [int((crop_h - overlap) * i) for i in range(n_crops_per_side)]
        for x0, y0 in product(crop_box_x0, crop_box_y0):
            crop_boxes.append([x0, y0, min(x0 + crop_w, im_w), min(y0 + crop_h, im_h)])
            layer_idxs.append(i_layer + 1)
    return crop_boxes, layer_idxs


def uncrop_boxes_xyxy(boxes: np.ndarray, crop_box: Sequence[int]) -> np.ndarray:
    x0, y0 = crop_box[0], crop_box[1]
    return np.asarray(boxes) + np.array([x0, y0, x0, y0], dtype=np.int64)


def uncrop_points(points: np.ndarray, crop_box: Sequence[int]) -> np.ndarray:
    return np.asarray(points) + np.array([crop_box[0], crop_box[1]])


def uncrop_masks(masks: np.ndarray, crop_box: Sequence[int], orig_h: int, orig_w: int) -> np.ndarray:
    """(N, h, w) crop-frame masks -> (N, orig_h, orig_w), zero outside the crop."""
    x0, y0, x1, y1 = crop_box
    if x0 == 0 and y0 == 0 and x1 == orig_w and y1 == orig_h:
        return masks
    out = np.zeros((*masks.shape[:-2], orig_h, orig_w), dtype=masks.dtype)
    out[..., y0:y0 + masks.shape[-2], x0:x0 + masks.shape[-1]] = masks
    return out


# ----------------------------------------------------------------------------- scores
def calculate_stability_score(masks: np.ndarray, mask_threshold: float, threshold_offset: float) -> np.ndarray:
    """(N, H, W) float logits -> (N,) float32: IoU of the masks thresholded at threshold +- offset (the high
    mask lies inside the low one, so IoU = area(high) / area(low))."""
    inter = (masks > (mask_threshold + threshold_offset)).sum(axis=(-1, -2), dtype=np.int64)
    union = (masks > (mask_threshold - threshold_offset)).sum(axis=(-1, -2), dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (inter / union).astype(np.float32)


# ----------------------------------------------------------------------------- RLE
def mask_to_rle(masks: np.ndarray) -> list[dict[str, Any]]:
    """(N, H, W) bool -> N uncompressed RLEs (column-major runs, starting with a run of zeros)."""
    b, h, w = masks.shape
    flat = np.asarray(masks, dtype=bool).transpose(0, 2, 1).reshape(b, h * w)
    out = []
    for i in range(b):
        change = np.flatnonzero(flat[i, 1:] != flat[i, :-1]) + 1
        idx = np.concatenate([[0], change, [h * w]])
        counts = [] if not flat[i, 0] else [0]
        counts.extend(np.diff(idx).tolist())
        out.append({"size": [h, w], "counts": counts})
    return out


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """Uncompressed RLE -> (H, W) bool."""
    h, w = rle["size"]
    counts = np.asarray(rle["counts"], dtype=np.int64)
    values = (np.arange(len(counts)) % 2).astype(bool)
    flat = np.repeat(values, counts)
    if flat.size != h * w:
        raise ValueError(f"RLE counts sum to {flat.size}, expected {h}*{w} = {h * w}")
    return flat.reshape(w, h).transpose()


def area_from_rle(rle: dict[str, Any]) -> int:
    return int(sum(rle["counts"][1::2]))


def coco_encode_rle(uncompressed_rle: dict[str, Any]) -> dict[str, Any]:
    """Uncompressed RLE -> COCO compressed RLE (``counts`` as a str, JSON-serialisable)."""
    from pycocotools import mask as mask_utils

    h, w = uncompressed_rle["size"]
    rle = mask_utils.frPyObjects(uncompressed_rle, h, w)
    rle["counts"] = rle["counts"].decode("utf-8")
    return rle


# ----------------------------------------------------------------------------- small regions
def connected_components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components of a (H, W) bool mask, like ``cv2.connectedComponentsWithStats(m, 8)``.

    Returns (n_labels, labels (H, W) int32, sizes (n_labels,) int64): label 0 is the background (False pixels),
    components 1.. are numbered in raster order of their first pixel, as OpenCV numbers them.

    Works on horizontal runs: runs in adjacent rows that touch (8-connectivity: column ranges overlap after
    widening by one) are joined with a vectorised union-find (min-label propagation + pointer jumping).
    """
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)
    sr, sc = np.nonzero(d == 1)  # run starts (row, col), raster order
    er, ec = np.nonzero(d == -1)  # run ends (exclusive col), same order
    n = len(sr)
    labels = np.zeros((h, w), dtype=np.int32)
    if n == 0:
        return 1, labels, np.array([h * w], dtype=np.int64)
    stride = w + 2
    key_s = sr.astype(np.int64) * stride + sc
    key_e = er.astype(np.int64) * stride + ec
    # runs j in row r+1 touching run i (s, e): s_j <= e_i and e_j >= s_i (e exclusive, widened by one)
    lo = np.searchsorted(key_e, (sr + 1).astype(np.int64) * stride + sc, side="left")
    hi = np.searchsorted(key_s, (sr + 1).astype(np.int64) * stride + ec, side="right")
    cnt = np.clip(hi - lo, 0, None)
    a = np.repeat(np.arange(n), cnt)
    b = (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)) + np.repeat(lo, cnt)
    parent = np.arange(n)
    while len(a):
        pa, pb = parent[a], parent[b]
        m = np.minimum(pa, pb)
        for idx in (a, b, pa, pb):  # lower the runs and their current labels (hooking)
            np.minimum.at(parent, idx, m)
        while True:  # pointer jumping: every label is a run of the same component with a smaller index
            nxt = parent[parent]
            if np.array_equal(nxt, parent):
                break
            parent = nxt
        if np.array_equal(parent[a], parent[b]):
            break
    # roots are each component's first run in raster order -> number them in that order
    roots, comp = np.unique(parent, return_inverse=True)
    run_label = (comp + 1).astype(np.int32)
    lengths = ec - sc
    sizes = np.zeros(len(roots) + 1, dtype=np.int64)
    np.add.at(sizes, run_label, lengths)
    sizes[0] = h * w - sizes[1:].sum()
    rows = np.repeat(sr, lengths)
    cols = np.repeat(sc, lengths) + (np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths))
    labels[rows, cols] = np.repeat(run_label, lengths)
    return len(roots) + 1, labels, sizes


def remove_small_regions(mask: np.ndarray, area_thresh: float, mode: str) -> tuple[np.ndarray, bool]:
    """Remove holes (``mode="holes"``) or islands (``"islands"``) smaller than ``area_thresh`` from a (H, W)
    bool mask; returns the mask and whether it changed (as ``segment_anything.utils.amg``)."""
    if mode not in ("holes", "islands"):
        raise ValueError(f"mode must be 'holes' or 'islands', got {mode!r}")
    correct_holes = mode == "holes"
    working = correct_holes ^ np.asarray(mask, dtype=bool)
    n_labels, regions, sizes_all = connected_components(working)
    sizes = sizes_all[1:]
    small = [i + 1 for i, s in enumerate(sizes) if s < area_thresh]
    if not small:
        return mask, False
    fill_labels = [0] + small
    if not correct_holes:
        fill_labels = [i for i in range(n_labels) if i not in fill_labels]
        if not fill_labels:  # every region is small: keep the largest
            fill_labels = [int(np.argmax(sizes)) + 1]
    return np.isin(regions, fill_labels), True
