"""onnxruntime session creation shared by the encoder backend and the decoder."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def make_session(path: str | Path, threads: int = 0) -> ort.InferenceSession:
    """A CPU session for ``path``; ``threads`` > 0 fixes the intra-op thread count."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # warnings about unused initialisers etc. are noise for users
    if threads > 0:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
