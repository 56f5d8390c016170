"""A whole rolled graph in RTL, part after part, as the board's host runs it (docs/rolled_stage.md): each part (a
piece that runs once, or a loop body run N times) between the strip reader and the strip writer
(``rolled_loop.run_loop_rtl``), the bytes its writer left in its output buffer handed to the next part as that
part's input buffer.

Neighbouring parts share a buffer, so they must agree on its format: ``layouts`` gives each buffer the bytes per
element the wider of its producer and consumer needs (1 up to 8 bits, 2 up to 16; a loop's two buffers alike, since
they alternate). A producer writes its datatype sign- or zero-extended to that width, a consumer reads the low bits
of its own datatype: the roll widens an MBConv stage's UINT8 / INT8 to INT9, so the part before it writes INT8 in
two bytes, and the part after it reads UINT8 from two.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samfpga.hw.sim.rolled_loop import LoopCheck, Pass, elem_bytes, from_bytes, run_loop_rtl, to_bytes


def _bits(model, tensor: str) -> int:
    return model.get_tensor_datatype(tensor).bitwidth()


def is_loop(part) -> bool:
    """Whether ``part`` is a loop body (it has layers that count their passes)."""
    from samfpga.hw.custom_ops.looped import looped_ops

    return bool(looped_ops(part))


def layouts(parts: list) -> list[int]:
    """Bytes per element of each buffer of a chain of ``parts``: entry j is part j's input, entry len(parts) the
    last part's output (module doc)."""
    need = [elem_bytes(_bits(p, p.graph.input[0].name)) for p in parts]
    need.append(elem_bytes(_bits(parts[-1], parts[-1].graph.output[0].name)))
    for j, p in enumerate(parts[:-1]):
        need[j + 1] = max(need[j + 1], elem_bytes(_bits(p, p.graph.output[0].name)))
    changed = True
    while changed:  # a loop's input and output are one buffer pair: both as wide as either neighbour needs
        changed = False
        for j, p in enumerate(parts):
            if is_loop(p) and need[j] != need[j + 1]:
                need[j] = need[j + 1] = max(need[j], need[j + 1])
                changed = True
    return need


def hw_parts(rolled) -> list:
    """The parts of ``rolled`` (``samfpga.hw.rolled.roll``'s graph) as RTL runs them: pieces that run once as they
    are, each loop as its looped body (``looped_body``); raises ``ValueError`` naming a body layer without
    per-iteration HDL."""
    from samfpga.hw.rolled.graph import Loop
    from samfpga.hw.rolled.hdl import looped_body

    out = []
    for p in rolled.parts:
        if isinstance(p, Loop):
            body, res = looped_body(p)
            if res.missing:
                raise ValueError(f"body layers without per-iteration HDL: {res.missing}")
            out.append(body)
        else:
            out.append(p)
    return out


def host_parts(parts: list, names: list[str] | None = None) -> list:
    """``parts`` (``hw_parts``) as the board's host runs them (``samfpga.backends.rolled_host.PartSpec``: blocks,
    buffer sides with the bytes per element of ``layouts``, shapes); ``names``: one per part (default
    ``part<j>``). Raises ``LoopError`` (``geometry``) for a part the DMA engines cannot carry."""
    from samfpga.backends.rolled_host import PartSpec
    from samfpga.hw.custom_ops.looped import iterations, looped_ops
    from samfpga.hw.sim.rolled_loop import geometry

    lay = layouts(parts)
    out = []
    for j, p in enumerate(parts):
        ops = looped_ops(p)
        g = geometry(p, loop=bool(ops), layout=(lay[j], lay[j + 1]))
        i, o = p.graph.input[0].name, p.graph.output[0].name
        out.append(PartSpec(name=names[j] if names else f"part{j}", blocks=iterations(ops[0]) if ops else 1,
                            src=g.src.buffer, dst=g.dst.buffer, in_shape=tuple(p.get_tensor_shape(i)),
                            out_shape=tuple(p.get_tensor_shape(o))))
    return out


@dataclass
class PartRun:
    """One part of the chain: its check (``run_loop_rtl``), whether its input buffer held exactly the bytes the part
    before it wrote (``handoff``; True for the first), and the wall time."""

    index: int
    loop: bool
    check: LoopCheck
    handoff: bool
    wall_s: float

    @property
    def bit_exact(self) -> bool:
        return self.check.bit_exact and self.handoff


def run_parts_rtl(parts: list, x: np.ndarray, work_dir: Path, passes: list[Pass], seed: int = 0,
                  progress=None) -> tuple[list[PartRun], np.ndarray]:
    """Run ``parts`` (``hw_parts``) in RTL one after the other on input ``x`` (the first part's input tensor, e.g.
    (1, H, W, 3) uint8 pixels as float32): part j reads the values part j - 1's writer left in DDR (decoded as
    that part wrote them), each part's run checked against its own python execution (``run_loop_rtl``, every
    pass). Stops at the first part that is not bit-exact. Returns the runs and the last part's output as its
    writer left it (float32 of the graph's output shape). ``progress``: called with each ``PartRun``."""
    lay = layouts(parts)
    runs: list[PartRun] = []
    prev: bytes | None = None
    for j, part in enumerate(parts):
        t0 = time.monotonic()
        check = run_loop_rtl(part, [x], work_dir / f"part{j}", passes, seed=seed, layout=(lay[j], lay[j + 1]))
        handoff = prev is None or to_bytes(check.expected[0][0], check.geometry.src) == prev
        runs.append(PartRun(index=j, loop=is_loop(part), check=check, handoff=handoff,
                            wall_s=round(time.monotonic() - t0, 1)))
        if progress is not None:
            progress(runs[-1])
        if not runs[-1].bit_exact or not check.outputs:
            break
        prev = check.outputs[0]
        x = from_bytes(prev, check.expected[0][-1].shape, check.geometry.dst)
    return runs, x
