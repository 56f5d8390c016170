"""Where the float model and the calibration images come from (checkpoint or seeded random student)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from samfpga.resources import package_path

from ..build import SamConfig, build_from_config, build_sam, variant_config
from ..sam import Sam

# The bundled hardware student's architecture is defined once, by the training config of the default student.
STUDENT_CONFIG = package_path("samfpga.models.training", "configs", "default_student.yaml")


def student_config() -> SamConfig:
    """The ``SamConfig`` of the bundled default student (``model:`` of default_student.yaml)."""
    import yaml

    if not STUDENT_CONFIG.is_file():
        raise FileNotFoundError(f"{STUDENT_CONFIG}: default student config not found")
    d = yaml.safe_load(STUDENT_CONFIG.read_text()) or {}
    if "model" not in d:
        raise ValueError(f"{STUDENT_CONFIG}: no 'model:' section")
    return SamConfig.from_dict(d["model"])


def random_student(seed: int = 0, config: SamConfig | None = None) -> Sam:
    """A seeded random model of the default student family, with non-trivial BatchNorm statistics
    (default init makes BN the identity and zeroes MBConv's last BN, which would hide folding errors).
    """
    torch.manual_seed(seed)
    sam = build_from_config(config or student_config())
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in sam.image_encoder.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
    return sam.eval()


def load_model(checkpoint: str | Path | None, seed: int = 0) -> Sam:
    """``build_sam`` on a samfpga checkpoint, or ``random_student(seed)`` when ``checkpoint`` is None."""
    if checkpoint is None:
        return random_student(seed)
    return build_sam(checkpoint=checkpoint)


def synthetic_images(sam: Sam, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` images of synthetic split ``seed`` preprocessed as the predictor does: (n,3,S,S) float32."""
    from samfpga.transforms import ResizeLongestSide

    from ..data.synthetic import SyntheticConfig, generate_sample

    scfg = SyntheticConfig(image_size=sam.img_size)
    tf = ResizeLongestSide(sam.img_size)
    out = []
    for i in range(n):
        img = tf.apply_image(generate_sample(seed, i, scfg).image)
        x = torch.from_numpy(np.array(img)).permute(2, 0, 1).float()
        out.append(sam.preprocess(x))
    return torch.stack(out)


# A tiny model of the default student family (64x64 input, one block per stage), small enough for the chain
# tests (Brevitas -> QONNX -> FINN -> RTL) and bench/sim_encoder.py to push the whole encoder through the flow.
TINY_STUDENT = dict(
    image_size=64, embed_dims=[16, 32, 48, 64], depths=[1, 1, 1, 1], num_heads=[1, 2, 3, 4],
    window_sizes=[4, 4, 4, 4], activation="relu", num_classes=0, out_chans=32, prompt_embed_dim=32,
)


def tiny_student_encoder(activation: str = "relu", seed: int = 3) -> nn.Module:
    """The image encoder of ``random_student(seed)`` at ``TINY_STUDENT`` size: (B,3,64,64) -> (B,32,4,4)."""
    return random_student(seed=seed, config=variant_config("vit_t", **{**TINY_STUDENT, "activation": activation})
                          ).image_encoder


def statistics_images(n: int, seed: int, size: int = 64) -> torch.Tensor:
    """(n,3,size,size) float32 with normalised-image statistics (about zero mean, unit variance) and spatial
    structure (bilinear-upsampled 8x8 noise plus fine noise): calibration input without a dataset."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(n, 3, 8, 8, generator=g)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False) \
        + 0.3 * torch.randn(n, 3, size, size, generator=g)


def tiny_quant_encoder(int_norm: bool = False, bias_on_grid: bool = False, linear_bias_std: float = 0.0,
                       seed: int = 3, depths: list[int] | None = None, image_size: int = 64) -> nn.Module:
    """The chain tests' W8A8 quantized ``TINY_STUDENT`` encoder: seeded weights (``random_student(seed)``), PTQ on
    ``statistics_images(4, seed=0)``. ``int_norm``: integer LayerNorm/softmax (``QuantConfig.int_norm``);
    ``bias_on_grid``: integer biases (``QuantConfig.bias_on_grid``); ``linear_bias_std`` > 0: the Linear biases
    (zero in the random student, which would make their requantizers uniform anyway) are drawn normal with this
    standard deviation (torch seed 11) before quantization. ``depths`` / ``image_size``: other blocks per stage or
    input size than ``TINY_STUDENT``'s (calibration images of that size)."""
    from . import QuantConfig, calibrate, quantize_encoder

    torch.set_num_threads(1)
    over = {k: v for k, v in (("depths", depths), ("image_size", image_size)) if v is not None}
    enc = random_student(seed=seed, config=variant_config("vit_t", **{**TINY_STUDENT, **over})).image_encoder
    if linear_bias_std > 0:
        g = torch.Generator().manual_seed(11)
        with torch.no_grad():
            for m in enc.modules():
                if isinstance(m, nn.Linear) and m.bias is not None:
                    m.bias.copy_(linear_bias_std * torch.randn(m.bias.shape, generator=g))
    q = quantize_encoder(enc, QuantConfig(int_norm=int_norm, bias_on_grid=bias_on_grid))
    return calibrate(q, statistics_images(4, seed=0, size=image_size))


def tiny_encoder_qonnx(out_dir: str | Path, int_norm: bool = False) -> Path:
    """The QONNX export of ``tiny_quant_encoder(int_norm)`` as ``out_dir/enc.onnx`` (input (1,3,64,64)); its path."""
    from . import export_qonnx

    return export_qonnx(tiny_quant_encoder(int_norm), Path(out_dir) / "enc.onnx", (1, 3, 64, 64))
