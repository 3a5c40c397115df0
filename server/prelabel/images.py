"""Images in and out of the models: decoding encoded bytes, and checking decoded batches."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError

Image = npt.NDArray[np.uint8]  # (H, W, 3) uint8, BGR (OpenCV order)

# Decoded images larger than this are refused (decompression bombs: a small PNG can expand to gigabytes).
MAX_IMAGE_PIXELS = 8192 * 8192


def decode_image(data: bytes, index: int = 0) -> Image:
    """Decode one encoded image (PNG, JPEG, BMP, WebP, ...) to (H, W, 3) uint8 BGR.

    Args:
        data: the encoded bytes.
        index: the image's position in its request, named in errors.

    Raises:
        InvalidInputError: empty or undecodable bytes, or an image larger than allowed.
    """
    if not data:
        raise InvalidInputError(f"image {index}: expected encoded image bytes, got 0 bytes")
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise InvalidInputError(f"image {index}: cannot be decoded: {exc}") from exc
    if img is None or img.ndim != 3 or img.size == 0:
        raise InvalidInputError(f"image {index}: {len(data)} bytes do not decode as an image (PNG, JPEG, ...)")
    if img.shape[0] * img.shape[1] > MAX_IMAGE_PIXELS:
        raise InvalidInputError(f"image {index}: {img.shape[1]}x{img.shape[0]} is larger than allowed")
    return np.ascontiguousarray(img, dtype=np.uint8)


def check_images(images: Sequence[Image], allow_empty_batch: bool = False) -> None:
    """Check a batch: each image (H, W, 3) uint8 with H, W > 0; at least one unless ``allow_empty_batch``.

    Raises:
        InvalidInputError: naming the first bad image and what it is.
    """
    if len(images) == 0 and not allow_empty_batch:
        raise InvalidInputError("images: expected at least one image, got an empty batch")
    for i, img in enumerate(images):
        shape = getattr(img, "shape", None)
        dtype = getattr(img, "dtype", None)
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise InvalidInputError(f"image {i}: expected (H, W, 3) uint8 BGR, got shape {shape} dtype {dtype}")
        if img.shape[0] == 0 or img.shape[1] == 0:
            raise InvalidInputError(f"image {i}: expected a non-empty image, got shape {shape}")
