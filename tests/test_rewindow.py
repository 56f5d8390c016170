"""Re-windowing a TinyViT checkpoint (samfpga.models.image_encoder.rewindow): exact bias-table slicing.

Tolerance 0: the shrunk layer's attention bias for every (query, key) pair of a small window equals the original
layer's bias for the same two tokens placed in a corner of its larger window; a rewindowed checkpoint differs from
its source only in the bias tables, loads strictly into the new architecture, and bad input is refused.
"""

from __future__ import annotations

import pytest
import torch

from samfpga.models.build import build_from_config, variant_config
from samfpga.models.checkpoint import save_checkpoint
from samfpga.models.image_encoder.rewindow import main, offset_numbering, rewindow, shrink_bias_table
from samfpga.models.image_encoder.tiny_vit import Attention

SMALL = dict(image_size=64, embed_dims=[16, 32, 48, 64], depths=[1, 1, 1, 1], num_heads=[1, 2, 3, 4],
             window_sizes=[4, 4, 4, 4], num_classes=0, out_chans=32, prompt_embed_dim=32)


def test_offsets_cover_the_window() -> None:
    for w in (2, 4, 7, 8):
        off = offset_numbering(w)
        assert sorted(off.values()) == list(range(w * w))
        assert set(off) == {(dy, dx) for dy in range(w) for dx in range(w)}


def test_shrunk_table_gives_the_same_bias_per_offset() -> None:
    torch.manual_seed(0)
    big, small = Attention(32, 16, 2, 1, (8, 8)), Attention(32, 16, 2, 1, (4, 4))
    with torch.no_grad():
        big.attention_biases.normal_()
        small.attention_biases.copy_(shrink_bias_table(big.attention_biases, 8, 4))
    b8, b4 = big.bias(), small.bias()
    for a in range(16):
        for b in range(16):
            ya, xa, yb, xb = a // 4, a % 4, b // 4, b % 4
            # the same two tokens placed in the 8x8 window's top-left 4x4 corner
            assert torch.equal(b4[:, a, b], b8[:, ya * 8 + xa, yb * 8 + xb])


def test_refusals() -> None:
    with pytest.raises(ValueError, match="larger than"):
        shrink_bias_table(torch.zeros(2, 16), 4, 8)
    with pytest.raises(ValueError, match=r"not \(heads, 64\)"):
        shrink_bias_table(torch.zeros(2, 16), 8, 4)


def test_checkpoint_round_trip(tmp_path, capsys) -> None:
    torch.manual_seed(1)
    cfg = variant_config("vit_t", **{**SMALL, "window_sizes": [4, 4, 4, 4]})
    sam = build_from_config(cfg)
    src = save_checkpoint(sam, tmp_path / "w4.pt", config=cfg.to_dict())
    assert main([str(src), "--windows", "4,2,2,2", "--out", str(tmp_path / "w2.pt")]) == 0
    from samfpga.models.build import build_sam

    small = build_sam("vit_t", checkpoint=tmp_path / "w2.pt")
    assert small.image_encoder.config.window_sizes == [4, 2, 2, 2]
    sd_big, sd_small = sam.state_dict(), small.state_dict()
    changed = [k for k in sd_big if sd_big[k].shape != sd_small[k].shape]
    assert changed and all(k.endswith("attention_biases") for k in changed)
    assert all(torch.equal(sd_big[k], sd_small[k]) for k in sd_big if k not in changed)
    # wrong stage count, and an official-layout file: clear errors, no output written
    assert main([str(src), "--windows", "4,2", "--out", str(tmp_path / "bad.pt")]) == 2
    assert "2 window sizes given, the encoder has 4 stages" in capsys.readouterr().err
    plain = save_checkpoint(sam, tmp_path / "plain.pt")
    assert main([str(plain), "--windows", "4,2,2,2", "--out", str(tmp_path / "bad.pt")]) == 2
    assert "no samfpga config" in capsys.readouterr().err
    assert not (tmp_path / "bad.pt").exists()
    with pytest.raises(ValueError, match="no attention_biases"):
        rewindow({}, cfg.to_dict(), [4, 2, 2, 2])
