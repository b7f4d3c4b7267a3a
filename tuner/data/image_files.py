"""Open image files that may be hostile: the pixel count is checked from the header before any pixel is decoded.

A PNG of a few hundred kilobytes can claim 30000 x 30000 pixels of zeros: a
decompression bomb, gigabytes once decoded. `open_image` reads only the
header and refuses an image over MAX_IMAGE_PIXELS, the tuner's one cap (an
image folder skips and counts such a file, `tuner predict` refuses it in one
line). The cap sits below Pillow's own limits (a warning above 89 M pixels,
an error above 179 M), so Pillow's warning never reaches the output and its
error becomes the same ImageTooLarge.
"""

from __future__ import annotations

import contextlib
import functools
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAX_IMAGE_PIXELS = 64_000_000  # 8000 x 8000; CNN inputs are a few hundred pixels a side, photos up to ~50 M pixels


class ImageTooLarge(ValueError):
    """An image whose header claims more pixels than MAX_IMAGE_PIXELS."""


@functools.cache
def _pillow() -> Any:
    """PIL.Image, with Pillow's bomb warning silenced: the tuner refuses those images first, at a lower cap."""
    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    return Image


def too_large(width: int, height: int) -> str:
    """Why an image of `width` x `height` pixels is refused, or "" when it is within the cap."""
    if width * height <= MAX_IMAGE_PIXELS:
        return ""
    return f"{width}x{height} = {width * height:,} pixels, over the cap of {MAX_IMAGE_PIXELS:,} pixels"


@contextlib.contextmanager
def open_image(path: str | Path) -> Iterator[Any]:
    """The opened (not yet decoded) image at `path`; ImageTooLarge when its header claims too many pixels.

    Other failures are Pillow's: OSError (UnidentifiedImageError included), ValueError, SyntaxError.
    """
    image_module = _pillow()
    try:
        image = image_module.open(path)
    except image_module.DecompressionBombError as error:  # over Pillow's own limit, far over the cap
        claimed = re.search(r"\((\d+) pixels\)", str(error))
        pixels = f"{int(claimed.group(1)):,} pixels" if claimed else "more pixels than Pillow allows"
        raise ImageTooLarge(f"{pixels}, over the cap of {MAX_IMAGE_PIXELS:,} pixels") from None
    with image:
        reason = too_large(*image.size)
        if reason:
            raise ImageTooLarge(reason)
        yield image
