"""``samfpga.pynq_sim.external.ExternalAccelerator``: an accelerator model in a child process (the protocol the
RTL co-simulation server ``samfpga.hw.sim.cosim`` speaks), plugged into the simulated PYNQ device under the
unmodified ``pynq`` backend. The RTL itself runs in ``make cosim-rtl`` (development environment)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from samfpga.pynq_sim.external import ExternalAccelerator, ExternalAcceleratorError

PKG = Path(__file__).parent / "data" / "tiny_deploy"

# a model process speaking the protocol: the package's integer executor (what the RTL must compute), with
# library-style chatter on stdout that the client must skip
_INTEXEC_MODEL = """
import sys, numpy as np
from samfpga.intexec import load_intgraph
g = load_intgraph(sys.argv[1])
print("some library output", flush=True)
print("COSIM ready", flush=True)
for line in sys.stdin:
    src, dst = line.split()
    np.save(dst, g.run_accelerator(np.load(src)))
    print("COSIM ok 1234", flush=True)
"""


def test_pynq_backend_over_external_model_equals_quant() -> None:
    from samfpga.predictor import Predictor

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    with ExternalAccelerator([sys.executable, "-c", _INTEXEC_MODEL, str(PKG)]) as model:
        sim = Predictor.from_deploy(PKG, backend="pynq-sim", accelerator=model)
        quant = Predictor.from_deploy(PKG, backend="quant")
        try:
            sim.set_image(img)
            quant.set_image(img)
            e = quant.get_image_embedding()
            assert np.unique(e).size > 20
            np.testing.assert_array_equal(sim.get_image_embedding(), e)
        finally:
            sim.encoder.close()
        assert model.cycles == [1234]


def test_external_model_errors_are_clear(tmp_path) -> None:
    failing = "print('COSIM ready', flush=True)\nimport sys\nfor l in sys.stdin: print('COSIM error boom', flush=True)"
    with ExternalAccelerator([sys.executable, "-c", failing]) as model, \
            pytest.raises(ExternalAcceleratorError, match="boom"):
        model(np.zeros(3, dtype=np.float32))
    with pytest.raises(ExternalAcceleratorError, match="exited"):
        ExternalAccelerator([sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(ExternalAcceleratorError, match="cannot start"):
        ExternalAccelerator([str(tmp_path / "no_such_program")])
