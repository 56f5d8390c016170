"""FINN+'s ``MVAU_rtl`` with per-iteration weights, for the matrix units of a rolled body.

In a rolled body (``samfpga.hw.rolled``) one matrix unit serves N blocks in turn, each with its own weights
(``samfpga.hw.custom_ops.looped``: the weight initializer, input 1, per iteration). FINN+'s unit takes its weights
from a memstream in ``mem_mode`` internal_decoupled; this class puts every iteration's weights into that memstream,
one set after another, and its wrapper streams set i once per token of a pass before moving on
(``samfpga.hw.custom_ops.looped_memstream``), so the unit needs no set select from outside. The compute core and
everything else are FINN's. A node with one iteration is FINN+'s MVAU_rtl unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from finn.custom_op.fpgadataflow.rtl import register_custom_op as register_rtl_op
from finn.custom_op.fpgadataflow.rtl.matrixvectoractivation_rtl import MVAU_rtl as FinnMVAURTL

from samfpga.hw.custom_ops import looped, looped_memstream


@register_rtl_op
class MVAU_rtl(looped.LoopedAttrs, FinnMVAURTL):  # noqa: N801 - FINN's op type name: this class takes its place
    """FINN+'s MVAU_rtl plus per-iteration weights in its memstream (module doc)."""

    LOOP_ATTRS = ()
    LOOP_INPUTS = {"weights": 1}

    def _check_looped(self) -> None:
        if self.get_nodeattr("mem_mode") != "internal_decoupled":
            raise ValueError(f"{self.onnx_node.name}: a looped MVAU_rtl streams its weight sets from its memstream; "
                             f"set mem_mode=internal_decoupled (got {self.get_nodeattr('mem_mode')})")
        if self.get_nodeattr("TH") != 1:
            raise ValueError(f"{self.onnx_node.name}: a looped MVAU_rtl supports TH = 1 (got {self.get_nodeattr('TH')})")

    def generate_params(self, model, path) -> None:
        n = looped.iterations(self)
        if n == 1:
            return super().generate_params(model, path)
        self._check_looped()
        parts = []
        for i in range(n):
            with looped.iteration_of(self, model, i):
                super().generate_params(model, path)
                parts.append((Path(path) / "memblock.dat").read_text())
        # input_1.npy (cppsim) stays iteration N-1's; the memory holds every set, iteration 0 first
        (Path(path) / "memblock.dat").write_text(looped_memstream.concat_memblocks(parts))
        return None

    def generate_hdl(self, model, fpgapart, clk) -> None:
        n = looped.iterations(self)
        if n == 1:
            return super().generate_hdl(model, fpgapart, clk)
        self._check_looped()
        # FINN+ marks the weights narrow-range (a DSP packing option) when the node's weights never reach the
        # datatype's minimum; generate with the iteration holding the overall minimum so that holds for every set
        lows = [float(np.min(looped.iteration_attrs(self, i)["weights"])) for i in range(n)]
        with looped.iteration_of(self, model, int(np.argmin(lows))):
            super().generate_hdl(model, fpgapart, clk)
        return None

    def runtime_words(self, model) -> list[str]:
        """FINN's ``decoupled_runtime`` words (hex) of every iteration's weights, one set after another: the
        memstream holds set i at memory word i x DEPTH, so its AXI-Lite addresses run on across the sets."""
        import tempfile

        n = looped.iterations(self)
        words = []
        for i in range(n):
            with looped.iteration_of(self, model, i), tempfile.TemporaryDirectory() as d:
                path = Path(d) / "runtime.dat"
                self.make_weight_file(model.get_initializer(self.onnx_node.input[1]), "decoupled_runtime", str(path))
                words += path.read_text().split()
        return words

    def generate_hdl_memstream(self, fpgapart, *args, **kwargs) -> None:
        super().generate_hdl_memstream(fpgapart, *args, **kwargs)
        n = looped.iterations(self)
        if n > 1:
            wrapper = Path(self.get_nodeattr("code_gen_dir_ipgen")) / f"{self.onnx_node.name}_memstream_wrapper.v"
            looped_memstream.patch_wrapper(wrapper, n, looped.tokens_per_pass(self))
