"""samfpga: Segment Anything on AMD/Xilinx FPGAs.

This package (folder ``sw/samfpga/``) is the board runtime: it imports with numpy, onnxruntime and Pillow only.
``samfpga.models`` (folder ``models/samfpga/models/``, needs torch) and ``samfpga.hw`` (folder
``hw/samfpga/hw/``, needs finn-plus) are the development side. Installed, the three folders are one directory;
in a checkout with ``sw``, ``models`` and ``hw`` on ``sys.path`` the ``__path__`` below spans them.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
