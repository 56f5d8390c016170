"""The board runtime imports and runs in a Kria-PYNQ-like environment: no torch, numpy 1.26, onnxruntime 1.23."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys

import numpy as np
import onnxruntime

import samfpga


def test_environment_is_board_like():
    assert importlib.util.find_spec("torch") is None, "the board-like environment must not have torch"
    assert np.__version__.startswith("1.26"), np.__version__
    assert onnxruntime.__version__.startswith("1.23"), onnxruntime.__version__
    import pynq

    assert pynq.__version__ == "3.0.1"


def test_every_runtime_module_imports_without_torch():
    # the one wheel also carries the development side (samfpga.models needs torch, samfpga.hw needs finn-plus);
    # the runtime is everything else, and none of it may pull those in
    dev_side = ("samfpga.models", "samfpga.hw")
    names = [m.name for m in pkgutil.walk_packages(samfpga.__path__, prefix="samfpga.",
                                                   onerror=lambda name: None)
             if not m.name.startswith(dev_side)]
    assert "samfpga.transforms" in names and "samfpga.everything.amg" in names
    for name in names:
        importlib.import_module(name)
    assert not any(m == "torch" or m.startswith(("torch.", "brevitas", "finn")) for m in sys.modules)
