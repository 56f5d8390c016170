"""Fit the post-hoc output calibration of a bundle (``samfpga.calibration``) and measure calibration.

``python -m samfpga.models.calibrate --bundle DIR [--out DIR] [--images 30] [--seed 2] [--json REPORT]``

Collection (``collect``): on images of the calibration split -- the held-out generators (``synthetic`` and
``randomized`` training families) drawn with ``--seed`` (default 2: training uses seed 0 and every evaluation split
seed 1, so the fit never sees an evaluated or trained image) -- the bundle's decoder answers

- ``point``: one centre click per ground-truth instance, the three multimask outputs;
- ``box``: the instance's tight box, the single-mask output;
- ``grid``: segment-everything's grid (``points_per_side``^2 single clicks), the three multimask outputs.

For every output mask: predicted IoU, actual IoU (with its instance; for grid prompts the best-matching
instance), stability score (SAM's, offset 1), and for point/box masks a uniform sample of pixel logits with
their instance labels.

Fit (``fit``): the IoU map is an isotonic regression of actual on predicted IoU over all outputs, each source
weighted to the same total (``source_weights``), on ``bins`` bins of equal weight (pool-adjacent-violators on
the bin means, which become the knots); the logit map is Platt
scaling of the pixel logits (logistic regression of the label on ``a * logit`` (+ ``b`` with
``fit_offset``)), so a calibrated logit is the log-odds that the pixel belongs to the prompted object. Without
``fit_offset`` the binary masks (threshold 0) are unchanged. Deterministic: the same images give the same maps.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from samfpga.bundle import load_bundle
from samfpga.calibration import IDENTITY, Calibration
from samfpga.decoder_prompts import FOREGROUND_LABEL
from samfpga.everything.amg import build_point_grid, calculate_stability_score
from samfpga.predictor import Predictor
from samfpga.transforms import postprocess_masks

from .data.prompts import centre_point, mask_box
from .data.splits import get_split
from .data.synthetic import sample_rng

SOURCES = ("point", "box", "grid")
MASK_COLUMNS = ("source", "pred_iou", "actual_iou", "stability", "high_frac", "max_logit", "stability_after",
                "high_frac_after")
HIGH_SCORE = 8.5  # TinySAM's "covered" logit threshold
MIN_STEP = 1e-3  # added per knot of the IoU map so flat isotonic runs do not tie distinct predictions
LOGIT_EDGES = np.arange(-40.0, 40.01, 0.5)  # histogram bins of the in-mask logits


@dataclass
class Records:
    """Per output mask (M,): source index into SOURCES (int8), pred_iou, actual_iou, stability (float32),
    high_frac (fraction of the mask's pixels with logit > 8.5), max_logit, and the stability and high_frac
    under the calibration ``after`` given to ``collect_image`` (NaN without); pixel samples (P,): logit, label;
    logit_hist: counts of in-mask logits over LOGIT_EDGES."""

    source: np.ndarray
    pred_iou: np.ndarray
    actual_iou: np.ndarray
    stability: np.ndarray
    high_frac: np.ndarray
    max_logit: np.ndarray
    stability_after: np.ndarray
    high_frac_after: np.ndarray
    pixel_logit: np.ndarray
    pixel_label: np.ndarray
    logit_hist: np.ndarray

    @staticmethod
    def concat(parts: list[Records]) -> Records:
        fields = Records.__dataclass_fields__
        out = {k: np.concatenate([getattr(p, k) for p in parts]) for k in fields if k != "logit_hist"}
        return Records(**out, logit_hist=np.sum([p.logit_hist for p in parts], axis=0))

    def select(self, source: str) -> Records:
        keep = self.source == SOURCES.index(source)
        return Records(*(getattr(self, k)[keep] for k in MASK_COLUMNS), self.pixel_logit, self.pixel_label,
                       self.logit_hist)


def _mask_stats(logits: np.ndarray, gts: np.ndarray, target: np.ndarray | None, thr: float
                ) -> tuple[np.ndarray, ...]:
    """(K, H, W) logits -> actual IoU (with ``target`` (K,) instance indices, or the best instance), stability,
    high_frac, max_logit, each (K,)."""
    k = len(logits)
    fg = (logits > thr).reshape(k, -1).astype(np.float32)
    g = gts.reshape(len(gts), -1).astype(np.float32)
    inter = fg @ g.T
    union = fg.sum(1)[:, None] + g.sum(1)[None, :] - inter
    ious = inter / np.maximum(union, 1.0)
    actual = ious[np.arange(k), target] if target is not None else ious.max(axis=1)
    area = fg.sum(1)
    high = (logits > HIGH_SCORE).reshape(k, -1).sum(1)
    return (actual.astype(np.float32), calculate_stability_score(logits, thr, 1.0),
            (high / np.maximum(area, 1.0)).astype(np.float32), logits.reshape(k, -1).max(1).astype(np.float32))


def collect_image(pred: Predictor, image: np.ndarray, gts: np.ndarray, rng: np.random.Generator,
                  points_per_side: int = 16, pixels_per_mask: int = 512, batch: int = 64,
                  after: Calibration | None = None) -> Records:
    """Records of one image (see module docstring). image (H, W, 3) uint8; gts (N, H, W) bool; ``after``: a
    calibration whose logit map is applied on top of ``pred``'s outputs for the ``*_after`` columns."""
    pred.set_image(image)
    thr = pred.mask_threshold
    h, w = image.shape[:2]
    parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray | None]] = []  # (source, logits, iou, target)
    for i, gt in enumerate(gts):
        cx, cy = centre_point(gt)
        m, s, _ = pred.predict(np.array([[cx, cy]]), np.array([1]), multimask_output=True, return_logits=True)
        parts.append((0, m, s, np.full(len(m), i)))
        m, s, _ = pred.predict(box=np.array(mask_box(gt), dtype=np.float64), multimask_output=False,
                               return_logits=True)
        parts.append((1, m, s, np.full(len(m), i)))
    grid = build_point_grid(points_per_side) * np.array([w, h], dtype=np.float64)[None]
    for start in range(0, len(grid), batch):
        pts = pred.transform.apply_coords(grid[start:start + batch], (h, w)).astype(np.float32)
        labels = np.full((len(pts), 1), FOREGROUND_LABEL, dtype=np.float32)
        low, iou = pred.predict_low_res(pts[:, None, :], labels)
        logits = postprocess_masks(low.reshape(-1, *low.shape[2:]), pred.image_size, pred.input_size,
                                   pred.original_size)
        parts.append((2, logits, iou.reshape(-1), None))
    cols: dict[str, list[np.ndarray]] = {k: [] for k in (*MASK_COLUMNS, "pixel_logit", "pixel_label")}
    hist = np.zeros(len(LOGIT_EDGES) - 1, dtype=np.int64)
    for src, logits, iou, target in parts:
        actual, stab, high, mx = _mask_stats(logits, gts, target, thr)
        cols["source"].append(np.full(len(logits), src, dtype=np.int8))
        stab_after = high_after = np.full(len(logits), np.nan, np.float32)
        if after is not None:
            _, stab_after, high_after, _ = _mask_stats(after.logits(logits), gts, target, thr)
        for name, v in (("pred_iou", iou), ("actual_iou", actual), ("stability", stab), ("high_frac", high),
                        ("max_logit", mx), ("stability_after", stab_after), ("high_frac_after", high_after)):
            cols[name].append(np.asarray(v, dtype=np.float32).reshape(-1))
        hist += np.histogram(logits[logits > thr], LOGIT_EDGES)[0]
        if target is not None:
            idx = rng.integers(0, h * w, size=(len(logits), pixels_per_mask))
            cols["pixel_logit"].append(np.take_along_axis(logits.reshape(len(logits), -1), idx, 1).ravel())
            cols["pixel_label"].append(gts.reshape(len(gts), -1)[target[:, None], idx].ravel())
    pred.reset_image()
    return Records(**{k: np.concatenate(v) for k, v in cols.items()}, logit_hist=hist)


