"""Second pass of proposals mode (issue 16): where to prompt again after the proposal head's prompts are decoded.

The bundled head is trained on the dense grid points whose prompts produced the teacher's masks, and this model's
masks depend on exactly where it is prompted: its predicted IoUs all lie near 0.5, so whether a mask passes
``pred_iou_thresh`` changes from one grid point to the next. Measured on held-out images
(docs/everything_speed.md, "Proposals mode: the missed dense masks"), the dense masks that the head's prompts miss
are of two kinds, both next to a prompt the head did make:

* near misses: a prompt one grid step away gives the mask, but the head's prompt gave only masks just under the
  IoU threshold;
* NMS chains: a prompt's mask that dense NMS would have removed (through a third mask that the head did not
  prompt) survives and removes the dense mask's twin.

So the second pass prompts the dense-grid neighbours of two kinds of first-pass prompts: those with no mask past
the filters whose best predicted IoU is within ``margin`` of ``pred_iou_thresh`` (``near_miss``), and those whose
kept mask removed another prompt's mask in the first pass's NMS (``suppressor``); in that order, each kind by
descending best predicted IoU, up to ``max_prompts`` prompts for both passes. With ``snap`` the head's points are
first moved to the nearest point of the dense grid, so every prompt is one a dense grid would make.

With ``rounds`` > 1 the second pass repeats on its own output: the new prompts' masks enter new NMS contests, and
the suppressors among all prompts so far that were not expanded yet get their neighbours too, until none is left,
``rounds`` is reached or ``max_prompts`` is spent. It recovers more for more prompts (measured in
docs/everything_speed.md: 85.5% -> 90.2% of held-out images 0-39's dense masks, 10.9x -> 8.3x fewer prompts than
dense), so the default stays one round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .amg import box_iou, build_point_grid, nms

PARENT_KINDS = ("near_miss", "suppressor")
FIRST_PASSES = ("points", "cells")


@dataclass(frozen=True)
class RefineConfig:
    """Second-pass settings of ``ProposalMaskGenerator`` (``refine=None`` turns the pass off).

    Attributes:
        points_per_side: the dense grid the head was trained on (the grid snapped to, and the neighbour step).
        snap: move the head's points to the nearest grid point (duplicates dropped) before the first pass.
        parents: which first-pass prompts get their neighbours prompted: a subset of ``PARENT_KINDS``.
        margin: a prompt is a near miss when its best predicted IoU is > ``pred_iou_thresh - margin`` and none
            of its masks passed the filters.
        neighbours: 4 (left, right, up, down) or 8 (and the diagonals) grid neighbours per parent.
        max_prompts: decoder prompts of both passes per image, at most (the first pass keeps its best
            ``max_prompts`` points; the second pass gets what is left).
        rounds: second-pass rounds; rounds after the first prompt the neighbours of the NMS suppressors not yet
            expanded (needs "suppressor" in ``parents``).
        first_pass: "points": the head's decoded points (snapped with ``snap``); "cells": the head's cells ranked
            by score (over the generator's ``score_thresh``, at most ``max_cells``), each prompted at every dense
            grid point inside it (``cell_grid_points``; 2 x 2 for a square image, 32 points per side and a 16 x 16
            embedding), so which grid point of a cell gives the mask need not be known. Measured below the
            "points" first pass (docs/everything_speed.md, "a first pass over the head's best cells": 83.8% against
            85.5% of held-out dense masks at about 10x): no head ranks the cells that hold producers well enough.
        max_cells: the "cells" first pass's cell count, at most.
    """

    points_per_side: int = 32
    snap: bool = True
    parents: tuple[str, ...] = PARENT_KINDS
    margin: float = 0.02
    neighbours: int = 4
    max_prompts: int = 120
    rounds: int = 1
    first_pass: str = "points"
    max_cells: int = 25

    def __post_init__(self) -> None:
        if self.points_per_side < 1:
            raise ValueError(f"refine points_per_side must be >= 1, got {self.points_per_side}")
        if set(self.parents) - set(PARENT_KINDS):
            raise ValueError(f"refine parents must be a subset of {PARENT_KINDS}, got {self.parents!r}")
        if not 0.0 <= self.margin <= 1.0:
            raise ValueError(f"refine margin must be in [0, 1], got {self.margin}")
        if self.neighbours not in (4, 8):
            raise ValueError(f"refine neighbours must be 4 or 8, got {self.neighbours}")
        if self.max_prompts < 1:
            raise ValueError(f"refine max_prompts must be >= 1, got {self.max_prompts}")
        if self.rounds < 1:
            raise ValueError(f"refine rounds must be >= 1, got {self.rounds}")
        if self.rounds > 1 and "suppressor" not in self.parents:
            raise ValueError("refine rounds > 1 expand NMS suppressors: parents must include 'suppressor'")
        if self.first_pass not in FIRST_PASSES:
            raise ValueError(f"refine first_pass must be one of {FIRST_PASSES}, got {self.first_pass!r}")
        if self.max_cells < 1:
            raise ValueError(f"refine max_cells must be >= 1, got {self.max_cells}")


def unique_rows(points: np.ndarray) -> np.ndarray:
    """(N, 2) -> the distinct rows in order of first appearance, (M, 2)."""
    if not len(points):
        return points.reshape(0, 2)
    _, first = np.unique(points, axis=0, return_index=True)
    return points[np.sort(first)]


def snap_to_grid(points: np.ndarray, size: tuple[int, int], points_per_side: int) -> np.ndarray:
    """Image-pixel points (N, 2) (x, y) -> the nearest points of the dense grid, duplicates dropped, (M, 2) float64.

    The grid is ``build_point_grid(points_per_side)`` scaled to ``size`` (H, W), the points the dense generator
    prompts, so a snapped point gives bit-identical masks to the dense generator's prompt there.
    """
    h, w = size
    n = points_per_side
    grid = build_point_grid(n) * np.array([w, h], dtype=np.float64)[None]
    gx = np.clip(np.floor(np.asarray(points[:, 0], np.float64) * n / w), 0, n - 1).astype(np.int64)
    gy = np.clip(np.floor(np.asarray(points[:, 1], np.float64) * n / h), 0, n - 1).astype(np.int64)
    return unique_rows(grid[gy * n + gx])


def cell_grid_points(prob: np.ndarray, grid_input: np.ndarray, image_size: int, score_thresh: float,
                     max_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """The dense grid points inside the head's best cells, best cell first.

    Args:
        prob: (h, w) the head's per-cell probability (sigmoid of channel 0).
        grid_input: (P, 2) the dense grid's points (x, y) in encoder-input pixels (``transform.apply_coords`` of the
            grid the dense generator prompts), so the indices name prompts bit-identical to dense's.
        image_size: the encoder input side; a cell is ``image_size / w`` x ``image_size / h`` pixels.
        score_thresh: a cell needs probability > this; max_cells: at most this many cells (those holding no grid
            point, e.g. in the padding of a non-square image, do not count).

    Returns:
        (M,) int64 indices into the grid: cells by descending probability (ties: row-major cell order), each
        cell's grid points in grid (row-major) order; (C,) int64 the chosen cells (row-major cell indices).
    """
    h, w = prob.shape
    pts = np.asarray(grid_input, np.float64).reshape(-1, 2)
    cx = np.clip(np.floor(pts[:, 0] * w / image_size), 0, w - 1).astype(np.int64)
    cy = np.clip(np.floor(pts[:, 1] * h / image_size), 0, h - 1).astype(np.int64)
    cell = cy * w + cx
    flat = np.asarray(prob, np.float64).ravel()
    order = np.argsort(-flat, kind="stable")
    order = order[flat[order] > score_thresh]
    held = np.bincount(cell, minlength=h * w) > 0
    chosen = order[held[order]][:max_cells]
    if not len(chosen):
        return np.zeros((0,), np.int64), chosen.astype(np.int64)
    return np.concatenate([np.flatnonzero(cell == c) for c in chosen]).astype(np.int64), chosen.astype(np.int64)


def neighbour_points(parents: np.ndarray, size: tuple[int, int], points_per_side: int, neighbours: int,
                     exclude: np.ndarray) -> np.ndarray:
    """The grid neighbours of each parent point, in parent order: (Q, 2) float64 image pixels (x, y).

    Neighbours are one grid step (W / points_per_side, H / points_per_side) away; those outside the image, already
    in ``exclude`` (the points prompted so far, (E, 2)) or listed for an earlier parent are dropped.
    """
    h, w = size
    sx, sy = w / points_per_side, h / points_per_side
    steps = [(1, 0), (-1, 0), (0, 1), (0, -1)]
    if neighbours == 8:
        steps += [(1, 1), (-1, 1), (1, -1), (-1, -1)]
    seen = {(float(x), float(y)) for x, y in np.asarray(exclude, np.float64).reshape(-1, 2)}
    out: list[tuple[float, float]] = []
    for px, py in np.asarray(parents, np.float64).reshape(-1, 2):
        for dx, dy in steps:
            q = (float(px + dx * sx), float(py + dy * sy))
            if 0 <= q[0] < w and 0 <= q[1] < h and q not in seen:
                seen.add(q)
                out.append(q)
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def suppressor_prompts(boxes: np.ndarray, scores: np.ndarray, prompt_ids: np.ndarray, nms_thresh: float) -> np.ndarray:
    """Prompts whose kept mask removed another prompt's mask in greedy box NMS.

    Args:
        boxes: (N, 4) XYXY boxes of the filtered masks; scores (N,) their predicted IoUs; prompt_ids (N,) int the
            prompt each mask came from.
        nms_thresh: the NMS box IoU.

    Returns:
        (S,) int64 sorted distinct prompt ids. A removed mask's remover is the highest-scoring kept mask whose box
        overlaps it by more than ``nms_thresh`` (the one greedy NMS visits first).
    """
    if not len(boxes):
        return np.zeros((0,), np.int64)
    boxes = np.asarray(boxes, np.float32)
    keep = nms(boxes, scores, nms_thresh)
    dropped = np.setdiff1d(np.arange(len(boxes)), keep)
    if not len(dropped):
        return np.zeros((0,), np.int64)
    overlap = box_iou(boxes[dropped], boxes[keep]) > nms_thresh
    kept_scores = np.asarray(scores, np.float64)[keep]
    out = set()
    for row, d in zip(overlap, dropped):
        if row.any():
            winner = keep[np.flatnonzero(row)[np.argmax(kept_scores[row])]]
            if prompt_ids[winner] != prompt_ids[d]:
                out.add(int(prompt_ids[winner]))
    return np.asarray(sorted(out), dtype=np.int64)
