"""A small deployment package made with numpy alone, for the board-environment tests of the driver path.

Its graph is a miniature of an encoder build's: host Transpose (NCHW -> NHWC), a float-input Thresholding
(FLOAT32 stream from the host: the input quantiser), a 16x16/16 sliding window, an MVAU (768 -> 16), an INT8
Thresholding, and the host's output scale Mul; output (1, 4, 4, 16) NHWC for the tiny bundle's (16, 4, 4)
embedding. ``direct(x)`` computes the same function without samfpga.kernels (its own formula), and the package's
self-check vector holds that result.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

TINY_BUNDLE = Path(__file__).resolve().parents[1] / "runtime" / "data" / "tiny_bundle"
BASE = 0xA000_0000


def _weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t_in = np.sort(rng.normal(size=(3, 15)).astype(np.float32), axis=1)
    w = rng.integers(-8, 8, size=(768, 16)).astype(np.float32)
    t_out = np.sort(rng.integers(-400, 400, size=(16, 255)), axis=1).astype(np.float32)
    return {"T_in": t_in, "W": w, "T_out": t_out, "scale": np.array(0.05, dtype=np.float32)}


def direct(x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    """The graph's function written out: (1,3,64,64) float32 -> (1,4,4,16) float32."""
    xh = x.transpose(0, 2, 3, 1)
    q = np.zeros(xh.shape)
    for c in range(3):
        q[..., c] = (xh[..., c, None] >= w["T_in"][c]).sum(-1) - 8  # ActVal -8: INT4
    patches = q.reshape(1, 4, 16, 4, 16, 3).transpose(0, 1, 3, 2, 4, 5).reshape(1, 4, 4, 768)
    acc = patches @ w["W"].astype(np.float64)
    y = np.zeros(acc.shape)
    for c in range(16):
        y[..., c] = (acc[..., c, None] >= w["T_out"][c]).sum(-1) - 128
    return (y.astype(np.float32) * w["scale"]).astype(np.float32)


def graph_spec() -> dict:
    t = lambda shape, dt: {"shape": shape, "dtype": dt}  # noqa: E731
    return {
        "format": "samfpga-intgraph", "version": 1, "input": "image", "output": "embedding",
        "accelerator": {"input": "x_nhwc", "output": "y_int"},
        "tensors": {"image": t([1, 3, 64, 64], "FLOAT32"), "x_nhwc": t([1, 64, 64, 3], "FLOAT32"),
                    "T_in": t([3, 15], "FLOAT32"), "x_q": t([1, 64, 64, 3], "INT4"),
                    "x_win": t([1, 4, 4, 768], "INT4"), "W": t([768, 16], "INT4"), "acc": t([1, 4, 4, 16], "INT19"),
                    "T_out": t([16, 255], "INT19"), "y_int": t([1, 4, 4, 16], "INT8"), "scale": t([], "FLOAT32"),
                    "embedding": t([1, 4, 4, 16], "FLOAT32")},
        "nodes": [
            {"name": "Transpose_0", "op": "Transpose", "inputs": ["image"], "outputs": ["x_nhwc"],
             "attrs": {"perm": [0, 2, 3, 1]}, "on": "host"},
            {"name": "Thresholding_rtl_0", "op": "Thresholding", "inputs": ["x_nhwc", "T_in"], "outputs": ["x_q"],
             "attrs": {"ActVal": -8, "PE": 3, "NumChannels": 3}, "on": "hw"},
            {"name": "ConvolutionInputGenerator_rtl_0", "op": "ConvolutionInputGenerator", "inputs": ["x_q"],
             "outputs": ["x_win"], "attrs": {"ConvKernelDim": [16, 16], "Stride": [16, 16], "Dilation": [1, 1]},
             "on": "hw"},
            {"name": "MVAU_rtl_0", "op": "MVAU", "inputs": ["x_win", "W"], "outputs": ["acc"],
             "attrs": {"MW": 768, "MH": 16, "numInputVectors": [1, 4, 4], "noActivation": 1}, "on": "hw"},
            {"name": "Thresholding_rtl_1", "op": "Thresholding", "inputs": ["acc", "T_out"], "outputs": ["y_int"],
             "attrs": {"ActVal": -128, "PE": 4}, "on": "hw"},
            {"name": "Mul_0", "op": "Mul", "inputs": ["y_int", "scale"], "outputs": ["embedding"], "attrs": {},
             "on": "host"},
        ],
    }


