"""Endless-stream benchmark: track one object through an N-frame synthetic camera stream (frames generated on the
fly, fed as an iterator) with the bounded memory bank; record resident memory (RSS) and per-frame time.

    PYTHONPATH=sw:models:hw .venv-board/bin/python bench/video_stream.py --bundle DIR --frames 10000 --size 256 \
        --out bench/results/video_stream

Writes OUT.json (every 100th frame's RSS, time, bank size, mask area and IoU with the true disc; summary) and OUT.md
(``--render`` rewrites OUT.md from OUT.json).
The pass criterion of issue 13: RSS grows < 50 MB after the first 100 frames and the per-frame time stays flat (last
10% vs frames 100-200 within 25%). ``--max-seconds`` ends the stream early (a camera switched off): the figures then
cover the frames that ran, nothing is extrapolated. The 1-minute load average is sampled with each record, since the
wall time per frame depends on what else runs on the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from samfpga.video.bank import BankConfig
from samfpga.video.predictor import VideoPredictor


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def disc_mask(t: int, size: int) -> np.ndarray:
    """The object's true mask in frame t: (size, size) bool, a disc circling the centre."""
    yy, xx = np.mgrid[0:size, 0:size]
    cx = size / 2 + size / 4 * np.cos(t / 40)
    cy = size / 2 + size / 4 * np.sin(t / 40)
    return (xx - cx) ** 2 + (yy - cy) ** 2 < (size / 10) ** 2


