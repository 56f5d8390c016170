"""A simulated PYNQ device: pynq's device API with a register-level IODMA model and an accelerator model.

``SimDevice(package)`` stands in for the board in ``pynq.Overlay``, ``pynq.MMIO`` and ``pynq.allocate``; the
driver code of the ``pynq`` backend runs against it unmodified. See ``device.py``.
"""

from .device import SimDevice

__all__ = ["SimDevice"]
