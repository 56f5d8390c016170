"""Reading images for the CLI and demo: what is accepted, what is refused, and why.

The model takes 8-bit, 3-channel RGB. Images of other kinds (grayscale, palette, with alpha, 16-bit, CMYK)
are refused with a message naming the file and its kind, unless the caller asks for conversion
(``convert=True``, CLI ``--convert``); then the conversion applied is returned as a note so it can be shown:
grayscale and palette -> replicated/expanded to RGB, alpha dropped (as OpenCV's ``imread`` does, which
SAM's examples use), 16-bit -> top 8 bits. EXIF orientation is applied so coordinates refer to the image as
viewers display it.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

_KIND = {
    "1": "1-bit black-and-white", "L": "grayscale", "LA": "grayscale with alpha", "P": "palette",
    "PA": "palette with alpha", "RGBA": "RGB with alpha", "RGBa": "RGB with alpha", "CMYK": "CMYK",
    "YCbCr": "YCbCr", "LAB": "Lab", "HSV": "HSV", "I": "32-bit integer grayscale", "F": "32-bit float grayscale",
    "I;16": "16-bit grayscale", "I;16B": "16-bit grayscale", "I;16L": "16-bit grayscale", "I;16N": "16-bit grayscale",
}


class ImageError(ValueError):
    """An image cannot be used; the message names the file and the problem."""


def _png_bit_depth(path: Path) -> int | None:
    """Bit depth from a PNG's IHDR (Pillow reads 16-bit RGB PNGs as 8-bit RGB without saying so)."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) == 26 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return struct.unpack(">B", head[24:25])[0]
    return None


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode.startswith("I;16") or im.mode == "I":
        # 16-bit (or 32-bit integer) samples -> top 8 bits of the 16-bit range
        arr = np.asarray(im, dtype=np.uint32 if im.mode == "I" else np.uint16).astype(np.uint32)
        return Image.fromarray(np.clip(arr >> 8, 0, 255).astype(np.uint8), "L").convert("RGB")
    if im.mode == "F":
        arr = np.asarray(im, dtype=np.float32)
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L").convert("RGB")
    return im.convert("RGB")


def read_image(path: str | Path, convert: bool = False) -> tuple[np.ndarray, str | None]:
    """Read ``path`` as (H, W, 3) uint8 RGB.

    Args:
        path: image file (anything Pillow decodes).
        convert: convert grayscale/palette/alpha/16-bit/CMYK images instead of refusing them.

    Returns:
        (image (H, W, 3) uint8, note describing a conversion or None).

    Raises:
        ImageError: missing, unreadable, not an image, or (without ``convert``) not 8-bit RGB.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if not path.is_file():
        raise ImageError(f"{path}: not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                im = ImageOps.exif_transpose(im)
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file (Pillow cannot identify its format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"{path}: image too large ({err})") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path}: cannot decode image ({err})") from None
    depth16 = _png_bit_depth(path) == 16
    kind = _KIND.get(im.mode, f"mode {im.mode}")
    if im.mode == "RGB" and depth16:
        kind = "16-bit RGB"
    note = None
    if im.mode != "RGB" or depth16:
        if not convert:
            raise ImageError(f"{path}: {kind} image; samfpga segments 8-bit RGB images "
                             f"(convert it first, or pass --convert to convert it automatically)")
        note = f"{path.name}: converted {kind} image to 8-bit RGB"
        if im.mode != "RGB":
            im = _to_rgb(im)
        if "alpha" in kind:
            note += " (alpha dropped)"
    arr = np.asarray(im, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"{path}: decoded to shape {arr.shape}, expected (H, W, 3)")
    return np.ascontiguousarray(arr), note


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write (H, W) bool/uint8 or (H, W, 3) uint8 as PNG (bool -> 0/255)."""
    a = np.asarray(array)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    Image.fromarray(a.astype(np.uint8)).save(path, format="PNG")