def stream(n: int, size: int, seed: int = 0, max_seconds: float | None = None) -> Iterator[np.ndarray]:
    """A textured background with a disc circling (frames made on demand, never stored); stops after ``n`` frames
    or once ``max_seconds`` of wall time have passed since the first frame."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
    start = time.perf_counter()
    for t in range(n):
        if max_seconds is not None and t > 0 and time.perf_counter() - start > max_seconds:
            return
        f = bg.copy()
        f[disc_mask(t, size)] = (220, 60, 40)
        yield f


def load_1min() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def windows(samples: list[dict], size: int = 1000) -> list[dict]:
    """Per window of ``size`` frames (from frame 100 on): medians of the sampled frames' wall time, mean load,
    mean IoU, largest RSS; shows whether time, memory or tracking quality drift with the frame index."""
    out = []
    last = samples[-1]["frame"]
    for start in range(100, last + 1, size):
        w = [x for x in samples if start <= x["frame"] < start + size]
        if not w:
            continue
        out.append({"frames": f"{start}-{min(start + size, last + 1) - 1}", "samples": len(w),
                    "median_frame_s": round(float(np.median([x["frame_s"] for x in w])), 4),
                    "load_1min": round(float(np.mean([x["load_1min"] for x in w])), 1),
                    "iou": round(float(np.mean([x["iou"] for x in w])), 3),
                    "rss_mb_max": max(x["rss_mb"] for x in w)})
    return out


def render_md(res: dict) -> str:
    """OUT.md from the OUT.json record."""
    n, s = res["frames"], res["frame_size"]
    md = (f"# Endless stream, bounded memory bank\n\n{n} frames of {s}x{s}, model input {res['bundle_image_size']}, "
          f"bundle `{res['bundle']}`, {res['threads']} onnxruntime thread(s), {res['host']}.\n\n"
          f"| RSS at frame 100 | max RSS growth after 100 | bank bytes at the end | median s/frame 100-200 | "
          f"median s/frame last 10% | median CPU s/frame 100-200 | last 10% |\n|---|---|---|---|---|---|---|\n"
          f"| {res['rss_mb_at_100']:.1f} MB | {res['rss_growth_after_100_mb']:.2f} MB | {res['bank_bytes_final']} | "
          f"{res['median_frame_s_100_200']:.4f} | {res['median_frame_s_last_10pct']:.4f} | "
          f"{res['median_cpu_s_100_200']:.4f} | {res['median_cpu_s_last_10pct']:.4f} |\n\n")
    if "wall_s" in res:
        md += (f"Wall {res['wall_s']} s, {res['frames_per_s']} frames/s, mean 1-min load average "
               f"{res['load_1min_mean']}{' (stopped by --max-seconds)' if res['stopped_early'] else ''}. Tracking "
               f"quality over time (IoU with the true disc, every 100th frame): first 1000 frames "
               f"{res['iou_first_1000']}, last 1000 {res['iou_last_1000']}, minimum {res['iou_min']}.\n\n"
               "Per 1000 frames (every 100th frame sampled; wall time of that one frame):\n\n"
               "| frames | samples | median s/frame | mean 1-min load | mean IoU | max RSS MB |\n|---|---|---|---|---|---|\n")
        md += "".join(f"| {w['frames']} | {w['samples']} | {w['median_frame_s']} | {w['load_1min']} | {w['iou']} | "
                      f"{w['rss_mb_max']} |\n" for w in windows(res["samples"]))
        md += "\n"
    return md + f"Command: `{res['command']}`\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--frames", type=int, default=10_000)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-seconds", type=float, default=None, help="end the stream after this much wall time")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--render", action="store_true", help="only rewrite OUT.md from an existing OUT.json")
    a = p.parse_args(argv)
    if a.render:
        a.out.with_suffix(".md").write_text(render_md(json.loads(a.out.with_suffix(".json").read_text())))
        return 0
    pred = VideoPredictor.from_bundle(a.bundle, threads=a.threads)
    pred.bank = BankConfig(num_maskmem=pred.engine.bundle.num_maskmem, max_obj_ptrs=pred.engine.bundle.max_obj_ptrs,
                           bounded=True)
    state = pred.init_state(stream(a.frames, a.size, max_seconds=a.max_seconds))
    wall0 = time.perf_counter()
    s = a.size
    r = s // 10
    pred.add_new_points_or_box(state, 0, 1, box=np.array([s * 3 / 4 - r, s / 2 - r, s * 3 / 4 + r, s / 2 + r]))
    times, cpu, samples = [], [], []
    t_prev, c_prev = time.perf_counter(), time.process_time()
    for f, _, logits in pred.propagate_in_video(state):
        now = time.perf_counter()
        times.append(now - t_prev)
        cpu.append(time.process_time() - c_prev)
        if f % 100 == 0 or f == a.frames - 1:
            samples.append({"frame": f, "rss_mb": round(rss_mb(), 2), "frame_s": round(times[-1], 5),
                            "bank_bytes": state.memory_bytes(), "area": int((logits[0, 0] > 0).sum()),
                            "iou": round(iou(logits[0, 0] > 0, disc_mask(f, s)), 4), "load_1min": load_1min()})
        t_prev, c_prev = time.perf_counter(), time.process_time()
    wall = time.perf_counter() - wall0
    n = len(times)
    ious = [x["iou"] for x in samples]
    rss_100 = next(x["rss_mb"] for x in samples if x["frame"] >= 100)
    early = float(np.median(times[100:200])) if n > 200 else float("nan")
    late = float(np.median(times[-max(n // 10, 1):]))
    # CPU time of this process per frame: what the tracker costs, independent of other load on a shared machine
    cpu_early = float(np.median(cpu[100:200])) if n > 200 else float("nan")
    cpu_late = float(np.median(cpu[-max(n // 10, 1):]))
    res = {
        "command": "bench/video_stream.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "bundle": str(a.bundle), "bundle_image_size": pred.image_size, "frame_size": s, "frames": n,
        "threads": a.threads, "host": platform.platform(), "max_seconds": a.max_seconds,
        "stopped_early": n < a.frames, "wall_s": round(wall, 1), "frames_per_s": round(n / wall, 3),
        "load_1min_mean": round(float(np.mean([x["load_1min"] for x in samples])), 2),
        "iou_first_1000": round(float(np.mean([x["iou"] for x in samples if x["frame"] < 1000])), 4),
        "iou_last_1000": round(float(np.mean([x["iou"] for x in samples if x["frame"] >= n - 1000])), 4),
        "iou_min": round(float(np.min(ious)), 4),
        "rss_mb_at_100": rss_100, "rss_mb_final": samples[-1]["rss_mb"],
        "rss_growth_after_100_mb": round(max(x["rss_mb"] for x in samples) - rss_100, 2),
        "bank_bytes_final": samples[-1]["bank_bytes"],
        "median_frame_s_100_200": early, "median_frame_s_last_10pct": late,
        "flat_time": bool(late <= 1.25 * early) if n > 200 else None,
        "median_cpu_s_100_200": cpu_early, "median_cpu_s_last_10pct": cpu_late,
        "flat_cpu_time": bool(cpu_late <= 1.25 * cpu_early) if n > 200 else None,
        "samples": samples,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    a.out.with_suffix(".md").write_text(render_md(res))
    print(json.dumps({k: v for k, v in res.items() if k != "samples"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
