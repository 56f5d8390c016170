"""The Vivado design of a rolled build (step ``hw_codegen`` with ``--roll``; docs/rolled_stage.md): every part's HDL
(``part_hdl``) in ``out/vivado/rolled/hdl/``, linted together with Verilator, and the project script
``out/vivado/rolled/project.tcl`` (``samfpga.hw.vivado.rolled``) at host.json's addresses.

host.json's port names are made the stitched nodes' here: a part's runtime-writeable layers and token-batched units
are matched in graph order to the stitched graph's, and a pair whose words (or weight image) differ raises
``ValueError``, so the addresses the driver writes are those of the layers that hold the described words.
"""

from __future__ import annotations

import time
from pathlib import Path

#: where the design goes, under the build's output folder
DESIGN_DIR = "vivado/rolled"


def _match_ports(entry: dict, hdl, words: dict, rolled: Path) -> None:
    """Set ``entry``'s (a host.json part) runtime-writeable layers' and units' ports to ``hdl``'s stitched names, the
    stitched layers holding ``words`` (the build's, by layer) and the stitched units the weight files under
    ``rolled``."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.package import runtime_words
    from samfpga.hw.custom_ops.token_batch import looped_image

    sim = hdl.model
    rw, units = entry.get("runtime_weights", []), entry.get("token_batch", [])
    if [len(rw), len(units)] != [len(hdl.runtime), len(hdl.units)]:
        raise ValueError(f"part {entry['name']}: {len(rw)} runtime-writeable layers and {len(units)} token-batched "
                         f"units, its stitched HDL has {len(hdl.runtime)} and {len(hdl.units)}")
    for e, name in zip(rw, hdl.runtime):
        if words[e["name"]].tolist() != runtime_words(getCustomOp(sim.get_node_from_name(name)), sim).tolist():
            raise ValueError(f"part {entry['name']}: runtime words of {e['name']} differ from stitched {name}'s")
        e["axilite_port"] = f"{name}_s_axilite"
    for u, name in zip(units, hdl.units):
        image, stride = looped_image(getCustomOp(sim.get_node_from_name(name)), sim)
        if (rolled / u["file"]).read_bytes() != image or stride != u["stride"]:
            raise ValueError(f"part {entry['name']}: weights or STRIDE of {u['name']} ({u['file']}) differ from "
                             f"stitched {name}'s")
        u["axilite_port"], u["aximm_port"] = f"{name}_s_axi_control", f"{name}_m_axi_gmem"


def generate(graphs: list, host: dict, kinds: list[str], words: list[dict], out: Path, board,
             clk_mhz: float) -> dict:
    """The design of the parts ``graphs`` (kinds ``once`` / ``body``) described by ``host`` (its address map
    assigned, its units' weight files written under ``out/rolled``; ports updated in place, module doc), ``words``:
    per part its runtime-writeable layers' words, under ``out / DESIGN_DIR``; returns what ``parts.json`` records:
    the script, the source and memory file counts, the lint log and the seconds taken."""
    from samfpga.hw.rolled import part_hdl
    from samfpga.hw.sim.rolled_parts import layouts
    from samfpga.hw.vivado.module_design import PINNED_FILE, RELOCATABLE_PRELUDE, RELOCATE_FILE, RELOCATE_TCL
    from samfpga.hw.vivado.rolled import project_tcl

    t0 = time.monotonic()
    root = out / DESIGN_DIR
    hdl_dir = root / "hdl"
    lay = layouts(graphs)
    sources: list[str] = []
    mems = 0
    for j, (g, entry, kind, ws) in enumerate(zip(graphs, host["parts"], kinds, words)):
        hdl = part_hdl.generate(g, entry["cell"], root / "work", hdl_dir, board.part, 1000.0 / clk_mhz,
                                loop=kind == "body", layout=(lay[j], lay[j + 1]))
        _match_ports(entry, hdl, ws, out / "rolled")
        sources += [s for s in hdl.sources if s not in sources]
        mems += len(hdl.memory_files)
    log = root / "lint.log"
    part_hdl.lint(hdl_dir, sources, [p["cell"] for p in host["parts"]], log)
    # paths from the script's own folder: the design runs where it is copied (the HDL's init files re-pinned there)
    (root / PINNED_FILE).write_text(f"{hdl_dir.resolve()}\n")
    (root / RELOCATE_FILE).write_text(RELOCATE_TCL)
    tcl = root / "project.tcl"
    tcl.write_text(project_tcl(host, "$here/hdl", sources, out_dir="$here/proj", prelude=RELOCATABLE_PRELUDE))
    return {"script": f"{DESIGN_DIR}/project.tcl", "sources": len(sources), "memory_files": mems,
            "lint": f"{DESIGN_DIR}/lint.log", "seconds": round(time.monotonic() - t0, 1)}