def driver_spec() -> dict:
    return {
        "format": "samfpga-driver", "version": 1, "board": "kv260", "part": "xck26-sfvc784-2LV-c",
        "family": "zynq_us+", "platform": "zynq-iodma", "fclk_mhz": 200.0, "batch_size": 1,
        "inputs": [{"tensor": "x_nhwc", "dtype": "FLOAT32", "bits": 32, "shape_normal": [1, 64, 64, 3],
                    "shape_folded": [1, 64, 64, 1, 3], "shape_packed": [1, 64, 64, 1, 12], "stream_width_bits": 96,
                    "dma": "idma0"}],
        "outputs": [{"tensor": "y_int", "dtype": "INT8", "bits": 8, "shape_normal": [1, 4, 4, 16],
                     "shape_folded": [1, 4, 4, 4, 4], "shape_packed": [1, 4, 4, 4, 4], "stream_width_bits": 32,
                     "dma": "odma0"}],
        "dma": {"idma0": {"base": BASE, "range": 0x10000, "direction": "mm2s"},
                "odma0": {"base": BASE + 0x10000, "range": 0x10000, "direction": "s2mm"}},
        "accelerator": {"name": "StreamingDataflowPartition_0", "nodes": 4, "first": "Thresholding_rtl_0",
                        "last": "Thresholding_rtl_1"},
        "output_scale_nodes": ["Mul_0"], "runtime_weights": [],
    }


def hwh_text(dmas: dict[str, int]) -> str:
    """A minimal .hwh with the DMA instances' address ranges (what samfpga.deploy reads from Vivado's hwh)."""
    ranges = "".join(f'<MEMRANGE INSTANCE="{n}" BASEVALUE="{b:#x}" HIGHVALUE="{b + 0xFFFF:#x}"/>'
                     for n, b in dmas.items())
    return f'<?xml version="1.0"?><EDKSYSTEM><MODULES><MODULE INSTANCE="zynq_ps"><MEMORYMAP>{ranges}</MEMORYMAP>' \
           '</MODULE></MODULES></EDKSYSTEM>\n'


def write_manifest(root: Path, bitfile: str | None = None, hwh: str | None = None) -> None:
    files = {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(root.rglob("*")) if p.is_file() and p.name != "manifest.json"}
    absent = {} if bitfile else {"bitfile": "synthetic test package", "hwh": "synthetic test package"}
    (root / "manifest.json").write_text(json.dumps({
        "format": "samfpga-deploy", "version": 1, "board": "kv260", "source": "tests/support/synthetic_package.py",
        "files": files, "bitfile": bitfile, "hwh": hwh, "absent": absent}, indent=1))


def make_package(root: Path, seed: int = 0, with_bitfile: bool = False) -> Path:
    """Write the package into ``root`` (created). ``with_bitfile``: a stand-in accel.bit + a hwh naming the DMAs."""
    root.mkdir(parents=True)
    w = _weights(seed)
    (root / "graph.json").write_text(json.dumps(graph_spec()))
    np.savez(root / "weights.npz", **w)
    (root / "driver.json").write_text(json.dumps(driver_spec()))
    shutil.copytree(TINY_BUNDLE, root / "bundle")
    x = np.random.default_rng(seed + 1).normal(size=(1, 3, 64, 64)).astype(np.float32)
    np.savez(root / "selfcheck.npz", input=x, expected=direct(x, w))
    if with_bitfile:
        (root / "accel.bit").write_bytes(b"stand-in")
        (root / "accel.hwh").write_text(hwh_text({"idma0": BASE, "odma0": BASE + 0x10000}))
    write_manifest(root, "accel.bit" if with_bitfile else None, "accel.hwh" if with_bitfile else None)
    return root
