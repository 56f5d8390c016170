"""Linear-time replacements of qonnx's housekeeping transformations, installed for the length of a build.

qonnx's ``SortGraph`` (run by every ``model.transform``'s cleanup), ``GiveUniqueTensorNames``,
``GiveReadableTensorNames`` and ``ModelWrapper.check_all_tensor_shapes_specified`` (every ModelWrapper
construction, every InferShapes) are quadratic in the node count; FINN+'s builder steps import the classes by name,
so ``installed()`` swaps those methods for the project's versions (``fast_sort.py``, ``fast_names.py``,
``fast_shapes.py``: same result, tests/test_build_speed.py) and restores them on exit. ``flow.run_build`` builds with them; nothing else
in qonnx or FINN+ changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def _replacements() -> list[tuple[type, str, object]]:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueTensorNames, SortGraph

    from samfpga.hw.build.fast_names import FastReadableTensorNames, FastUniqueTensorNames
    from samfpga.hw.build.fast_shapes import check_all_tensor_shapes_specified
    from samfpga.hw.build.fast_sort import FastSortGraph

    return [(SortGraph, "apply", FastSortGraph.apply), (GiveUniqueTensorNames, "apply", FastUniqueTensorNames.apply),
            (GiveReadableTensorNames, "apply", FastReadableTensorNames.apply),
            (ModelWrapper, "check_all_tensor_shapes_specified", check_all_tensor_shapes_specified)]


@contextmanager
def installed() -> Iterator[None]:
    """qonnx's SortGraph / GiveUniqueTensorNames / GiveReadableTensorNames and
    ModelWrapper.check_all_tensor_shapes_specified run the linear-time versions inside."""
    swaps = [(cls, attr, cls.__dict__[attr], fast) for cls, attr, fast in _replacements()]
    for cls, attr, _old, fast in swaps:
        setattr(cls, attr, fast)
    try:
        yield
    finally:
        for cls, attr, old, _fast in swaps:
            setattr(cls, attr, old)
