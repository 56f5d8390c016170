"""Shared HDL-generation helpers for the project's own RTL custom ops."""

from __future__ import annotations

from pathlib import Path

from samfpga.resources import package_path

RTL_DIR = package_path("samfpga.hw", "rtl")


def rtl_source(name: str) -> Path:
    """Absolute path of a SystemVerilog source under hw/samfpga/hw/rtl/ (raises if missing)."""
    path = RTL_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"own RTL source missing: {path}")
    return path


def write_wrapper(op, text: str) -> Path:
    """Write ``op``'s generated top-level wrapper into its ``code_gen_dir_ipgen`` and set FINN's bookkeeping."""
    code_dir = Path(op.get_nodeattr("code_gen_dir_ipgen"))
    code_dir.mkdir(parents=True, exist_ok=True)
    top = op.get_verilog_top_module_name()
    op.set_nodeattr("gen_top_module", top)
    path = code_dir / f"{top}.v"
    tmp = path.with_suffix(".v.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    # PrepareIP/stitching read these to find the generated IP
    op.set_nodeattr("ipgen_path", str(code_dir))
    op.set_nodeattr("ip_path", str(code_dir))
    return path


def ipi_commands(op) -> list[str]:
    """Vivado IPI commands adding the sources and instantiating the wrapper as a module reference."""
    cmd = [f"add_files -norecurse {f}" for f in op.get_rtl_file_list(abspath=True)]
    cmd.append(f"create_bd_cell -type module -reference {op.get_nodeattr('gen_top_module')} {op.onnx_node.name}")
    return cmd
