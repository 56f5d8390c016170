"""Import FINN+ without Vivado: the minimum the simulation benches need.

FINN+ refuses to import ``finn.builder`` without Vivado unless the lazy names of ``finn.xsi`` are pre-bound
(rtlsim in FINN+ is xsim only; these benches never call it), and its transformations need a settings object.
When the project's shared shim ``samfpga.hw.finn_env`` exists it is imported first, so both agree.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path

_BOOTED = False


def boot_finn(build_dir: str | Path | None = None) -> Path:
    """Prepare FINN for use without Vivado (idempotent); returns FINN_BUILD_DIR."""
    global _BOOTED
    if build_dir is not None:
        os.environ["FINN_BUILD_DIR"] = str(build_dir)
    elif "FINN_BUILD_DIR" not in os.environ:
        os.environ["FINN_BUILD_DIR"] = tempfile.mkdtemp(prefix="samfpga_finn_")
    Path(os.environ["FINN_BUILD_DIR"]).mkdir(parents=True, exist_ok=True)
    if _BOOTED:
        return Path(os.environ["FINN_BUILD_DIR"])
    try:
        importlib.import_module("samfpga.hw.finn_env")
    except ImportError:
        pass
    import finn.xsi as xsi

    for name in xsi._LAZY_NAMES:
        if name not in vars(xsi):
            # bound to None so attribute access never triggers the xsim build; no bench calls xsim
            setattr(xsi, name, None)
    from finn.util import settings

    if settings._SETTINGS is None:
        settings.initialize_dummy_settings()
    _BOOTED = True
    return Path(os.environ["FINN_BUILD_DIR"])
