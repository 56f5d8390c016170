"""Hypothesis strategies for ``Predictor`` inputs as a caller might pass them: any shape, dtype, NaN/inf,
empty or out-of-range prompt (numpy + hypothesis only: used in both environments).

``check_error`` is the rule every refusal must follow: a ValueError whose message names the argument.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

DTYPES = (np.float64, np.float32, np.float16, np.int64, np.int32, np.uint8, np.bool_)
SPECIAL = (np.nan, np.inf, -np.inf)
PROMPT_ARGS = ("point_coords", "point_labels", "box", "mask_input")


@st.composite
def arrays(draw, shapes, lo: float, hi: float, special: float = 0.1) -> np.ndarray:
    """An array of one of ``shapes`` and one of ``DTYPES``, values in [lo, hi]; with probability ``special``
    per array, a few entries NaN or +-inf (float dtypes)."""
    shape = draw(st.sampled_from(list(shapes)))
    dtype = draw(st.sampled_from(DTYPES))
    n = int(np.prod(shape, dtype=np.int64))
    if n <= 16:  # small prompts: every value drawn (and shrunk) by Hypothesis
        vals = draw(st.lists(st.floats(lo, hi, allow_nan=False), min_size=n, max_size=n))
        a = np.array(vals, dtype=np.float64).reshape(shape)
    else:  # mask inputs and images: values from a drawn seed, so examples stay small
        a = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).uniform(lo, hi, shape)
    if n and draw(st.floats(0, 1)) < special:
        for _ in range(draw(st.integers(1, 2))):
            a.flat[draw(st.integers(0, n - 1))] = draw(st.sampled_from(SPECIAL))
    if dtype == np.bool_:
        return a > (lo + hi) / 2
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        with np.errstate(invalid="ignore"):  # int64's max is not a float64: the clip may round past it
            return np.clip(np.nan_to_num(a), info.min, info.max).astype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        return a.astype(dtype)


@st.composite
def prompts(draw, width: int, height: int, mask_size: tuple[int, int]) -> dict:
    """Keyword arguments of ``Predictor.predict`` for an image of ``width`` x ``height``: each of points, labels,
    box and mask input absent or present, mostly well-formed, sometimes of another shape, dtype or range
    (coordinates up to one image size outside the image)."""
    n = draw(st.integers(0, 4))
    kw: dict = {"multimask_output": draw(st.booleans())}
    span = 2 * max(width, height)
    if draw(st.booleans()):
        kw["point_coords"] = draw(arrays([(n, 2)] * 6 + [(n, 3), (2,), (1, n, 2)], -span / 2, span))
    if draw(st.integers(0, 7)) < (7 if "point_coords" in kw else 1):  # labels mostly with points, rarely without
        labels = [(n,)] * 6 + [(n + 1,), (1, n)]
        if draw(st.integers(0, 3)):  # mostly valid labels, sometimes anything
            kw["point_labels"] = draw(arrays(labels, -1, 1, special=0.0)).astype(draw(st.sampled_from(
                (np.int64, np.int32, np.float32))))
            kw["point_labels"] = np.round(kw["point_labels"]).astype(kw["point_labels"].dtype)
        else:
            kw["point_labels"] = draw(arrays(labels, -3, 5))
    if draw(st.booleans()):
        kw["box"] = draw(arrays([(4,)] * 6 + [(1, 4), (3,), (8,), (0,), (2, 4)], -span / 2, span))
    if draw(st.integers(0, 3)) == 0:
        h, w = mask_size
        kw["mask_input"] = draw(arrays([(1, h, w)] * 4 + [(h, w), (1, 1, h, w), (1, h // 2, w // 2)],
                                       -20, 20, special=0.05))
    return kw


def check_error(err: BaseException, names: tuple[str, ...] = PROMPT_ARGS) -> None:
    """A refusal is a ValueError naming the offending argument (one of ``names``)."""
    assert type(err) is ValueError, f"{type(err).__name__}: {err}"
    assert any(name in str(err) for name in names), f"error names no argument: {err}"
