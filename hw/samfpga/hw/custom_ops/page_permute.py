"""PagePermute: a Transpose (with the Reshapes around it, as FINN's ``Shuffle``) streamed through one buffered
page, instead of FINN+'s decomposition into 2-3 double-buffered ``InnerShuffle_rtl`` layers.

The axes before the first moved axis stay in place: every index of them is one *page*, permuted on its own. Within
a page, input axes that stay adjacent (in order) in the output are one axis, and the innermost group that stays
innermost carries the SIMD word, so the RTL (hw/samfpga/hw/rtl/page_permute.sv) sees a page of ``shape`` words
(input order) and the permutation ``perm`` of these merged axes (``page_view``). With every page axis a power of two,
or every one but an innermost axis that stays innermost (its words keep their order: a mixed-radix address), it
buffers ONE page in place (``pages=1``); otherwise two (ping-pong). One word per cycle in and out, the first
word out one page after the first word in.

``PagePermute`` is the HW abstraction (python execution: ``samfpga.kernels.shuffle.outer_shuffle``, exact); ``PagePermute_rtl`` wraps the
SV. Attributes follow FINN's ``Shuffle`` (``in_shape``, ``transpose_in_shape``, ``perm``, ``out_shape``,
``data_type``, ``SIMD``) plus ``ram_style`` and ``pages`` (0: the fewest the shape allows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from finn.custom_op.fpgadataflow import register_custom_op as register_hw_op
from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp
from finn.custom_op.fpgadataflow.rtl import register_custom_op as register_rtl_op
from qonnx.core.datatype import DataType

from samfpga.hw.custom_ops.rtl_base import OwnRTLBackend, core_instance_text

RAM_STYLES = ("auto", "block", "distributed", "ultra")


@dataclass(frozen=True)
class PageView:
    """What the RTL sees of a permutation: ``pages`` pages per frame, each of ``shape`` words (input order,
    outermost first) leaving as output axis j = input axis ``perm[j]``; ``simd`` elements per word."""

    pages: int
    shape: tuple[int, ...]
    perm: tuple[int, ...]
    simd: int

    @property
    def words(self) -> int:
        """Words per page."""
        return math.prod(self.shape)

    @property
    def pow2(self) -> bool:
        """Every page axis a power of two."""
        return all(d & (d - 1) == 0 for d in self.shape)

    @property
    def inner(self) -> int:
        """Words of the innermost axis when it stays innermost and is not a power of two (page_permute.sv's
        mixed-radix in-place address: outer step x ``inner`` + inner step), else 1."""
        last = self.shape[-1]
        return last if self.perm[-1] == len(self.shape) - 1 and last & (last - 1) else 1

    @property
    def outer(self) -> tuple[int, ...]:
        """The page axes whose address bits the in-place scheme permutes: all but a mixed-radix innermost one."""
        return self.shape[:-1] if self.inner > 1 else self.shape

    @property
    def in_place(self) -> bool:
        """The one-page in-place scheme applies: every ``outer`` axis a power of two."""
        return all(d & (d - 1) == 0 for d in self.outer)


def page_view(shape: list[int] | tuple[int, ...], perm: list[int] | tuple[int, ...], simd: int) -> PageView:
    """The page of a permutation ``perm`` of a row-major tensor of ``shape`` streamed ``simd`` elements per word.

    Raises ValueError when nothing moves (identity) or when the innermost axis moves and ``simd`` > 1 (a word of
    the input would not be a word of the output)."""
    shape, perm = [int(s) for s in shape], [int(p) for p in perm]
    if sorted(perm) != list(range(len(shape))):
        raise ValueError(f"perm {perm} is not a permutation of the {len(shape)} axes of {shape}")
    keep = [a for a in range(len(shape)) if shape[a] > 1]  # size-1 axes carry no order
    if not keep:
        raise ValueError(f"permutation {perm} of {shape} moves nothing")
    rank = {a: i for i, a in enumerate(keep)}
    dims = [shape[a] for a in keep]
    q = [rank[p] for p in perm if p in rank]
    # runs of input axes that stay adjacent and in order: one axis each
    runs, cur = [], [q[0]]
    for a in q[1:]:
        if a == cur[-1] + 1:
            cur.append(a)
        else:
            runs.append(cur)
            cur = [a]
    runs.append(cur)
    order = sorted(range(len(runs)), key=lambda r: runs[r][0])  # runs in input order
    sizes = [math.prod(dims[a] for a in runs[r]) for r in order]
    out_perm = [order.index(r) for r in range(len(runs))]
    lead = 0
    while lead < len(out_perm) and out_perm[lead] == lead:
        lead += 1
    if lead == len(out_perm):
        raise ValueError(f"permutation {perm} of {shape} moves nothing")
    pages = math.prod(sizes[:lead])
    page, pperm = sizes[lead:], [p - lead for p in out_perm[lead:]]
    if pperm[-1] == len(page) - 1:
        if page[-1] % simd:
            raise ValueError(f"SIMD {simd} does not divide the {page[-1]} elements that stay innermost")
        page[-1] //= simd
    elif simd != 1:
        raise ValueError(f"the innermost axis moves in {perm} of {shape}: SIMD must be 1, not {simd}")
    return PageView(pages, tuple(page), tuple(pperm), simd)


def moved_address_bits(view: PageView) -> int:
    """Address bits the in-place scheme permutes (page_permute.sv SIGMA(p) != p); the others are plain counter
    bits: their select registers are constant and synthesis removes them. A mixed-radix innermost axis has none."""
    if not view.in_place:
        raise ValueError(f"page axes {view.shape} are not all powers of two")
    bits = [d.bit_length() - 1 for d in view.outer]

    def offsets(order):
        out, o = {}, 0
        for a in reversed(order):
            out[a] = o
            o += bits[a]
        return out

    inp, outp = offsets(list(range(len(bits)))), offsets(list(view.perm[:len(bits)]))
    return sum(bits[a] for a in range(len(bits)) if inp[a] != outp[a])


def pages_for(view: PageView, requested: int = 0) -> int:
    """Pages of memory: ``requested`` (1 or 2) or, with 0, one when the in-place scheme applies, else two."""
    if requested == 1 and not view.in_place:
        raise ValueError(f"one page in place needs power-of-two page axes (but an innermost one that stays), "
                         f"not {view.shape}")
    if requested not in (0, 1, 2):
        raise ValueError(f"pages must be 0 (auto), 1 or 2, not {requested}")
    return requested or (1 if view.in_place else 2)


@register_hw_op
class PagePermute(HWCustomOp):
    """out = transpose(in.reshape(transpose_in_shape), perm).reshape(out_shape), one page buffered (module doc)."""

    def get_nodeattr_types(self) -> dict:
        attrs = {
            "data_type": ("s", True, ""),
            "in_shape": ("ints", True, []),
            "transpose_in_shape": ("ints", True, []),
            "perm": ("ints", True, []),
            "out_shape": ("ints", True, []),
            "SIMD": ("i", False, 1),
            "ram_style": ("s", False, "auto", set(RAM_STYLES)),
            "pages": ("i", False, 0, {0, 1, 2}),
            "original_node_name": ("s", False, ""),
        }
        attrs.update(super().get_nodeattr_types())
        return attrs

    def view(self) -> PageView:
        return page_view(self.get_nodeattr("transpose_in_shape"), self.get_nodeattr("perm"),
                         self.get_nodeattr("SIMD"))

    def memory_pages(self) -> int:
        return pages_for(self.view(), self.get_nodeattr("pages"))

    def get_normal_input_shape(self, ind: int = 0) -> tuple[int, ...]:
        return tuple(self.get_nodeattr("in_shape"))

    def get_normal_output_shape(self, ind: int = 0) -> tuple[int, ...]:
        return tuple(self.get_nodeattr("out_shape"))

    def _folded(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        simd = self.get_nodeattr("SIMD")
        if shape[-1] % simd:
            raise ValueError(f"{self.onnx_node.name}: SIMD={simd} does not divide the innermost axis of {shape}")
        return (*shape[:-1], shape[-1] // simd, simd)

    def get_folded_input_shape(self, ind: int = 0) -> tuple[int, ...]:
        return self._folded(self.get_normal_input_shape())

    def get_folded_output_shape(self, ind: int = 0) -> tuple[int, ...]:
        return self._folded(self.get_normal_output_shape())

    def get_input_datatype(self, ind: int = 0) -> DataType:
        return DataType[self.get_nodeattr("data_type")]

    def get_output_datatype(self, ind: int = 0) -> DataType:
        return self.get_input_datatype()

    def get_instream_width(self, ind: int = 0) -> int:
        return self.get_nodeattr("SIMD") * self.get_input_datatype().bitwidth()

    def get_outstream_width(self, ind: int = 0) -> int:
        return self.get_instream_width()

    def get_number_output_values(self) -> int:
        return int(np.prod(self.get_folded_output_shape()[:-1]))

    def get_exp_cycles(self) -> int:
        # one word per cycle in steady state (frames back to back); the first word leaves one page after the first
        # word came in (``get_exp_latency``)
        return int(np.prod(self.get_folded_output_shape()[:-1]))

    def get_exp_latency(self) -> int:
        """Cycles from the first input word to the first output word: one page (+ the read and queue registers)."""
        return self.view().words + 2

    def make_shape_compatible_op(self, model):
        return super().make_const_shape_op(self.get_normal_output_shape())

    def infer_node_datatype(self, model) -> None:
        dt = model.get_tensor_datatype(self.onnx_node.input[0])
        self.set_nodeattr("data_type", dt.name)
        model.set_tensor_datatype(self.onnx_node.output[0], dt)

    def verify_node(self) -> list[str]:
        try:
            view = self.view()
            pages_for(view, self.get_nodeattr("pages"))
        except ValueError as exc:
            return [f"PagePermute {self.onnx_node.name}: {exc}"]
        msgs = []
        if math.prod(self.get_nodeattr("in_shape")) != math.prod(self.get_nodeattr("transpose_in_shape")):
            msgs.append(f"PagePermute {self.onnx_node.name}: in_shape and transpose_in_shape differ in size")
        if view.words < 2:
            msgs.append(f"PagePermute {self.onnx_node.name}: a page of {view.words} word needs no buffer")
        return msgs

    def execute_node(self, context, graph) -> None:
        from samfpga.kernels.shuffle import outer_shuffle

        node = self.onnx_node
        context[node.output[0]] = outer_shuffle(np.asarray(context[node.input[0]]),
                                                tuple(self.get_nodeattr("transpose_in_shape")),
                                                tuple(self.get_nodeattr("perm")), self.get_normal_output_shape())


@register_rtl_op
class PagePermute_rtl(PagePermute, OwnRTLBackend):
    """RTL variant: hw/samfpga/hw/rtl/page_permute.sv (one page in place, or ping-pong; see its header)."""

    RTL_SOURCES = ("sdp_ram.sv", "page_permute.sv")

    def core_params(self) -> dict[str, object]:
        """The SV module's parameters for this node."""
        msgs = self.verify_node()
        if msgs:
            raise ValueError(msgs[0])
        view = self.view()
        return {"K": len(view.shape), "SHAPE": view.shape, "PERM": view.perm,
                "WIDTH": self.get_instream_width_padded(), "DBITS": self.get_instream_width(),
                "PAGES": self.memory_pages(),
                "RAM_STYLE": self.get_nodeattr("ram_style")}

    def core_instance(self, model) -> str:
        return core_instance_text("page_permute", sv_params(self.core_params()), {"s": "in0", "m": "out0"})


def sv_params(p: dict[str, object]) -> str:
    """Verilog parameter assignments of ``page_permute`` (packed array literals: element K-1 first)."""
    def arr(v):
        return "{" + ", ".join(f"32'd{int(x)}" for x in reversed(v)) + "}"

    return (f".K({p['K']}), .SHAPE({arr(p['SHAPE'])}), .PERM({arr(p['PERM'])}), .WIDTH({p['WIDTH']}), "
            f".DBITS({p['DBITS']}), .PAGES({p['PAGES']}), .RAM_STYLE(\"{p['RAM_STYLE']}\")")
