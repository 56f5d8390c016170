"""J&F of video tracking on held-out synthetic videos, beside the memory-less baseline (the image model prompted on
every frame with the previous frame's mask as a box). Both run on the host runtime (exported bundles).

    samfpga eval --video [--video-bundle DIR] [--image-bundle DIR] [--videos 10] [--frames 16] [--out FILE.json]
    samfpga eval --video --baseline-only ...          (= python -m samfpga.models.video.evaluate ...)

Defaults: the bundled default video model and image model. Each object visible on frame 0 (≥ --min-area pixels) is
prompted there with its ground-truth mask. ``--out X.json`` also writes ``X.md`` (a table).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
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


def held_out_videos(videos: int, frames: int, seed: int, size: int, min_area: int
                    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """The evaluation split: (video index, frames (T, H, W, 3) uint8, ground truth (T, N, H, W) bool) of the
    objects with at least ``min_area`` pixels on frame 0 (the prompted ones); videos without one are skipped."""
    for i in range(videos):
        v = generate_video(seed, i, ClipConfig(frames=frames, image=SyntheticConfig(image_size=size)))
        objs = [o for o in range(v.masks.shape[1]) if v.masks[0, o].sum() >= min_area]
        if objs:
            yield i, v.frames, v.masks[:, objs]


def evaluate(video_bundle: Path | None, image_bundle: Path | None, videos: int, frames: int, seed: int,
             size: int, min_area: int, threads: int = 1, baseline_from: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    """J, F and J&F (DAVIS; ``samfpga.video.metrics``) per video and their means, of the video bundle (None: skip)
    and of the memory-less baseline on the image bundle (None: skip), or the baseline's per-video figures taken
    from ``baseline_from`` (an earlier report of this evaluator on the same split)."""
    from samfpga.predictor import Predictor
    from samfpga.video.predictor import VideoPredictor

    vpred = VideoPredictor.from_bundle(video_bundle, threads=threads) if video_bundle else None
    ipred = Predictor.from_bundle(image_bundle, threads=threads) if image_bundle else None
    earlier = {r["video"]: r for r in (baseline_from or {}).get("per_video", [])}
    per_video = []
    seconds = {"tracker": 0.0, "baseline": 0.0}
    t0 = time.time()
    for i, video_frames, gts in held_out_videos(videos, frames, seed, size, min_area):
        first = list(gts[0])
        rec: dict[str, Any] = {"video": i, "objects": gts.shape[1]}
        if vpred is not None:
            t1 = time.time()
            rec["tracker"] = sequence_j_and_f(track_video(vpred, video_frames, first), gts)
            seconds["tracker"] += time.time() - t1
        if baseline_from is not None:
            if i not in earlier or earlier[i]["objects"] != gts.shape[1] or "baseline" not in earlier[i]:
                raise ValueError(f"the earlier baseline report has no matching baseline for video {i}")
            rec["baseline"] = earlier[i]["baseline"]
        elif ipred is not None:
            t1 = time.time()
            rec["baseline"] = sequence_j_and_f(baseline_video(ipred, video_frames, first), gts)
            seconds["baseline"] += time.time() - t1
        per_video.append(rec)
    summary: dict[str, Any] = {"videos": len(per_video), "frames": frames, "seed": seed, "image_size": size,
                               "min_area": min_area,
                               "video_bundle": str(video_bundle) if video_bundle else None,
                               "image_bundle": str(image_bundle) if image_bundle else None,
                               "time_s": round(time.time() - t0, 1),
                               "seconds": {k: round(v, 1) for k, v in seconds.items() if v}}
    if baseline_from is not None:
        summary["baseline_from"] = {"image_bundle": baseline_from.get("image_bundle"),
                                    "time_s": baseline_from.get("time_s")}
    for key in ("tracker", "baseline"):
        if per_video and key in per_video[0]:
            summary[key] = {m: float(np.mean([r[key][m] for r in per_video])) for m in ("J", "F", "J&F")}
    summary["per_video"] = per_video
    return summary


def markdown(res: dict[str, Any], command: str) -> str:
    """The summary as a Markdown table (what bench/results/video_jf.md holds)."""
    rows = [("tracker (video bundle, memory)", "tracker"), ("memory-less baseline (image bundle, box of t−1)",
                                                             "baseline")]
    lines = [f"# Video J&F on held-out synthetic videos (seed {res['seed']}, {res['videos']} videos × "
             f"{res['frames']} frames, {res['image_size']}², first-frame mask prompt)", "",
             f"Command: `{command}`", "",
             "| model | J | F | J&F | seconds |", "|---|---|---|---|---|"]
    for name, key in rows:
        if key in res:
            r = res[key]
            lines.append(f"| {name} | {r['J']:.3f} | {r['F']:.3f} | **{r['J&F']:.3f}** | "
                         f"{res.get('seconds', {}).get(key, '')} |")
    if "tracker" in res and "baseline" in res:
        lines += ["", f"Tracker − baseline: {100 * (res['tracker']['J&F'] - res['baseline']['J&F']):+.1f} points "
                      f"J&F."]
    if "baseline_from" in res:
        lines += ["", f"The baseline's figures come from an earlier run of this evaluator on the same split "
                      f"(image bundle {res['baseline_from']['image_bundle']}, {res['baseline_from']['time_s']} s)."]
    lines += ["", f"Video bundle: {res['video_bundle']}; image bundle: {res['image_bundle']}. J&F as DAVIS 2017 "
                  "(first and last frames skipped, mean over objects then videos); per-video figures in the JSON.",
              ""]
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    from samfpga.assets import default_bundle_dir, default_video_bundle_dir

    p = argparse.ArgumentParser(prog="samfpga eval --video", description=__doc__.splitlines()[0])
    p.add_argument("--video-bundle", type=Path, help="video bundle (default: the bundled default video model)")
    p.add_argument("--image-bundle", type=Path, help="image bundle of the baseline (default: the bundled default)")
    p.add_argument("--baseline-only", action="store_true")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--baseline-json", type=Path, help="take the baseline from an earlier report of this command on "
                   "the same split (videos, frames, seed, size, min-area) instead of recomputing it")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    p.add_argument("--videos", type=int, default=10)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--seed", type=int, default=1, help="synthetic split (training uses seed 0)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--min-area", type=int, default=64)
    p.add_argument("--out", type=Path, help="write the report here (JSON) and its table next to it (.md)")
    a = p.parse_args(argv)
    video = None if a.baseline_only else (a.video_bundle or default_video_bundle_dir())
    image = None if a.no_baseline else (a.image_bundle or default_bundle_dir())
    if video is None and not a.baseline_only:
        p.error("no bundled default video model (samfpga/assets/video_default); give --video-bundle DIR")
    if image is None and not a.no_baseline:
        p.error("no bundled default image model; give --image-bundle DIR or --no-baseline")
    if video is None and image is None:
        p.error("nothing to evaluate (--baseline-only with --no-baseline)")
    earlier = None
    if a.baseline_json is not None:
        try:
            earlier = json.loads(a.baseline_json.read_text())
        except (OSError, ValueError) as e:
            p.error(f"--baseline-json {a.baseline_json}: unreadable ({e})")
        split = {"frames": a.frames, "seed": a.seed, "image_size": a.size, "min_area": a.min_area}
        got = {k: earlier.get(k, 64 if k == "min_area" else None) for k in split}  # min_area: 64 before recorded
        if got != split or earlier.get("videos", 0) < a.videos or "baseline" not in earlier:
            p.error(f"--baseline-json {a.baseline_json}: measured on {got} ({earlier.get('videos')} videos), not "
                    f"{split} ({a.videos} videos), or holds no baseline")
        image = None
    try:
        res = evaluate(video, image, a.videos, a.frames, a.seed, a.size, a.min_area, a.threads, earlier)
    except ValueError as e:
        p.error(str(e))
    if a.out:
        command = "samfpga eval --video " + " ".join(argv if argv is not None else sys.argv[1:])
        _write(a.out, json.dumps(res, indent=1) + "\n")
        _write(a.out.with_suffix(".md"), markdown(res, command.strip()))
    print(json.dumps({k: v for k, v in res.items() if k != "per_video"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