def collect(pred: Predictor, splits: list[str], seed: int | None, images: int, points_per_side: int = 16,
            image_size: int = 256, progress: bool = True, after: Calibration | None = None) -> Records:
    """Records of ``images`` images of each split in ``splits`` (``data.splits``), drawn with ``seed``
    (None: the split's own seed)."""
    from tqdm import tqdm

    parts = []
    for name in splits:
        spl = get_split(name, seed)
        draw = spl.sample_function(image_size)
        for i in tqdm(range(images), desc=f"calibration records ({name}, seed {spl.seed})", disable=not progress):
            s = draw(spl.seed, i)
            parts.append(collect_image(pred, s.image, s.masks, sample_rng(spl.seed, i, stream=7), points_per_side,
                                       after=after))
    return Records.concat(parts)


# ----------------------------------------------------------------------------------------------- fitting
def isotonic(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pool-adjacent-violators: the non-decreasing sequence nearest ``y`` in ``w``-weighted least squares.
    y, w (n,) float; returns (n,) float64."""
    vals: list[float] = []
    wts: list[float] = []
    sizes: list[int] = []
    for yi, wi in zip(np.asarray(y, np.float64), np.asarray(w, np.float64)):
        vals.append(yi)
        wts.append(wi)
        sizes.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            wsum = wts[-2] + wts[-1]
            vals[-2] = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / wsum
            wts[-2] = wsum
            sizes[-2] += sizes[-1]
            del vals[-1], wts[-1], sizes[-1]
    return np.repeat(vals, sizes)


def source_weights(source: np.ndarray) -> np.ndarray:
    """(M,) weights giving each prompt source present the same total weight: the grid's thousands of masks per
    image would otherwise decide the IoU map alone, and users' point and box prompts count as much."""
    counts = np.bincount(source.astype(np.int64), minlength=len(SOURCES)).astype(np.float64)
    present = (counts > 0).sum()
    return 1.0 / (counts[source.astype(np.int64)] * present)


def fit_iou_map(pred_iou: np.ndarray, actual_iou: np.ndarray, weights: np.ndarray | None = None,
                bins: int = 20) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Knots (x, y) of the monotone IoU map: ``bins`` bins of predicted IoU of equal total weight, isotonic
    regression on the bins' weighted means."""
    order = np.argsort(pred_iou, kind="stable")
    p, a = np.asarray(pred_iou, np.float64)[order], np.asarray(actual_iou, np.float64)[order]
    w = np.ones_like(p) if weights is None else np.asarray(weights, np.float64)[order]
    cum = np.cumsum(w) / w.sum()
    which = np.minimum((cum * bins - 1e-9).astype(int), bins - 1)
    xs, ys, ws = [], [], []
    for b in np.unique(which):
        sel = which == b
        ws.append(w[sel].sum())
        xs.append(float(np.average(p[sel], weights=w[sel])))
        ys.append(float(np.average(a[sel], weights=w[sel])))
    xs_a, ys_a, ws_a = np.array(xs), np.array(ys), np.array(ws)
    keep = np.concatenate([[True], np.diff(xs_a) > 1e-6])  # strictly increasing knots (ties: first bin)
    ys_a = np.clip(isotonic(ys_a[keep], ws_a[keep]), 0.0, 1.0)
    # strictly increasing, so the map keeps the order of the head's predictions (SAM's multimask choice, NMS order)
    ys_a = ys_a + MIN_STEP * np.arange(len(ys_a))
    return tuple(float(v) for v in xs_a[keep]), tuple(float(v) for v in ys_a)


def fit_platt(logit: np.ndarray, label: np.ndarray, fit_offset: bool) -> tuple[float, float]:
    """(scale, offset) maximising the likelihood of ``label`` under sigmoid(scale * logit + offset) (offset 0
    unless ``fit_offset``); L-BFGS on the mean log-loss."""
    from scipy.optimize import minimize

    z = np.asarray(logit, np.float64)
    sign = np.where(np.asarray(label, bool), -1.0, 1.0)  # log-loss = log(1 + exp(sign * (a z + b)))

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        u = sign * (theta[0] * z + (theta[1] if fit_offset else 0.0))
        val = np.logaddexp(0.0, u).mean()
        d = sign / (1.0 + np.exp(-u))  # d loss / d (a z + b)
        grad = np.array([(d * z).mean(), d.mean() if fit_offset else 0.0])
        return float(val), grad

    res = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B",
                   bounds=[(1e-3, 1e3), (-50.0, 50.0) if fit_offset else (0.0, 0.0)])
    return float(res.x[0]), float(res.x[1]) if fit_offset else 0.0


