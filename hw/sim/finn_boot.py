"""Import FINN+ without Vivado: delegates to the project's ``samfpga.hw.finn_env.boot`` when it exists.

FINN+ refuses to import ``finn.builder`` without Vivado unless the lazy names of ``finn.xsi`` are pre-bound
(rtlsim in FINN+ is xsim only; these benches never call it), and its transformations need a settings object.
The fallback below does the same minimum, for checkouts without ``hw/finn_env.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_BOOTED = False


def boot_finn(build_dir: str | Path | None = None) -> Path:
    """Prepare FINN for use without Vivado (idempotent); returns FINN_BUILD_DIR."""
    global _BOOTED
    try:
        from samfpga.hw import finn_env
    except ImportError:
        finn_env = None
    if finn_env is not None and hasattr(finn_env, "boot"):
        _BOOTED = True
        return Path(finn_env.boot(build_dir))
    if build_dir is not None:
        os.environ["FINN_BUILD_DIR"] = str(build_dir)
    elif "FINN_BUILD_DIR" not in os.environ:
        os.environ["FINN_BUILD_DIR"] = tempfile.mkdtemp(prefix="samfpga_finn_")
    Path(os.environ["FINN_BUILD_DIR"]).mkdir(parents=True, exist_ok=True)
    if _BOOTED:
        return Path(os.environ["FINN_BUILD_DIR"])
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
