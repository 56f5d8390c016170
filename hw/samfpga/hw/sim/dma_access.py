"""A DMA engine's address pattern as an affine loop nest, found from the element order a consumer needs.

The layer-sequential engine (``samfpga.hw.plan.engine``) keeps feature maps in DDR between steps; FINN's graph moves
data between layers with Reshape / Shuffle / PagePermute / StreamingSplit / DuplicateStreams nodes, which on the
engine become the address pattern of a step's reader (or writer). ``factor`` turns "element i of the consumer's
stream is element ``index[i]`` of the stored tensor" into ``Access(offset, run, loops)``: contiguous runs of
``run`` elements whose starts are ``offset + sum_k i_k * stride_k`` over the loops (outermost first), or None when
no such nest gives that order (an element-level transpose, for example). ``Access.indices`` regenerates the order,
so a factorisation is checked, not assumed. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Access:
    """``run`` contiguous elements at each start ``offset + sum_k i_k * stride_k``, ``i_k < count_k``; ``loops``
    ((count, stride), ...) outermost first (elements, not bytes)."""

    offset: int
    run: int
    loops: tuple[tuple[int, int], ...]

    @property
    def size(self) -> int:
        return self.run * int(np.prod([c for c, _ in self.loops], dtype=np.int64))

    @property
    def levels(self) -> int:
        """Loop levels above the contiguous run (0: one sequential read)."""
        return len(self.loops)

    def indices(self) -> np.ndarray:
        """The element order the access produces: (size,) int64."""
        starts = np.array([self.offset], dtype=np.int64)
        for count, stride in self.loops:
            starts = (starts[:, None] + stride * np.arange(count, dtype=np.int64)[None, :]).ravel()
        return (starts[:, None] + np.arange(self.run, dtype=np.int64)[None, :]).ravel()

    def describe(self, elem_bytes: int = 1) -> str:
        loops = " x ".join(f"{c}@{s * elem_bytes}" for c, s in self.loops) or "1"
        return f"+{self.offset * elem_bytes}: {loops} runs of {self.run * elem_bytes} B"


def _longest(seq: np.ndarray, step: int) -> int:
    """The largest c dividing len(seq) such that every block of c consecutive entries rises by ``step`` per entry
    (1 when none does)."""
    n = len(seq)
    for c in sorted((d for d in range(2, n + 1) if n % d == 0), reverse=True):
        if (np.diff(seq.reshape(-1, c), axis=1) == step).all():
            return c
    return 1


def factor(index: np.ndarray) -> Access | None:
    """The affine loop nest producing ``index`` (a flat order of element positions), or None. The innermost run
    and each loop take the largest count that fits; the result is verified by regenerating the order."""
    idx = np.asarray(index, dtype=np.int64).ravel()
    if idx.size == 0:
        return None
    run = _longest(idx, 1)
    starts = idx[::run]
    loops: list[tuple[int, int]] = []
    while len(starts) > 1:
        stride = int(starts[1] - starts[0])
        count = _longest(starts, stride)
        if count == 1:
            return None
        loops.insert(0, (count, stride))
        starts = starts[::count]
    acc = Access(int(starts[0]), run, tuple(loops))
    return acc if np.array_equal(acc.indices(), idx) else None


def gather(data: np.ndarray, access: Access) -> np.ndarray:
    """A reader: the elements of ``data`` (flat) in the access's order."""
    return np.asarray(data).ravel()[access.indices()]


def scatter(values: np.ndarray, access: Access) -> np.ndarray:
    """A writer: ``values`` (flat, the access's order) placed at the positions it addresses (a permutation)."""
    out = np.empty_like(values)
    out[access.indices()] = values
    return out
