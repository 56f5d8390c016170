"""Model statistics reproduce the published TinySAM / MobileSAM vit_t figures."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from samfpga.models import build_from_config, variant_config
from samfpga.models.stats import model_stats


def test_vit_t_published_figures():
    with torch.device("meta"):
        model = build_from_config(variant_config("vit_t"))
    st = model_stats(model, "vit_t")
    # published: 5.74M encoder parameters (excluding the unused 321,640-parameter classifier head)
    assert st.encoder_params == 5_743_892
    assert st.encoder_head_params == 321_640
    # published: ~37.4 GMAC at 1024^2 (qkv/proj counted on real tokens), QK^T + AV ~2.6 GMAC
    assert st.encoder_macs - st.window_padding_macs == pytest.approx(37.4e9, rel=0.01)
    assert st.attention_matmul_macs == pytest.approx(2.6e9, rel=0.02)
    assert sum(s.macs for s in st.encoder_stages) == st.encoder_macs
    assert sum(s.params for s in st.encoder_stages) == st.encoder_params
    assert st.total_params == st.encoder_params + st.encoder_head_params + st.prompt_encoder_params + st.mask_decoder_params


def test_macs_scale_with_image_size():
    with torch.device("meta"):
        big = build_from_config(variant_config("vit_t"))
        small = build_from_config(variant_config("vit_t", image_size=512))
    a, b = model_stats(big), model_stats(small)
    assert a.encoder_params == b.encoder_params
    ratio = (a.encoder_macs - a.window_padding_macs) / (b.encoder_macs - b.window_padding_macs)
    assert 3.5 < ratio < 4.5  # roughly quadratic in the side length


def test_stats_cli_prints_table():
    out = subprocess.run(
        [sys.executable, "-m", "samfpga.models.stats", "vit_t"], capture_output=True, text=True, check=True
    ).stdout
    assert "5,743,892" in out
    assert "37.44" in out
