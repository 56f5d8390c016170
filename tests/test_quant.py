"""Quantized encoder: config validation, bit-width selection, float -> Brevitas agreement,
Brevitas -> QONNX execution (bit-exact where the arithmetic allows it; see the tolerance notes below).

The encoder under test is a seeded random TinyViT of the default student family (ReLU, windows dividing
the stage grids), shrunk to 64x64 input and one block per stage so export + execution stay fast.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samfpga.models.quant import QuantConfig, calibrate, export_qonnx, quant_site_names, quantize_encoder
from tests.support.tiny_encoder import images, tiny_encoder


@pytest.fixture(scope="module")
def float_and_quant() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.set_num_threads(1)
    enc = tiny_encoder()
    q = quantize_encoder(enc)
    calibrate(q, images(8, seed=0))
    return enc, q


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(weight_bits=3), "weight_bits = 3"),
        (dict(act_bits=9), "act_bits = 9"),
        (dict(weight_bits=True), "weight_bits = True"),
        (dict(scale="log"), "scale 'log'"),
        (dict(act_bits_overrides={"layers.*": 2}), "act_bits_overrides['layers.*'] = 2"),
        (dict(residual_stats="mean"), "residual_stats 'mean'"),
    ],
)
def test_bad_config_is_refused(kwargs: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("*", r"\*")):
        QuantConfig(**kwargs)


def test_unknown_override_pattern_and_field_are_refused() -> None:
    with pytest.raises(ValueError, match="matches no site"):
        quantize_encoder(tiny_encoder(), QuantConfig(weight_bits_overrides={"layers.9.*": 4}))
    with pytest.raises(ValueError, match="unknown QuantConfig fields"):
        QuantConfig.from_dict({"weight_bit": 4})
    with pytest.raises(TypeError, match="expects a TinyViT"):
        quantize_encoder(torch.nn.Linear(2, 2))


def test_bit_width_selection_changes_the_quantizers() -> None:
    enc = tiny_encoder()
    cfg = QuantConfig(
        weight_bits_overrides={"layers.1.blocks.0.attn.qkv": 4, "layers.2.*.mlp.fc*": 6},
        act_bits_overrides={"layers.1.blocks.0.attn.qkv_out": 5, "layers.2.blocks.0.attn.softmax": 7},
        softmax_bits=6,
    )
    q = quantize_encoder(enc, cfg)
    w, a = q.quant_sites["weight"], q.quant_sites["act"]
    assert float(w["layers.1.blocks.0.attn.qkv"].quant_weight().bit_width) == 4
    assert float(w["layers.2.blocks.0.mlp.fc1"].quant_weight().bit_width) == 6
    assert float(w["layers.2.blocks.0.mlp.fc2"].quant_weight().bit_width) == 6
    assert float(w["layers.1.blocks.0.attn.proj"].quant_weight().bit_width) == 8
    assert float(a["layers.1.blocks.0.attn.qkv_out"].act_quant.bit_width()) == 5
    assert float(a["layers.2.blocks.0.attn.qkv_out"].act_quant.bit_width()) == 8
    assert float(a["layers.1.blocks.0.attn.softmax"].act_quant.bit_width()) == 6
    assert float(a["layers.2.blocks.0.attn.softmax"].act_quant.bit_width()) == 7
    # the float encoder is untouched: still plain nn.Linear layers
    assert type(enc.layers[1].blocks[0].attn.qkv) is torch.nn.Linear
    # 4-bit weights take at most 16 distinct integer levels per output channel
    qw = w["layers.1.blocks.0.attn.qkv"].quant_weight()
    ints = (qw.value / qw.scale).round()
    assert ints.min() >= -8 and ints.max() <= 7
    names = quant_site_names(q)
    assert "layers.1.blocks.0.attn.softmax" in names["act"] and "neck.0" in names["weight"]


def test_every_weight_layer_and_matmul_is_quantized(float_and_quant) -> None:
    import brevitas.nn as qnn

    from samfpga.models.image_encoder.tiny_vit import Attention
    from samfpga.models.quant.layers import QuantMatMul

    _, q = float_and_quant
    assert not [n for n, m in q.named_modules() if type(m) in (torch.nn.Conv2d, torch.nn.Linear)]
    mms = [m for m in q.modules() if isinstance(m, QuantMatMul)]
    assert len(mms) == 2 * 3  # qk and av in the three transformer blocks
    # the matmul operands are quantized before them: q, k, v are slices of ONE quantized qkv output (one integer
    # stream through the split), the probabilities come from the softmax quantizer
    attns = [m for m in q.modules() if isinstance(m, Attention)]
    assert len(attns) == 3
    for at in attns:
        assert isinstance(at.qkv[0], qnn.QuantLinear) and isinstance(at.qkv[1], qnn.QuantIdentity)
        assert isinstance(at.softmax[1], qnn.QuantIdentity) and not at.softmax[1].act_quant.is_signed
    # BatchNorm is folded away
    assert not [m for m in q.modules() if isinstance(m, torch.nn.BatchNorm2d)]


def test_float_vs_brevitas_agreement(float_and_quant) -> None:
    """W8A8 (po2 scales, PTQ on 8 images) vs float on 4 other images: cosine >= 0.99, relative L2 <= 0.15."""
    enc, q = float_and_quant
    x = images(4, seed=1)
    with torch.no_grad():
        yf, yq = enc(x), q(x)
    cos = torch.nn.functional.cosine_similarity(yf.flatten(), yq.flatten(), dim=0).item()
    rel = ((yf - yq).norm() / yf.norm()).item()
    assert cos >= 0.99 and rel <= 0.15, (cos, rel)
    # 4-bit weights everywhere are measurably worse than 8-bit (the bit width reaches the arithmetic)
    q4 = quantize_encoder(enc, QuantConfig(weight_bits=4))
    calibrate(q4, images(8, seed=0))
    with torch.no_grad():
        rel4 = ((yf - q4(x)).norm() / yf.norm()).item()
    assert rel4 > rel


def test_gelu_variant_quantizes() -> None:
    enc = tiny_encoder("gelu")
    q = quantize_encoder(enc)
    calibrate(q, images(4, seed=0))
    with torch.no_grad():
        yf, yq = enc(images(2, seed=1)), q(images(2, seed=1))
    assert torch.nn.functional.cosine_similarity(yf.flatten(), yq.flatten(), dim=0).item() >= 0.98


def _run_qonnx(path, x: np.ndarray) -> np.ndarray:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    mw = ModelWrapper(str(path))
    return execute_onnx(mw, {mw.graph.input[0].name: x})[mw.graph.output[0].name]


def test_qonnx_conv_stages_bit_exact(float_and_quant, tmp_path) -> None:
    """Stem + MBConv stage + patch merging: only convs, ReLU, adds and power-of-two quantizers. Every value
    is an integer times a power of two and the accumulators stay below 2**24, so float32 arithmetic is exact
    in both torch and onnxruntime: the outputs must be EQUAL."""
    _, q = float_and_quant
    sub = torch.nn.Sequential(q.patch_embed, q.layers[0]).eval()
    path = export_qonnx(sub, tmp_path / "conv.onnx", (1, 3, 64, 64))
    x = images(2, seed=5)[:1]
    with torch.no_grad():
        ref = sub(x).numpy()
    out = _run_qonnx(path, x.numpy())
    assert out.shape == ref.shape
    assert np.array_equal(out, ref), f"max |diff| {np.abs(out - ref).max()}"


def test_qonnx_full_encoder_matches_brevitas(tiny_export) -> None:
    """Whole encoder: the chain tests' tiny encoder (this file's architecture and seed, PTQ on 4 images instead of
    ``float_and_quant``'s 8) and its QONNX export, both made once per session (tests/conftest.py). Integer-domain
    ops are exact as above; Softmax and LayerNormalization are float kernels (torch vs onnxruntime exp / rsqrt)
    that may differ in the last ulp, which would flip a quantizer's rounding only for values within an ulp of a
    rounding boundary (measured: 0 of the 512 outputs here, 1.5e-5 of
    one softmax's values on the 256x256 student). This input and model are fixed, so the outputs must be
    EQUAL (tolerance 0); a flipped rounding would show here as a failure to look at, not be averaged away.
    The graph's ops are checked too: every Conv / MatMul input comes from a Quant node."""
    import copy

    import onnx

    q, path = copy.deepcopy(tiny_export.model), tiny_export.qonnx
    x = images(2, seed=7)[:1]
    with torch.no_grad():
        ref = q(x).numpy()
    out = _run_qonnx(path, x.numpy())
    assert out.shape == ref.shape == (1, 32, 4, 4)
    mismatch = int((out != ref).sum())
    assert mismatch == 0, f"{mismatch} of {out.size} outputs differ, max |diff| {np.abs(out - ref).max()}"

    g = onnx.load(str(path)).graph
    producer = {o: n for n in g.node for o in n.output}
    passthrough = {"Transpose", "Reshape", "Split", "Identity"}

    def quantized(t: str) -> bool:
        n = producer.get(t)
        while n is not None and n.op_type in passthrough:
            n = producer.get(n.input[0])
        return n is not None and n.op_type == "Quant"

    ops = [n for n in g.node if n.op_type in ("Conv", "MatMul")]
    assert len(ops) == sum(1 for n in g.node if n.op_type == "Conv") + 6 + 3 * 4  # 6 attn matmuls, 4 linears/block
    bad = [n.name for n in ops if not (quantized(n.input[0]) and quantized(n.input[1]))]
    assert not bad, f"nodes with an unquantized input: {bad}"


def test_qat_distillation_reduces_the_embedding_loss(float_and_quant) -> None:
    """A few QAT steps (embedding distillation from the float teacher, training pipeline's loss) on a
    W4 copy: the loss on the training images goes down and the weights move."""
    from samfpga.models.quant.qat import QATConfig, qat_distill
    from samfpga.models.training.losses import embedding_loss

    enc, _ = float_and_quant
    q = quantize_encoder(enc, QuantConfig(weight_bits=4))
    x = images(8, seed=0)
    calibrate(q, x)
    with torch.no_grad():
        target = enc(x)
        before = embedding_loss(q(x), target).item()
    w0 = q.quant_sites["weight"]["layers.1.blocks.0.attn.qkv"].weight.detach().clone()
    losses = qat_distill(q, enc, x, QATConfig(steps=6, batch_size=4, lr=1e-3))
    with torch.no_grad():
        after = embedding_loss(q(x), target).item()
    assert len(losses) == 6 and not q.training
    assert after < before, (before, after)
    assert not torch.equal(w0, q.quant_sites["weight"]["layers.1.blocks.0.attn.qkv"].weight)
    with pytest.raises(ValueError, match="QATConfig needs"):
        QATConfig(steps=0)


def test_cli_reports_a_missing_checkpoint_in_one_line(tmp_path, capsys) -> None:
    from samfpga.models.quant.cli import main

    out = tmp_path / "x.onnx"
    assert main(["export", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope.pt" in err and "no such file" in err and len(err.splitlines()) == 1
    assert not out.exists() and not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="input_shape must be"):
        export_qonnx(torch.nn.Identity(), tmp_path / "y.onnx", (3, 64, 64))


def test_round_half_up_brevitas_equals_qonnx_on_ties(tmp_path) -> None:
    """The project's rounding rule on ties (tolerance 0): Brevitas' RoundHalfUpSte quantizer = floor(x/s + 0.5)
    (negative ties towards +inf, unlike torch.round's ties to even), and its QONNX export
    (Add(s/2) -> Quant(FLOOR)) executes to the same values."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    from samfpga.models.quant.layers import act_quant

    q = torch.nn.Sequential(act_quant(8, True, "po2", "max"))
    q.train()
    q(torch.linspace(-3.9, 3.9, 64).view(1, 1, 8, 8))  # calibrate: max 3.9 -> scale 2**-5
    q.eval()
    s = float(q[0].act_quant.scale())
    assert s == 2.0**-5
    x = (torch.arange(-256, 256, dtype=torch.float32) * s / 4).view(1, 2, 16, 16)  # every 2nd value a tie
    ref = torch.clamp(torch.floor(x / s + 0.5), -128, 127) * s
    with torch.no_grad():
        out = q(x)
    assert torch.equal(out, ref)
    assert not torch.equal(out, torch.clamp(torch.round(x / s), -128, 127) * s)  # the ties are exercised
    path = export_qonnx(q, tmp_path / "q.onnx", (1, 2, 16, 16))
    m = ModelWrapper(str(path))
    assert sorted(n.op_type for n in m.graph.node) == ["Add", "Quant"]
    got = execute_onnx(m, {m.graph.input[0].name: x.numpy()})[m.graph.output[0].name]
    np.testing.assert_array_equal(got, ref.numpy())
