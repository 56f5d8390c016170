"""Video frames on the host: readers for a folder of images, a video file or an iterator, and the resize to the
model's square input. Frames are (H, W, 3) uint8 RGB numpy arrays."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif")


class FrameError(ValueError):
    """A frame that cannot be used (unreadable, wrong size, missing)."""


def resize_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8, bilinear, aspect not kept (as SAM2 feeds video frames)."""
    return np.asarray(Image.fromarray(frame).resize((size, size), Image.BILINEAR))


def _natural_key(p: Path) -> list[object]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def list_frame_files(folder: str | Path) -> list[Path]:
    """Image files of ``folder`` sorted by name (numbers compared as numbers)."""
    folder = Path(folder)
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS), key=_natural_key)
    if not files:
        raise FrameError(f"{folder}: no image frames ({', '.join(IMAGE_EXTS)})")
    return files


def read_frame(path: str | Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as e:  # PIL raises several types for broken files
        raise FrameError(f"{path}: unreadable frame ({e})") from None


def iter_video_file(path: str | Path) -> Iterator[np.ndarray]:
    """Frames of a video file: animated GIF/PNG/TIFF through Pillow, other containers through imageio or OpenCV
    when installed."""
    path = Path(path)
    if path.suffix.lower() in (".gif", ".png", ".tif", ".tiff", ".webp"):
        try:
            im = Image.open(path)
        except Exception as e:
            raise FrameError(f"{path}: unreadable video ({e})") from None
        with im:
            for i in range(getattr(im, "n_frames", 1)):
                im.seek(i)
                yield np.asarray(im.convert("RGB"))
        return
    try:
        import cv2  # type: ignore[import-not-found]
    except ImportError:
        cv2 = None
    if cv2 is not None:
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise FrameError(f"{path}: OpenCV cannot open this video")
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
                yield bgr[:, :, ::-1].copy()
        finally:
            cap.release()
    try:
        import imageio.v3 as iio  # type: ignore[import-not-found]
    except ImportError:
        raise FrameError(f"{path}: reading {path.suffix} needs OpenCV or imageio; give a folder of frames or a GIF") from None
    yield from iio.imiter(path)


def open_frames(source: str | Path | Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Frames from a folder of images, a video file or any iterable of arrays, one at a time (nothing cached)."""
    if isinstance(source, (str, Path)):
        p = Path(source)
        if p.is_dir():
            return (read_frame(f) for f in list_frame_files(p))
        if not p.exists():
            raise FrameError(f"{p}: no such file or folder")
        return iter_video_file(p)
    return (check_frame(np.asarray(f), i) for i, f in enumerate(source))


def check_frame(frame: np.ndarray, index: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """Validate one frame: (H, W, 3) uint8 and, when given, (H, W) == size."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise FrameError(f"frame {index}: expected (H, W, 3) RGB, got shape {tuple(frame.shape)}")
    if frame.dtype != np.uint8:
        raise FrameError(f"frame {index}: expected uint8, got {frame.dtype}")
    if size is not None and frame.shape[:2] != tuple(size):
        raise FrameError(f"frame {index}: size {frame.shape[1]}x{frame.shape[0]} differs from the first frame's "
                         f"{size[1]}x{size[0]}")
    return frame
