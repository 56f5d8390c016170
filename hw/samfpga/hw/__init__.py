"""Hardware side of samfpga (needs finn-plus): FINN build flow, own RTL, cocotb simulation.

This module itself imports nothing from FINN, so constants here are safe to use anywhere.
"""

#: ONNX domain of FINN's hardware layers (HWCustomOp and its HLS/RTL specialisations live below it).
HW_DOMAIN = "finn.custom_op.fpgadataflow"
