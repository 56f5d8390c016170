"""``quant`` encoder backend: the integer encoder exactly as the accelerator computes it, on the host CPU.

Runs a deployment package's ``graph.json`` + ``weights.npz`` (the FINN build's final graph) with
``samfpga.intexec`` (numpy only): host input layout transpose, the HW layers, the host output dequantisation.
"""

from __future__ import annotations

import numpy as np

from ..bundle import Bundle
from .base import BackendError, EncoderBackend


def to_nchw(y: np.ndarray, embedding_shape: tuple[int, int, int]) -> np.ndarray:
    """The graph's output as (1, C, h, w): FINN keeps NCHW or leaves NHWC at the graph output."""
    c, h, w = embedding_shape
    if y.shape == (1, c, h, w):
        return y
    if y.shape == (1, h, w, c):
        return y.transpose(0, 3, 1, 2)
    raise BackendError(f"encoder graph output {y.shape} is neither (1,{c},{h},{w}) nor (1,{h},{w},{c})")


def _package(bundle: Bundle, package):
    from samfpga.deploy import load_package

    if package is None:
        raise BackendError("this backend needs a deployment package: Predictor.from_deploy(PKG, backend=...) or "
                           "the CLI's --deploy PKG")
    return load_package(package) if not hasattr(package, "driver") else package


def graph_input(backend: EncoderBackend, inp, image: np.ndarray, pixel_mean, pixel_std) -> np.ndarray:
    """The pixel-input graph's input for ``image`` (resized (h, w, 3) uint8): padded with the package's pad codes,
    in its layout. ``inp``: the package's ``PackageInput``; the normalisation must be the one folded in."""
    from samfpga.deploy import DeployError

    try:
        inp.check_normalization(pixel_mean, pixel_std, type(backend).__name__)
    except DeployError as e:
        raise BackendError(str(e)) from None
    return inp.pixel_tensor(image, backend.image_size)


def refuse_float(backend: EncoderBackend, inp) -> None:
    if inp.pixels:
        raise BackendError(f"{type(backend).__name__}: this package's accelerator takes uint8 pixels ({inp.layout}, "
                           "normalisation folded into its thresholds), not a normalised float image: call "
                           "encode_image(image, pixel_mean, pixel_std) with the resized uint8 image")


class QuantEncoderBackend(EncoderBackend):
    """Args: bundle; package: a ``DeployPackage`` or its path. Packages whose input is UINT8 take the resized
    image through ``encode_image`` only; older ones (float input) through both."""

    def __init__(self, bundle: Bundle, package=None) -> None:
        self.package = _package(bundle, package)
        self.input = self.package.input
        self.image_size = bundle.image_size
        self.embedding_shape = tuple(bundle.embedding_shape)  # type: ignore[assignment]
        self.graph = self.package.intgraph()

    def _encode(self, x: np.ndarray) -> np.ndarray:
        refuse_float(self, self.input)
        return to_nchw(self.graph.run(x), self.embedding_shape)

    def _encode_image(self, image: np.ndarray, pixel_mean, pixel_std) -> np.ndarray:
        if not self.input.pixels:
            return super()._encode_image(image, pixel_mean, pixel_std)
        x = graph_input(self, self.input, image, pixel_mean, pixel_std)
        return to_nchw(self.graph.run(x), self.embedding_shape)
