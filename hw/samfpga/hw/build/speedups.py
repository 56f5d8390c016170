"""Linear-time replacements of qonnx's housekeeping transformations, installed for the length of a build.

qonnx's ``SortGraph`` (run by every ``model.transform``'s cleanup), ``GiveUniqueTensorNames`` and
``GiveReadableTensorNames`` are quadratic in the node count; FINN+'s builder steps import the classes by name, so
``installed()`` swaps the classes' ``apply`` for the project's versions (``fast_sort.py``, ``fast_names.py``: same
result, tests/test_build_speed.py) and restores them on exit. ``flow.run_build`` builds with them; nothing else
in qonnx or FINN+ changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def _replacements() -> list[tuple[type, object]]:
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueTensorNames, SortGraph

    from samfpga.hw.build.fast_names import FastReadableTensorNames, FastUniqueTensorNames
    from samfpga.hw.build.fast_sort import FastSortGraph

    return [(SortGraph, FastSortGraph.apply), (GiveUniqueTensorNames, FastUniqueTensorNames.apply),
            (GiveReadableTensorNames, FastReadableTensorNames.apply)]


@contextmanager
def installed() -> Iterator[None]:
    """qonnx's SortGraph / GiveUniqueTensorNames / GiveReadableTensorNames run the linear-time versions inside."""
    swaps = [(cls, cls.__dict__["apply"], fast) for cls, fast in _replacements()]
    for cls, _old, fast in swaps:
        cls.apply = fast
    try:
        yield
    finally:
        for cls, old, _fast in swaps:
            cls.apply = old
