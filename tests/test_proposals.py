"""Proposals mode (issue 16): the head's training targets and the host's decoding of its output agree, the
trainer runs end to end (teacher targets -> training -> resume -> ONNX), the ONNX head equals the torch head, and
``ProposalMaskGenerator`` / ``samfpga everything --mode proposals`` run it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from samfpga.everything.proposals import HEAD_CHANNELS, ProposalHead, decode_head
from samfpga.models.proposals import render_targets
from samfpga.models.proposals.targets import mask_centre
from samfpga.models.proposals.train import load_train_config, train


def test_targets_decode_back_to_the_teacher_prompts():
    """A head that outputs its targets exactly (logit +-20 from the centre cells) gives back every centre and
    box: the training targets and the host's decoding use one layout."""
    size, grid = 256, (16, 16)
    centres = np.array([[40.0, 50.0], [200.5, 30.0], [128.0, 220.0]], np.float32)
    boxes = np.array([[10, 20, 90, 70], [180, 5, 230, 60], [60, 180, 250, 256]], np.float32)
    heat, reg, pos = render_targets(centres, boxes, grid, size, sigma=1.0)
    assert pos.sum() == 3 and heat.max() == 1.0 and np.all(heat[pos] == 1.0)
    out = np.concatenate([np.where(pos, 20.0, -20.0)[None], reg]).astype(np.float32)
    points, got_boxes, scores = decode_head(out, size, score_thresh=0.5, max_proposals=10)
    assert len(points) == 3 and np.all(scores > 0.99)
    order = np.lexsort((points[:, 1], points[:, 0]))
    ref = np.lexsort((centres[:, 1], centres[:, 0]))
    np.testing.assert_allclose(points[order], centres[ref], atol=1e-3)
    np.testing.assert_allclose(got_boxes[order], np.clip(boxes[ref], 0, size), atol=1e-3)


def test_decode_head_peaks_threshold_and_limit():
    out = np.full((HEAD_CHANNELS, 8, 8), 0.0, np.float32)
    out[0] = -10.0
    out[0, 2, 2], out[0, 2, 3] = 3.0, 2.0  # neighbours: only the higher one is a peak
    out[0, 6, 6] = 1.0
    points, _, scores = decode_head(out, 64, score_thresh=0.5, max_proposals=10)
    assert len(points) == 2 and scores[0] > scores[1]
    np.testing.assert_allclose(points[0], [2.5 * 8, 2.5 * 8])
    assert len(decode_head(out, 64, 0.5, max_proposals=1)[0]) == 1
    assert len(decode_head(out, 64, 0.9, max_proposals=10)[0]) == 1
    with pytest.raises(ValueError, match="proposal head output must be"):
        decode_head(out[:3], 64, 0.5, 10)


def test_mask_centre_inside_concave_mask():
    m = np.zeros((20, 20), bool)
    m[2:18, 2:5] = m[2:5, 2:18] = True  # an L: the centroid lies outside
    x, y = mask_centre(m)
    assert m[int(y), int(x)]


def test_config_rejects_unknown_keys(tmp_path):
    with pytest.raises(ValueError, match="unknown proposal training config keys"):
        load_train_config(None, ["stepz=3"])
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_train_config(tmp_path / "missing.yaml")


