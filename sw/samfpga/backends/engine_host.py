"""The host's side of the layer-sequential engine (docs/engine.md): what an engine build's ``host/`` folder describes
(``samfpga.hw.engine.host`` writes it) and one frame on the board's DDR buffer.

``host.json`` (format ``FORMAT``):

- ``board``, ``cell`` (the block design's engine cell), ``regs`` / ``range`` (its register block), ``unit`` (its
  register map in ``unit_regs``: ``engine_gemm_path``), ``master_addr_bits`` (its AXI masters' address width),
  ``ddr_bytes`` (the program's DDR: one buffer), ``fclk_mhz``;
- ``regions``: what the host writes once before the first frame, each ``{name, at, bytes, file_at}``: ``bytes``
  bytes of ``ddr.bin`` from ``file_at`` at buffer offset ``at`` (``file_at`` null: zeros). Every other byte of the
  buffer is zeroed: the program reads some padding no step writes;
- ``address_keys``: the registers that hold DDR addresses (the steps give them as buffer offsets);
- ``input``: the accelerator input (``tensor``, ``shape``, ``dtype``) and where each frame's goes (``writes``:
  ``{at, format}``; ``image``: each pixel's channels in ``pixel_bytes`` bytes, the rest zero, as the image window
  reads it; ``stored``: the values in order, ``elem_bytes`` little-endian bytes each);
- ``output``: the accelerator output (``tensor``, ``shape``, ``dtype``) as the program leaves it: ``elements``
  values of ``elem_bytes`` little-endian bytes (``signed``: two's complement) at ``at``, the output's element j
  being stored element ``index[j]`` (``index``: an .npy file of the folder; null: in order);
- ``steps``: the program's steps in order, each ``{name, kind, regs}`` (``regs``: the unit map's keys).

A frame (``run_frame``): the input written, the buffer flushed, the steps run by ``StepSequencer`` (registers,
ap_start, CTRL polled until ap_done), the buffer invalidated, the output read. The same code runs on a board
(``engine_driver.EngineAccelerator``: ``pynq.allocate``, ``pynq.MMIO``), on the simulated board
(``samfpga.pynq_sim.engine_device``) and in the RTL simulation of the engine (tests/test_sim_engine_gemm_path.py:
the buffer this module prepares is the simulated DDR, the output read back from it).

Importable without torch / finn / pynq (the board runtime).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..intexec.executor import dtype_range
from .base import BackendError
from .step_sequencer import StepRecord, StepSequencer

FORMAT = "samfpga-engine-host"
VERSION = 1
HOST_FILE = "host.json"
IMAGE_FILE = "ddr.bin"
INPUT_FORMATS = ("image", "stored")


@dataclass
class EngineHost:
    """An engine build's host description (``read_engine_host``): host.json's fields, the bytes of its regions
    (``image``: ddr.bin) and the output's index (None: in order)."""

    root: Path
    spec: dict
    image: bytes = b""
    index: np.ndarray | None = None

    @property
    def ddr_bytes(self) -> int:
        return int(self.spec["ddr_bytes"])

    @property
    def steps(self) -> list[dict]:
        return self.spec["steps"]

    @property
    def names(self) -> list[str]:
        """The steps' names (for messages)."""
        return [s["name"] for s in self.steps]


def _need(entry: Mapping, keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in entry]
    if missing:
        raise BackendError(f"{where}: lacks {missing}")


