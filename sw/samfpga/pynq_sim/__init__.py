"""A simulated PYNQ device: pynq's device API with a register-level IODMA model and an accelerator model.

``SimDevice(package)`` stands in for the board in ``pynq.Overlay``, ``pynq.MMIO`` and ``pynq.allocate``; the
driver code of the ``pynq`` backend runs against it unmodified. See ``device.py``. Its accelerator model is the
package's integer executor, or any callable (``accelerator=``), e.g. ``external.ExternalAccelerator``: a model in a
child process, such as the Verilator co-simulation of the stitched RTL (``python -m samfpga.hw.sim.cosim``, in the
development environment; this package never imports it).
"""

from .device import SimDevice

__all__ = ["SimDevice"]
