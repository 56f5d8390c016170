"""Video object tracking on the host (numpy + onnxruntime, no torch): ``VideoPredictor`` with SAM2's
``SAM2VideoPredictor`` API over a video bundle, its memory bank, frame sources (folder, file, stream), J&F metrics
and the ``samfpga track`` command. See docs/video.md."""

from .bank import BankConfig
from .bundle import VideoBundle, load_video_bundle
from .predictor import InferenceState, PromptError, VideoPredictor

__all__ = ["BankConfig", "InferenceState", "PromptError", "VideoBundle", "VideoPredictor", "load_video_bundle"]
