"""``samfpga track``: track prompted objects through a video and write masks, COCO-RLE, an overlay and a summary.

    samfpga track VIDEO (--point F,X,Y[,OBJ[,LABEL]] | --box F,X0,Y0,X1,Y1[,OBJ] | --mask F,PNG[,OBJ])... --out DIR

VIDEO is a folder of frames (sorted by name) or a video file. Writes ``DIR/masks/<obj>/<frame:05d>.png`` (0/255),
``DIR/rle/<frame:05d>.json`` (COCO RLE per object), ``DIR/overlay.gif`` (animated; no video encoder needed) and
``DIR/summary.json`` (prompts, per-frame timings, memory). Bad input is one line on stderr, exit status 2, and
nothing is written (outputs are staged in a temporary directory and moved into place at the end).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..assets import default_video_bundle_dir
from ..viz import palette
from .bank import BankConfig
from .bundle import load_video_bundle
from .frames import FrameError
from .predictor import PromptError, VideoPredictor


class TrackError(ValueError):
    """Bad input for ``track``; the CLI prints it as one line and exits with status 2."""


@dataclass
class Prompt:
    kind: str  # point | box | mask
    frame: int
    obj: int
    values: tuple[float, ...] = ()
    label: int = 1
    path: Path | None = None


def _nums(text: str, counts: tuple[int, ...], what: str) -> list[float]:
    parts = text.split(",")
    if len(parts) not in counts:
        raise argparse.ArgumentTypeError(f"malformed {what} {text!r}: expected {' or '.join(map(str, counts))} "
                                         "comma-separated numbers")
    try:
        v = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"malformed {what} {text!r}: not numbers") from None
    if not all(math.isfinite(x) for x in v):
        raise argparse.ArgumentTypeError(f"malformed {what} {text!r}: not finite")
    return v


def _int(v: float, text: str, what: str) -> int:
    if v != int(v) or v < 0:
        raise argparse.ArgumentTypeError(f"malformed {what} {text!r}: frame and object ids are integers >= 0")
    return int(v)


def parse_point(text: str) -> Prompt:
    """'F,X,Y[,OBJ[,LABEL]]': frame index, pixel coordinates, object id (default 1), label 1 (default) or 0."""
    v = _nums(text, (3, 4, 5), "point")
    label = int(v[4]) if len(v) == 5 else 1
    if len(v) == 5 and v[4] not in (0, 1):
        raise argparse.ArgumentTypeError(f"malformed point {text!r}: LABEL must be 1 (foreground) or 0 (background)")
    obj = _int(v[3], text, "point") if len(v) >= 4 else 1
    return Prompt("point", _int(v[0], text, "point"), obj, (v[1], v[2]), label)


def parse_box(text: str) -> Prompt:
    """'F,X0,Y0,X1,Y1[,OBJ]'."""
    v = _nums(text, (5, 6), "box")
    if not (v[1] < v[3] and v[2] < v[4]):
        raise argparse.ArgumentTypeError(f"malformed box {text!r}: need X0 < X1 and Y0 < Y1")
    return Prompt("box", _int(v[0], text, "box"), _int(v[5], text, "box") if len(v) == 6 else 1, tuple(v[1:5]))


def parse_mask(text: str) -> Prompt:
    """'F,PNG[,OBJ]': a mask image (nonzero = object) of the frame's size."""
    parts = text.split(",")
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"malformed mask {text!r}: expected F,PNG or F,PNG,OBJ")
    try:
        frame = int(parts[0])
        obj = int(parts[2]) if len(parts) == 3 else 1
    except ValueError:
        raise argparse.ArgumentTypeError(f"malformed mask {text!r}: frame and object ids are integers") from None
    if frame < 0 or obj < 0:
        raise argparse.ArgumentTypeError(f"malformed mask {text!r}: frame and object ids are >= 0")
    return Prompt("mask", frame, obj, path=Path(parts[1]))


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``track`` on the CLI's subparsers."""
    p = sub.add_parser("track", help="track prompted objects through a video (masks, COCO-RLE, overlay)")
    p.add_argument("video", type=Path, help="folder of frames (sorted by name) or a video file (GIF; others need "
                                            "OpenCV or imageio)")
    p.add_argument("--point", type=parse_point, action="append", default=[], metavar="F,X,Y[,OBJ[,LABEL]]",
                   help="point on frame F in pixels for object OBJ (default 1); LABEL 1 foreground (default), 0 "
                        "background; repeatable")
    p.add_argument("--box", type=parse_box, action="append", default=[], metavar="F,X0,Y0,X1,Y1[,OBJ]")
    p.add_argument("--mask", type=parse_mask, action="append", default=[], metavar="F,PNG[,OBJ]")
    p.add_argument("--model", type=Path, help="video bundle directory (default: the bundled default video model)")
    p.add_argument("--encoder", default="onnx", help="encoder backend for the single-scale family (default onnx)")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: its default)")
    p.add_argument("--bounded", action="store_true",
                   help="bounded memory bank: forget unprompted frames outside the attention window")
    p.add_argument("--max-frames", type=int, default=None, help="track at most this many frames after the first")
    p.add_argument("--overlay-size", type=int, default=320, help="long side of the overlay GIF (0: no overlay)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    return p


def _check_prompts(prompts: list[Prompt], n: int, h: int, w: int) -> dict[int, np.ndarray]:
    """Validate every prompt against the video before anything runs; returns the masks of --mask prompts."""
    if not prompts:
        raise TrackError("no prompt: give at least one --point F,X,Y, --box F,X0,Y0,X1,Y1 or --mask F,PNG")
    masks: dict[int, np.ndarray] = {}
    kinds: dict[tuple[int, int], list[str]] = defaultdict(list)
    for p in prompts:
        kinds[(p.frame, p.obj)].append(p.kind)
    for (frame, obj), ks in kinds.items():
        if ks.count("box") + ks.count("mask") > 1 or ("mask" in ks and "point" in ks):
            raise TrackError(f"object {obj} on frame {frame}: give one box (plus points) or one mask, not "
                             f"{', '.join(sorted(ks))}")
    for i, p in enumerate(prompts):
        if p.frame >= n:
            raise TrackError(f"--{p.kind} on frame {p.frame}: the video has {n} frames (0..{n - 1})")
        if p.kind == "point":
            x, y = p.values
            if not (0 <= x < w and 0 <= y < h):
                raise TrackError(f"point ({x:g}, {y:g}) on frame {p.frame} is outside the {w}x{h} frame")
        elif p.kind == "box":
            x0, y0, x1, y1 = p.values
            if not (0 <= x0 and 0 <= y0 and x1 <= w and y1 <= h):
                raise TrackError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) on frame {p.frame} is outside the {w}x{h} frame")
        else:
            assert p.path is not None
            try:
                with Image.open(p.path) as im:
                    m = np.asarray(im.convert("L")) > 0
            except Exception as e:
                raise TrackError(f"--mask {p.path}: unreadable image ({e})") from None
            if m.shape != (h, w):
                raise TrackError(f"--mask {p.path}: size {m.shape[1]}x{m.shape[0]} differs from the video's {w}x{h}")
            if not m.any():
                raise TrackError(f"--mask {p.path}: the mask is empty")
            masks[i] = m
    return masks


