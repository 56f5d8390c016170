"""A simulated PYNQ device: pynq's device API with a register-level IODMA model and an accelerator model.

``SimDevice(package)`` stands in for the board in ``pynq.Overlay``, ``pynq.MMIO`` and ``pynq.allocate``; the
driver code of the ``pynq`` backend runs against it unmodified. See ``device.py``. Its accelerator model is the
package's integer executor, or any callable (``accelerator=``), e.g. ``external.ExternalAccelerator``: a model in a
child process, such as the Verilator co-simulation of the stitched RTL (``python -m samfpga.hw.sim.cosim``, in the
development environment; this package never imports it). ``rolled_device.RolledSimDevice`` is the same for a rolled
build (``rolled/host.json``): register-level strip units around each part's body (``strip_units.SimPart``), for
the driver ``samfpga.backends.rolled_driver.RolledAccelerator``.
"""

__all__ = ["SimDevice"]


def __getattr__(name: str):
    # imported on use: ``strip_units`` needs numpy only, so the development environment (no pynq) can use it
    if name == "SimDevice":
        from .device import SimDevice

        return SimDevice
    raise AttributeError(name)
