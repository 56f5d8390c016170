"""Integer reference executor: runs a FINN build's final graph with ``samfpga.kernels`` (numpy only).

The graph comes as ``samfpga-intgraph`` files (``graph.json`` + ``weights.npz``), written on the compiler side
by ``samfpga.hw.build.package`` from the build directory; see docs/board.md for the format.
"""

from .executor import IntGraph, IntGraphError, load_intgraph

__all__ = ["IntGraph", "IntGraphError", "load_intgraph"]
