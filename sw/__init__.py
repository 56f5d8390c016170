"""samfpga: Segment Anything on AMD/Xilinx FPGAs.

This package (folder ``sw/``) is the board runtime: it imports with numpy, onnxruntime and Pillow only.
``samfpga.models`` (folder ``models/``, needs torch) and ``samfpga.hw`` (folder ``hw/``, needs finn-plus)
are the development side.
"""

__version__ = "0.1.0"
