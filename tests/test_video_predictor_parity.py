"""The host ``VideoPredictor`` (numpy + onnxruntime, from an exported bundle) against the official
``SAM2VideoPredictor`` on a synthetic video, seeded random SAM2.1-tiny weights at 256²: box, point and mask
prompts, three objects, a correction click, forward and reverse propagation, ``max_frame_num_to_track``,
``remove_object`` and ``clear_all_prompts_in_frame``; every returned frame's logits within 1e-3."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samfpga.models.data.synthetic import SyntheticConfig
from samfpga.models.data.video import VideoConfig, generate_video
from samfpga.models.export.video import export_video_bundle
from samfpga.models.video import build_video_sam
from samfpga.video.predictor import VideoPredictor
from tests.support.video_official import (
    feed_frames,
    official_video_predictor,
    requires_sam2,
    seeded_sam2_state,
)

pytestmark = [requires_sam2, pytest.mark.slow]
S = 256
TOL = 1e-3


def _video() -> tuple[list[np.ndarray], np.ndarray]:
    v = generate_video(3, 0, VideoConfig(frames=8, image=SyntheticConfig(image_size=96, min_objects=3)))
    frames = [f[:, 8:88].copy() for f in v.frames]  # 96 high, 80 wide: the square resize changes the aspect
    return frames, v.masks[:, :, :, 8:88]


def _scenario(pred, state, masks: np.ndarray, np_in) -> list[tuple[str, int, list, np.ndarray]]:
    """The same calls on either predictor; ``np_in`` turns numpy inputs into what it takes."""
    out = []

    def rec(tag, res):
        f, ids, logits = res
        logits = logits.detach().numpy() if hasattr(logits, "detach") else np.asarray(logits)
        out.append((tag, int(f), list(ids), logits.astype(np.float32)))

    rec("box", pred.add_new_points_or_box(state, 0, 1, box=np_in(np.array([10.0, 12.0, 60.0, 70.0]))))
    rec("point", pred.add_new_points_or_box(state, 0, 2, points=np_in(np.array([[40.0, 50.0]])),
                                            labels=np_in(np.array([1], np.int32))))
    for r in pred.propagate_in_video(state):
        rec("fwd", r)
    rec("correct", pred.add_new_points_or_box(state, 4, 1, points=np_in(np.array([[30.0, 30.0], [50.0, 20.0]])),
                                              labels=np_in(np.array([1, 0], np.int32))))
    rec("mask", pred.add_new_mask(state, 6, 3, np_in(masks[6, 0])))
    for r in pred.propagate_in_video(state, start_frame_idx=2, max_frame_num_to_track=4):
        rec("fwd2", r)
    for r in pred.propagate_in_video(state, start_frame_idx=6, reverse=True):
        rec("rev", r)
    ids, updated = pred.remove_object(state, 2)
    for f, logits in updated:
        rec("removed", (f, ids, logits))
    rec("clear", pred.clear_all_prompts_in_frame(state, 4, 1))
    for r in pred.propagate_in_video(state):
        rec("fwd3", r)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    frames, masks = _video()
    torch.manual_seed(0)
    off = official_video_predictor(S)
    sd = seeded_sam2_state(off, seed=11)
    # object scores of order one either way, so both occlusion branches occur
    off.load_state_dict(sd, strict=True)
    with feed_frames(frames, S):
        st = off.init_state("unused")
    ref = _scenario(off, st, masks, torch.as_tensor)

    model = build_video_sam("sam2.1_tiny", S)
    model.load_state_dict(sd, strict=True)
    bundle = export_video_bundle(model, tmp_path_factory.mktemp("vb") / "bundle")
    pred = VideoPredictor.from_bundle(bundle)
    ours = _scenario(pred, pred.init_state(frames), masks, lambda a: a)
    return ref, ours


def test_same_calls_and_frames(runs):
    ref, ours = runs
    assert [(t, f, ids) for t, f, ids, _ in ours] == [(t, f, ids) for t, f, ids, _ in ref]
    assert {t for t, *_ in ref} >= {"box", "point", "fwd", "correct", "mask", "fwd2", "rev", "removed", "clear"}


def test_logits_match(runs):
    ref, ours = runs
    worst = 0.0
    for (tag, f, _, a), (_, _, _, b) in zip(ours, ref):
        assert a.shape == b.shape, (tag, f, a.shape, b.shape)
        err = float(np.abs(a - b).max())
        worst = max(worst, err)
        assert err <= TOL, f"{tag} frame {f}: max |logit diff| {err:.3g} > {TOL}"
    print(f"worst per-frame logit difference {worst:.3g}")


def test_both_occlusion_branches_seen(runs):
    ref, _ = runs
    present = [bool((b > -1000).any()) for _, _, _, logits in ref for b in logits]
    absent = [bool((b <= -1000).all()) for _, _, _, logits in ref for b in logits]
    assert any(present) and any(absent)
