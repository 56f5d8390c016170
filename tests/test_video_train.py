"""The training-time tracker (``samfpga.models.video.tracker.unroll``) computes what the host ``VideoPredictor`` runs
at inference (so what training optimises is what the bundle does), and the training loop's pieces (correction
clicks, config, a short run) work."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from samfpga.models.export.video import export_video_bundle
from samfpga.models.video import build_video_sam
from samfpga.models.video import train as train_mod
from samfpga.models.video.tracker import ClipPrompt, unroll
from samfpga.models.video.train import (
    VideoTrainConfig,
    correction_click,
    distill_loss,
    load_teacher,
    load_train_config,
    train,
)
from samfpga.resources import package_path
from samfpga.video.predictor import VideoPredictor
from tests.support.tiny_video_bundle import tiny_video_model
from tests.support.video_official import seeded_sam2_state

TOL = 1e-3  # logits; the host keeps memories in bf16, the unroll here is patched to round them the same way


def _frames(t: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size, size, 3))
    return np.stack([np.roll(base, 3 * i, axis=1) for i in range(t)]).astype(np.uint8)


def _unroll_vs_host(model, tmp_path, monkeypatch) -> None:
    """Mask prompts for two objects on frame 0, 6 frames tracked by ``unroll`` and by the host predictor on the
    exported bundle: per-frame logits within TOL."""
    bundle = export_video_bundle(model, tmp_path / "vb")
    size, t_len = model.cfg.image_size, 6
    frames = _frames(t_len, size, 0)
    masks = np.zeros((2, size, size), bool)
    masks[0, 20:60, 30:90] = True
    masks[1, 70:120, 10:50] = True

    encode = model.encode_memory
    monkeypatch.setattr(model, "encode_memory",
                        lambda *a, **k: encode(*a, **k).to(torch.bfloat16).float())  # as the host bank stores it
    feats, high_res = model.backbone(torch.from_numpy(frames).float().permute(0, 3, 1, 2))

    def two(x: torch.Tensor) -> torch.Tensor:  # (T, ...) -> (T, objects, ...)
        return x[:, None].expand(-1, 2, *x.shape[1:])

    outs = unroll(model, two(feats), ClipPrompt(masks=torch.from_numpy(masks[:, None].astype(np.float32))),
                  high_res=None if high_res is None else (two(high_res[0]), two(high_res[1])))

    pred = VideoPredictor.from_bundle(bundle, threads=1)
    state = pred.init_state(list(frames))
    for o in range(2):
        pred.add_new_mask(state, 0, o, masks[o])
    host = {f: logits for f, _, logits in pred.propagate_in_video(state)}
    assert sorted(host) == list(range(t_len))
    for t in range(t_len):
        # the predictor returns the low-res logits resized to the video (here S×S), as the official one does
        want = F.interpolate(outs[t]["low_res_masks"], size=(size, size), mode="bilinear", align_corners=False).numpy()
        np.testing.assert_allclose(host[t], want, atol=TOL, rtol=0, err_msg=f"frame {t}")
    assert any((outs[t]["high_res_masks"] > 0).any() for t in range(1, t_len))  # not a trivially empty track


@torch.no_grad()
def test_unroll_matches_host_predictor(tmp_path, monkeypatch):
    model = tiny_video_model(seed=5)
    model.sam_mask_decoder.pred_obj_score_head.layers[2].bias.fill_(20.0)  # objects present: real masks tracked
    _unroll_vs_host(model, tmp_path, monkeypatch)


@pytest.mark.slow
@torch.no_grad()
def test_unroll_matches_host_predictor_high_res_family(tmp_path, monkeypatch):
    """The official SAM2.1-tiny family (high-resolution skips), as a distillation teacher runs in training."""
    model = build_video_sam("sam2.1_tiny", image_size=256).eval()
    model.load_state_dict(seeded_sam2_state(model, seed=7))
    model.sam_mask_decoder.pred_obj_score_head.layers[2].bias.fill_(20.0)
    _unroll_vs_host(model, tmp_path, monkeypatch)


@torch.no_grad()
def test_correction_click_reruns_the_heads():
    model = tiny_video_model(seed=6)
    s = model.cfg.image_size
    feats = torch.randn(4, 1, model.cfg.hidden_dim, model.cfg.feat_size, model.cfg.feat_size)
    prompt = ClipPrompt(points=torch.tensor([[[40.0, 50.0]]]), labels=torch.tensor([[1]], dtype=torch.int32))
    plain = unroll(model, feats, prompt)
    seen = []

    def correct(t, out):
        seen.append(t)
        return (torch.tensor([[[10.0, 12.0]]]), torch.tensor([[1]], dtype=torch.int32)) if t == 2 else None

    fixed = unroll(model, feats, prompt, correct=correct)
    assert seen == [1, 2, 3]
    assert "before" in fixed[2] and "before" not in fixed[1]
    np.testing.assert_array_equal(fixed[1]["high_res_masks"], plain[1]["high_res_masks"])
    np.testing.assert_allclose(fixed[2]["before"]["high_res_masks"], plain[2]["high_res_masks"], atol=1e-6)
    assert not torch.allclose(fixed[2]["high_res_masks"], plain[2]["high_res_masks"])  # the click changed it
    assert not torch.allclose(fixed[3]["high_res_masks"], plain[3]["high_res_masks"])  # and the memory after it
    assert fixed[2]["high_res_masks"].shape == (1, 1, s, s)


def test_correction_click_on_an_error_pixel():
    rng = np.random.default_rng(0)
    gt = np.zeros((3, 8, 8), bool)
    gt[:, 2:6, 2:6] = True
    pred = gt.copy()
    pred[0, 2:6, 2:4] = False  # misses a part: a positive click there
    pred[1, 0, 0] = True  # one false pixel: a negative click on it
    pts, labs = correction_click(rng, pred, gt)
    x, y = pts[0, 0].astype(int)
    assert labs[0, 0] == 1 and gt[0, y, x] and not pred[0, y, x]
    assert labs[1, 0] == 0 and tuple(pts[1, 0]) == (0.0, 0.0)
    assert labs[2, 0] == -1  # exact already: no click


def test_config_checks(tmp_path):
    p = tmp_path / "v.yaml"
    p.write_text("steps: 5\nclip: 4\n")
    cfg = load_train_config(p, ["batch=2", "prompt_probs={mask: 1.0}"])
    assert (cfg.steps, cfg.clip, cfg.batch, cfg.prompt_probs) == (5, 4, 2, {"mask": 1.0})
    with pytest.raises(ValueError, match="unknown video training config fields.*'stepz'"):
        load_train_config(None, ["stepz=3"])
    with pytest.raises(ValueError, match="does not fit"):
        VideoTrainConfig(clip=8, frame_strides=[3], pool_frames=16)
    with pytest.raises(ValueError, match="prompt_probs"):
        VideoTrainConfig(prompt_probs={"scribble": 1.0})


@pytest.mark.slow
def test_short_run_trains_and_resumes(tmp_path):
    """Two steps on a two-video pool from the bundled image model; an interrupted run resumes from resume.pt."""
    cfg = VideoTrainConfig(steps=3, batch=1, clip=4, pool_videos=2, pool_frames=4, frame_strides=[1],
                           cache_dir=str(tmp_path / "cache"), checkpoint_every=1, threads=1, correction_prob=1.0)
    out = tmp_path / "run"
    real_save = torch.save
    calls = {"n": 0}

    def failing_save(obj, path, *a, **k):  # interrupt the run after its second resume checkpoint
        real_save(obj, path, *a, **k)
        if str(path).endswith(".resume.pt.tmp"):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt

    torch.save = failing_save
    try:
        with pytest.raises(KeyboardInterrupt):
            train(cfg, out, log_every=1)
    finally:
        torch.save = real_save
    assert (out / "resume.pt").is_file() and not (out / "video_checkpoint.pt").exists()
    model = train(cfg, out, log_every=1)
    assert (out / "video_checkpoint.pt").is_file() and not (out / "resume.pt").exists()
    import json

    log = json.loads((out / "train_log.json").read_text())["log"]
    assert [r["step"] for r in log] == [0, 1, 2] and all(np.isfinite(r["total"]) for r in log)
    assert not model.training


def test_distill_loss_pulls_towards_the_teacher():
    g = torch.Generator().manual_seed(0)
    teacher = [{"low_res_masks": 3 * torch.randn(2, 1, 8, 8, generator=g),
                "object_score_logits": torch.randn(2, 1, generator=g)} for _ in range(3)]

    def student(delta: float) -> list[dict]:
        return [{k: (v + delta * torch.randn(v.shape, generator=g)).requires_grad_() for k, v in o.items()}
                for o in teacher]

    same, off = student(0.0), student(2.0)
    loss_same, loss_off = distill_loss(same, teacher), distill_loss(off, teacher)
    loss_same.backward()
    loss_off.backward()
    assert loss_same < loss_off
    # at the teacher's logits the soft-target BCE is at its minimum: no gradient
    assert all(v.grad.abs().max() < 1e-7 for o in same for v in o.values())
    assert all(v.grad.abs().max() > 1e-4 for o in off for v in o.values())
    # a teacher on a finer grid (another input size) is resized to the student's
    fine = [{**o, "low_res_masks": F.interpolate(o["low_res_masks"], size=(16, 16), mode="nearest")} for o in teacher]
    assert torch.isfinite(distill_loss(student(0.0), fine))


def test_teacher_checkpoint_missing_is_named(tmp_path):
    cfg = VideoTrainConfig(teacher_checkpoint=str(tmp_path / "sam2.1_hiera_tiny.pt"))
    with pytest.raises(FileNotFoundError, match=r"sam2.1_hiera_tiny.pt: no such file"):
        load_teacher(cfg, 256)


@pytest.mark.slow
def test_short_run_distils_from_an_official_layout_teacher(tmp_path, monkeypatch):
    """One step of the committed distillation recipe (default_video_distill.yaml, shrunk by overrides) with a
    teacher saved as an official SAM2.1-tiny checkpoint ({"model": state dict}, seeded random weights): it loads
    strictly, tracks the same clip with the same prompt and correction click as the student, and its loss term
    enters the total."""
    torch.manual_seed(0)
    official = build_video_sam("sam2.1_tiny", image_size=256)
    ckpt = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": official.state_dict()}, ckpt)
    seen: list[dict] = []
    real = train_mod.teacher_unroll

    def spy(teacher, frames, prompt, clicks, max_ptrs):
        seen.append({"family": teacher.cfg.family, "frames": tuple(frames.shape), "clicks": sorted(clicks)})
        return real(teacher, frames, prompt, clicks, max_ptrs)

    monkeypatch.setattr(train_mod, "teacher_unroll", spy)
    recipe = package_path("samfpga.models.training", "configs", "default_video_distill.yaml")
    cfg = load_train_config(recipe, ["steps=1", "batch=1", "clip=3", "pool_videos=1", "pool_frames=3",
                                     "frame_strides=[1]", "reverse_prob=0.0", f"cache_dir={tmp_path / 'cache'}",
                                     "correction_prob=1.0", f"teacher_checkpoint={ckpt}"])
    assert cfg.w_distill > 0
    train(cfg, tmp_path / "run", log_every=1)
    import json

    (rec,) = json.loads((tmp_path / "run" / "train_log.json").read_text())["log"]
    assert np.isfinite(rec["distill"]) and rec["distill"] > 0
    assert rec["total"] >= rec["mask"] + rec["distill"] - 1e-4  # w_iou, w_score terms are >= 0
    (call,) = seen
    assert call["family"] == "sam2.1_tiny" and call["frames"] == (3, 1, 3, 256, 256) and len(call["clicks"]) == 1
