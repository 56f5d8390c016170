"""samfpga.hw.plan.strips: the halo columns the planner counts are the ones a strip needs.

The check runs the model's own modules (TinyViT units of a small encoder, float64) on the whole feature map and on
each strip cut out with the planner's input halo, and asserts that the strip's output columns equal the whole map's
(tolerance 1e-12: the same arithmetic on the same numbers). A strip is cut out with zero padding at its sides, as
the modules pad; the padding's wrong columns reach exactly as far inward as a valid (unpadded) conv's columns are
missing, so the halo that suffices here suffices for the hardware's valid convolutions at interior strip edges.
Units with stride-2 convs need the strip to start on their stride grid: there the left halo is rounded up to it
(at most stride - 1 more columns than the planner counts; the right halo is the planner's).
"""

from __future__ import annotations

import copy
import math

import pytest

from samfpga.hw.plan.layers import Layer, encoder_layers
from samfpga.hw.plan.strips import allowed_tiles, strips, unit_strips
from samfpga.models.image_encoder.tiny_vit import TinyViTConfig

WINDOW = 4


def small() -> TinyViTConfig:
    # stage grids 32, 16, 8, 8: strips of whole 4-token windows at 2 strips in every stage
    return TinyViTConfig(img_size=128, embed_dims=[8, 16, 16, 16], depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 2],
                         window_sizes=[WINDOW] * 4, out_chans=16, num_classes=0, activation="relu")


def test_halo_by_hand() -> None:
    """Two stride-2 3x3 convs (the stem) at 64 columns in 2 strips: the second conv needs 1 column of its input
    on each interior side, which the first computes (1 + 2*1/32 of its columns) from 2*1 + 1 = 3 input columns."""
    a = Layer("a", "conv", "u", 0, mw=27, mh=4, vectors=32 * 32, weights=108, kernel=3, in_width=64, in_channels=3)
    b = Layer("b", "conv", "u", 0, mw=36, mh=8, vectors=16 * 16, weights=288, kernel=3, in_width=32, in_channels=4)
    s = strips([a, b], 16, 2)
    assert [x.factor for x in s.layers] == [(32 + 2) / 32, 1.0]
    # at 2 strips both are edge strips: a halo on one side only
    assert [x.in_width for x in s.layers] == [32 + 3, 16 + 1]
    assert [x.in_width for x in strips([a, b], 16, 4).layers] == [16 + 6, 8 + 2]  # interior strips: both sides
    assert s.in_factor == (64 + 6) / 64 and s.band == 0 and s.in_halo == 3
    # one strip: nothing changes
    assert strips([a, b], 16, 1).in_factor == 1.0
    with pytest.raises(ValueError, match="equal strips"):
        strips([a, b], 16, 3)


@pytest.fixture(scope="module")
def model():
    import torch

    from samfpga.models.image_encoder.tiny_vit import TinyViT

    torch.manual_seed(0)
    enc = TinyViT(small()).double().eval()
    with torch.no_grad():  # non-trivial BN and attention biases so that every term counts
        for p in enc.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return enc, encoder_layers(small())


