"""Import FINN+ without Vivado for the benches: the project's one mechanism, ``samfpga.hw.finn_env.boot``."""

from __future__ import annotations

from pathlib import Path

from samfpga.hw import finn_env


def boot_finn(build_dir: str | Path | None = None) -> Path:
    """Prepare FINN for use without Vivado (idempotent); returns FINN_BUILD_DIR."""
    return Path(finn_env.boot(build_dir))
