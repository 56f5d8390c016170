"""Video bundles that reference their image encoder (video.json version 2) in the board environment: the bundled
default takes its encoder from the bundled image model; loading checks the hash and names both files when they
differ; ``samfpga.video.pack`` converts between the referencing and the self-contained layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from samfpga.assets import DEFAULT_DIR, VIDEO_DEFAULT_DIR
from samfpga.bundle import BundleError, sha256_file
from samfpga.video.bundle import load_video_bundle
from samfpga.video.pack import main as pack_main
from samfpga.video.pack import write_referencing, write_self_contained
from samfpga.video.predictor import VideoPredictor
from tests.support.image_bundle_from import image_bundle_from

TINY = Path(__file__).parent / "data" / "tiny_video_bundle"
TINY_IMAGE = Path(__file__).parent / "data" / "tiny_bundle"


def frames(n: int = 5, size: int = 96):
    rng = np.random.default_rng(0)
    for t in range(n):
        f = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        f[20:50, 10 + 6 * t:40 + 6 * t] = (230, 40, 40)
        yield f


def track(bundle: Path) -> list[np.ndarray]:
    pred = VideoPredictor.from_bundle(bundle, threads=1)
    state = pred.init_state(list(frames()))
    pred.add_new_points_or_box(state, 0, 1, box=[10, 20, 40, 50])
    return [logits for _, _, logits in pred.propagate_in_video(state)]


def test_bundled_default_references_the_image_encoder():
    # the video parts were trained around the image default's frozen encoder (make train-video), so the video
    # default takes that very encoder from the image bundle (by sha256) and the FPGA build of the image default
    # serves video too
    meta = json.loads((VIDEO_DEFAULT_DIR / "video.json").read_text())
    assert meta["version"] == 2 and "encoder" not in meta["files"] and meta["image_bundle"] == "../default"
    assert not (VIDEO_DEFAULT_DIR / "encoder.onnx").exists()
    b = load_video_bundle(VIDEO_DEFAULT_DIR)
    assert b.image_bundle == DEFAULT_DIR.resolve()
    assert b.paths["encoder"] == (DEFAULT_DIR / "encoder.onnx").resolve()
    assert b.encoder_bundle().encoder_path == b.paths["encoder"]
    assert meta["sha256"]["encoder"] == sha256_file(DEFAULT_DIR / "encoder.onnx")


def test_referencing_tracks_like_self_contained(tmp_path):
    img = image_bundle_from(TINY, tmp_path / "image")
    ref = write_referencing(TINY, tmp_path / "video", img)
    meta = json.loads((ref / "video.json").read_text())
    assert meta["version"] == 2 and meta["image_bundle"] == "../image" and not (ref / "encoder.onnx").exists()
    assert meta["sha256"]["encoder"] == sha256_file(img / "encoder.onnx")
    assert load_video_bundle(ref).paths["encoder"] == (img / "encoder.onnx").resolve()
    for a, b in zip(track(TINY), track(ref), strict=True):
        np.testing.assert_array_equal(a, b)  # the same encoder graph, byte for byte
    # back to one directory: it holds the encoder again and loads with the image bundle gone
    one = write_self_contained(ref, tmp_path / "one")
    shutil.rmtree(img)
    meta1 = json.loads((one / "video.json").read_text())
    assert meta1["version"] == 1 and "image_bundle" not in meta1 and (one / "encoder.onnx").is_file()
    assert sha256_file(one / "encoder.onnx") == meta["sha256"]["encoder"]
    for a, b in zip(track(TINY), track(one), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(BundleError, match="image bundle it takes its encoder from"):
        load_video_bundle(ref)


def test_other_encoder_fails_naming_both_files(tmp_path):
    img = image_bundle_from(TINY, tmp_path / "image")
    ref = write_referencing(TINY, tmp_path / "video", img)
    # a valid image bundle that holds another encoder (its own hashes are right)
    other = image_bundle_from(TINY, tmp_path / "other", encoder=TINY_IMAGE / "encoder.onnx")
    shutil.rmtree(img)
    other.rename(img)
    with pytest.raises(BundleError) as err:
        load_video_bundle(ref)
    msg = str(err.value)
    assert str((img / "encoder.onnx").resolve()) in msg and str(ref / "video.json") in msg, msg
    assert "sha256.encoder" in msg and "not the one" in msg


def test_modified_image_encoder_fails(tmp_path):
    img = image_bundle_from(TINY, tmp_path / "image")
    ref = write_referencing(TINY, tmp_path / "video", img)
    data = bytearray((img / "encoder.onnx").read_bytes())
    data[-1] ^= 1
    (img / "encoder.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError) as err:
        load_video_bundle(ref)
    assert "encoder.onnx" in str(err.value) and str(ref / "video.json") in str(err.value), str(err.value)
    # verify_hashes=False skips the file hash, never the manifests' agreement
    assert load_video_bundle(ref, verify_hashes=False).paths["encoder"] == (img / "encoder.onnx").resolve()


def test_moved_bundle_finds_its_image_bundle_when_told(tmp_path):
    img = image_bundle_from(TINY, tmp_path / "image")
    ref = write_referencing(TINY, tmp_path / "video", img)
    moved = tmp_path / "elsewhere" / "deeper" / "video"
    moved.parent.mkdir(parents=True)
    ref.rename(moved)
    with pytest.raises(BundleError, match="not usable"):
        load_video_bundle(moved)
    assert load_video_bundle(moved, image_bundle=img).paths["encoder"] == (img / "encoder.onnx").resolve()


def test_referencing_refuses_another_encoder(tmp_path):
    # the tiny image bundle's encoder has another input size and feature shape than the tiny video model's
    with pytest.raises(BundleError, match="not the same image encoder"):
        write_referencing(TINY, tmp_path / "video", TINY_IMAGE)
    assert not (tmp_path / "video").exists() and not list(tmp_path.glob(".video*"))


def test_pack_cli(tmp_path, capsys):
    img = image_bundle_from(TINY, tmp_path / "image")
    assert pack_main([str(TINY), "--out", str(tmp_path / "ref"), "--encoder-from", str(img)]) == 0
    assert load_video_bundle(tmp_path / "ref").image_bundle == img.resolve()
    assert pack_main([str(tmp_path / "ref"), "--out", str(tmp_path / "one")]) == 0
    b = load_video_bundle(tmp_path / "one")
    assert b.image_bundle is None and b.paths["encoder"] == (tmp_path / "one" / "encoder.onnx").resolve()

    def graphs_bytes(d: Path) -> int:  # video.json's size changes too (its fields), by a few bytes
        return sum(f.stat().st_size for f in d.iterdir() if f.name != "video.json")

    size, ref_size = graphs_bytes(tmp_path / "one"), graphs_bytes(tmp_path / "ref")
    assert size - ref_size == (img / "encoder.onnx").stat().st_size
    capsys.readouterr()
    assert pack_main([str(tmp_path / "ref"), "--out", str(tmp_path / "one")]) == 2
    assert "exists" in capsys.readouterr().out
    assert pack_main([str(tmp_path / "nothing"), "--out", str(tmp_path / "two")]) == 2
    assert "video.json" in capsys.readouterr().out and not (tmp_path / "two").exists()
