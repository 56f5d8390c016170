"""The driver of a rolled accelerator on PYNQ (docs/rolled_stage.md): loads the bitstream, finds every part's
registers at the addresses of ``rolled/host.json`` (``samfpga.hw.rolled.board``), puts the token-batched units'
weights in DDR and loads the memories the bitstream cannot initialise, then runs frames through the parts with the
host sequence the RTL benches verify (``rolled_host.run_parts``).

Start-up, in order: the overlay is downloaded (``pynq.Overlay``) and every part's cell must be in its ``ip_dict``
(the block design names it ``host.json``'s ``cell``); one ``pynq.allocate`` region, below 2**``master_addr_bits``
(host.json: the design's narrowest AXI master; ``check_reach``), holds the parts' buffer pairs (``plan_buffers``) and after them each token-batched unit's weights (4 KiB-aligned, the file
``token_batch/<part>/<node>.bin``), whose BASE (region address + offset), STRIDE, ITERS and TOKENS are written once
(``unit_regs.TOKEN_BATCH_MVU``); each runtime-writeable layer's words (``runtime_weights/<part>/<node>.dat``) are
written over its AXI-Lite from its address; then, when there are any, one frame of zeros is run and dropped (a
weight memstream prefetches words before they are written: the RTL benches measured the flush pass wrong for the
parts with weight memories). Every file is checked against the description before anything is written to the
board.

Importable without torch / finn; ``pynq`` only when an accelerator is opened.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .base import BackendError
from .pynq_driver import OverlayLock, check_reach, free_buffer, read_runtime_words
from .rolled_host import BUFFER_ALIGN, PartSpec, align_up, plan_buffers, read_parts, run_parts
from .unit_regs import STRIP_READER, STRIP_WRITER, TOKEN_BATCH_MVU, UnitDriver


def read_host(root: str | Path) -> dict:
    """``root/host.json`` (a rolled build's ``rolled/`` folder) as a dict; ``BackendError`` naming the file when it
    is missing or not JSON."""
    path = Path(root) / "host.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BackendError(f"{path}: cannot read the rolled build's host description ({e})") from None


def _need(entry: Mapping, keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in entry]
    if missing:
        raise BackendError(f"{where}: lacks {missing} (a host.json written before the address map; rebuild with "
                           "`samfpga build-hw --roll`)")


def weight_layout(host: Mapping, start: int) -> tuple[list[tuple[dict, int]], int]:
    """Where each token-batched unit's weights go in the DDR region, from byte ``start``: [(unit, offset)] (each
    offset 4 KiB-aligned: a multiple of every unit's burst) and the region's end."""
    out, top = [], start
    for p in host["parts"]:
        for u in p.get("token_batch", []):
            top = align_up(top, BUFFER_ALIGN)
            out.append((u, top))
            top += u["bytes"]
    return out, top


def load_files(root: Path, host: Mapping) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """The token-batched units' weight images and the runtime-writeable layers' words that ``host`` names, read and
    checked against the described sizes: ({file: bytes}, {file: words})."""
    images, words = {}, {}
    for p in host["parts"]:
        for u in p.get("token_batch", []):
            path = root / u["file"]
            if not path.is_file():
                raise BackendError(f"{path}: missing (weights of token-batched unit {u['name']} of part {p['name']})")
            data = path.read_bytes()
            if len(data) != u["bytes"]:
                raise BackendError(f"{path}: {len(data)} bytes, host.json says {u['bytes']} for {u['name']}")
            images[u["file"]] = data
        for e in p.get("runtime_weights", []):
            words[e["file"]] = read_runtime_words(root, e)
    return images, words


class RolledAccelerator:
    """A rolled build's parts on ``device`` (default: the board's), described by ``root/host.json``; ``bitfile``
    with its .hwh beside it. ``execute(values)`` takes the first part's input (its ``in_shape``, integer values of
    its datatype) and returns the last part's output (float32 of its ``out_shape``); ``timings`` holds the last
    run's ``run_s``. ``poll_s``: the units' poll interval; ``timeout_s``: per block. Raises ``BackendError`` naming
    the file, part or field for a description or file that is wrong, before writing anything to the board."""

    def __init__(self, root: str | Path, bitfile: str | Path, device=None, timeout_s: float = 10.0,
                 poll_s: float = 0.0002) -> None:
        self.root = Path(root)
        self.host = read_host(self.root)
        self.parts: list[PartSpec] = read_parts(self.host, str(self.root / "host.json"))
        for p in self.host["parts"]:
            where = f"{self.root / 'host.json'}: part {p['name']}"
            _need(p, ("cell", "reader", "writer"), where)
            for u in p.get("token_batch", []):
                _need(u, ("regs", "range", "file", "bytes", "stride", "iters", "tokens"), f"{where}, unit {u['name']}")
            for e in p.get("runtime_weights", []):
                _need(e, ("regs", "range", "file", "words"), f"{where}, runtime weights {e['name']}")
        images, words = load_files(self.root, self.host)
        self.timeout_s, self.timings = timeout_s, {}
        import pynq

        self.device = device if device is not None else pynq.Device.active_device
        self.lock = OverlayLock(getattr(self.device, "tag", "pynq0"))
        self.ddr = None
        try:
            self.overlay = pynq.Overlay(str(bitfile), download=True, device=self.device)
            cells = {k.split("/")[0] for k in self.overlay.ip_dict}
            absent = [p["cell"] for p in self.host["parts"] if p["cell"] not in cells]
            if absent:
                raise BackendError(f"{bitfile}: the overlay has no cell {absent} (host.json); it has "
                                   f"{sorted(cells)}")
            layout, total = weight_layout(self.host, plan_buffers(self.parts)[1])
            self.ddr = pynq.allocate((total,), dtype=np.uint8, target=self.device)
            check_reach(self.ddr.device_address, total, self.host)
            for u, off in layout:
                self.ddr[off:off + u["bytes"]] = np.frombuffer(images[u["file"]], dtype=np.uint8)
            self.ddr.flush()

            def mmio(e: Mapping):
                return pynq.MMIO(e["regs"], e["range"], device=self.device)

            self.drivers = [(UnitDriver(mmio(p["reader"]), STRIP_READER, poll_s=poll_s),
                             UnitDriver(mmio(p["writer"]), STRIP_WRITER, poll_s=poll_s)) for p in self.host["parts"]]
            for u, off in layout:
                UnitDriver(mmio(u), TOKEN_BATCH_MVU).configure(
                    {"base": self.ddr.device_address + off, "stride": u["stride"], "iters": u["iters"],
                     "tokens": u["tokens"]})
            rtw = [e for p in self.host["parts"] for e in p.get("runtime_weights", [])]
            for e in rtw:
                mmio(e).write(0, np.ascontiguousarray(words[e["file"]], "<u4").tobytes())
            if rtw:  # the flush frame (module doc)
                self.execute(np.zeros(self.parts[0].in_shape, dtype=np.float32))
                self.timings = {}
        except BaseException:
            self.close()
            raise

    def execute(self, values: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        y = run_parts(self.parts, self.drivers, self.ddr, self.ddr.device_address, values, timeout_s=self.timeout_s)
        self.timings = {"run_s": time.perf_counter() - t0}
        return y

    def close(self) -> None:
        free_buffer(self.ddr)
        self.ddr = None
        self.lock.release()
