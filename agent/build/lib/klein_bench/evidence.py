"""Evidence that a model really ran: a perceptual hash and a thumbnail of the first image.

The pHash is the usual 64-bit DCT hash (grey 32x32, 2-D DCT-II, the 8x8 lowest
frequencies compared with their median), so near-identical images get near-identical
hashes and anyone can recompute it from the image.
"""

from __future__ import annotations

import base64
import io
from typing import Any

THUMBNAIL_SIZE = 128
# The schema's limit on the base64 text. A noisy image (the synthetic model's) does not
# compress, so it falls back to a 256-colour palette, which always fits.
THUMBNAIL_LIMIT = 65536
_HASH_SIDE = 32
_LOW = 8


def _dct_matrix(n: int) -> Any:
    """The unnormalised DCT-II matrix (scipy.fftpack.dct's default scaling)."""
    import numpy as np

    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n))


def phash(image: Any) -> str:
    """16 hexadecimal characters: the 64-bit perceptual hash of a PIL image."""
    import numpy as np
    from PIL import Image

    grey = image.convert("L").resize((_HASH_SIDE, _HASH_SIDE), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.float64)
    matrix = _dct_matrix(_HASH_SIDE)
    coefficients = matrix @ pixels @ matrix.T
    low = coefficients[:_LOW, :_LOW]
    bits = (low > np.median(low)).flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return f"{value:016x}"


def hamming(a: str, b: str) -> int:
    """How many of the 64 bits two hashes differ in."""
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def thumbnail_png(image: Any, size: int = THUMBNAIL_SIZE) -> str:
    """A base64 PNG of the image scaled to fit in size x size."""
    from PIL import Image

    small = image.convert("RGB")
    small.thumbnail((size, size), Image.Resampling.LANCZOS)
    encoded = _png_base64(small)
    if len(encoded) > THUMBNAIL_LIMIT:
        encoded = _png_base64(small.quantize(colors=256))
    return encoded


def _png_base64(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def evidence_section(image: Any | None) -> dict[str, Any] | None:
    """The payload's evidence section for the first timed image (None without one)."""
    if image is None:
        return None
    return {"phash": phash(image), "thumbnail_png": thumbnail_png(image)}
