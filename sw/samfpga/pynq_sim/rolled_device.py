"""``RolledSimDevice``: a ``pynq.Device`` whose PL is a model of a rolled build's block design (``rolled/host.json``):
per part a strip reader and a strip writer with the register protocol of docs/unit_regs.md (``strip_units.SimPart``)
around the part's body, its token-batched units' and runtime-writeable layers' AXI-Lite at their addresses.

* ``bodies[j](i, x) -> y``: part j's block i on its input values (``in_shape``) giving its output values
  (``out_shape``): the python execution of the part's graph (``samfpga.hw.rolled.execute.part_body``), a deployment
  package's integer graph between the block's tensors (``graph_bodies``, what ``pynq-sim`` runs), in a test any
  numpy function. The strip units move the bytes between DDR and the body in the buffers' format
  (``rolled_host.encode`` / ``decode``).
* When a part's reader takes its first job of a frame, every token-batched unit of the part must be configured as
  host.json says, its BASE on memory holding the unit's weight file, and every runtime-writeable layer's memory must
  hold its file's words, else the run raises ``BackendError`` naming the unit or layer (a board would compute with
  whatever BASE points at, or with uninitialised URAM). A frame started after runtime writes is counted in
  ``stale_runs`` (the driver's flush frame).
* The overlay's ``ip_dict`` holds one entry per part cell (at its reader's address).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from samfpga.backends.base import BackendError
from samfpga.backends.pynq_driver import read_runtime_words
from samfpga.backends.rolled_driver import read_host
from samfpga.backends.rolled_host import PartSpec, decode, encode, read_parts
from samfpga.backends.unit_regs import TOKEN_BATCH_MVU

from .device import Parser, SimBoard, _WordMemory, check_unit, stand_in_bitfile
from .strip_units import SimPart

Body = Callable[[int, np.ndarray], np.ndarray]


def _parser(host: dict) -> Parser:
    """One IP per part cell, at its reader's registers."""
    return Parser({p["cell"]: ("samfpga:rolled:part:1.0", p["reader"]["regs"], p["reader"]["range"])
                   for p in host["parts"]})


class _Regs:
    """A token-batched unit's register block: what was written."""

    def __init__(self, entry: dict) -> None:
        self.entry, self.regs = entry, {}

    def read(self, off: int) -> int:
        return self.regs.get(off, 0)

    def write(self, off: int, val: int) -> None:
        self.regs[off] = val


def _strip_body(spec: PartSpec, body: Body, timings: dict[str, float]) -> Callable[[int, np.ndarray], np.ndarray]:
    def run(job: int, data: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        y = body(job % spec.blocks, decode(data.tobytes(), spec.in_shape, spec.src))
        timings["bodies_s"] = timings.get("bodies_s", 0.0) + time.perf_counter() - t0
        return np.frombuffer(encode(np.asarray(y).reshape(spec.out_shape), spec.dst), dtype=np.uint8)
    return run


class RolledSimDevice(SimBoard):
    """Simulated board of the rolled build described by ``root/host.json``, its parts computing with ``bodies``
    (module doc)."""

    def __init__(self, root: str | Path, bodies: Sequence[Body], tag: str = "pynq-sim-rolled") -> None:
        super().__init__(tag)
        self.root = Path(root)
        self.host = read_host(self.root)
        self.specs = read_parts(self.host, str(self.root / "host.json"))
        if len(bodies) != len(self.specs):
            raise ValueError(f"{len(self.specs)} parts in {self.root / 'host.json'}, {len(bodies)} bodies")
        self.bitfile = stand_in_bitfile(self)
        self.stale_runs, self._stale, self.downloads = 0, False, 0
        self.timings: dict[str, float] = {}  # the last frame's: bodies_s, the seconds in the parts' bodies
        self.slaves: list[tuple[int, int, object]] = []  # (base, range, register model)
        self.parts: list[SimPart] = []
        self.memories: dict[str, _WordMemory] = {}
        for j, (p, spec, body) in enumerate(zip(self.host["parts"], self.specs, bodies)):
            part = SimPart(None, body=_strip_body(spec, body, self.timings), view=self._memory,
                           on_start=lambda unit, cfg, j=j: self._on_start(j, unit))
            self.parts.append(part)
            self.slaves += [(p["reader"]["regs"], p["reader"]["range"], part.reader),
                            (p["writer"]["regs"], p["writer"]["range"], part.writer)]
            self.slaves += [(u["regs"], u["range"], _Regs(u)) for u in p.get("token_batch", [])]
            for e in p.get("runtime_weights", []):
                self.memories[e["name"]] = m = _WordMemory(e)
                self.slaves.append((e["regs"], e["range"], m))

    # ---- pynq.Device API ---------------------------------------------------------------------------------
    def get_bitfile_metadata(self, bitfile_name):
        return _parser(self.host)

    def download(self, bitstream, parser=None) -> None:
        self.downloads += 1
        self.post_download(bitstream, parser or _parser(self.host))

    def read_registers(self, address: int, length: int) -> bytes:
        base, model = self._slave(address)
        if isinstance(model, _WordMemory):
            return model.read(address, length)
        return int(model.read(address - base)).to_bytes(4, "little")[:length]

    def write_registers(self, address: int, data: bytes) -> None:
        base, model = self._slave(address)
        if isinstance(model, _WordMemory):
            model.write(address, data)
            self._stale = True
            return
        model.write(address - base, int.from_bytes(data, "little"))

    # ---- model ---------------------------------------------------------------------------------------------
    def _slave(self, address: int):
        for base, rng, model in self.slaves:
            if base <= address < base + rng:
                return base, model
        raise MemoryError(f"pynq-sim: no AXI-Lite slave at {address:#x} (host.json's address map)")

    def _on_start(self, j: int, unit: str) -> None:
        part = self.parts[j]
        if unit != "strip_reader" or part.jobs_read % self.specs[j].blocks:
            return
        if j == 0:
            self.timings.clear()
            if self._stale:
                self.stale_runs += 1
                self._stale = False
        p = self.host["parts"][j]
        for u in p.get("token_batch", []):
            model = next(m for b, _, m in self.slaves if b == u["regs"])
            want = np.frombuffer((self.root / u["file"]).read_bytes(), dtype=np.uint8)
            check_unit(u["name"], TOKEN_BATCH_MVU.config(model.read), u, want, self._memory,
                       f"host.json, part {p['name']}", u["file"])
        for e in p.get("runtime_weights", []):
            self.memories[e["name"]].check(read_runtime_words(self.root, e), e, f"part {p['name']}, ")


def graph_bodies(graph, host_json: str | Path) -> list[Body]:
    """Part bodies from an integer graph (``samfpga.intexec.IntGraph``, a package's graph.json) and the parts'
    description ``host_json``: part j's block i runs the graph from the block's input tensor to its output tensor
    (host.json ``tensors``, as a package names them; ``IntGraph.run_between``)."""
    host = read_host(Path(host_json).parent)

    def body(pairs: list):
        def run(i: int, x: np.ndarray) -> np.ndarray:
            src, dst = pairs[i]
            return graph.run_between(np.asarray(x).reshape(graph.shape(src)), src, dst)
        return run
    try:
        return [body(p["tensors"]) for p in host["parts"]]
    except KeyError:
        raise BackendError(f"{host_json}: a part lacks 'tensors' (a host.json written before they were recorded; "
                           "rebuild with samfpga build-hw --roll)") from None
