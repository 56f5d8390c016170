"""Yosys synthesis of the project's own RTL modules (hw/samfpga/hw/rtl) straight from their parameters."""

from __future__ import annotations

import re
from pathlib import Path

from samfpga.hw.resources.models import add_streams_terms, terms_total
from samfpga.hw.synth.yosys import SynthResult, synthesize
from samfpga.resources import package_path


def rtl_source(name: str) -> Path:
    """Path of one of the project's own RTL files (package data of samfpga.hw)."""
    return Path(package_path("samfpga.hw", "rtl", name))


#: an instantiation: a module name followed by a parameter list or an instance name and its port list
_INST = re.compile(r"^\s*(\w+)\s*(?:#\s*\(|\w+\s*\()", re.M)


def own_modules(*tops: str) -> list[str]:
    """Each of ``tops`` and every module of the project's own RTL it instantiates, directly or not, each once:
    dependencies first, each top after them (the order a compiler reads them). Found from the files' text, so a new
    instantiation needs no list."""
    rtl = Path(package_path("samfpga.hw", "rtl", "axil_regs.sv")).parent
    known = {p.stem for p in rtl.glob("*.sv")}
    out: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in out:
            return
        if name in path:
            raise ValueError(f"own RTL: {' -> '.join((*path, name))} instantiates itself")
        text = re.sub(r"//[^\n]*", "", (rtl / f"{name}.sv").read_text())
        for dep in _INST.findall(text):
            if dep in known and dep != name:
                visit(dep, (*path, name))
        out.append(name)

    for top in tops:
        if top not in known:
            raise ValueError(f"own RTL: no module {top!r} in {rtl}")
        visit(top, ())
    return out


def rtl_sources(*tops: str) -> list[Path]:
    """The files of ``own_modules(*tops)``, in that order."""
    return [rtl_source(f"{m}.sv") for m in own_modules(*tops)]


def synth_add_streams(pe: int, a_bits: int, b_bits: int, o_bits: int, work: str | Path
                      ) -> tuple[SynthResult, dict[str, float]]:
    """Synthesise add_streams.sv (signed inputs) and return (Yosys counts, own-model resources) for the same
    parameters."""
    res = synthesize([rtl_source("add_streams.sv")], ["add_streams"], work,
                     params={"PE": pe, "A_BITS": a_bits, "B_BITS": b_bits, "O_BITS": o_bits})[0]
    return res, terms_total(add_streams_terms(pe, o_bits), "AddStreams_rtl")
