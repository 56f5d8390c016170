"""Package data located through ``importlib.resources`` (works in a checkout, an editable install and a wheel).

Data files (bundled models, samples, training configs, RTL sources) are found relative to the package that
ships them, never by walking up the source tree: ``Path(__file__).parents[n]`` means different things in a
checkout and in site-packages.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def package_path(package: str, *parts: str) -> Path:
    """Filesystem path of ``parts`` inside ``package`` (e.g. ``package_path("samfpga.hw", "rtl", "x.sv")``).

    The path may not exist; callers check. Raises RuntimeError when the package is not on a filesystem
    (a zipped install), since onnxruntime, Verilator and Vivado need real files.
    """
    root = resources.files(package)
    if not isinstance(root, Path):
        root = Path(str(root))
        if not root.exists():
            raise RuntimeError(f"package {package!r} is not installed on a filesystem ({root}); install it unzipped")
    return root.joinpath(*parts)
