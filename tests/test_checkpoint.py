"""Checkpoint loading: official-layout files made here (nothing is downloaded), strictness, pickled modules."""

from __future__ import annotations

import pytest
import torch

from samfpga.models import CheckpointError, build_sam, read_checkpoint, save_checkpoint
from tests.support.official import official_vit_t, seeded_state_dict


@pytest.fixture(scope="module")
def official_state() -> dict[str, torch.Tensor]:
    """A state dict in the layout of tinysam.pth / mobile_sam.pt, made from the official module."""
    ref = official_vit_t()
    return seeded_state_dict(ref, seed=7)


@pytest.mark.parametrize("name", ["tinysam.pth", "tinysam_42.3.pth", "mobile_sam.pt"])
def test_official_layout_loads_strictly(tmp_path, official_state, name):
    path = tmp_path / name
    torch.save(official_state, path)
    model = build_sam("vit_t", checkpoint=path)
    got = model.state_dict()
    assert set(got) == set(official_state)
    for k, v in official_state.items():
        assert torch.equal(got[k], v), k
    assert not model.training


def test_fp16_official_file_is_upcast(tmp_path, official_state):
    path = tmp_path / "half.pth"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in official_state.items()}, path)
    model = build_sam("vit_t", checkpoint=path)
    w = model.image_encoder.patch_embed.seq[0].c.weight
    assert w.dtype == torch.float32
    ref = official_state["image_encoder.patch_embed.seq.0.c.weight"].half().float()
    assert torch.equal(w, ref)


def test_mismatch_names_missing_unexpected_and_misshaped_keys(tmp_path, official_state):
    state = dict(official_state)
    del state["mask_decoder.iou_token.weight"]
    state["image_encoder.extra.weight"] = torch.zeros(3)
    state["prompt_encoder.no_mask_embed.weight"] = torch.zeros(1, 128)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        build_sam("vit_t", checkpoint=path)
    msg = str(err.value)
    assert str(path) in msg
    assert "1 missing keys: mask_decoder.iou_token.weight" in msg
    assert "1 unexpected keys: image_encoder.extra.weight" in msg
    assert "prompt_encoder.no_mask_embed.weight: checkpoint (1, 128) vs model (1, 256)" in msg


def test_wrong_architecture_is_refused(tmp_path, official_state):
    path = tmp_path / "vit_t.pth"
    torch.save(official_state, path)
    with pytest.raises(CheckpointError, match="does not fit the model architecture"):
        build_sam("vit_t", checkpoint=path, embed_dims=[32, 64, 80, 160], num_heads=[1, 2, 5, 5])


def test_non_strict_loads_what_fits(tmp_path, official_state):
    state = dict(official_state)
    del state["mask_decoder.iou_token.weight"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    model = build_sam("vit_t", checkpoint=path, strict=False)
    assert torch.equal(model.mask_decoder.mask_tokens.weight, state["mask_decoder.mask_tokens.weight"])


def test_pickled_module_refused_unless_allowed(tmp_path):
    small = build_sam("vit_t", image_size=256)
    path = tmp_path / "tinysam_w8a8.pth"
    torch.save(small, path)  # a pickled whole nn.Module, like the official W8A8 TinySAM file
    with pytest.raises(CheckpointError, match="pickled Python object") as err:
        read_checkpoint(path)
    assert "allow_pickle=True" in str(err.value)
    state, cfg = read_checkpoint(path, allow_pickle=True)
    assert cfg is None
    assert set(state) == set(small.state_dict())


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match="no such file"):
        read_checkpoint(tmp_path / "missing.pth")


def test_samfpga_checkpoint_carries_config(tmp_path):
    model = build_sam("vit_t", image_size=256, embed_dims=[32, 64, 80, 160], num_heads=[1, 2, 5, 5])
    path = save_checkpoint(model, tmp_path / "student.pt", half=True, config=model.config.to_dict())
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temp file
    again = build_sam(checkpoint=path)
    assert again.config == model.config
    assert again.image_encoder.img_size == 256
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a.half().float() if a.is_floating_point() else a, b), k
    with pytest.raises(ValueError, match="carries its own model config"):
        build_sam(checkpoint=path, image_size=512)
