"""Vivado steps for a PYNQ board: the block design around FINN's stitched IP, bitstream and hwh (``tcl.py``),
and ``python -m samfpga.hw.vivado`` (what ``make bitstream BOARD=...`` runs)."""

from .tcl import SHELLS, VivadoShell, project_tcl

__all__ = ["SHELLS", "VivadoShell", "project_tcl"]