def read_engine_host(root: str | Path) -> EngineHost:
    """``root``'s host.json, ddr.bin and output index, checked: ``BackendError`` naming the file and field of
    anything missing or inconsistent (before anything touches a board)."""
    root = Path(root)
    path = root / HOST_FILE
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BackendError(f"{path}: cannot read the engine's host description ({e})") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise BackendError(f"{path}: not an engine host description (format {FORMAT!r} expected)")
    if spec.get("version") != VERSION:
        raise BackendError(f"{path}: version {spec.get('version')}, this runtime reads {VERSION} (rebuild the "
                           "engine's host files with this samfpga)")
    _need(spec, ("cell", "regs", "range", "unit", "master_addr_bits", "ddr_bytes", "regions", "address_keys",
                 "input", "output", "steps"), str(path))
    from .unit_regs import UNITS

    if spec["unit"] not in UNITS:
        raise BackendError(f"{path}: unit {spec['unit']!r} is not one of {sorted(UNITS)}")
    unit = UNITS[spec["unit"]]
    keys = {k for k, _, _ in unit.params}
    bad_keys = [k for k in spec["address_keys"] if k not in keys]
    if bad_keys:
        raise BackendError(f"{path}: address_keys {bad_keys} are not registers of {spec['unit']}")
    image_path = root / IMAGE_FILE
    image = image_path.read_bytes() if image_path.is_file() else b""
    size = int(spec["ddr_bytes"])
    for r in spec["regions"]:
        _need(r, ("name", "at", "bytes", "file_at"), f"{path}: a region")
        if r["at"] < 0 or r["at"] + r["bytes"] > size:
            raise BackendError(f"{path}: region {r['name']} [{r['at']:#x}, +{r['bytes']}) lies outside the "
                               f"{size:,}-byte buffer")
        if r["file_at"] is not None and r["file_at"] + r["bytes"] > len(image):
            raise BackendError(f"{image_path}: {len(image):,} bytes, region {r['name']} needs "
                               f"{r['file_at'] + r['bytes']:,} (missing or truncated)")
    inp, out = spec["input"], spec["output"]
    _need(inp, ("tensor", "shape", "dtype", "writes"), f"{path}: input")
    for w in inp["writes"]:
        if w.get("format") not in INPUT_FORMATS:
            raise BackendError(f"{path}: input write format {w.get('format')!r}, expected one of {INPUT_FORMATS}")
    _need(out, ("tensor", "shape", "dtype", "at", "elements", "elem_bytes", "signed", "index"), f"{path}: output")
    if out["at"] + out["elements"] * out["elem_bytes"] > size:
        raise BackendError(f"{path}: the output's {out['elements']} elements at {out['at']:#x} lie outside the buffer")
    index = None
    if out["index"] is not None:
        try:
            index = np.load(root / out["index"])
        except (OSError, ValueError) as e:
            raise BackendError(f"{root / out['index']}: cannot read the output's index ({e})") from None
        n = int(np.prod(out["shape"]))
        if index.shape != (n,) or index.min() < 0 or index.max() >= out["elements"]:
            raise BackendError(f"{root / out['index']}: shape {index.shape}, range [{index.min()}, {index.max()}]; "
                               f"the output's {n} elements index {out['elements']} stored ones")
    for i, s in enumerate(spec["steps"]):
        _need(s, ("name", "kind", "regs"), f"{path}: step {i}")
        try:
            unit.writes(s["regs"])
        except ValueError as e:
            raise BackendError(f"{path}: step {i} ({s['name']}): {e}") from None
    return EngineHost(root, spec, image, index)


def relocated(host: EngineHost, base: int) -> list[dict[str, int]]:
    """Every step's registers with the DDR addresses at the buffer's address ``base`` (``address_keys``)."""
    keys = host.spec["address_keys"]
    return [{k: v + base if k in keys else v for k, v in s["regs"].items()} for s in host.steps]


def load_regions(buf: np.ndarray, host: EngineHost) -> None:
    """The buffer (uint8, ``ddr_bytes``) as the program starts: zeros, then every region."""
    if buf.dtype != np.uint8 or buf.size != host.ddr_bytes:
        raise BackendError(f"the engine's buffer must be {host.ddr_bytes:,} uint8 bytes, got {buf.size} {buf.dtype}")
    buf[:] = 0
    img = np.frombuffer(host.image, dtype=np.uint8)
    for r in host.spec["regions"]:
        if r["file_at"] is not None:
            buf[r["at"]:r["at"] + r["bytes"]] = img[r["file_at"]:r["file_at"] + r["bytes"]]