def _run(enc, unit: str, x, blocks: int | None):
    """Run ``unit`` of ``enc`` on the NCHW map ``x`` (any width) -> NCHW."""
    b, _, h, w = x.shape
    if unit == "patch_embed":
        return enc.patch_embed(x)
    if unit == "neck":
        return enc.neck(x)
    _, i, part = unit.split(".")
    layer = enc.layers[int(i)]
    if part == "downsample":
        y = layer.downsample(x)
        s = layer.downsample.conv2.c.stride[0]
        return y.transpose(1, 2).reshape(b, -1, -(-h // s), -(-w // s))
    blks = list(layer.blocks)[:blocks] if blocks else list(layer.blocks)
    if int(i) == 0:
        for blk in blks:
            x = blk(x)
        return x
    t = x.flatten(2).transpose(1, 2)
    for blk in blks:
        blk = copy.copy(blk)
        blk.input_resolution = (h, w)  # the same weights on a strip's grid
        t = blk(t)
    return t.transpose(1, 2).reshape(b, -1, h, w)


def _check_unit(enc, u, rolled: bool, tiles: int, shrink: int = 0) -> int:
    """Largest |strip - whole| over the strips of unit ``u`` with the planner's halo (less ``shrink`` columns)."""
    import torch

    hw = list(u.blocks[0]) if rolled else u.layers
    st = unit_strips(u, hw, tiles)
    w_out = math.isqrt(hw[-1].vectors)
    first = hw[0]
    w_in = first.in_width or math.isqrt(first.vectors)
    stride = w_in // w_out
    h_in = st.in_halo - shrink
    c_in = u.in_elems // (w_in * w_in)
    x = torch.randn(1, c_in, w_in, w_in, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = _run(enc, u.name, x, 1 if rolled else None)
        worst = 0.0
        so = w_out // tiles
        for s in range(tiles):
            lo = max(0, s * so * stride - h_in)
            lo -= lo % stride  # on the stride grid
            hi = min(w_in, (s + 1) * so * stride + h_in)
            part = _run(enc, u.name, x[..., lo:hi], 1 if rolled else None)
            o = s * so - lo // stride
            worst = max(worst, (part[..., o:o + so] - whole[..., s * so:(s + 1) * so]).abs().max().item())
    return worst


@pytest.mark.parametrize("rolled", [False, True])
def test_strips_reproduce_the_whole_map(model, rolled: bool) -> None:
    """Every unit of the small encoder at 2 strips (and 4 where its grid allows), unrolled (halos compound over
    blocks) and as a rolled body (one block): each strip's output columns equal the whole map's."""
    enc, units = model
    checked = 0
    for u in units:
        if rolled and u.repeats == 1:
            continue
        for t in (2, 4):
            if allowed_tiles(u, t, WINDOW) != t:
                continue
            assert _check_unit(enc, u, rolled, t) < 1e-12, (u.name, t)
            checked += 1
    assert checked >= (4 if rolled else 9)


def test_one_column_less_halo_differs(model) -> None:
    """Negative control: one column less halo than the planner counts changes the output (stride-1 units)."""
    enc, units = model
    by = {u.name: u for u in units}
    for name, rolled in (("layers.0.blocks", True), ("layers.1.blocks", True), ("layers.0.blocks", False),
                         ("neck", False)):
        assert _check_unit(enc, by[name], rolled, 2) < 1e-12, name
        assert _check_unit(enc, by[name], rolled, 2, shrink=1) > 1e-6, name


def test_attention_halo_is_whole_windows(model) -> None:
    """A transformer block's local conv needs 1 column, which costs a whole window of attention per interior side;
    unrolled, each further block adds its halo (rolled bodies read whole maps from the loop buffer)."""
    _, units = model
    u = {x.name: x for x in units}["layers.1.blocks"]  # grid 16, 2 blocks
    rolled = unit_strips(u, list(u.blocks[0]), 2)
    by_name = dict(zip([x.name.split(".", 4)[-1] for x in u.blocks[0]], rolled.layers, strict=True))
    assert by_name["attn.qkv"].factor == (16 + 2 * WINDOW) / 16
    assert by_name["mlp.fc1"].factor == 1.0 and by_name["local_conv.c"].in_width == 8 + 1
    assert rolled.band == 8 + WINDOW and rolled.in_factor == (16 + 2 * WINDOW) / 16
    unrolled = unit_strips(u, u.layers, 2)
    # block 1 needs a window of halo; block 0's MLP computes it, its attention one window more (2 in all)
    assert unrolled.in_halo == 2 * WINDOW and unrolled.in_factor == (16 + 2 * 2 * WINDOW) / 16
    # halos never reach past the map: at 4 strips of 4 columns the unrolled band is the whole grid
    four = unit_strips(u, u.layers, 4)
    assert four.band == 16 and four.in_factor == (12 + 16 + 16 + 12) / 16


def test_allowed_tiles(model) -> None:
    _, units = model
    by = {u.name: u for u in units}
    assert allowed_tiles(by["layers.0.blocks"], 4, 4) == 4  # grid 32: strips of 8
    assert allowed_tiles(by["layers.0.blocks"], 4, 16) == 2  # at least 16 columns
    assert allowed_tiles(by["layers.2.blocks"], 4, 1) == 2  # grid 8, windows of 4: 2 strips at most
    assert allowed_tiles(by["layers.2.blocks"], 3, 1) == 2
    assert allowed_tiles(by["neck"], 1, 1) == 1
