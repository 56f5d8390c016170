"""Segment-everything on the host runtime (numpy + onnxruntime, no torch).

``AutomaticMaskGenerator`` mirrors segment-anything's ``SamAutomaticMaskGenerator`` (dense point grid,
optional crops); ``HierarchicalMaskGenerator`` is TinySAM's two-round hierarchical strategy;
``ProposalMaskGenerator`` prompts the boxes and centres of a small CNN proposal head (snapped to the dense grid,
then a second pass around near misses: ``RefineConfig``). All drive a
``samfpga.predictor.Predictor`` and return the official record dicts.
"""

from .dense import AutomaticMaskGenerator
from .hierarchical import HierarchicalMaskGenerator, round2_points
from .proposals import ProposalMaskGenerator
from .refine import RefineConfig

__all__ = ["AutomaticMaskGenerator", "HierarchicalMaskGenerator", "ProposalMaskGenerator", "RefineConfig",
           "round2_points"]
