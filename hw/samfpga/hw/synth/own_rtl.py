"""Yosys synthesis of the project's own RTL modules (hw/samfpga/hw/rtl) straight from their parameters."""

from __future__ import annotations

from pathlib import Path

from samfpga.hw.resources.models import add_streams_terms, terms_total
from samfpga.hw.synth.yosys import SynthResult, synthesize
from samfpga.resources import package_path


def rtl_source(name: str) -> Path:
    """Path of one of the project's own RTL files (package data of samfpga.hw)."""
    return Path(package_path("samfpga.hw", "rtl", name))


def synth_add_streams(pe: int, a_bits: int, b_bits: int, o_bits: int, work: str | Path
                      ) -> tuple[SynthResult, dict[str, float]]:
    """Synthesise add_streams.sv (signed inputs) and return (Yosys counts, own-model resources) for the same
    parameters."""
    res = synthesize([rtl_source("add_streams.sv")], ["add_streams"], work,
                     params={"PE": pe, "A_BITS": a_bits, "B_BITS": b_bits, "O_BITS": o_bits})[0]
    return res, terms_total(add_streams_terms(pe, o_bits), "AddStreams_rtl")
