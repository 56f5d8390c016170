"""``samfpga`` CLI in-process: happy paths and every bad-input case (one-line error, exit 2, no output left)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from samfpga import cli
from samfpga.image_io import read_image
from samfpga.models import build_sam, save_checkpoint

BUNDLE = Path(__file__).parent / "runtime" / "data" / "tiny_bundle"


def _rgb(h: int = 40, w: int = 60) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 4, yy * 6, (xx + yy) * 2], axis=-1) % 256
    img[10:25, 15:40] = [220, 40, 30]
    return img.astype(np.uint8)


@pytest.fixture
def image(tmp_path) -> Path:
    p = tmp_path / "img.png"
    Image.fromarray(_rgb()).save(p)
    return p


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = cli.main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def assert_clean_failure(rc: int, err: str, out: Path, *words: str) -> None:
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], lines[0]
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")], "temp dir left behind"


def test_segment_point(image, tmp_path, capsys):
    out = tmp_path / "out"
    rc, stdout, err = run(["segment", str(image), "--point", "30,17", "--model", str(BUNDLE), "--out", str(out)], capsys)
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["mask_0.png", "overlay.png", "scores.json"]
    scores = json.loads((out / "scores.json").read_text())
    assert scores["image_size"] == [40, 60] and scores["prompt"]["labels"] == [1] and len(scores["masks"]) == 1
    mask = np.asarray(Image.open(out / "mask_0.png"))
    assert mask.shape == (40, 60) and set(np.unique(mask)) <= {0, 255}
    assert scores["masks"][0]["area"] == int((mask == 255).sum())
    assert np.asarray(Image.open(out / "overlay.png")).shape == (40, 60, 3)
    assert "best #0" in stdout


def test_segment_multimask_box_and_background_point(image, tmp_path, capsys):
    out = tmp_path / "out"
    rc, _, err = run(["segment", str(image), "--point", "30,17,1", "--point", "5,35,0", "--box", "10,5,45,30",
                      "--multimask", "--model", str(BUNDLE), "--out", str(out)], capsys)
    assert rc == 0, err
    scores = json.loads((out / "scores.json").read_text())
    assert [m["file"] for m in scores["masks"]] == ["mask_0.png", "mask_1.png", "mask_2.png"]
    assert scores["prompt"]["box"] == [10, 5, 45, 30] and scores["prompt"]["labels"] == [1, 0]
    assert scores["best"] == int(np.argmax([m["iou_prediction"] for m in scores["masks"]]))


def test_segment_into_existing_dir_and_default_model(image, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    monkeypatch.setattr(cli, "default_bundle_dir", lambda: BUNDLE)
    rc, _, err = run(["segment", str(image), "--box", "10,5,45,30", "--out", str(out)], capsys)
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "mask_0.png", "overlay.png", "scores.json"]
    monkeypatch.setattr(cli, "default_bundle_dir", lambda: None)
    rc, _, err = run(["segment", str(image), "--box", "10,5,45,30", "--out", str(tmp_path / "o2")], capsys)
    assert_clean_failure(rc, err, tmp_path / "o2", "no bundled default model")


def test_segment_with_checkpoint(image, tmp_path, capsys):
    from samfpga.models.export.testbundle import TINY

    torch.manual_seed(0)
    sam = build_sam("vit_t", **TINY)
    ckpt = save_checkpoint(sam, tmp_path / "tiny.pt", config=sam.config.to_dict())
    out = tmp_path / "out"
    rc, _, err = run(["segment", str(image), "--point", "30,17", "--checkpoint", str(ckpt), "--out", str(out)], capsys)
    assert rc == 0, err
    assert "tiny.pt" in json.loads((out / "scores.json").read_text())["model"]
    # the same weights as an official-layout state dict, read as the default vit_t: wrong architecture
    plain = save_checkpoint(sam, tmp_path / "plain.pt")
    rc, _, err = run(["segment", str(image), "--point", "30,17", "--checkpoint", str(plain), "--out",
                      str(tmp_path / "o2")], capsys)
    assert_clean_failure(rc, err, tmp_path / "o2", "plain.pt", "does not fit the model architecture")


def _png16_rgb(path: Path, h: int = 8, w: int = 8) -> None:
    """A 16-bit RGB PNG written by hand (Pillow cannot write one)."""
    raw = b"".join(b"\0" + np.full((w, 3), 0x1234, ">u2").tobytes() for _ in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


def _bad_image(tmp_path: Path, kind: str) -> Path:
    p = tmp_path / f"bad_{kind}.png"
    rgb = _rgb()
    if kind == "missing":
        return tmp_path / "nope.png"
    if kind == "text":
        p.write_text("this is not an image\n")
    elif kind == "truncated":
        Image.fromarray(rgb).save(p)
        p.write_bytes(p.read_bytes()[:60])
    elif kind == "gray":
        Image.fromarray(rgb[..., 0]).save(p)
    elif kind == "rgba":
        Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(p)
    elif kind == "gray16":
        Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(p)
    elif kind == "rgb16":
        _png16_rgb(p)
    elif kind == "directory":
        p.mkdir()
    return p


@pytest.mark.parametrize("kind,words", [
    ("missing", ["nope.png", "no such file"]),
    ("text", ["bad_text.png", "not an image file"]),
    ("truncated", ["bad_truncated.png", "cannot decode"]),
    ("gray", ["bad_gray.png", "grayscale", "--convert"]),
    ("rgba", ["bad_rgba.png", "RGB with alpha"]),
    ("gray16", ["bad_gray16.png", "16-bit grayscale"]),
    ("rgb16", ["bad_rgb16.png", "16-bit RGB"]),
    ("directory", ["bad_directory.png", "not a file"]),
])
def test_bad_image(tmp_path, capsys, kind, words):
    path = _bad_image(tmp_path, kind)
    out = tmp_path / "out"
    rc, _, err = run(["segment", str(path), "--point", "3,3", "--model", str(BUNDLE), "--out", str(out)], capsys)
    assert_clean_failure(rc, err, out, *words)


@pytest.mark.parametrize("kind", ["gray", "rgba", "gray16", "rgb16"])
def test_convert_accepts_with_note(tmp_path, capsys, kind):
    path = _bad_image(tmp_path, kind)
    out = tmp_path / "out"
    rc, _, err = run(["segment", str(path), "--point", "3,3", "--convert", "--model", str(BUNDLE), "--out", str(out)],
                     capsys)
    assert rc == 0, err
    assert "note: " in err and "converted" in err
    img, note = read_image(path, convert=True)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and note
    if kind == "gray16":  # top 8 bits of v * 257 is v
        assert np.array_equal(img[..., 0], _rgb()[..., 0])


@pytest.mark.parametrize("args,words", [
    (["--point", "60,10"], ["point (60, 10)", "outside the image"]),
    (["--point=-1,10"], ["outside the image"]),  # a leading minus needs the = form
    (["--box", "0,0,61,40"], ["box", "outside the image"]),
    ([], ["empty prompt"]),
    (["--point", "1,a"], ["--point", "malformed point '1,a'"]),
    (["--point", "12"], ["malformed point '12'"]),
    (["--point", "1,2,3"], ["label must be 1"]),
    (["--point", "nan,2"], ["not finite"]),
    (["--box", "1,2,3"], ["malformed box"]),
    (["--box", "30,2,10,20"], ["X0 < X1"]),
])
def test_bad_prompt(image, tmp_path, capsys, args, words):
    out = tmp_path / "out"
    rc, _, err = run(["segment", str(image), *args, "--model", str(BUNDLE), "--out", str(out)], capsys)
    assert_clean_failure(rc, err, out, *words)


def test_bad_model_dir(image, tmp_path, capsys):
    out = tmp_path / "out"
    rc, _, err = run(["segment", str(image), "--point", "3,3", "--model", str(tmp_path), "--out", str(out)], capsys)
    assert_clean_failure(rc, err, out, "bundle.json", "no such file")
    rc, _, err = run(["segment", str(image), "--point", "3,3", "--checkpoint", str(tmp_path / "x.pt"), "--out",
                      str(out)], capsys)
    assert_clean_failure(rc, err, out, "x.pt", "no such checkpoint")


def test_out_is_a_file(image, tmp_path, capsys):
    out = tmp_path / "f.txt"
    out.write_text("x")
    rc, _, err = run(["segment", str(image), "--point", "3,3", "--model", str(BUNDLE), "--out", str(out)], capsys)
    assert rc == 2 and "not a directory" in err and out.read_text() == "x"


def test_dispatch(capsys, monkeypatch):
    rc, out, err = run(["stats", "vit_t", "--image-size", "256"], capsys)
    assert rc == 0, err
    assert "encoder" in out
    monkeypatch.setitem(cli.DISPATCH, "train", "samfpga.models.no_such_module")
    rc, _, err = run(["train", "--help"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "'samfpga train' is not available" in err and "no_such_module" in err


class _FakeGenerator:
    """Stands in for samfpga.everything's generators to test the CLI's wiring on its own: two decoder batches,
    records in SamAutomaticMaskGenerator's coco_rle layout."""

    def __init__(self, predictor, output_mode: str = "binary_mask", progress: bool = False, **params) -> None:
        assert output_mode == "coco_rle"
        if params["points_per_side"] < 4:
            raise ValueError(f"points_per_side must be >= 4, got {params['points_per_side']}")
        self.predictor, self.params, self.progress = predictor, params, progress

    def generate(self, image: np.ndarray) -> list[dict]:
        from pycocotools import mask as mask_utils

        p = self.predictor
        p.set_image(image)
        records = []
        for pts in (np.array([[[10.0, 10.0]], [[30.0, 20.0]]]), np.array([[[50.0, 30.0]]])):
            coords = p.transform.apply_coords(pts, p.original_size).astype(np.float32)
            masks, iou, _ = p.predict_batch(coords, np.ones(coords.shape[:2]), multimask_output=False)
            for m, s, pt in zip(masks[:, 0], iou[:, 0], pts[:, 0]):
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                rle["counts"] = rle["counts"].decode()
                records.append({"segmentation": rle, "area": int(m.sum()), "bbox": [0, 0, 1, 1],
                                "predicted_iou": float(s), "point_coords": [pt.tolist()], "stability_score": 1.0,
                                "crop_box": [0, 0, 60, 40]})
        return records


