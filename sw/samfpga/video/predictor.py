"""``VideoPredictor``: SAM2's ``SAM2VideoPredictor`` API on the host (numpy + onnxruntime, no torch).

Same calls and return values (numpy instead of torch): ``init_state``, ``add_new_points_or_box``,
``add_new_mask``, ``propagate_in_video`` (forward, reverse, ``max_frame_num_to_track``),
``clear_all_prompts_in_frame``, ``remove_object``, ``reset_state``. Objects are tracked independently and share
each frame's image features. Differences, all opt-in: a frame iterator (camera stream) as the video, where the
object-pointer normaliser is fixed at ``max_obj_ptrs`` because the length is unknown; a bounded memory bank
(``BankConfig.bounded``) that forgets frames outside the attention window.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..backends import EncoderBackend
from .bank import BankConfig, FrameMemory, ObjectState
from .bundle import VideoBundle, load_video_bundle
from .engine import NO_OBJ_SCORE, FrameFeatures, VideoEngine
from .resample import resize_bilinear
from .source import FrameSource, open_source


class PromptError(ValueError):
    """A prompt that cannot be applied (frame out of range, wrong shape, unknown object)."""


@dataclass
class InferenceState:
    """What ``init_state`` returns and every call takes (opaque to users, as the official dict)."""

    source: FrameSource
    objects: OrderedDict[object, ObjectState] = field(default_factory=OrderedDict)
    cached: tuple[int, FrameFeatures] | None = None

    @property
    def num_frames(self) -> int | None:
        return self.source.num_frames

    @property
    def video_height(self) -> int:
        return self.source.height

    @property
    def video_width(self) -> int:
        return self.source.width

    @property
    def obj_ids(self) -> list[object]:
        return list(self.objects)

    def memory_bytes(self) -> int:
        """Bytes held by the memory banks of all objects."""
        return sum(o.nbytes() for o in self.objects.values())


class VideoPredictor:
    """Track objects through a video with a video bundle.

    Args:
        engine: the bundle's graphs (see ``from_bundle``).
        bank: what the memory bank keeps.
    """

    def __init__(self, engine: VideoEngine, bank: BankConfig | None = None) -> None:
        self.engine = engine
        b = engine.bundle
        self.bank = bank or BankConfig(num_maskmem=b.num_maskmem, max_obj_ptrs=b.max_obj_ptrs)
        self.image_size = b.image_size

    @classmethod
    def from_bundle(cls, bundle: str | Path | VideoBundle, encoder: EncoderBackend | str = "onnx",
                    threads: int = 0, bank: BankConfig | None = None) -> VideoPredictor:
        vb = bundle if isinstance(bundle, VideoBundle) else load_video_bundle(bundle)
        return cls(VideoEngine(vb, encoder=encoder, threads=threads), bank)

    # -- state ------------------------------------------------------------------------------------------------
    def init_state(self, video: str | Path | Iterable[np.ndarray], stream: bool = False) -> InferenceState:
        """A folder of frames, a video file, a list of (H, W, 3) uint8 frames, or an iterator of them (a stream:
        frames are pulled one by one and never revisited)."""
        state = InferenceState(open_source(video, self.image_size, stream=stream or isinstance(video, Iterator)))
        self._features(state, 0)
        return state

    def reset_state(self, state: InferenceState) -> None:
        for o in state.objects.values():
            o.clear()
        state.objects.clear()

    def _obj(self, state: InferenceState, obj_id: object) -> ObjectState:
        if obj_id not in state.objects:
            state.objects[obj_id] = ObjectState()
        return state.objects[obj_id]

    def _features(self, state: InferenceState, frame_idx: int) -> FrameFeatures:
        if state.cached is None or state.cached[0] != frame_idx:
            state.cached = (frame_idx, self.engine.encode_frame(state.source.get(frame_idx)))
        return state.cached[1]

    def _check_frame(self, state: InferenceState, frame_idx: int) -> None:
        if not isinstance(frame_idx, (int, np.integer)) or not state.source.has(int(frame_idx)):
            n = state.num_frames
            raise PromptError(f"frame {frame_idx} does not exist (the video has "
                              f"{n if n is not None else 'an unknown number of'} frames)")
        if not state.source.random_access and state.cached is not None and frame_idx < state.cached[0]:
            raise PromptError(f"frame {frame_idx}: a stream cannot go back (current frame {state.cached[0]})")

    # -- prompts ----------------------------------------------------------------------------------------------
    def add_new_points_or_box(self, state: InferenceState, frame_idx: int, obj_id: object,
                              points: np.ndarray | None = None, labels: np.ndarray | None = None,
                              clear_old_points: bool = True, normalize_coords: bool = True,
                              box: np.ndarray | None = None) -> tuple[int, list[object], np.ndarray]:
        """Points (N, 2) (x, y) in video pixels (or 0..1 with normalize_coords=False... as official: pixels are
        divided by the video size when normalize_coords) with labels (N,) 1/0, and/or a box (4,) XYXY.
        Returns (frame_idx, obj_ids, video-resolution logits (num_objects, 1, H, W) float32)."""
        self._check_frame(state, frame_idx)
        if (points is None) != (labels is None):
            raise PromptError("points and labels must be provided together")
        if points is None and box is None:
            raise PromptError("at least one of points or box must be provided as input")
        pts = np.zeros((0, 2), np.float32) if points is None else np.asarray(points, np.float32).reshape(-1, 2)
        lab = np.zeros((0,), np.float32) if labels is None else np.asarray(labels, np.float32).reshape(-1)
        if len(pts) != len(lab):
            raise PromptError(f"{len(pts)} points but {len(lab)} labels")
        if box is not None:
            if not clear_old_points:
                raise PromptError("cannot add box without clearing old points (a box must come before any point)")
            b = np.asarray(box, np.float32).reshape(-1)
            if b.shape != (4,):
                raise PromptError(f"box must be 4 numbers (x0, y0, x1, y1), got shape {np.asarray(box).shape}")
            pts = np.concatenate([b.reshape(2, 2), pts], axis=0)
            lab = np.concatenate([np.array([2, 3], np.float32), lab])
        if normalize_coords:
            pts = pts / np.array([state.video_width, state.video_height], np.float32)
        pts = (pts * self.image_size)[None]
        lab = lab[None]
        obj = self._obj(state, obj_id)
        if not clear_old_points and frame_idx in obj.point_inputs:
            old_p, old_l = obj.point_inputs[frame_idx]
            pts, lab = np.concatenate([old_p, pts], axis=1), np.concatenate([old_l, lab], axis=1)
        obj.point_inputs[frame_idx] = (pts, lab)
        obj.mask_inputs.pop(frame_idx, None)
        is_init = frame_idx not in obj.tracked
        reverse = False if is_init else obj.tracked[frame_idx]
        temp = obj.temp_cond if is_init else obj.temp_non_cond
        prev = temp.get(frame_idx) or obj.cond.get(frame_idx) or obj.non_cond.get(frame_idx)
        prev_logits = None if prev is None else np.clip(prev.pred_masks, -32.0, 32.0)
        temp[frame_idx] = self._step(state, obj, frame_idx, is_init, (pts, lab), None, reverse, False, prev_logits)
        return frame_idx, state.obj_ids, self._consolidate(state, frame_idx, is_init)

    def add_new_mask(self, state: InferenceState, frame_idx: int, obj_id: object,
                     mask: np.ndarray) -> tuple[int, list[object], np.ndarray]:
        """A (H, W) boolean mask (any size; resized to the model input) as the object's prompt on ``frame_idx``."""
        self._check_frame(state, frame_idx)
        m = np.asarray(mask)
        if m.ndim != 2:
            raise PromptError(f"mask must be 2-D (H, W), got shape {m.shape}")
        m = m.astype(np.float32)[None, None]
        if m.shape[-2:] != (self.image_size, self.image_size):
            m = (resize_bilinear(m, (self.image_size, self.image_size), antialias=True) >= 0.5).astype(np.float32)
        obj = self._obj(state, obj_id)
        obj.mask_inputs[frame_idx] = m
        obj.point_inputs.pop(frame_idx, None)
        is_init = frame_idx not in obj.tracked
        reverse = False if is_init else obj.tracked[frame_idx]
        temp = obj.temp_cond if is_init else obj.temp_non_cond
        temp[frame_idx] = self._step(state, obj, frame_idx, is_init, None, m, reverse, False, None)
        return frame_idx, state.obj_ids, self._consolidate(state, frame_idx, is_init)

    def clear_all_prompts_in_frame(self, state: InferenceState, frame_idx: int, obj_id: object,
                                   need_output: bool = True) -> tuple[int, list[object], np.ndarray] | None:
        obj = self._obj(state, obj_id)
        obj.point_inputs.pop(frame_idx, None)
        obj.mask_inputs.pop(frame_idx, None)
        obj.temp_cond.pop(frame_idx, None)
        obj.temp_non_cond.pop(frame_idx, None)
        out = obj.cond.pop(frame_idx, None)
        if out is not None:
            obj.non_cond[frame_idx] = out
            obj.tracked.pop(frame_idx, None)
        if not need_output:
            return None
        is_cond = any(frame_idx in o.temp_cond for o in state.objects.values())
        return frame_idx, state.obj_ids, self._consolidate(state, frame_idx, is_cond)

    def remove_object(self, state: InferenceState, obj_id: object, strict: bool = False,
                      need_output: bool = True) -> tuple[list[object], list[tuple[int, np.ndarray]]]:
        if obj_id not in state.objects:
            if strict:
                raise PromptError(f"cannot remove object id {obj_id!r}: it does not exist (ids: {state.obj_ids})")
            return state.obj_ids, []
        if len(state.objects) == 1:
            self.reset_state(state)
            return state.obj_ids, []
        obj = state.objects[obj_id]
        frames = set(obj.point_inputs) | set(obj.mask_inputs)
        for f in frames:
            self.clear_all_prompts_in_frame(state, f, obj_id, need_output=False)
        del state.objects[obj_id]
        updated = []
        if need_output:
            for f in frames:
                is_cond = any(f in o.temp_cond for o in state.objects.values())
                updated.append((f, self._consolidate(state, f, is_cond)))
        return state.obj_ids, updated

    # -- tracking ---------------------------------------------------------------------------------------------
    def _preflight(self, state: InferenceState) -> None:
        if not state.objects:
            raise PromptError("no points, boxes or masks have been added for any object; add a prompt first")
        for obj_id, obj in state.objects.items():
            for is_cond, temp in ((False, obj.temp_non_cond), (True, obj.temp_cond)):
                store = obj.cond if is_cond else obj.non_cond
                for f, out in temp.items():
                    if out.maskmem is None:
                        high = resize_bilinear(out.pred_masks, (self.image_size, self.image_size))
                        feats = self._features(state, f)
                        out.set_memory(self.engine.encode_memory(feats.feat, high, out.object_score, True))
                    store[f] = out
                temp.clear()
            if not obj.cond:
                raise PromptError(f"no points, boxes or masks have been added for object id {obj_id!r}")
            for f in obj.cond:
                obj.non_cond.pop(f, None)

    def propagate_in_video(self, state: InferenceState, start_frame_idx: int | None = None,
                           max_frame_num_to_track: int | None = None,
                           reverse: bool = False) -> Iterator[tuple[int, list[object], np.ndarray]]:
        """Yield (frame_idx, obj_ids, video-resolution logits (num_objects, 1, H, W)) frame by frame."""
        self._preflight(state)
        obj_ids = state.obj_ids
        n = state.num_frames
        if start_frame_idx is None:
            start_frame_idx = min(t for o in state.objects.values() for t in o.cond)
        if reverse:
            if not state.source.random_access:
                raise PromptError("a stream cannot be tracked in reverse")
            limit = n if max_frame_num_to_track is None else max_frame_num_to_track
            end = max(start_frame_idx - limit, 0)
            order: Iterable[int] = range(start_frame_idx, end - 1, -1) if start_frame_idx > 0 else []
        elif n is not None:
            limit = n if max_frame_num_to_track is None else max_frame_num_to_track
            order = range(start_frame_idx, min(start_frame_idx + limit, n - 1) + 1)
        else:
            order = self._stream_order(state, start_frame_idx, max_frame_num_to_track)
        for frame_idx in order:
            masks = []
            for obj in state.objects.values():
                if frame_idx in obj.cond:
                    pred = obj.cond[frame_idx].pred_masks
                else:
                    out = self._step(state, obj, frame_idx, False, None, None, reverse, True, None)
                    obj.non_cond[frame_idx] = out
                    pred = out.pred_masks
                obj.tracked[frame_idx] = reverse
                obj.prune(frame_idx, self.bank, reverse)
                masks.append(pred)
            yield frame_idx, obj_ids, self._video_res(state, np.concatenate(masks, axis=0))

    @staticmethod
    def _stream_order(state: InferenceState, start: int, limit: int | None) -> Iterator[int]:
        i = start
        while (limit is None or i <= start + limit) and state.source.has(i):
            yield i
            i += 1

    # -- one object, one frame ----------------------------------------------------------------------------------
    def _step(self, state: InferenceState, obj: ObjectState, frame_idx: int, is_init: bool,
              points: tuple[np.ndarray, np.ndarray] | None, mask: np.ndarray | None, reverse: bool,
              run_mem_encoder: bool, prev_logits: np.ndarray | None) -> FrameMemory:
        """``SAM2Base.track_step`` + the predictor's storage (memory in bf16)."""
        feats = self._features(state, frame_idx)
        eng = self.engine
        if mask is not None:
            out = eng.mask_as_output(feats, mask)
        else:
            pix = self._condition(state, obj, feats.feat, frame_idx, is_init, reverse)
            n_pts = 0 if points is None else points[1].shape[1]
            multimask = n_pts <= 1  # SAM2.1: multimask on 0-1 points, init and tracking frames alike
            coords, labels = (None, None) if points is None else points
            out = eng.heads(pix, coords, labels, prev_logits, multimask, feats.high_res)
        mem = FrameMemory(out.pred_masks, out.obj_ptr, out.object_score)
        if run_mem_encoder:
            mem.set_memory(eng.encode_memory(feats.feat, out.high_res_masks, out.object_score, points is not None))
        return mem

    def _condition(self, state: InferenceState, obj: ObjectState, feat: np.ndarray, frame_idx: int,
                   is_init: bool, reverse: bool) -> np.ndarray:
        """``_prepare_memory_conditioned_features``."""
        if is_init:
            return self.engine.no_memory(feat)
        k = self.bank.num_maskmem
        memories, tpos = [], []
        for out in obj.cond.values():
            memories.append(out.memory())
            tpos.append(k - 1)
        for t_pos in range(1, k):
            t_rel = k - t_pos
            prev = obj.non_cond.get(frame_idx + t_rel if reverse else frame_idx - t_rel)
            if prev is not None and prev.maskmem is not None:
                memories.append(prev.memory())
                tpos.append(k - t_pos - 1)
        n = state.num_frames
        # streams: the length is unknown, so the normaliser is the configured pointer count (official: min(n, 16))
        max_ptrs = self.bank.max_obj_ptrs if n is None or not state.source.random_access else min(n, self.bank.max_obj_ptrs)
        ptrs, rel = [], []
        sign = -1 if reverse else 1
        for t, out in obj.cond.items():
            if (t >= frame_idx) if reverse else (t <= frame_idx):
                ptrs.append(out.obj_ptr[0])
                rel.append((frame_idx - t) * sign)
        for t_diff in range(1, max_ptrs):
            t = frame_idx + t_diff if reverse else frame_idx - t_diff
            if t < 0 or (n is not None and t >= n):
                break
            out = obj.non_cond.get(t)
            if out is not None:
                ptrs.append(out.obj_ptr[0])
                rel.append(t_diff)
        return self.engine.attend(feat, memories, tpos, ptrs, rel, max_ptrs)

    # -- outputs ----------------------------------------------------------------------------------------------
    def _consolidate(self, state: InferenceState, frame_idx: int, is_cond: bool) -> np.ndarray:
        h, w = state.video_height, state.video_width
        out = np.full((len(state.objects), 1, h, w), NO_OBJ_SCORE, np.float32)
        for i, obj in enumerate(state.objects.values()):
            temp = obj.temp_cond if is_cond else obj.temp_non_cond
            m = temp.get(frame_idx) or obj.cond.get(frame_idx) or obj.non_cond.get(frame_idx)
            if m is not None:
                out[i] = resize_bilinear(m.pred_masks, (h, w))[0]
        return out

    @staticmethod
    def _video_res(state: InferenceState, masks: np.ndarray) -> np.ndarray:
        return resize_bilinear(masks, (state.video_height, state.video_width))
