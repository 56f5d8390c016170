"""Where a video predictor's frames come from: random access for folders and files, one-way for streams."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from .frames import FrameError, check_frame, iter_video_file, list_frame_files, read_frame, resize_frame


class FrameSource:
    """Frames by index, already resized to the model input (S, S, 3) uint8. ``num_frames`` is None for a stream
    whose end has not been seen. ``height``/``width`` are the original frame size (all frames must share it)."""

    num_frames: int | None
    height: int
    width: int
    random_access: bool = True

    def get(self, idx: int) -> np.ndarray:
        raise NotImplementedError

    def has(self, idx: int) -> bool:
        """Whether frame ``idx`` exists (a stream may read ahead to find out)."""
        return idx >= 0 and (self.num_frames is None or idx < self.num_frames)


class FolderSource(FrameSource):
    """A folder of image files sorted by name; each frame is read when needed (nothing cached)."""

    def __init__(self, folder: str | Path, size: int) -> None:
        self.files = list_frame_files(folder)
        self.size = size
        self.num_frames = len(self.files)
        first = read_frame(self.files[0])
        self.height, self.width = first.shape[:2]

    def get(self, idx: int) -> np.ndarray:
        if not 0 <= idx < self.num_frames:  # type: ignore[operator]
            raise FrameError(f"frame {idx} does not exist (the video has {self.num_frames} frames)")
        f = check_frame(read_frame(self.files[idx]), idx, (self.height, self.width))
        return resize_frame(f, self.size)


class ArraySource(FrameSource):
    """Frames decoded up front (a video file, or a list of arrays), kept at model resolution only."""

    def __init__(self, frames: Iterable[np.ndarray], size: int, name: str = "video") -> None:
        self.frames: list[np.ndarray] = []
        for i, f in enumerate(frames):
            f = np.asarray(f)
            if i == 0:
                check_frame(f, 0)
                self.height, self.width = f.shape[:2]
            check_frame(f, i, (self.height, self.width))
            self.frames.append(resize_frame(f, size))
        if not self.frames:
            raise FrameError(f"{name}: no frames")
        self.num_frames = len(self.frames)

    def get(self, idx: int) -> np.ndarray:
        if not 0 <= idx < self.num_frames:  # type: ignore[operator]
            raise FrameError(f"frame {idx} does not exist (the video has {self.num_frames} frames)")
        return self.frames[idx]


class StreamSource(FrameSource):
    """A camera-like iterator: frames are taken one at a time, in order, and only the newest is held."""

    random_access = False

    def __init__(self, frames: Iterable[np.ndarray], size: int) -> None:
        self._it: Iterator[np.ndarray] = iter(frames)
        self.size = size
        self.num_frames = None
        self._idx = -1
        self._frame: np.ndarray | None = None
        self._peeked: np.ndarray | None = None
        if not self._advance():
            raise FrameError("stream: no frames")
        assert self._frame is not None

    def _next_raw(self) -> np.ndarray | None:
        if self._peeked is not None:
            f, self._peeked = self._peeked, None
            return f
        try:
            return np.asarray(next(self._it))
        except StopIteration:
            return None

    def _advance(self) -> bool:
        f = self._next_raw()
        if f is None:
            self.num_frames = self._idx + 1
            return False
        self._idx += 1
        if self._idx == 0:
            check_frame(f, 0)
            self.height, self.width = f.shape[:2]
        check_frame(f, self._idx, (self.height, self.width))
        self._frame = resize_frame(f, self.size)
        return True

    def has(self, idx: int) -> bool:
        if idx <= self._idx:
            return idx >= 0
        if idx == self._idx + 1 and self.num_frames is None:
            if self._peeked is None:
                self._peeked = self._next_raw()
                if self._peeked is None:
                    self.num_frames = self._idx + 1
            return self._peeked is not None
        return False

    def get(self, idx: int) -> np.ndarray:
        if idx == self._idx:
            assert self._frame is not None
            return self._frame
        if idx == self._idx + 1 and self._advance():
            assert self._frame is not None
            return self._frame
        raise FrameError(f"frame {idx}: a stream only gives its current frame ({self._idx}) and the next one")


def open_source(video: str | Path | Iterable[np.ndarray], size: int, stream: bool = False) -> FrameSource:
    """A folder -> FolderSource; a video file -> ArraySource (decoded once); an iterable -> StreamSource if
    ``stream`` (or it is an iterator), else ArraySource."""
    if isinstance(video, (str, Path)):
        p = Path(video)
        if p.is_dir():
            return FolderSource(p, size)
        if not p.exists():
            raise FrameError(f"{p}: no such file or folder")
        if stream:
            return StreamSource(iter_video_file(p), size)
        return ArraySource(iter_video_file(p), size, name=str(p))
    if stream or isinstance(video, Iterator):
        return StreamSource(video, size)
    return ArraySource(video, size)