def test_everything_wiring(image, tmp_path, capsys, monkeypatch):
    import sys
    import types

    fake = types.ModuleType("samfpga.everything")
    fake.AutomaticMaskGenerator = fake.HierarchicalMaskGenerator = _FakeGenerator
    monkeypatch.setitem(sys.modules, "samfpga.everything", fake)
    out = tmp_path / "out"
    rc, stdout, err = run(["everything", str(image), "--mode", "dense", "--points-per-side", "4", "--model",
                           str(BUNDLE), "--out", str(out)], capsys)
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["masks.json", "overlay.png"]
    data = json.loads((out / "masks.json").read_text())
    assert data["decoder_batches"] == 2 and data["decoder_prompts"] == 3 and len(data["annotations"]) == 3
    assert data["params"]["points_per_side"] == 4 and data["annotations"][0]["segmentation"]["size"] == [40, 60]
    assert "3 masks" in stdout and "2 decoder batches" in stdout
    rc, _, err = run(["everything", str(image), "--points-per-side", "2", "--model", str(BUNDLE), "--out",
                      str(tmp_path / "o3")], capsys)
    assert_clean_failure(rc, err, tmp_path / "o3", "points_per_side must be >= 4")
    rc, _, err = run(["everything", str(image), "--mode", "hierarchical", "--crop-n-layers", "1", "--model",
                      str(BUNDLE), "--out", str(tmp_path / "o2")], capsys)
    assert_clean_failure(rc, err, tmp_path / "o2", "--crop-n-layers applies to --mode dense only")


def test_everything_without_generators(image, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "samfpga.everything", None)  # import raises ImportError
    rc, _, err = run(["everything", str(image), "--model", str(BUNDLE), "--out", str(tmp_path / "o")], capsys)
    assert_clean_failure(rc, err, tmp_path / "o", "segment-everything is not available")
