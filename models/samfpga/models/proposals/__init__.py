"""Object-aware prompts for segment-everything (issue 16): a small CNN proposal head on the frozen image
encoder's embedding, distilled from the teacher's dense everything output (``train``), exported to ONNX for the
host's ``samfpga.everything.ProposalMaskGenerator``."""

from .head import ProposalHead, render_targets

__all__ = ["ProposalHead", "render_targets"]
