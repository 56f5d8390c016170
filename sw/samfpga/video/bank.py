"""Per-object memory of the video predictor: what SAM2 keeps per frame, and the bounds that keep an endless
stream's memory flat."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .resample import from_bf16, to_bf16


@dataclass
class BankConfig:
    """What the memory bank keeps.

    Args:
        num_maskmem: spatial memories attended per frame (1 conditioning slot + num_maskmem − 1 recent frames).
        max_obj_ptrs: object pointers attended (the current frame's prompted pointers + the max_obj_ptrs − 1 most
            recent frames); also the temporal normaliser P of streaming trackers.
        bounded: drop every unprompted frame's entry once it is further than the attention window from the frame
            being tracked (memory stays flat on endless streams). Off = the official behaviour (keep all frames).
        max_cond_frames: keep at most this many prompted frames per object (oldest dropped); None = all.
    """

    num_maskmem: int = 7
    max_obj_ptrs: int = 16
    bounded: bool = False
    max_cond_frames: int | None = None

    @property
    def window(self) -> int:
        return max(self.num_maskmem - 1, self.max_obj_ptrs - 1)


@dataclass
class FrameMemory:
    """One object on one frame. maskmem: bf16 bit patterns (1, M, s, s) uint16 or None until encoded;
    pred_masks (1,1,S/4,S/4) float32 low-res logits; obj_ptr (1, C); object_score (1, 1)."""

    pred_masks: np.ndarray
    obj_ptr: np.ndarray
    object_score: np.ndarray
    maskmem: np.ndarray | None = None

    def set_memory(self, mem: np.ndarray) -> None:
        self.maskmem = to_bf16(mem)  # stored in bf16 as the official predictor does

    def memory(self) -> np.ndarray:
        assert self.maskmem is not None
        return from_bf16(self.maskmem)[0]

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.pred_masks, self.obj_ptr, self.object_score, self.maskmem)
                   if a is not None)


@dataclass
class ObjectState:
    """Everything the predictor holds for one object (mirrors the official per-object dicts)."""

    point_inputs: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    mask_inputs: dict[int, np.ndarray] = field(default_factory=dict)
    cond: dict[int, FrameMemory] = field(default_factory=dict)
    non_cond: dict[int, FrameMemory] = field(default_factory=dict)
    temp_cond: dict[int, FrameMemory] = field(default_factory=dict)
    temp_non_cond: dict[int, FrameMemory] = field(default_factory=dict)
    tracked: dict[int, bool] = field(default_factory=dict)  # frame -> tracked in reverse

    def clear(self) -> None:
        for d in (self.point_inputs, self.mask_inputs, self.cond, self.non_cond, self.temp_cond,
                  self.temp_non_cond, self.tracked):
            d.clear()

    def prune(self, frame_idx: int, cfg: BankConfig, reverse: bool) -> None:
        """Bounded mode: forget unprompted frames outside the attention window of ``frame_idx``."""
        if not cfg.bounded:
            return
        def older(t: int, n: int) -> bool:  # not among the n frames the next step can reach
            return (t >= frame_idx + n) if reverse else (t <= frame_idx - n)

        for d in (self.non_cond, self.tracked):
            for t in [t for t in d if older(t, cfg.window) and t not in self.cond]:
                del d[t]
        for t, m in self.non_cond.items():  # only the num_maskmem - 1 newest keep their spatial memory
            if m.maskmem is not None and older(t, cfg.num_maskmem - 1):
                m.maskmem = None
        if cfg.max_cond_frames is not None:
            while len(self.cond) > cfg.max_cond_frames:
                oldest = min(self.cond)
                del self.cond[oldest]
                self.point_inputs.pop(oldest, None)
                self.mask_inputs.pop(oldest, None)

    def nbytes(self) -> int:
        total = 0
        for d in (self.cond, self.non_cond, self.temp_cond, self.temp_non_cond):
            total += sum(m.nbytes() for m in d.values())
        return total
