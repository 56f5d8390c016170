"""Bundled assets: the default model and sample images.

``default/``  the default model: ``bundle.json`` + ``encoder.onnx`` + ``decoder.onnx`` (what the runtime loads)
              and ``checkpoint.pt`` (the trained samfpga checkpoint they were exported from).
``video_default/``  the default video model (trained by ``make train-video``): a video bundle (``video.json`` +
              heads/memory ONNX graphs + ``constants.npz``) whose image encoder is ``default/encoder.onnx``, referenced
              by hash (``samfpga.video.bundle``; ``python -m samfpga.video.pack`` makes a self-contained copy).
``samples/``  sample images; ``<stem>.json`` next to an image may give its prompt (see ``sample_prompt``).
``samples/video/``  a sample video: ``frames/*.jpg``, ``mask_00000.png`` (frame 0's mask of one object),
              ``masks/*.png`` (that object's ground-truth mask in every frame), ``sample.json`` (how it was made).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..resources import package_path

ASSETS_DIR = package_path(__name__)
DEFAULT_DIR = ASSETS_DIR / "default"
VIDEO_DEFAULT_DIR = ASSETS_DIR / "video_default"
SAMPLES_DIR = ASSETS_DIR / "samples"
SAMPLE_VIDEO_DIR = SAMPLES_DIR / "video"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def default_bundle_dir() -> Path | None:
    """The bundled default model's bundle directory, or None when it is not there."""
    return DEFAULT_DIR if (DEFAULT_DIR / "bundle.json").is_file() else None


def default_checkpoint() -> Path | None:
    """The bundled default model's torch checkpoint (needs torch to use), or None."""
    p = DEFAULT_DIR / "checkpoint.pt"
    return p if p.is_file() else None


def default_video_bundle_dir() -> Path | None:
    """The bundled default video model's bundle directory, or None when it is not there."""
    return VIDEO_DEFAULT_DIR if (VIDEO_DEFAULT_DIR / "video.json").is_file() else None


def sample_video() -> tuple[Path, Path] | None:
    """The bundled sample video: (folder of frames, frame 0's mask PNG of one object), or None."""
    frames, mask = SAMPLE_VIDEO_DIR / "frames", SAMPLE_VIDEO_DIR / "mask_00000.png"
    return (frames, mask) if frames.is_dir() and mask.is_file() else None


def sample_images() -> list[Path]:
    """Bundled sample images, sorted by name."""
    if not SAMPLES_DIR.is_dir():
        return []
    return sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def sample_prompt(image: Path) -> dict[str, Any] | None:
    """The prompt stored for a sample image, normalised to ``{"points": [[x, y], ...], "labels": [...],
    "box": [x0, y0, x1, y1] | None}``, or None when no prompt file exists.

    Accepted file contents (``<stem>.json`` or ``<stem>.prompt.json``): keys ``points`` (``[x, y]`` or
    ``[x, y, label]`` items), optionally ``labels`` / ``point_labels``, ``point_coords``, ``box``; or a list of
    such objects (the first is used).
    """
    for cand in (image.with_suffix(".json"), image.with_name(image.stem + ".prompt.json")):
        if cand.is_file():
            data = json.loads(cand.read_text())
            break
    else:
        return None
    if isinstance(data, list):
        data = data[0] if data else {}
    if "prompt" in data and isinstance(data["prompt"], dict):
        data = data["prompt"]
    raw = data.get("points", data.get("point_coords")) or []
    points = [[float(p[0]), float(p[1])] for p in raw]
    labels = data.get("labels", data.get("point_labels"))
    if labels is None:
        labels = [int(p[2]) if len(p) > 2 else 1 for p in raw]
    box = data.get("box")
    return {"points": points, "labels": [int(v) for v in labels], "box": None if box is None else [float(v) for v in box]}