def fit(records: Records, bins: int = 20, fit_offset: bool = False, fitted_on: dict[str, Any] | None = None
        ) -> Calibration:
    """The calibration of ``records`` collected with the identity calibration (see module docstring)."""
    xs, ys = fit_iou_map(records.pred_iou, records.actual_iou, source_weights(records.source), bins)
    scale, offset = fit_platt(records.pixel_logit, records.pixel_label, fit_offset)
    return Calibration(xs, ys, scale, offset, dict(fitted_on or {}))


# ----------------------------------------------------------------------------------------------- measures
def reliability(pred_iou: np.ndarray, actual_iou: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Reliability table on ``bins`` equal-width predicted-IoU bins over [0, 1] (predictions outside are put in
    the end bins): counts, mean predicted and mean actual IoU per bin; ECE (count-weighted mean |gap|), MCE
    (largest gap of a bin with >= 10 masks) and the mean signed gap (predicted - actual)."""
    p, a = np.asarray(pred_iou, np.float64), np.asarray(actual_iou, np.float64)
    idx = np.clip((p * bins).astype(int), 0, bins - 1)
    counts = np.bincount(idx, minlength=bins)
    sum_p = np.bincount(idx, p, minlength=bins)
    sum_a = np.bincount(idx, a, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mp, ma = sum_p / counts, sum_a / counts
    gaps = np.abs(mp - ma)
    n = max(len(p), 1)
    return {"bin_edges": np.linspace(0, 1, bins + 1).round(3).tolist(), "count": counts.tolist(),
            "mean_pred": [None if c == 0 else float(v) for c, v in zip(counts, mp)],
            "mean_actual": [None if c == 0 else float(v) for c, v in zip(counts, ma)],
            "ece": float(np.nansum(gaps * counts) / n),
            "mce": float(np.nanmax(np.where(counts >= 10, gaps, np.nan))) if (counts >= 10).any() else None,
            "mean_gap": float((p - a).mean()) if len(p) else None, "masks": int(len(p)),
            "spearman": _spearman(p, a)}


def _spearman(p: np.ndarray, a: np.ndarray) -> float | None:
    if len(p) < 3:
        return None
    rp, ra = np.argsort(np.argsort(p)), np.argsort(np.argsort(a))
    return float(np.corrcoef(rp, ra)[0, 1])


def summarise(records: Records) -> dict[str, Any]:
    """Reliability per source and pooled; stability and high-logit distributions (see ``Records``)."""
    out: dict[str, Any] = {"all": reliability(records.pred_iou, records.actual_iou)}
    for src in SOURCES:
        r = records.select(src)
        out[src] = reliability(r.pred_iou, r.actual_iou)
    g = records.select("grid")
    q = [0.1, 0.25, 0.5, 0.75, 0.9, 0.99]
    out["distributions"] = {
        "max_logit_quantiles_all": dict(zip(map(str, q), np.quantile(records.max_logit, q).round(3).tolist())),
        "masks_with_any_pixel_above_8.5": float((records.max_logit > HIGH_SCORE).mean()),
        "grid_masks_with_any_pixel_above_8.5": float((g.max_logit > HIGH_SCORE).mean()),
        "in_mask_pixels_above_8.5": float(records.logit_hist[LOGIT_EDGES[:-1] >= HIGH_SCORE].sum()
                                          / max(1, records.logit_hist.sum())),
        "stability_quantiles_grid": dict(zip(map(str, q), np.nanquantile(g.stability, q).round(4).tolist())),
        "grid_masks_empty": float(np.isnan(g.stability).mean()),
        "grid_masks_stability_ge_0.95": float((g.stability >= 0.95).mean()),
        "grid_masks_pred_iou_gt_0.88": float((g.pred_iou > 0.88).mean()),
        "grid_masks_passing_both": float(((g.stability >= 0.95) & (g.pred_iou > 0.88)).mean()),
        "grid_masks_actual_iou_ge_0.88": float((g.actual_iou >= 0.88).mean()),
    }
    return out


# ----------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m samfpga.models.calibrate",
                                 description="fit the output calibration of a bundle on a calibration split and "
                                 "store it in the bundle's bundle.json (field 'calibration')")
    ap.add_argument("--bundle", required=True, help="bundle directory (its own calibration, if any, is ignored)")
    ap.add_argument("--out", help="write the calibrated bundle here (a copy); default: the bundle in place")
    ap.add_argument("--splits", default="heldout,dr_heldout", help="generators of the calibration split")
    ap.add_argument("--seed", type=int, default=2, help="seed of the calibration split (never 0 or 1)")
    ap.add_argument("--images", type=int, default=30, help="images per split")
    ap.add_argument("--points-per-side", type=int, default=16)
    ap.add_argument("--bins", type=int, default=20)
    ap.add_argument("--fit-offset", action="store_true", help="also fit a logit offset (changes binary masks)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the fit report (calibration and calibration-split reliability) here")
    args = ap.parse_args(argv)
    if args.seed in (0, 1):
        print("samfpga calibrate: --seed 0 is the training seed and 1 the evaluation splits'; pick another",
              file=sys.stderr)
        return 2
    try:
        bundle = load_bundle(args.bundle)
    except (OSError, ValueError) as err:
        print(f"samfpga calibrate: {err}", file=sys.stderr)
        return 2
    splits = [s for s in args.splits.split(",") if s]
    pred = Predictor.from_bundle(replace(bundle, calibration=IDENTITY), threads=args.threads)
    records = collect(pred, splits, args.seed, args.images, args.points_per_side, bundle.image_size)
    fitted_on = {"splits": splits, "seed": args.seed, "images_per_split": args.images,
                 "points_per_side": args.points_per_side, "masks": int(len(records.pred_iou)),
                 "pixels": int(len(records.pixel_logit)), "bins": args.bins, "fit_offset": args.fit_offset,
                 "command": "python -m samfpga.models.calibrate " + " ".join(argv or sys.argv[1:])}
    cal = fit(records, args.bins, args.fit_offset, fitted_on)
    out = Path(args.out) if args.out else bundle.root
    if args.out:
        if out.exists():
            print(f"samfpga calibrate: {out} exists", file=sys.stderr)
            return 2
        shutil.copytree(bundle.root, out)
    write_calibration(out, cal)
    load_bundle(out)  # the written bundle must load
    report = {"calibration": cal.to_json(), "calibration_split": summarise(records)}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


def write_calibration(bundle_dir: str | Path, cal: Calibration) -> Path:
    """Store ``cal`` in ``bundle_dir``/bundle.json (field ``calibration``; the identity removes the field),
    atomically; returns the manifest path."""
    path = Path(bundle_dir) / "bundle.json"
    meta = json.loads(path.read_text())
    if cal.is_identity:
        meta.pop("calibration", None)
    else:
        meta["calibration"] = cal.to_json()
    tmp = path.with_name(".bundle.json.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    tmp.replace(path)
    return path


if __name__ == "__main__":
    sys.exit(main())
