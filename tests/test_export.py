"""ONNX export: the exported encoder and prompt+mask decoder graphs vs the torch modules they come from.

Tolerance: max abs diff <= 1e-4 (onnxruntime float32 vs torch float32) on embeddings, low-res mask logits and
IoU predictions. The decoder graph is compared with the model's own ``prompt_encoder`` + ``mask_decoder``
called the official way (points padded when there is no box, boxes as (B, 4), masks as dense prompts).
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from samfpga.bundle import BundleError, load_bundle
from samfpga.models import build_sam, save_checkpoint
from samfpga.models.export import BUNDLE_FORMAT, ONNX_OPSET, export_bundle
from samfpga.models.export.cli import main as export_main

TOL = 1e-4
SMALL = dict(image_size=128, embed_dims=[16, 32, 48, 64], depths=[1, 1, 1, 1], num_heads=[1, 2, 3, 4],
             window_sizes=[4, 4, 4, 4], out_chans=64, prompt_embed_dim=64, decoder_mlp_dim=128, decoder_heads=4,
             iou_head_hidden_dim=64)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    sam = build_sam("vit_t", **SMALL)
    # non-trivial values everywhere (random init leaves some embeddings/biases at zero)
    with torch.no_grad():
        for p in sam.parameters():
            p.add_(0.02 * torch.randn_like(p))
    root = export_bundle(sam, tmp_path_factory.mktemp("export") / "bundle", source="test")
    dec = ort.InferenceSession(str(root / "decoder.onnx"), providers=["CPUExecutionProvider"])
    enc = ort.InferenceSession(str(root / "encoder.onnx"), providers=["CPUExecutionProvider"])
    return sam, root, enc, dec


def _torch_decoder(sam, emb, coords, labels, boxes, masks):
    points = None if coords is None else (torch.from_numpy(coords), torch.from_numpy(labels))
    sparse, dense = sam.prompt_encoder(points=points, boxes=None if boxes is None else torch.from_numpy(boxes),
                                       masks=None if masks is None else torch.from_numpy(masks))
    return sam.mask_decoder.predict_masks(torch.from_numpy(emb), sam.prompt_encoder.get_dense_pe(), sparse, dense)


def _onnx_inputs(coords, labels, boxes, batch):
    """The ONNX point convention: padding point (label -1) without a box, box corners as labels 2, 3."""
    parts_c, parts_l = [], []
    if coords is not None:
        parts_c.append(coords)
        parts_l.append(labels.astype(np.float32))
    if boxes is not None:
        parts_c.append(boxes.reshape(-1, 2, 2))
        parts_l.append(np.tile(np.array([2.0, 3.0], np.float32), (batch, 1)))
    elif coords is not None:
        parts_c.append(np.zeros((batch, 1, 2), np.float32))
        parts_l.append(-np.ones((batch, 1), np.float32))
    return np.concatenate(parts_c, 1).astype(np.float32), np.concatenate(parts_l, 1).astype(np.float32)


CASES = {
    "one_point": (1, 1, False, False),
    "points": (1, 4, False, False),
    "box": (1, 0, True, False),
    "points_box": (1, 2, True, False),
    "points_mask": (1, 2, False, True),
    "batched_points": (6, 1, False, False),
    "batched_points_boxes": (5, 3, True, False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_decoder_graph_matches_torch(exported, case):
    sam, _, _, dec = exported
    batch, n, with_box, with_mask = CASES[case]
    rng = np.random.default_rng(len(case))
    emb = rng.normal(size=(1, 64, 8, 8)).astype(np.float32)
    coords = rng.uniform(0, 128, size=(batch, n, 2)).astype(np.float32) if n else None
    labels = rng.integers(0, 2, size=(batch, n)).astype(np.int64) if n else None
    boxes = np.sort(rng.uniform(0, 128, size=(batch, 2, 2)), axis=1).reshape(batch, 4).astype(np.float32) \
        if with_box else None
    masks = rng.normal(size=(1, 1, 32, 32)).astype(np.float32) if with_mask else None
    with torch.no_grad():
        ref_masks, ref_iou = _torch_decoder(sam, emb, coords, labels, boxes, masks)
    pc, pl = _onnx_inputs(coords, labels, boxes, batch)
    low, iou = dec.run(None, {
        "image_embeddings": emb, "point_coords": pc, "point_labels": pl,
        "mask_input": masks if masks is not None else np.zeros((1, 1, 32, 32), np.float32),
        "has_mask_input": np.array([1.0 if with_mask else 0.0], np.float32),
    })
    assert low.shape == (batch, 4, 32, 32) and iou.shape == (batch, 4)
    assert np.abs(low - ref_masks.numpy()).max() <= TOL
    assert np.abs(iou - ref_iou.numpy()).max() <= TOL
    # multimask on/off is a slice of the four mask tokens, as MaskDecoder.forward does
    for multimask, sl in ((True, slice(1, None)), (False, slice(0, 1))):
        with torch.no_grad():
            sparse, dense = sam.prompt_encoder(
                points=None if coords is None else (torch.from_numpy(coords), torch.from_numpy(labels)),
                boxes=None if boxes is None else torch.from_numpy(boxes),
                masks=None if masks is None else torch.from_numpy(masks))
            m, i = sam.mask_decoder(torch.from_numpy(emb), sam.prompt_encoder.get_dense_pe(), sparse, dense, multimask)
        assert np.abs(low[:, sl] - m.numpy()).max() <= TOL and np.abs(iou[:, sl] - i.numpy()).max() <= TOL


def test_decoder_graph_per_prompt_mask_batch(exported):
    sam, _, _, dec = exported
    rng = np.random.default_rng(5)
    emb = rng.normal(size=(1, 64, 8, 8)).astype(np.float32)
    coords = rng.uniform(0, 128, size=(3, 1, 2)).astype(np.float32)
    labels = np.ones((3, 1), np.int64)
    masks = rng.normal(size=(3, 1, 32, 32)).astype(np.float32)
    with torch.no_grad():
        ref_masks, ref_iou = _torch_decoder(sam, emb, coords, labels, None, masks)
    pc, pl = _onnx_inputs(coords, labels, None, 3)
    low, iou = dec.run(None, {"image_embeddings": emb, "point_coords": pc, "point_labels": pl, "mask_input": masks,
                              "has_mask_input": np.array([1.0], np.float32)})
    assert np.abs(low - ref_masks.numpy()).max() <= TOL and np.abs(iou - ref_iou.numpy()).max() <= TOL


def test_encoder_graph_matches_torch(exported):
    sam, _, enc, _ = exported
    x = np.random.default_rng(0).normal(size=(1, 3, 128, 128)).astype(np.float32)
    with torch.no_grad():
        ref = sam.image_encoder(torch.from_numpy(x)).numpy()
    (out,) = enc.run(None, {"image": x})
    assert out.shape == ref.shape == (1, 64, 8, 8)
    assert np.abs(out - ref).max() <= TOL


def test_bundle_metadata(exported):
    sam, root, _, _ = exported
    meta = json.loads((root / "bundle.json").read_text())
    assert meta["format"] == BUNDLE_FORMAT and meta["version"] == 1 and meta["opset"] == ONNX_OPSET
    assert meta["image_size"] == 128 and meta["embedding_shape"] == [64, 8, 8] and meta["mask_input_size"] == [32, 32]
    assert meta["model_config"] == sam.config.to_dict()
    b = load_bundle(root)
    assert b.image_size == 128 and b.embedding_shape == (64, 8, 8) and b.num_mask_tokens == 4
    assert b.pixel_mean == pytest.approx((123.675, 116.28, 103.53))


def test_bundle_validation_names_file_and_field(exported, tmp_path):
    _, root, _, _ = exported
    import shutil

    bad = tmp_path / "b"
    shutil.copytree(root, bad)
    meta = json.loads((bad / "bundle.json").read_text())
    for field, value, msg in [("embedding_shape", [64, 8], "embedding_shape"), ("format", "x", "'format'"),
                              ("image_size", "128", "image_size")]:
        m = dict(meta, **{field: value})
        (bad / "bundle.json").write_text(json.dumps(m))
        with pytest.raises(BundleError, match=msg):
            load_bundle(bad)
    (bad / "bundle.json").write_text(json.dumps(meta))
    with open(bad / "decoder.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match=r"decoder.onnx: sha256"):
        load_bundle(bad)
    (bad / "decoder.onnx").unlink()
    with pytest.raises(BundleError, match=r"decoder.onnx: no such file .*files.decoder"):
        load_bundle(bad)
    with pytest.raises(BundleError, match="no such file"):
        load_bundle(tmp_path / "nothing")


def test_export_cli_checkpoint_and_wrong_architecture(tmp_path, capsys):
    torch.manual_seed(1)
    sam = build_sam("vit_t", **SMALL)
    ckpt = save_checkpoint(sam, tmp_path / "small.pt", half=True, config=sam.config.to_dict())
    assert export_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "b")]) == 0
    b = load_bundle(tmp_path / "b")
    assert b.image_size == 128 and "small.pt" in b.source
    # an existing bundle directory is refused without --overwrite; with it, only the bundle's files change
    assert export_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "b")]) == 2
    assert "exists" in capsys.readouterr().err
    (tmp_path / "b" / "checkpoint.pt").write_bytes(b"kept")
    assert export_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "b"), "--overwrite"]) == 0
    assert (tmp_path / "b" / "checkpoint.pt").read_bytes() == b"kept"
    assert load_bundle(tmp_path / "b").sha256 == b.sha256  # export is deterministic
    # an optional part made for the previous encoder (the proposals head) is dropped from the manifest, loudly
    manifest = tmp_path / "b" / "bundle.json"
    meta = json.loads(manifest.read_text())
    meta["files"]["proposals"] = "proposals.onnx"
    manifest.write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"drops \['proposals'\].*proposals.install"):
        assert export_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "b"), "--overwrite"]) == 0
    assert "proposals" not in json.loads(manifest.read_text())["files"]
    assert load_bundle(tmp_path / "b").sha256 == b.sha256
    # official-layout state dict of the small model, read as vit_t: wrong architecture
    plain = save_checkpoint(sam, tmp_path / "plain.pt")
    assert export_main(["--checkpoint", str(plain), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "does not fit the model architecture" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_vit_t_size_decoder_graph(tmp_path):
    """The full-size decoder (256 channels on the 64x64 embedding of a 1024 input), one point prompt + box."""
    from samfpga.models.export import export_decoder

    torch.manual_seed(2)
    sam = build_sam("vit_t")
    path = export_decoder(sam, tmp_path / "decoder.onnx")
    dec = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(1, 256, 64, 64)).astype(np.float32)
    coords = np.array([[[400.0, 300.0]]], np.float32)
    labels = np.ones((1, 1), np.int64)
    boxes = np.array([[250.0, 200.0, 600.0, 500.0]], np.float32)
    with torch.no_grad():
        ref_masks, ref_iou = _torch_decoder(sam, emb, coords, labels, boxes, None)
    pc, pl = _onnx_inputs(coords, labels, boxes, 1)
    low, iou = dec.run(None, {"image_embeddings": emb, "point_coords": pc, "point_labels": pl,
                              "mask_input": np.zeros((1, 1, 256, 256), np.float32),
                              "has_mask_input": np.zeros(1, np.float32)})
    assert low.shape == (1, 4, 256, 256)
    assert np.abs(low - ref_masks.numpy()).max() <= TOL and np.abs(iou - ref_iou.numpy()).max() <= TOL


def test_committed_default_bundle_matches_its_checkpoint():
    """sw/samfpga/assets/default/{encoder,decoder}.onnx were exported from sw/samfpga/assets/default/checkpoint.pt (not stale).
    Re-export after a new checkpoint: python -m samfpga.models.export --checkpoint sw/samfpga/assets/default/checkpoint.pt
    --out sw/samfpga/assets/default --overwrite"""
    from samfpga.assets import default_bundle_dir, default_checkpoint

    root, ckpt = default_bundle_dir(), default_checkpoint()
    assert root is not None and ckpt is not None, "the bundled default model is missing"
    sam = build_sam(checkpoint=ckpt)
    b = load_bundle(root)
    assert b.model_config == sam.config.to_dict()
    s = b.image_size
    x = np.random.default_rng(0).normal(size=(1, 3, s, s)).astype(np.float32)
    enc = ort.InferenceSession(str(b.encoder_path), providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(b.decoder_path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        emb_t = sam.image_encoder(torch.from_numpy(x))
    (emb,) = enc.run(None, {"image": x})
    assert np.abs(emb - emb_t.numpy()).max() <= TOL
    coords = np.array([[[s * 0.4, s * 0.6]]], np.float32)
    labels = np.ones((1, 1), np.int64)
    with torch.no_grad():
        ref_masks, ref_iou = _torch_decoder(sam, emb_t.numpy(), coords, labels, None, None)
    pc, pl = _onnx_inputs(coords, labels, None, 1)
    h4, w4 = b.mask_input_size
    low, iou = dec.run(None, {"image_embeddings": emb_t.numpy(), "point_coords": pc, "point_labels": pl,
                              "mask_input": np.zeros((1, 1, h4, w4), np.float32),
                              "has_mask_input": np.zeros(1, np.float32)})
    assert np.abs(low - ref_masks.numpy()).max() <= TOL and np.abs(iou - ref_iou.numpy()).max() <= TOL
