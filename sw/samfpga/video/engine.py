"""The per-frame computations of SAM2 on the host: the image encoder behind ``EncoderBackend`` and the heads,
memory encoder and memory attention on onnxruntime, glued with numpy exactly as ``SAM2Base`` glues them."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ..backends import EncoderBackend, create_backend
from ..backends.ort_session import make_session
from .bundle import VideoBundle
from .resample import resize_bilinear

NO_OBJ_SCORE = -1024.0


@dataclass
class FrameFeatures:
    """One frame's encoder output: feat (1, C, s, s) float32 and, for the high-res family, the decoder skip
    features (1, C/8, 4s, 4s), (1, C/4, 2s, 2s)."""

    feat: np.ndarray
    high_res: tuple[np.ndarray, np.ndarray] | None


@dataclass
class StepOutput:
    """One object on one frame: pred_masks (1,1,S/4,S/4) low-res logits, high_res_masks (1,1,S,S),
    obj_ptr (1,C), object_score (1,1)."""

    pred_masks: np.ndarray
    high_res_masks: np.ndarray
    obj_ptr: np.ndarray
    object_score: np.ndarray


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def sine_pe_1d(pos: np.ndarray, dim: int, temperature: float = 10000.0) -> np.ndarray:
    """SAM2's ``get_1d_sine_pe``: (N,) -> (N, dim) float32, [sin ‖ cos]."""
    half = dim // 2
    dim_t = temperature ** (2 * (np.arange(half, dtype=np.float32) // 2) / half)
    p = pos.astype(np.float32)[:, None] / dim_t.astype(np.float32)
    return np.concatenate([np.sin(p), np.cos(p)], axis=-1).astype(np.float32)


class VideoEngine:
    """Runs a video bundle's graphs. ``encoder`` defaults to the bundle's ONNX encoder; pass any
    ``EncoderBackend`` (e.g. the FPGA overlay) for the single-scale family."""

    def __init__(self, bundle: VideoBundle, encoder: EncoderBackend | str = "onnx", threads: int = 0,
                 stability_delta: float = 0.05, stability_thresh: float = 0.98) -> None:
        self.bundle = bundle
        self.S, self.s, self.C = bundle.image_size, bundle.feat_size, bundle.hidden_dim
        self.const = bundle.constants()
        if bundle.high_res:
            if not isinstance(encoder, str) or encoder != "onnx":
                raise ValueError(f"{bundle.root}: the {bundle.family} family needs its high-resolution features, "
                                 "which only its own encoder.onnx gives; use the 'onnx' encoder")
            self._hr_encoder = make_session(bundle.paths["encoder"], threads)
            self.encoder: EncoderBackend | None = None
        else:
            self._hr_encoder = None
            self.encoder = create_backend(encoder, bundle.encoder_bundle(), threads=threads) \
                if isinstance(encoder, str) else encoder
        self.heads_sess = make_session(bundle.paths["heads"], threads)
        self.memenc_sess = make_session(bundle.paths["memory_encoder"], threads)
        self.attn_sess = make_session(bundle.paths["memory_attention"], threads)
        self.mean = np.array(bundle.pixel_mean, dtype=np.float32)
        self.std = np.array(bundle.pixel_std, dtype=np.float32)
        self.stability_delta, self.stability_thresh = stability_delta, stability_thresh
        self.curr_pos = self.const["vision_pos"].reshape(self.C, -1).T[None].copy()  # (1, s*s, C)
        self.memory_pos = self.const["memory_pos"].reshape(bundle.mem_dim, -1).T.copy()  # (s*s, M)
        self.timings: dict[str, float] = defaultdict(float)

    def _timed(self, name: str, t0: float) -> None:
        self.timings[name] += time.perf_counter() - t0

    # -- image --------------------------------------------------------------------------------------------
    def encode_frame(self, image: np.ndarray) -> FrameFeatures:
        """image (S, S, 3) uint8 RGB, already resized to the model input."""
        t0 = time.perf_counter()
        x = ((image.astype(np.float32) - self.mean) / self.std).transpose(2, 0, 1)[None].copy()
        if self._hr_encoder is not None:
            feat, s0, s1 = self._hr_encoder.run(None, {self._hr_encoder.get_inputs()[0].name: x})
            out = FrameFeatures(feat, (s0, s1))
        else:
            out = FrameFeatures(self.encoder.encode(x), None)  # type: ignore[union-attr]
        self._timed("encoder", t0)
        return out

    # -- SAM heads --------------------------------------------------------------------------------------------
    def heads(self, pix: np.ndarray, coords: np.ndarray | None, labels: np.ndarray | None,
              mask_input: np.ndarray | None, multimask: bool,
              high_res: tuple[np.ndarray, np.ndarray] | None) -> StepOutput:
        """``_forward_sam_heads`` for one object: pix (1,C,s,s); coords (1,N,2) in S-pixels, labels (1,N);
        mask_input (1,1,h,w) logits or None."""
        t0 = time.perf_counter()
        if coords is None:
            coords, labels = np.zeros((1, 1, 2), np.float32), -np.ones((1, 1), np.float32)
        # SAM2 always embeds points with a trailing padding point
        coords = np.concatenate([coords.astype(np.float32), np.zeros((1, 1, 2), np.float32)], axis=1)
        labels = np.concatenate([labels.astype(np.float32), -np.ones((1, 1), np.float32)], axis=1)
        m = 4 * self.s
        if mask_input is None:
            mask, has = np.zeros((1, 1, m, m), np.float32), np.zeros(1, np.float32)
        else:
            mask = resize_bilinear(mask_input.astype(np.float32), (m, m), antialias=True)
            has = np.ones(1, np.float32)
        feeds = {"pix_feat": pix.astype(np.float32), "point_coords": coords, "point_labels": labels,
                 "mask_input": mask, "has_mask_input": has}
        if high_res is not None:
            feeds["high_res_0"], feeds["high_res_1"] = high_res
        masks, iou, ptrs, score = self.heads_sess.run(None, feeds)
        if multimask:
            masks, iou, ptrs = masks[:, 1:], iou[:, 1:], ptrs[:, 1:]
            best = int(np.argmax(iou[0]))
            low, ptr = masks[:, best : best + 1], ptrs[:, best]
        else:
            low, ptr = masks[:, :1], ptrs[:, 0]
            flat = low.reshape(-1)
            area_u = float((flat > -self.stability_delta).sum())
            stability = float((flat > self.stability_delta).sum()) / area_u if area_u > 0 else 1.0
            if stability < self.stability_thresh:
                best = int(np.argmax(iou[0, 1:]))
                low = masks[:, 1 + best : 2 + best]
        appearing = float(score[0, 0] > 0)
        if not appearing:
            low = np.full_like(low, NO_OBJ_SCORE)
        high = resize_bilinear(low, (self.S, self.S))
        obj_ptr = appearing * ptr + (1 - appearing) * self.const["no_obj_ptr"][None]
        self._timed("heads", t0)
        return StepOutput(low.astype(np.float32), high, obj_ptr.astype(np.float32), score.astype(np.float32))

    def mask_as_output(self, feats: FrameFeatures, mask: np.ndarray) -> StepOutput:
        """``_use_mask_as_output``: mask (1,1,S,S) binary float."""
        high = mask * 20.0 - 10.0
        low = resize_bilinear(high, (self.S // 4, self.S // 4), antialias=True)
        s4 = self.S // 4
        w, b = self.const["mask_downsample_weight"], float(self.const["mask_downsample_bias"])
        down = np.einsum("ahbw,hw->ab", mask[0, 0].reshape(s4, 4, s4, 4), w) + b
        ptr = self.heads(feats.feat, None, None, down[None, None].astype(np.float32), False, feats.high_res).obj_ptr
        lam = float(np.any(mask > 0))
        obj_ptr = lam * ptr + (1 - lam) * self.const["no_obj_ptr"][None]
        score = np.array([[20.0 * lam - 10.0]], np.float32)
        return StepOutput(low.astype(np.float32), high.astype(np.float32), obj_ptr.astype(np.float32), score)

    # -- memory ---------------------------------------------------------------------------------------------
    def encode_memory(self, feat: np.ndarray, high_res_masks: np.ndarray, object_score: np.ndarray,
                      binarize: bool) -> np.ndarray:
        """``_encode_new_memory`` for one object -> (1, M, s, s) float32."""
        t0 = time.perf_counter()
        m = (high_res_masks > 0).astype(np.float32) if binarize else _sigmoid(high_res_masks)
        m = (m * 20.0 - 10.0).astype(np.float32)
        (mem,) = self.memenc_sess.run(None, {"pix_feat": feat, "mask_for_mem": m})
        if float(object_score.reshape(-1)[0]) <= 0:
            mem = mem + self.const["no_obj_embed_spatial"][None, :, None, None]
        self._timed("memory_encoder", t0)
        return mem.astype(np.float32)

    def no_memory(self, feat: np.ndarray) -> np.ndarray:
        """First conditioning frame: features + no_mem_embed, no attention."""
        return feat + self.const["no_mem_embed"][None, :, None, None]

    def attend(self, feat: np.ndarray, memories: list[np.ndarray], tpos_index: list[int],
               ptrs: list[np.ndarray], ptr_rel: list[int], max_ptrs: int) -> np.ndarray:
        """Memory attention for one object. memories: (M, s, s) float32 each with its temporal-position row in
        maskmem_tpos_enc; ptrs: (C,) each with its signed frame offset. Returns (1, C, s, s)."""
        t0 = time.perf_counter()
        c, s, mdim = self.C, self.s, self.bundle.mem_dim
        mem = np.concatenate([m.reshape(mdim, -1).T for m in memories], axis=0)[None]
        tpos = self.const["maskmem_tpos_enc"]
        mem_pos = np.concatenate([self.memory_pos + tpos[i] for i in tpos_index], axis=0)[None]
        if ptrs:
            rel = np.asarray(ptr_rel, dtype=np.float32) / (max_ptrs - 1)
            pos = sine_pe_1d(rel, c) @ self.const["obj_ptr_tpos_proj_weight"].T + self.const["obj_ptr_tpos_proj_bias"]
            split = c // mdim
            ptr = np.stack(ptrs).reshape(len(ptrs) * split, mdim)[None]
            ptr_pos = np.repeat(pos, split, axis=0)[None]
        else:
            ptr = np.zeros((1, 0, mdim), np.float32)
            ptr_pos = np.zeros((1, 0, mdim), np.float32)
        curr = feat.reshape(c, -1).T[None]
        (out,) = self.attn_sess.run(None, {"curr": curr.astype(np.float32), "curr_pos": self.curr_pos,
                                           "memory": mem.astype(np.float32), "memory_pos": mem_pos.astype(np.float32),
                                           "ptr": ptr.astype(np.float32), "ptr_pos": ptr_pos.astype(np.float32)})
        self._timed("memory_attention", t0)
        return out[0].T.reshape(1, c, s, s)
