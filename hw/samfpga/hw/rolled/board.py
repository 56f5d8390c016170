"""What the board's host needs of a rolled build beyond its parts' buffers (``rolled/host.json``, written by
``samfpga.hw.rolled.codegen``): the AXI-Lite address map of every part's slaves and each token-batched unit's
weights in DDR.

Per part, in this order from the board family's PL base (``samfpga.hw.build.package.PL_BASE``), each slave
aligned to its range: the strip reader's and the strip writer's register blocks (``DMA_RANGE`` each), each
token-batched unit's (``DMA_RANGE``), each runtime-writeable layer's word memory (the power of two, at least 4 KiB,
holding its words). The names of the ports are those of the part's top (``samfpga.hw.sim.rolled_loop.top_text``:
``rd_s_axil``, ``wr_s_axil``, ``m_axi_rd``, ``m_axi_wr``; a token-batched node's ``<node>_s_axi_control`` and
``<node>_m_axi_gmem``; a runtime-writeable node's ``<node>_s_axilite``), which the Vivado script
(``samfpga.hw.vivado.rolled``) connects at these addresses.

A token-batched unit of a loop body serves every block: its weights are N sets one STRIDE apart
(``custom_ops.token_batch.looped_image``), written to ``token_batch/<part>/<node>.bin``; the host copies them into
DDR and writes BASE, STRIDE, ITERS = N and TOKENS (one map: the layer's tokens) once
(``samfpga.backends.rolled_driver``).
"""

from __future__ import annotations

from pathlib import Path

from samfpga.backends.rolled_host import align_up

#: folder of a rolled build's token-batched weight images, under ``rolled/``
TOKEN_BATCH_DIR = "token_batch"


def token_batch_units(graph, part: str, out: Path | None = None) -> list[dict]:
    """Per token-batched node of part ``graph`` (graph order): name, its ports, the register values the host writes
    (``stride``, ``iters``, ``tokens``) and its weights' image (``bytes``, ``file``); the image is written under
    ``out`` when given."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.custom_ops.looped import iterations
    from samfpga.hw.custom_ops.token_batch import looped_image
    from samfpga.hw.sim.stitch import token_batch_ports

    units = []
    for name in token_batch_ports(graph):
        op = getCustomOp(graph.get_node_from_name(name))
        image, stride = looped_image(op, graph)
        file = f"{TOKEN_BATCH_DIR}/{part}/{name}.bin"
        if out is not None:
            (out / file).parent.mkdir(parents=True, exist_ok=True)
            (out / file).write_bytes(image)
        units.append({"name": name, "axilite_port": f"{name}_s_axi_control", "aximm_port": f"{name}_m_axi_gmem",
                      "file": file, "bytes": len(image), "stride": stride, "iters": iterations(op),
                      "tokens": op.tokens(), "addr_bits": int(op.get_nodeattr("axi_aw"))})
    return units


def cell_name(part: str) -> str:
    """The block design's cell of part ``part`` (a Vivado cell name starts with a letter)."""
    return f"part_{part}"


def assign_addresses(host: dict, family: str) -> dict:
    """``host`` (``rolled/host.json``'s dict with each part's ``token_batch`` and ``runtime_weights`` lists) with the
    address map of the module doc filled in: per part its ``cell``, ``reader`` / ``writer`` {port, regs, range}, and ``regs`` /
    ``range`` / ``axilite_port`` on each unit and runtime-writeable layer. Raises ``ValueError`` for a family
    without a PL base."""
    from samfpga.hw.build.package import DMA_RANGE, axilite_range, pl_base

    addr = pl_base(family)

    def take(rng: int) -> int:
        nonlocal addr
        addr = align_up(addr, rng)
        at, addr = addr, addr + rng
        return at

    for p in host["parts"]:
        p["cell"] = cell_name(p["name"])
        p["reader"] = {"port": "rd_s_axil", "aximm_port": "m_axi_rd", "regs": take(DMA_RANGE), "range": DMA_RANGE}
        p["writer"] = {"port": "wr_s_axil", "aximm_port": "m_axi_wr", "regs": take(DMA_RANGE), "range": DMA_RANGE}
        for u in p.get("token_batch", []):
            u.update(regs=take(DMA_RANGE), range=DMA_RANGE)
        for e in p.get("runtime_weights", []):
            rng = axilite_range(e["words"])
            e.update(regs=take(rng), range=rng)
            e.setdefault("axilite_port", f"{e['name']}_s_axilite")
    return host


def slaves(host: dict) -> list[tuple[str, str, int, int]]:
    """Every AXI-Lite slave of a described rolled build: (part, port on the part's top, address, range), in address
    order."""
    from samfpga.backends.rolled_host import part_slaves

    return sorted(((p["name"], port, e["regs"], e["range"]) for p in host["parts"] for _, port, e in part_slaves(p)),
                  key=lambda s: s[2])


def masters(host: dict) -> list[tuple[str, str]]:
    """Every AXI4 master of a described rolled build: (part, port on the part's top): each part's strip reader and
    writer, each token-batched unit's weight port."""
    out = []
    for p in host["parts"]:
        out += [(p["name"], p["reader"]["aximm_port"]), (p["name"], p["writer"]["aximm_port"])]
        out += [(p["name"], u["aximm_port"]) for u in p.get("token_batch", [])]
    return out