def _apply_prompts(pred: VideoPredictor, state: Any, prompts: list[Prompt], masks: dict[int, np.ndarray]) -> None:
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        groups[(p.frame, p.obj)].append(i)
    for (frame, obj), idx in sorted(groups.items()):
        ps = [prompts[i] for i in idx]
        mask_i = [i for i in idx if prompts[i].kind == "mask"]
        if mask_i:
            pred.add_new_mask(state, frame, obj, masks[mask_i[0]])
            continue
        box = next((np.array(p.values, np.float32) for p in ps if p.kind == "box"), None)
        pts = [p for p in ps if p.kind == "point"]
        points = np.array([p.values for p in pts], np.float32).reshape(-1, 2) if pts else None
        labels = np.array([p.label for p in pts], np.int32) if pts else None
        pred.add_new_points_or_box(state, frame, obj, points=points, labels=labels, box=box)


def _rle(mask: np.ndarray) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in r["size"]], "counts": r["counts"].decode("ascii")}


class _Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="frame", desc="track", file=sys.stderr)
            except ImportError:
                self.bar = None

    def update(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_track(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Run ``track`` writing into ``out`` (a staging directory); returns the summary. Raises TrackError."""
    prompts: list[Prompt] = [*args.point, *args.box, *args.mask]
    model = args.model if args.model is not None else default_video_bundle_dir()
    if model is None:
        raise TrackError("no bundled default video model (samfpga/assets/video_default/video.json is missing); "
                         "pass --model DIR (a video bundle: python -m samfpga.models.export.video)")
    bundle = load_video_bundle(model)
    pred = VideoPredictor.from_bundle(bundle, encoder=args.encoder, threads=args.threads,
                                      bank=BankConfig(num_maskmem=bundle.num_maskmem,
                                                      max_obj_ptrs=bundle.max_obj_ptrs, bounded=args.bounded))
    t0 = time.perf_counter()
    try:
        state = pred.init_state(args.video)
    except FrameError as e:
        raise TrackError(str(e)) from None
    n, h, w = state.num_frames, state.video_height, state.video_width
    assert n is not None
    masks = _check_prompts(prompts, n, h, w)
    try:
        _apply_prompts(pred, state, prompts, masks)
    except (PromptError, FrameError) as e:
        raise TrackError(str(e)) from None
    obj_ids = [int(o) for o in state.obj_ids]
    first = min(p.frame for p in prompts)
    colours = palette(max(obj_ids) + 1)
    overlay_frames: dict[int, Image.Image] = {}
    per_frame: dict[int, dict[str, Any]] = {}
    progress = _Progress(n if args.max_frames is None else min(n, args.max_frames + 1), not args.no_progress)
    for o in obj_ids:
        (out / "masks" / str(o)).mkdir(parents=True, exist_ok=True)
    (out / "rle").mkdir()

    def passes():
        yield from pred.propagate_in_video(state, start_frame_idx=first, max_frame_num_to_track=args.max_frames)
        if first > 0:
            yield from pred.propagate_in_video(state, start_frame_idx=first, reverse=True,
                                               max_frame_num_to_track=args.max_frames)

    try:
        t_prev = time.perf_counter()
        before = dict(pred.engine.timings)
        for frame_idx, ids, logits in passes():
            now = time.perf_counter()
            stage = {k: v - before.get(k, 0.0) for k, v in pred.engine.timings.items()}
            before = dict(pred.engine.timings)
            binary = logits[:, 0] > 0
            record = []
            for o, m in zip(ids, binary):
                Image.fromarray((m * 255).astype(np.uint8)).save(out / "masks" / str(o) / f"{frame_idx:05d}.png")
                record.append({"obj_id": int(o), "area": int(m.sum()), "segmentation": _rle(m)})
            (out / "rle" / f"{frame_idx:05d}.json").write_text(json.dumps({"frame": frame_idx, "objects": record}))
            if frame_idx not in per_frame:  # the reverse pass revisits the first prompted frame
                progress.update()
            per_frame[frame_idx] = {"frame": frame_idx, "time_s": now - t_prev, "stages_s": stage,
                                    "areas": [r["area"] for r in record]}
            if args.overlay_size > 0:
                overlay_frames[frame_idx] = _overlay_frame(state.source, frame_idx, binary, ids, colours,
                                                           args.overlay_size)
            t_prev = time.perf_counter()
    except (PromptError, FrameError) as e:
        raise TrackError(str(e)) from None
    finally:
        progress.close()
    if overlay_frames:
        ims = [overlay_frames[k] for k in sorted(overlay_frames)]
        ims[0].save(out / "overlay.gif", save_all=True, append_images=ims[1:], duration=80, loop=0)
    times = [r["time_s"] for r in per_frame.values()]
    return {
        "video": str(args.video), "frames": n, "frame_size": [h, w], "model": str(bundle.root),
        "family": bundle.family, "image_size": bundle.image_size, "objects": obj_ids,
        "prompts": [{"kind": p.kind, "frame": p.frame, "obj_id": p.obj, "values": list(p.values),
                     "label": p.label, "path": str(p.path) if p.path else None} for p in prompts],
        "tracked_frames": len(per_frame), "total_s": time.perf_counter() - t0,
        "mean_frame_s": float(np.mean(times)) if times else 0.0,
        "stage_totals_s": dict(pred.engine.timings), "memory_bank_bytes": state.memory_bytes(),
        "per_frame": [per_frame[k] for k in sorted(per_frame)],
    }


def _overlay_frame(source: Any, idx: int, masks: np.ndarray, ids: list[Any], colours: np.ndarray,
                   size: int) -> Image.Image:
    """A small palette image of frame ``idx`` with the masks tinted (kept small: the GIF is held in memory)."""
    img = source.get(idx)
    img = np.asarray(Image.fromarray(img).resize((source.width, source.height), Image.BILINEAR)).astype(np.float32)
    for o, m in zip(ids, masks):
        c = colours[int(o) % len(colours)].astype(np.float32)
        img[m] = 0.45 * img[m] + 0.55 * c
    im = Image.fromarray(img.clip(0, 255).astype(np.uint8))
    scale = size / max(im.size)
    if scale < 1:
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BILINEAR)
    return im.convert("P", palette=Image.ADAPTIVE, colors=64)
