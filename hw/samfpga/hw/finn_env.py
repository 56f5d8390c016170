"""The one place FINN+ is made usable on a machine without Vivado.

FINN+ 1.6.1 refuses ``import finn.builder`` without Vivado unless the lazy names of ``finn.xsi`` (its xsim
binding, used only for rtlsim) are pre-bound, and its transformations need a settings object
(``initialize_dummy_settings``) and ``FINN_BUILD_DIR``. ``boot`` does exactly that, idempotently;
``vivado_available`` is what the Vivado-only build steps check.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_BOOTED = False


def vivado_available() -> bool:
    """True when Vivado is usable: ``vivado`` on PATH or ``XILINX_VIVADO`` pointing at an install."""
    env = os.environ.get("XILINX_VIVADO")
    return shutil.which("vivado") is not None or bool(env and Path(env).is_dir())


def boot(build_dir: str | Path | None = None) -> Path:
    """Prepare FINN+ for import and use without Vivado; returns FINN_BUILD_DIR (created if missing)."""
    global _BOOTED
    if build_dir is not None:
        os.environ["FINN_BUILD_DIR"] = str(build_dir)
    elif "FINN_BUILD_DIR" not in os.environ:
        # scratch for FINN's rtlsim builds (hundreds of MB per process): gone when this process ends
        os.environ["FINN_BUILD_DIR"] = scratch = tempfile.mkdtemp(prefix="samfpga_finn_")
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    Path(os.environ["FINN_BUILD_DIR"]).mkdir(parents=True, exist_ok=True)
    if _BOOTED:
        return Path(os.environ["FINN_BUILD_DIR"])
    import finn.xsi as xsi

    if not vivado_available():
        for name in xsi._LAZY_NAMES:
            if name not in vars(xsi):
                # None instead of the lazy loader, which would try to build the xsim binding and fail
                setattr(xsi, name, None)
    from finn.util import settings

    if settings._SETTINGS is None:
        settings.initialize_dummy_settings()
    _BOOTED = True
    return Path(os.environ["FINN_BUILD_DIR"])