@pytest.mark.slow  # teacher targets of 3 images through the bundled default + a few steps: ~40 s here
def test_train_resume_export_and_generate(tmp_path, capsys):
    from samfpga import cli
    from samfpga.everything import ProposalMaskGenerator
    from samfpga.image_io import read_image
    from samfpga.models.proposals.head import ProposalHead as TorchHead
    from samfpga.predictor import Predictor
    from samfpga.resources import package_path

    over = [f"cache_dir={tmp_path / 'cache'}", "images=3", "dense_points_per_side=8", "steps=6",
            "checkpoint_every=3", "batch=2", "hidden=8", "threads=1"]
    cfg = load_train_config(None, over)
    out = tmp_path / "run"
    train(cfg, out)
    log = json.loads((out / "train_log.json").read_text())
    assert log["images"] == 3 and log["log"][-1]["step"] == 6 and not (out / "resume.pt").exists()
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 3  # teacher targets cached

    # ONNX head == torch head
    ck = torch.load(out / "head.pt", map_location="cpu", weights_only=False)
    head = TorchHead(ck["in_shape"][0], 8)
    head.load_state_dict(ck["head"])
    x = torch.randn(1, *ck["in_shape"])
    onnx_head = ProposalHead(out / "proposals.onnx")
    np.testing.assert_allclose(onnx_head(x.numpy()), head(x)[0].detach().numpy(), atol=1e-5)

    pred = Predictor.from_bundle(package_path("samfpga.assets", "default"))
    image = read_image(package_path("samfpga.assets", "samples", "sample_0.png"))[0]
    gen = ProposalMaskGenerator(pred, out / "proposals.onnx", score_thresh=0.0, max_proposals=5, prompts=("point", "box"),
                                refine=None, pred_iou_thresh=0.0, stability_score_thresh=0.0, output_mode="uncompressed_rle")
    records = gen.generate(image)
    assert gen.stats["proposals"] == 5 and gen.stats["decoder_prompts"] == 10  # a point and a box each
    assert records and all(r["crop_box"] == [0, 0, 256, 256] for r in records)

    # installed into a copy of the bundle: found through bundle.json (hash-checked) without naming it
    import shutil

    from samfpga.models.proposals.install import install

    bundle = tmp_path / "bundle"
    shutil.copytree(package_path("samfpga.assets", "default"), bundle)
    from samfpga.models.proposals.targets import cache_key as _cache_key

    key = _cache_key(cfg, bundle)
    install(out / "proposals.onnx", bundle)
    assert _cache_key(cfg, bundle) == key  # the teacher's targets stay cached when a head is installed
    pred2 = Predictor.from_bundle(bundle)
    assert pred2.bundle.proposals_path == (bundle / "proposals.onnx").resolve()
    again = ProposalMaskGenerator(pred2, score_thresh=0.0, max_proposals=5, prompts=("point", "box"), refine=None,
                                  pred_iou_thresh=0.0, stability_score_thresh=0.0,
                                  output_mode="uncompressed_rle").generate(image)
    assert json.dumps(again) == json.dumps(records)  # (an empty mask has stability NaN: compare as text)

    rc = cli.main(["everything", str(package_path("samfpga.assets", "samples", "sample_0.png")), "--mode",
                   "proposals", "--proposal-head", str(out / "proposals.onnx"), "--proposal-score-thresh", "0",
                   "--pred-iou-thresh", "0", "--stability-score-thresh", "0", "--out", str(tmp_path / "ev"),
                   "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    data = json.loads((tmp_path / "ev" / "masks.json").read_text())
    assert data["mode"] == "proposals" and data["generator_stats"]["proposals"] >= 1


def test_resume_picks_up_a_checkpoint(tmp_path, monkeypatch):
    """A run stopped right after its checkpoint resumes from it and ends where an uninterrupted run ends."""
    from samfpga.models.proposals import train as T

    items = [{"embedding": np.random.default_rng(i).standard_normal((8, 4, 4)).astype(np.float32),
              "centres": np.array([[10.0, 12.0]], np.float32), "boxes": np.array([[2, 2, 20, 25]], np.float32)}
             for i in range(3)]
    monkeypatch.setattr(T, "build_targets", lambda cfg, log=True: (items, 32))
    cfg = load_train_config(None, ["steps=6", "checkpoint_every=3", "batch=2", "hidden=4", "threads=1"])
    train(cfg, tmp_path / "full")
    full = torch.load(tmp_path / "full" / "head.pt", weights_only=False)["head"]

    class Stop(Exception):
        pass

    real_save = torch.save
    stopped = []

    def save_then_stop(obj, path, *a, **k):
        real_save(obj, path, *a, **k)
        if str(path).endswith(".resume.pt.tmp") and not stopped:
            stopped.append(True)
            T.os.replace(path, str(path).replace(".resume.pt.tmp", "resume.pt"))
            raise Stop

    monkeypatch.setattr(T.torch, "save", save_then_stop)
    with pytest.raises(Stop):
        train(cfg, tmp_path / "cut")
    assert (tmp_path / "cut" / "resume.pt").exists() and not (tmp_path / "cut" / "head.pt").exists()
    train(cfg, tmp_path / "cut")
    cut = torch.load(tmp_path / "cut" / "head.pt", weights_only=False)["head"]
    for k in full:
        torch.testing.assert_close(cut[k], full[k], rtol=0, atol=0)


def test_prompt_centres_are_the_teacher_prompts(monkeypatch):
    """``centre: prompt`` trains on the grid point that produced each teacher mask, ``mask`` on the mask pixel
    nearest its centroid; both are cached, in encoder-input pixels."""
    import samfpga.everything as E
    from samfpga.models.proposals import train as T

    mask = np.zeros((64, 128), bool)
    mask[10:30, 20:60] = True
    records = [{"segmentation": mask, "bbox": [20, 10, 40, 20], "point_coords": [[24.0, 12.0]]}]

    class Gen:
        def __init__(self, *a, **k):
            pass

        def generate(self, image):
            return records

    class Pred:
        input_size = (128, 256)  # encoder-input frame = 2x the image

        def set_image(self, image):
            pass

        def get_image_embedding(self):
            return np.zeros((1, 4, 8, 8), np.float32)

        def reset_image(self):
            pass

    monkeypatch.setattr(E, "AutomaticMaskGenerator", Gen)
    from samfpga.models.proposals.targets import teacher_targets

    t = teacher_targets(Pred(), np.zeros((64, 128, 3), np.uint8), load_train_config(None))
    np.testing.assert_array_equal(t["prompt_centres"], [[48.0, 24.0]])
    np.testing.assert_array_equal(t["centres"], [[2 * 39.0, 2 * 19.0]])  # nearest mask pixel to (39.5, 19.5)
    np.testing.assert_array_equal(t["boxes"], [[40.0, 20.0, 120.0, 60.0]])
    items = [t]
    _, heat_p, _, pos_p = T._tensors(items, 256, 1.0, "prompt")
    _, heat_m, _, pos_m = T._tensors(items, 256, 1.0, "mask")
    assert pos_p[0].nonzero().tolist() == [[0, 1]]  # cell of (48, 24) on a 32-pixel grid (256 / 8)
    assert pos_m[0].nonzero().tolist() == [[1, 2]]  # cell of (78, 38)
    with pytest.raises(ValueError, match="centre must be one of"):
        load_train_config(None, ["centre=centroid"])


def test_cells_target_loss():
    """``target: cells``: binary cross-entropy against the centre cells (the Gaussian heatmap is not used), so a
    centre's neighbour is a negative; the default stays the focal heatmap loss."""
    from samfpga.models.proposals.train import loss_fn

    pos = torch.zeros(1, 4, 4, dtype=torch.bool)
    pos[0, 1, 1] = True
    heat = torch.zeros(1, 4, 4)
    heat[0, 1, 1], heat[0, 1, 2] = 1.0, 0.9  # the neighbour is near 1 in the heatmap
    reg = torch.zeros(1, 6, 4, 4)
    out = torch.full((1, 7, 4, 4), -8.0)
    out[:, 1:] = 0.0
    out[0, 0, 1, 1] = 8.0
    good = loss_fn(out, heat, reg, pos, 1.0, "cells")
    assert set(good) == {"loss", "bce", "l1"} and float(good["bce"]) < 0.01
    neighbour_on = out.clone()
    neighbour_on[0, 0, 1, 2] = 8.0
    assert float(loss_fn(neighbour_on, heat, reg, pos, 1.0, "cells")["bce"]) > 7.0  # a false positive costs
    # the focal heatmap loss barely charges the neighbour (its weight (1 - 0.9) ** 4)
    assert float(loss_fn(neighbour_on, heat, reg, pos, 1.0)["focal"]) < 0.01
    assert load_train_config(None, ["target=cells"]).target == "cells"
    assert load_train_config(None).target == "heatmap"
    with pytest.raises(ValueError, match="target must be one of"):
        load_train_config(None, ["target=gauss"])


def test_cell_grid_points_ranks_cells_and_takes_all_their_points():
    from samfpga.everything.amg import build_point_grid
    from samfpga.everything.refine import RefineConfig, cell_grid_points

    grid = build_point_grid(8) * 64.0  # 8 x 8 grid on a 64-pixel square input: 2 x 2 points per 4 x 4 cell
    prob = np.zeros((4, 4))
    prob[3, 0], prob[0, 2], prob[1, 1] = 0.9, 0.8, 0.3
    idx, cells = cell_grid_points(prob, grid, 64, score_thresh=0.5, max_cells=10)
    assert cells.tolist() == [12, 2]  # best first, the 0.3 cell under the threshold
    assert idx.tolist() == [48, 49, 56, 57, 4, 5, 12, 13]  # each cell's 2 x 2 grid points, row-major
    assert cell_grid_points(prob, grid, 64, 0.0, max_cells=1)[1].tolist() == [12]
    # a non-square image: the grid lies in the top half of the input (the rest is padding): padded cells that
    # score high hold no grid point and are skipped, not counted against max_cells
    wide = grid * np.array([1.0, 0.5])
    prob[3, 0] = prob[2, 3] = 0.95
    idx, cells = cell_grid_points(prob, wide, 64, 0.5, max_cells=1)
    assert cells.tolist() == [2] and len(idx) == 8  # 2 columns x 4 rows of the squeezed grid
    with pytest.raises(ValueError, match="first_pass must be one of"):
        RefineConfig(first_pass="grid")
    with pytest.raises(ValueError, match="max_cells must be >= 1"):
        RefineConfig(first_pass="cells", max_cells=0)


def test_head_depth_widens_the_view():
    """``depth`` 3x3 layers: a change in one cell reaches ``depth`` cells each side; depth 2 keeps the bundled
    head's layout (its state dict loads)."""
    from samfpga.models.proposals.head import ProposalHead as TorchHead

    assert [k for k in TorchHead(8, 4).state_dict() if k.endswith("weight")] == [
        "body.0.weight", "body.2.weight", "body.4.weight"]
    torch.manual_seed(0)
    for depth in (2, 4):
        head = TorchHead(8, 4, depth).eval()
        x = torch.randn(1, 8, 15, 15)
        y = x.clone()
        y[0, :, 7, 7] += 5.0
        with torch.no_grad():
            changed = (head(x) - head(y)).abs().amax(dim=(0, 1)) > 0
        rows = torch.nonzero(changed.any(1)).flatten()
        assert rows.min() == 7 - depth and rows.max() == 7 + depth
    with pytest.raises(ValueError, match="depth must be >= 1"):
        TorchHead(8, 4, 0)


def test_targets_pack_unpack_round_trip(tmp_path, capsys):
    """Targets computed in worker processes, packed without embeddings and unpacked elsewhere (embeddings
    recomputed there) give the same cache files; a pack for another teacher or split is refused by name."""
    from samfpga.models.proposals import targets as TG
    from samfpga.models.proposals.train import main

    over = ["images=3", "dense_points_per_side=4", "threads=1"]
    cfg_a = load_train_config(None, over + [f"cache_dir={tmp_path / 'a'}", "workers=2"])
    assert TG.compute_targets(cfg_a, budget_s=0.0, log=False) == 0  # no image started after the budget
    assert TG.compute_targets(cfg_a, log=False) == 3
    pack = tmp_path / "packs" / "t.npz"
    assert TG.pack(cfg_a, pack) == 3
    meta, items = TG.read_pack(pack)
    assert meta["images"] == 3 and meta["cache_key"] == TG.cache_folder(cfg_a).name and len(items) == 3

    rc = main(["--targets-only", "--unpack", str(pack), *over, f"cache_dir={tmp_path / 'b'}"])
    assert rc == 0, capsys.readouterr().out
    a_files = sorted(TG.cache_folder(cfg_a).glob("*.npz"))
    b_folder = tmp_path / "b" / TG.cache_folder(cfg_a).name
    assert [f.name for f in a_files] == [f.name for f in sorted(b_folder.glob("*.npz"))] and len(a_files) == 3
    for f in a_files:
        with np.load(f) as za, np.load(b_folder / f.name) as zb:
            assert sorted(za.files) == sorted(zb.files) == ["boxes", "centres", "embedding", "prompt_centres"]
            for k in za.files:
                np.testing.assert_array_equal(za[k], zb[k])

    other = load_train_config(None, over + [f"cache_dir={tmp_path / 'c'}", "data_seed=5"])
    with pytest.raises(ValueError, match="made for cache key"):
        TG.unpack(other, pack, log=False)
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("*.npz"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        TG.read_pack(tmp_path / "missing.npz")
    capsys.readouterr()
    assert main(["--pack", str(pack), "--out", str(tmp_path / "run"), *over]) == 2
    assert "--budget-s and --pack go with --targets-only" in capsys.readouterr().out
