"""J&F of video tracking on held-out synthetic videos, beside the memory-less baseline (the image model prompted on
every frame with the previous frame's mask as a box). Both run on the host runtime (exported bundles).

    python -m samfpga.models.video.evaluate --video-bundle DIR [--image-bundle DIR] [--videos 20] [--frames 16]
    python -m samfpga.models.video.evaluate --baseline-only [--image-bundle DIR] ...

Each object visible on frame 0 (≥ --min-area pixels) is prompted there with its ground-truth mask.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from samfpga.video.metrics import sequence_j_and_f

from ..data.synthetic import SyntheticConfig
from ..data.video import VideoConfig as ClipConfig
from ..data.video import generate_video


def _box(mask: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


def track_video(pred: Any, frames: np.ndarray, first_masks: list[np.ndarray]) -> np.ndarray:
    """(T, N, H, W) bool from the video predictor with mask prompts on frame 0."""
    state = pred.init_state(list(frames))
    for o, m in enumerate(first_masks):
        pred.add_new_mask(state, 0, o, m)
    out = np.zeros((len(frames), len(first_masks), *frames.shape[1:3]), bool)
    for f, _, logits in pred.propagate_in_video(state):
        out[f] = logits[:, 0] > 0
    return out


def baseline_video(image_pred: Any, frames: np.ndarray, first_masks: list[np.ndarray]) -> np.ndarray:
    """The memory-less baseline: frame 0 is the prompt mask; frame t is the image model's single mask for the box
    of frame t−1's mask (empty stays empty)."""
    out = np.zeros((len(frames), len(first_masks), *frames.shape[1:3]), bool)
    out[0] = np.stack(first_masks)
    for t in range(1, len(frames)):
        image_pred.set_image(frames[t])
        for o in range(len(first_masks)):
            box = _box(out[t - 1, o])
            if box is not None:
                masks, _, _ = image_pred.predict(box=box, multimask_output=False)
                out[t, o] = masks[0]
    return out


def evaluate(video_bundle: Path | None, image_bundle: Path | None, videos: int, frames: int, seed: int,
             size: int, min_area: int) -> dict[str, Any]:
    from samfpga.assets import default_bundle_dir
    from samfpga.predictor import Predictor
    from samfpga.video.predictor import VideoPredictor

    image_bundle = image_bundle or default_bundle_dir()
    vpred = VideoPredictor.from_bundle(video_bundle) if video_bundle else None
    ipred = Predictor.from_bundle(image_bundle) if image_bundle else None
    per_video = []
    t0 = time.time()
    for i in range(videos):
        v = generate_video(seed, i, ClipConfig(frames=frames, image=SyntheticConfig(image_size=size)))
        objs = [o for o in range(v.masks.shape[1]) if v.masks[0, o].sum() >= min_area]
        if not objs:
            continue
        gts = v.masks[:, objs]
        first = [gts[0, k] for k in range(len(objs))]
        rec: dict[str, Any] = {"video": i, "objects": len(objs)}
        if vpred is not None:
            rec["tracker"] = sequence_j_and_f(track_video(vpred, v.frames, first), gts)
        if ipred is not None:
            rec["baseline"] = sequence_j_and_f(baseline_video(ipred, v.frames, first), gts)
        per_video.append(rec)
    summary: dict[str, Any] = {"videos": len(per_video), "frames": frames, "seed": seed, "image_size": size,
                               "video_bundle": str(video_bundle) if video_bundle else None,
                               "image_bundle": str(image_bundle) if image_bundle else None,
                               "time_s": round(time.time() - t0, 1)}
    for key in ("tracker", "baseline"):
        if per_video and key in per_video[0]:
            summary[key] = {m: float(np.mean([r[key][m] for r in per_video])) for m in ("J", "F", "J&F")}
    summary["per_video"] = per_video
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="samfpga.models.video.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--video-bundle", type=Path)
    p.add_argument("--image-bundle", type=Path)
    p.add_argument("--baseline-only", action="store_true")
    p.add_argument("--videos", type=int, default=20)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--seed", type=int, default=1, help="synthetic split (training uses seed 0)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--min-area", type=int, default=64)
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    if a.video_bundle is None and not a.baseline_only:
        p.error("give --video-bundle DIR or --baseline-only")
    res = evaluate(None if a.baseline_only else a.video_bundle, a.image_bundle, a.videos, a.frames, a.seed, a.size,
                   a.min_area)
    text = json.dumps(res, indent=1)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "per_video"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
