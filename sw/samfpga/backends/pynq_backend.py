"""``pynq`` encoder backend: the FINN accelerator on a PYNQ/Kria board, host layers in numpy.

encode_image: the resized uint8 image padded with the package's pad codes (packages whose accelerator takes pixels,
sent as they are: 1 byte per value) or normalised and zero-padded (older float-input packages), then host layers
before the accelerator (the float packages' input layout transpose) -> pack into a ``pynq.allocate`` buffer ->
IODMA run with timeout (``AcceleratorOverlay``) -> unpack -> host layers after it (output dequantisation).
``pynq-sim`` is this class with a simulated PYNQ device (``samfpga.pynq_sim``) passed as ``device``; for a rolled
package, the simulated board of its parts (``samfpga.pynq_sim.rolled_device``), each block running the package's
integer graph from its input tensor to its output tensor; for an engine package, the engine's register protocol
(``samfpga.pynq_sim.engine_device``), its frames computed by the package's integer graph.
"""

from __future__ import annotations

import time

import numpy as np

from ..bundle import Bundle
from .base import BackendError, EncoderBackend
from .quant_backend import _package, graph_input, refuse_float, to_nchw


class PynqEncoderBackend(EncoderBackend):
    """Args: bundle; package: ``DeployPackage`` or path; device: a ``pynq.Device`` (default: the board's);
    timeout_s: how long to wait for the output DMA (a rolled package: for each block); bitfile: override the
    package's bitfile (pynq-sim); poll_s: a rolled or engine package's register poll interval. A rolled package
    (driver.json platform ``rolled``) runs on ``samfpga.backends.rolled_driver.RolledAccelerator``, an engine package
    (platform ``engine``) on ``samfpga.backends.engine_driver.EngineAccelerator``."""

    def __init__(self, bundle: Bundle, package=None, device=None, timeout_s: float = 10.0, bitfile=None,
                 poll_s: float = 0.0002) -> None:
        try:
            import pynq  # noqa: F401
        except ImportError as e:
            raise BackendError(f"backend 'pynq' needs the pynq package ({e}); on a PC use --backend pynq-sim") from None
        self.package = _package(bundle, package)
        bit = bitfile or self.package.bitfile
        if bit is None:
            why = self.package.manifest.get("absent", {}).get("bitfile", "not built")
            raise BackendError(f"{self.package.root}: no bitfile in the package ({why}); use --backend pynq-sim "
                               "or quant")
        self.input = self.package.input
        self.image_size = bundle.image_size
        self.embedding_shape = tuple(bundle.embedding_shape)  # type: ignore[assignment]
        self.graph = self.package.intgraph()  # host layers only; the accelerator part runs on the FPGA
        self.timings: dict[str, float] = {}
        if self.package.driver.get("platform") == "rolled":  # the parts' strip engines (docs/rolled_stage.md)
            from .rolled_driver import RolledAccelerator

            self.accel = RolledAccelerator(self.package.root / "rolled", bit, device=device, timeout_s=timeout_s,
                                           poll_s=poll_s)
            return
        if self.package.driver.get("platform") == "engine":  # the layer-sequential engine (docs/engine.md)
            from .engine_driver import EngineAccelerator

            self.accel = EngineAccelerator((self.package.root / self.package.driver["engine"]).parent, bit,
                                           device=device, timeout_s=timeout_s, poll_s=poll_s)
            return
        from .pynq_driver import AcceleratorOverlay, read_runtime_words

        tb = self.package.driver.get("token_batch")
        image = (self.package.root / tb["image"]).read_bytes() if tb else None
        words = {e["name"]: read_runtime_words(self.package.root, e)
                 for e in self.package.driver.get("runtime_weights") or []}
        self.accel = AcceleratorOverlay(bit, self.package.driver, device=device, timeout_s=timeout_s,
                                        ddr_image=image, runtime_words=words)

    def _encode(self, x: np.ndarray) -> np.ndarray:
        refuse_float(self, self.input)
        return self._run(x)

    def _encode_image(self, image: np.ndarray, pixel_mean, pixel_std) -> np.ndarray:
        if not self.input.pixels:
            return super()._encode_image(image, pixel_mean, pixel_std)
        return self._run(graph_input(self, self.input, image, pixel_mean, pixel_std))

    def _run(self, x: np.ndarray) -> np.ndarray:
        """Graph input (float image or uint8 pixels) -> embedding: host pre, accelerator, host post."""
        t0 = time.perf_counter()
        a = self.graph.run_host_pre(x)
        t1 = time.perf_counter()
        y = self.accel.execute(a)
        t2 = time.perf_counter()
        out = self.graph.run_host_post(y)
        t3 = time.perf_counter()
        self.timings = {"host_pre_s": t1 - t0, **self.accel.timings, "host_post_s": t3 - t2}
        return to_nchw(out, self.embedding_shape)

    def close(self) -> None:
        self.accel.close()


def make_pynq_sim(bundle: Bundle, package=None, fault: str | None = None, timeout_s: float = 10.0,
                  accelerator=None, **kw):
    """The ``pynq`` backend, unmodified, on a simulated PYNQ device whose accelerator model is the integer
    executor of the package's graph, or ``accelerator`` (``samfpga.pynq_sim``)."""
    from samfpga.pynq_sim import SimDevice

    pkg = _package(bundle, package)
    if pkg.driver.get("platform") == "rolled":
        from samfpga.pynq_sim.rolled_device import RolledSimDevice, graph_bodies

        if fault is not None or accelerator is not None:
            raise BackendError(f"{pkg.root}: a rolled package's simulated board takes no fault or accelerator model "
                               "(its parts run the package's integer graph)")
        dev = RolledSimDevice(pkg.root / "rolled", graph_bodies(pkg.intgraph(), pkg.root / pkg.driver["rolled"]))
        return PynqEncoderBackend(bundle, pkg, device=dev, timeout_s=timeout_s, bitfile=dev.bitfile, poll_s=0, **kw)
    if pkg.driver.get("platform") == "engine":
        from samfpga.pynq_sim.engine_device import EngineSimDevice

        if fault is not None:
            raise BackendError(f"{pkg.root}: an engine package's simulated board takes no fault model")
        dev = EngineSimDevice((pkg.root / pkg.driver["engine"]).parent, accelerator or pkg.intgraph().run_accelerator)
        return PynqEncoderBackend(bundle, pkg, device=dev, timeout_s=timeout_s, bitfile=dev.bitfile, poll_s=0, **kw)
    dev = SimDevice(pkg, fault=fault, accelerator=accelerator)
    return PynqEncoderBackend(bundle, pkg, device=dev, timeout_s=timeout_s, bitfile=dev.bitfile, **kw)