def _integers(values: np.ndarray, dtype: str, where: str) -> np.ndarray:
    """``values`` as int64, checked integral and within QONNX datatype ``dtype``'s range."""
    v = np.asarray(values)
    iv = np.rint(v).astype(np.int64)
    if v.size and not np.array_equal(iv, v):
        raise BackendError(f"{where}: the engine takes integers of {dtype}, got non-integer values")
    try:
        lo, hi = (int(b) for b in dtype_range(dtype))
    except (KeyError, ValueError):
        raise BackendError(f"{where}: datatype {dtype!r} is not an integer type") from None
    if iv.size and (iv.min() < lo or iv.max() > hi):
        raise BackendError(f"{where}: values [{iv.min()}, {iv.max()}] outside {dtype} [{lo}, {hi}]")
    return iv


def le_bytes(values: np.ndarray, e: int) -> np.ndarray:
    """Integers as ``e``-byte little-endian two's complement words, flat uint8."""
    return np.asarray(values, dtype=np.int64).ravel().astype("<i8").view(np.uint8).reshape(-1, 8)[:, :e].reshape(-1)


def le_values(raw: np.ndarray, e: int, signed: bool) -> np.ndarray:
    """The ``e``-byte little-endian integers of ``raw`` (uint8), int64 (``signed``: two's complement)."""
    wide = np.zeros((len(raw) // e, 8), dtype=np.uint8)
    wide[:, :e] = np.asarray(raw, dtype=np.uint8).reshape(-1, e)
    v = wide.view("<i8").ravel()
    return np.where(v >= 1 << 8 * e - 1, v - (1 << 8 * e), v) if signed else v


def write_input(buf: np.ndarray, host: EngineHost, values: np.ndarray) -> None:
    """The frame's accelerator input (``input.shape``, integers of ``input.dtype``) into the buffer."""
    inp = host.spec["input"]
    where = f"engine input {inp['tensor']}"
    if tuple(np.shape(values)) != tuple(inp["shape"]):
        raise BackendError(f"{where}: shape {tuple(np.shape(values))}, the engine takes {tuple(inp['shape'])}")
    v = _integers(values, inp["dtype"], where)
    for w in inp["writes"]:
        if w["format"] == "image":  # (.., H, W, C) -> H x W pixels of pixel_bytes bytes
            h, wd, c = w["shape"]
            px = np.zeros((h, wd, w["pixel_bytes"]), dtype=np.uint8)
            px[:, :, :c] = v.reshape(h, wd, c).astype(np.uint8)
            data = px.reshape(-1)
        else:
            data = le_bytes(v, w["elem_bytes"])
        buf[w["at"]:w["at"] + data.size] = data


def read_output(buf: np.ndarray, host: EngineHost) -> np.ndarray:
    """The accelerator output (``output.shape``, int64) as the program left it in the buffer."""
    out = host.spec["output"]
    n, e = out["elements"], out["elem_bytes"]
    v = le_values(buf[out["at"]:out["at"] + n * e], e, out["signed"])
    v = v[host.index] if host.index is not None else v[:int(np.prod(out["shape"]))]
    return v.reshape(out["shape"])


def run_frame(seq: StepSequencer, buf: np.ndarray, host: EngineHost, values: np.ndarray, base: int,
              flush: Callable[[], None] = lambda: None, invalidate: Callable[[], None] = lambda: None,
              steps: list[dict[str, int]] | None = None, timeout_s: float = 10.0
              ) -> tuple[np.ndarray, list[StepRecord]]:
    """One frame: input written, ``flush()``, every step (``steps``: ``relocated(host, base)``, computed once by
    the caller) run by ``seq``, ``invalidate()``, output read. Returns (output, the steps' records);
    ``UnitError`` / ``UnitTimeout`` name the step that failed."""
    write_input(buf, host, values)
    flush()
    recs = seq.run(steps if steps is not None else relocated(host, base), host.names, timeout_s)
    invalidate()
    return read_output(buf, host), recs
