"""Quantization configuration: one dataclass with defaults and per-module-name bit-width overrides."""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass, field
from typing import Any

from ..yaml_config import check_fields

MIN_BITS = 4
MAX_BITS = 8
SCALE_TYPES = ("po2", "float")


@dataclass
class QuantConfig:
    """How the encoder is quantized.

    Attributes:
        weight_bits: default weight bit width (signed, per-output-channel scales).
        act_bits: default activation bit width (signed, or unsigned after ReLU and softmax; per-tensor scales).
        scale: ``"po2"`` (power-of-two scales: integer shifts in hardware, and float arithmetic on quantized
            values stays exact, which makes Brevitas vs QONNX bit-exact) or ``"float"`` (free float scales).
        weight_bits_overrides: ``{fnmatch pattern over weight-layer names: bits}``, e.g.
            ``{"layers.1.blocks.*.mlp.fc1": 4}``. Names are those of ``quant_site_names(qmodel)["weight"]``.
        act_bits_overrides: the same for activation quantizers (names under ``["act"]``).
        softmax_bits: bit width of the (unsigned) softmax output quantizer (act_bits_overrides still win).
        residual_stats: calibration statistic of the shared residual-stream quantizers, ``"max"`` (default:
            the residual stream carries outliers that percentile clipping destroys; measured on the default
            student, relative embedding error 8.8% -> 5.7% at W8A8) or ``"percentile"``.
        int_norm: LayerNorms and attention softmaxes computed with the accelerator's integer arithmetic
            (``samfpga.models.quant.int_norm``: IntLayerNorm / IntSoftmax, exported as QONNX nodes the FINN build
            maps onto the integer RTL layers, bit-exact); a quantizer is then placed before each neck LayerNorm
            (site ``neck.<i>.norm_in``). Needs ``scale="po2"``. False: float LayerNorm / softmax.
        bias_on_grid: every Linear/Conv bias is rounded (half up) to its layer's accumulator grid
            ``s_in * s_w`` (per output channel) when the model is calibrated (``ptq.calibrate``) and after QAT
            (``samfpga.models.quant.bias_grid``): ``acc * s_acc + b`` is then an exact integer sum times ``s_acc``,
            so FINN's requantizer after the layer is uniform and becomes an arithmetic Requant instead of a
            threshold table. The integer bias must fit 24 bits (float32 carries it exactly; checked). Needs
            ``scale="po2"``. False: float biases (absorbed into threshold tables).
    Later patterns win over earlier ones. Every pattern must match at least one site.
    """

    weight_bits: int = 8
    act_bits: int = 8
    scale: str = "po2"
    weight_bits_overrides: dict[str, int] = field(default_factory=dict)
    act_bits_overrides: dict[str, int] = field(default_factory=dict)
    softmax_bits: int = 8
    residual_stats: str = "max"
    int_norm: bool = False
    bias_on_grid: bool = False

    def __post_init__(self) -> None:
        for name in ("weight_bits", "act_bits", "softmax_bits"):
            _check_bits(f"QuantConfig.{name}", getattr(self, name))
        for attr in ("weight_bits_overrides", "act_bits_overrides"):
            for pattern, bits in getattr(self, attr).items():
                _check_bits(f"QuantConfig.{attr}[{pattern!r}]", bits)
        if self.residual_stats not in ("max", "percentile"):
            raise ValueError(f"QuantConfig.residual_stats {self.residual_stats!r} is not 'max' or 'percentile'")
        if self.scale not in SCALE_TYPES:
            raise ValueError(f"QuantConfig.scale {self.scale!r} is not one of {SCALE_TYPES}")
        if self.int_norm and self.scale != "po2":
            raise ValueError("QuantConfig.int_norm needs scale='po2' (the integer layers divide by the input scale "
                             f"exactly), got scale={self.scale!r}")
        if self.bias_on_grid and self.scale != "po2":
            raise ValueError("QuantConfig.bias_on_grid needs scale='po2' (the accumulator grid s_in * s_w is exact "
                             f"only for power-of-two scales), got scale={self.scale!r}")

    def weight_bits_for(self, name: str) -> int:
        return _lookup(name, self.weight_bits, self.weight_bits_overrides)

    def act_bits_for(self, name: str, default: int | None = None) -> int:
        """Bits of activation site ``name``: the last matching override, else ``default`` or ``act_bits``."""
        return _lookup(name, self.act_bits if default is None else default, self.act_bits_overrides)

    def check_patterns(self, weight_names: list[str], act_names: list[str]) -> None:
        """Raise if an override pattern matches no quantization site (a typo would silently do nothing)."""
        for attr, names in (("weight_bits_overrides", weight_names), ("act_bits_overrides", act_names)):
            for pattern in getattr(self, attr):
                if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
                    raise ValueError(
                        f"QuantConfig.{attr} pattern {pattern!r} matches no site; e.g. {names[:3]} ..."
                    )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantConfig:
        check_fields(cls, d, "QuantConfig fields")
        return cls(**d)


def _check_bits(what: str, bits: Any) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"{what} = {bits!r}: bit widths must be integers in [{MIN_BITS}, {MAX_BITS}]")


def _lookup(name: str, default: int, overrides: dict[str, int]) -> int:
    bits = default
    for pattern, b in overrides.items():
        if fnmatch.fnmatchcase(name, pattern):
            bits = b
    return bits
