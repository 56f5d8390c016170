"""Deployment packages: what a board needs to run the FPGA encoder (``samfpga deploy BUILD_DIR --out PKG``).

Reading and checking a package needs numpy only (board runtime); writing one (``samfpga.deploy.write``) needs the
compiler environment (it reads the build's ONNX graphs).
"""

from .package import DeployError, DeployPackage, PackageInput, check_package, load_package

__all__ = ["DeployError", "DeployPackage", "PackageInput", "check_package", "load_package"]
