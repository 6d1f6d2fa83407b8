"""Any PIL image as the 8-bit RGB image a viewer shows: the one conversion of datasets, ``predict`` and the API.

PIL's ``convert("RGB")`` (the reference's Dassl ``read_image``) is right for 8-bit images but not for the rest:
it saturates 16- and 32-bit integer and float pixels (a 16-bit PNG becomes all white) and drops alpha (fully
transparent pixels show whatever colour they hold). Here:

* ``RGB`` is returned as it is; ``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ``HSV`` and other 8-bit modes go through
  PIL's own conversion (the same pixels as the reference);
* 16-bit integer modes (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``) and ``I`` (32-bit, which PIL uses for 16-bit
  PNGs in some versions; values clipped to 0..65535) are scaled from 0..65535 to 0..255 (``v · 255 / 65535``,
  rounded);
* ``F`` (32-bit float) is read as intensities in 0..1 (clipped; NaN is 0), scaled to 0..255;
* alpha (``RGBA``, ``LA``, ``PA``, premultiplied ``RGBa``/``La``, and a palette's or ``tRNS`` transparent colour)
  is composited on white, as a page or a viewer with a white background shows it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: 16-bit and 32-bit integer modes, scaled from 0..65535
WIDE_INT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
#: modes that carry alpha (PIL converts them to RGBA itself)
ALPHA_MODES = ("RGBA", "RGBa", "LA", "PA")
WHITE = (255, 255, 255, 255)


def to_viewer_rgb(image: Image.Image) -> Image.Image:
    """``image`` as an 8-bit RGB image, as a viewer shows it (see the module doc)."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in WIDE_INT_MODES:
        values = np.clip(np.asarray(image).astype(np.float64), 0, 65535) * (255 / 65535)
        return _gray(values)
    if mode == "F":
        values = np.clip(np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0), 0, 1) * 255
        return _gray(values)
    if mode == "La":  # premultiplied: on white, gray = L·a + 255·(1 - a) = L_premultiplied + 255 - A
        gray, alpha = np.moveaxis(np.asarray(image).astype(np.float64), -1, 0)
        return _gray(gray + 255 - alpha)
    if mode in ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", image.size, WHITE), rgba).convert("RGB")
    return image.convert("RGB")


def _gray(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.rint(np.clip(values, 0, 255)).astype(np.uint8)).convert("RGB")
