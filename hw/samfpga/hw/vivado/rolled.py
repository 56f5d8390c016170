"""TCL for the Vivado project of a rolled build (docs/rolled_stage.md): the Zynq PS, each part as a module reference
of its generated wrapper (``samfpga.hw.rolled.part_hdl``), the control interconnect carrying every part's AXI-Lite
slaves at the addresses of ``rolled/host.json`` (``samfpga.hw.rolled.board``), the parts' AXI4 masters spread over
the PS's high-performance ports, clock, reset, bitstream and hwh (``samfpga.hw.vivado.module_design`` writes it).

Generated from host.json, so the bitfile's address map is the one the driver (``samfpga.backends.rolled_driver``)
uses; ``tests/test_rolled.py`` checks that they agree. Not run here (no Vivado): what the script assumes of Vivado
is stated where it is used.
"""

from __future__ import annotations

from collections.abc import Sequence

from samfpga.hw.rolled.board import masters, slaves
from samfpga.hw.vivado.module_design import ModuleDesign, spread
from samfpga.hw.vivado.module_design import project_tcl as module_project_tcl


def design(host: dict) -> ModuleDesign:
    """The block design of the rolled build described by ``host`` (host.json with its address map): its parts'
    cells, their slaves at host.json's addresses, their masters spread over SmartConnects round robin (a part's
    reader and writer on different HP ports). ``ValueError`` when more masters than four SmartConnects take."""
    cell = {p["name"]: p["cell"] for p in host["parts"]}
    return ModuleDesign(board=host["board"], fclk_mhz=host["fclk_mhz"], project=f"samfpga_rolled_{host['board']}",
                        cells=tuple(cell.values()),
                        slaves=tuple((cell[p], port, a, r) for p, port, a, r in slaves(host)),
                        masters=spread([(cell[p], port) for p, port in masters(host)]))


def project_tcl(host: dict, hdl_dir: str, sources: list[str], out_dir: str = "vivado_proj",
                name: str = "rolled", prelude: Sequence[str] = ()) -> str:
    """The Vivado batch script for the rolled build described by ``host`` (``design``; ``module_design.project_tcl``
    writes it): ``sources`` (file names in ``hdl_dir``, compile order) hold every part's wrapper module ``host``'s
    ``cell``. Writes ``<out_dir>/<name>.bit`` and ``<out_dir>/<name>.hwh``."""
    return module_project_tcl(design(host), hdl_dir, sources, out_dir, name, prelude)
