"""The video predictor, memory bank and ``samfpga track`` in the board environment (numpy + onnxruntime, no torch),
on the tiny random-weight video bundle (mechanics, not accuracy; accuracy parity is tests/test_video_predictor_parity.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samfpga.bundle import BundleError
from samfpga.cli import main as cli_main
from samfpga.video.bank import BankConfig
from samfpga.video.bundle import load_video_bundle
from samfpga.video.frames import FrameError
from samfpga.video.predictor import PromptError, VideoPredictor
from samfpga.video.resample import from_bf16, resize_bilinear, to_bf16

BUNDLE = Path(__file__).parent / "data" / "tiny_video_bundle"


def moving_square(n: int, h: int = 72, w: int = 96, seed: int = 0):
    """(h, w, 3) uint8 frames of a bright square drifting right over noise, one at a time."""
    rng = np.random.default_rng(seed)
    for t in range(n):
        f = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
        x = 10 + (t * 3) % (w - 30)
        f[20:44, x : x + 20] = (230, 40, 40)
        yield f


@pytest.fixture(scope="module")
def pred() -> VideoPredictor:
    return VideoPredictor.from_bundle(BUNDLE)


def test_bundle_validation(tmp_path):
    b = load_video_bundle(BUNDLE)
    assert (b.family, b.image_size, b.feat_size) == ("fpga", 128, 8)
    meta = json.loads((BUNDLE / "video.json").read_text())
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in meta["files"].values():
        (bad / name).write_bytes((BUNDLE / name).read_bytes())
    (bad / "video.json").write_text(json.dumps({**meta, "feat_size": 9}))
    with pytest.raises(BundleError, match="feat_size"):
        load_video_bundle(bad)
    (bad / "video.json").write_text(json.dumps(meta))
    (bad / "heads.onnx").write_bytes(b"broken")
    with pytest.raises(BundleError, match="sha256"):
        load_video_bundle(bad)


def test_bf16_and_resize():
    x = np.array([1.0, 1.00390625, 1.005859375, -3.14159, 65504.0], np.float32)
    assert np.array_equal(from_bf16(to_bf16(x)), np.array([1.0, 1.0, 1.0078125, -3.140625, 65536.0], np.float32))
    a = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    up = resize_bilinear(a, (8, 8))
    assert up.shape == (1, 1, 8, 8) and up[0, 0, 0, 0] == 0 and up[0, 0, -1, -1] == 15
    down = resize_bilinear(np.ones((1, 1, 8, 8), np.float32), (2, 2), antialias=True)
    assert np.allclose(down, 1.0)


def test_api_flow(pred):
    frames = list(moving_square(12))
    state = pred.init_state(frames)
    assert (state.num_frames, state.video_height, state.video_width) == (12, 72, 96)
    f, ids, logits = pred.add_new_points_or_box(state, 0, 1, box=np.array([10, 20, 30, 44]))
    assert (f, ids, logits.shape) == (0, [1], (1, 1, 72, 96))
    mask = np.zeros((72, 96), bool)
    mask[20:44, 10:30] = True
    _, ids, logits = pred.add_new_mask(state, 0, 7, mask)
    assert ids == [1, 7] and logits.shape == (2, 1, 72, 96)
    fwd = list(pred.propagate_in_video(state))
    assert [r[0] for r in fwd] == list(range(12))
    _, ids, _ = pred.add_new_points_or_box(state, 5, 1, points=np.array([[40, 30]]), labels=np.array([1]))
    assert 5 not in state.objects[1].cond  # a click on a tracked frame is a correction, not a new conditioning frame
    part = list(pred.propagate_in_video(state, start_frame_idx=3, max_frame_num_to_track=4))
    assert [r[0] for r in part] == [3, 4, 5, 6, 7]
    rev = list(pred.propagate_in_video(state, start_frame_idx=8, reverse=True))
    assert [r[0] for r in rev] == list(range(8, -1, -1))
    ids, updated = pred.remove_object(state, 7)
    assert ids == [1] and [u[0] for u in updated] == [0] and updated[0][1].shape == (1, 1, 72, 96)
    pred.reset_state(state)
    assert state.obj_ids == [] and state.memory_bytes() == 0
    with pytest.raises(PromptError, match="no points"):
        next(pred.propagate_in_video(state))


def test_bad_prompts(pred):
    state = pred.init_state(list(moving_square(3)))
    with pytest.raises(PromptError, match="frame 3 does not exist"):
        pred.add_new_points_or_box(state, 3, 1, points=np.array([[1, 1]]), labels=np.array([1]))
    with pytest.raises(PromptError, match="box must be 4"):
        pred.add_new_points_or_box(state, 0, 1, box=np.array([1, 2, 3]))
    with pytest.raises(PromptError, match="2-D"):
        pred.add_new_mask(state, 0, 1, np.zeros((2, 3, 4)))
    bad = list(moving_square(3))
    bad[2] = bad[2][:, :50]
    with pytest.raises(FrameError, match="frame 2: size 50x72"):
        pred.init_state(bad)


def test_stream_bounded_memory(pred):
    """A 60-frame stream through an iterator: the bank stops growing once the window is full, frames are not held,
    and the pointer normaliser needs no video length. (10,000 frames: bench/video_stream.py.)"""
    bounded = VideoPredictor(pred.engine, BankConfig(num_maskmem=7, max_obj_ptrs=16, bounded=True))
    state = bounded.init_state(moving_square(60))
    assert state.num_frames is None
    bounded.add_new_points_or_box(state, 0, 1, box=np.array([10, 20, 30, 44]))
    sizes, entries = [], []
    n = 0
    for _f, _, logits in bounded.propagate_in_video(state):
        n += 1
        sizes.append(state.memory_bytes())
        entries.append(len(state.objects[1].non_cond))
        assert logits.shape == (1, 1, 72, 96)
    assert n == 60 and state.num_frames == 60
    assert max(entries) == 15  # the 15 most recent unprompted frames (pointers), 6 of them with memories
    with_memory = [t for t, m in state.objects[1].non_cond.items() if m.maskmem is not None]
    assert with_memory == list(range(54, 60))
    assert max(sizes[30:]) == min(sizes[30:])
    assert not hasattr(state.source, "frames")


def test_stream_cannot_rewind(pred):
    state = pred.init_state(moving_square(5))
    pred.add_new_points_or_box(state, 0, 1, box=np.array([10, 20, 30, 44]))
    list(pred.propagate_in_video(state, max_frame_num_to_track=2))
    with pytest.raises(PromptError, match="cannot go back"):
        pred.add_new_points_or_box(state, 0, 1, points=np.array([[5, 5]]), labels=np.array([1]))
    with pytest.raises(PromptError, match="reverse"):
        next(pred.propagate_in_video(state, reverse=True))


def _frames_dir(tmp_path: Path, n: int = 6) -> Path:
    d = tmp_path / "frames"
    d.mkdir()
    for i, f in enumerate(moving_square(n)):
        Image.fromarray(f).save(d / f"f{i}.png")
    return d


def test_cli_track(tmp_path, capsys):
    d = _frames_dir(tmp_path)
    mask = np.zeros((72, 96), np.uint8)
    mask[20:44, 10:30] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    out = tmp_path / "out"
    rc = cli_main(["track", str(d), "--point", "0,20,30,1", "--box", "2,10,20,40,44,2", "--mask",
                   f"0,{tmp_path / 'm.png'},3", "--model", str(BUNDLE), "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    for obj in (1, 2, 3):
        pngs = sorted((out / "masks" / str(obj)).glob("*.png"))
        assert [p.name for p in pngs] == [f"{i:05d}.png" for i in range(6)]
        assert set(np.unique(np.asarray(Image.open(pngs[0])))) <= {0, 255}
    rle = json.loads((out / "rle" / "00003.json").read_text())
    # objects in the order their first prompt was applied (frame, then id), as the official obj_ids
    assert [o["obj_id"] for o in rle["objects"]] == [1, 3, 2] and rle["objects"][0]["segmentation"]["size"] == [72, 96]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tracked_frames"] == 6 and len(summary["per_frame"]) == 6
    assert all(r["time_s"] > 0 for r in summary["per_frame"])
    with Image.open(out / "overlay.gif") as gif:
        assert gif.n_frames == 6


@pytest.mark.parametrize("args,message", [
    (["--point", "9,20,30"], "frame 9: the video has 6 frames"),
    (["--point", "0,200,30"], "outside the 96x72 frame"),
    (["--mask", "0,missing.png"], "unreadable image"),
    ([], "no prompt"),
])
def test_cli_track_bad_input(tmp_path, capsys, args, message):
    d = _frames_dir(tmp_path)
    out = tmp_path / "out"
    rc = cli_main(["track", str(d), *args, "--model", str(BUNDLE), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_cli_track_bad_frame(tmp_path, capsys):
    d = _frames_dir(tmp_path)
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(d / "f3.png")
    (d / "f4.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    rc = cli_main(["track", str(d), "--point", "0,20,30", "--model", str(BUNDLE), "--out", str(out),
                   "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "frame 3: size 10x10" in err, err
    assert not out.exists()
