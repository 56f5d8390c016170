"""Opaque shells of the project's own RTL modules, so that Yosys counts the logic *around* them alone.

A shell keeps a module's header (its parameters and ports, so every instantiation elaborates with the widths it
has) and replaces its body by one opaque cell per port bit: every input bit drives a sink (``opaque_in``), every
output bit comes from a source (``opaque_out``). Both are non-parametric black boxes (slang
``--blackboxed-module``), so synthesis keeps the logic that feeds a shell's inputs and cannot fold the logic its
outputs feed into constants; neither counts in a resource bucket. Slang's own black boxes will not do here: an
instance of a black box with parameters stops Yosys' ``hierarchy`` ("used with parameters but is not parametric").
Used to price the glue of a composed design whose parts are priced on their own (``bench/engine_path_glue_synth.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

#: the opaque cells (names that match no resource bucket of ``samfpga.hw.synth.yosys``)
OPAQUE = ("opaque_in", "opaque_out")
OPAQUE_SV = ("module opaque_in (input logic i);\nendmodule\n\n"
             "module opaque_out (output logic o);\nendmodule\n")

# one port a line: direction, type and packed range, name (the house style of hw/samfpga/hw/rtl)
_PORT = re.compile(r"^\s*(input|output)\s+(?:logic|wire|uwire)?\s*(?:signed\s*)?(?:\[[^\]]*\]\s*)*(\w+)\s*,?\s*(?://.*)?$")


def header(text: str, module: str) -> str:
    """The text of ``module``'s header in ``text``: from ``module <name>`` to the ``);`` closing its port list."""
    m = re.search(rf"^module\s+{re.escape(module)}\b", text, re.M)
    if m is None:
        raise ValueError(f"shells: no module {module!r} in its source")
    end = re.search(r"^\);", text[m.start():], re.M)
    if end is None:
        raise ValueError(f"shells: the port list of {module!r} has no closing ');' at the start of a line")
    return text[m.start(): m.start() + end.end()]


def ports(head: str) -> list[tuple[str, str]]:
    """(direction, name) of each port of a module header, one port a line."""
    body = head[head.index(")(") + 2:] if ")(" in head else head[head.index("(") + 1:]
    out = [(m.group(1), m.group(2)) for line in body.splitlines() if (m := _PORT.match(line))]
    declared = len(re.findall(r"^\s*(?:input|output|inout)\b", body, re.M))
    if len(out) != declared:
        raise ValueError(f"shells: {declared} ports declared, {len(out)} read (one port a line expected)")
    return out


def shell(text: str, module: str) -> str:
    """SystemVerilog of ``module``'s opaque shell, from its source ``text``."""
    head = header(text, module)
    lines = [head]
    for d, name in ports(head):
        v = f"{name}__bits"
        if d == "input":
            lines += [f"\tuwire [$bits({name})-1:0]  {v} = {name};",
                      f"\tfor(genvar i = 0; i < $bits({name}); i++) begin : g_{name}",
                      f"\t\t(* keep *) opaque_in  sink (.i({v}[i]));", "\tend"]
        else:
            lines += [f"\tuwire [$bits({name})-1:0]  {v};", f"\tassign  {name} = {v};",
                      f"\tfor(genvar i = 0; i < $bits({name}); i++) begin : g_{name}",
                      f"\t\t(* keep *) opaque_out  src (.o({v}[i]));", "\tend"]
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def write_shells(sources: list[Path], modules: tuple[str, ...], out_dir: Path) -> list[Path]:
    """``sources`` with each module of ``modules`` replaced by its shell (written to ``out_dir``), plus the opaque
    cells' file. A module's own dependencies stay in the list (unused; they elaborate only where instantiated)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for src in sources:
        if src.stem in modules:
            p = out_dir / src.name
            p.write_text(_imports(src.read_text()) + shell(src.read_text(), src.stem))
            files.append(p)
        else:
            files.append(src)
    cells = out_dir / "opaque_cells.sv"
    cells.write_text(OPAQUE_SV)
    return [*files, cells]


def _imports(text: str) -> str:
    """The file-level package imports a header may use."""
    return "".join(f"{m}\n" for m in re.findall(r"^import\s+[\w:*]+\s*;", text, re.M))
