"""Images in and out of the models: decoding encoded bytes, and checking decoded batches."""

from __future__ import annotations

import io
import os
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import cv2
import numpy as np
import numpy.typing as npt
import PIL.Image

from prelabel.errors import InvalidInputError

Image = npt.NDArray[np.uint8]  # (H, W, 3) uint8, BGR (OpenCV order)

# Decoded images larger than this are refused (decompression bombs: a small PNG can expand to gigabytes).
MAX_IMAGE_PIXELS = 8192 * 8192
# Most pixels the images of one request may decode to together (256 full-HD frames; 1.6 GB as BGR).
MAX_BATCH_PIXELS = 256 * 1920 * 1080
# Threads that encode and decode a batch's images at once (OpenCV's codecs release the GIL): a request's decoding
# took as long as a GPU's inference of it.
CODEC_THREADS = max(1, min(8, os.cpu_count() or 1))

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_T = TypeVar("_T")
_R = TypeVar("_R")


def map_images(fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """``[fn(x) for x in items]``, on :data:`CODEC_THREADS` threads when there are several items; the first failing
    item's exception, in order, is raised."""
    global _pool
    if len(items) < 2 or CODEC_THREADS < 2:
        return [fn(x) for x in items]
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(CODEC_THREADS, thread_name_prefix="image-codec")
        pool = _pool
    try:
        futures = [pool.submit(fn, x) for x in items]
    except RuntimeError:  # the interpreter is shutting down (an atexit handler, a daemon thread): on this thread
        return [fn(x) for x in items]
    return [f.result() for f in futures]


def _pillow_open() -> Callable[..., PIL.Image.Image]:
    """Pillow's own ``Image.open``: Ultralytics, once imported, replaces it with one that runs its package installer
    (a HEIF plugin) whenever Pillow cannot identify a file, which a client's undecodable bytes would then trigger."""
    patches = sys.modules.get("ultralytics.utils.patches")
    original = getattr(patches, "_image_open", None)
    return original if callable(original) else PIL.Image.open


def image_size(data: bytes, index: int = 0) -> tuple[int, int] | None:
    """``(width, height)`` read off an encoded image's header without decoding it; None where the header is not one
    Pillow reads (the decoder then tells).

    Raises:
        InvalidInputError: a header that Pillow itself calls a decompression bomb (image ``index``).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            with _pillow_open()(io.BytesIO(data)) as im:
                return int(im.size[0]), int(im.size[1])
    except PIL.Image.DecompressionBombError as exc:
        raise InvalidInputError(f"image {index}: larger than allowed ({exc})") from exc
    except Exception:  # any header Pillow cannot read: OpenCV decides
        return None


def decode_images(datas: Sequence[bytes]) -> list[Image]:
    """:func:`decode_image` for a request's images, after checking from their headers that each, and all together
    (``MAX_BATCH_PIXELS``), are within the limits: nothing is decoded for a request that would not fit.

    Raises:
        InvalidInputError: as :func:`decode_image`, or the images together larger than allowed.
    """
    total = 0
    unread = False
    for i, data in enumerate(datas):
        size = image_size(data, i) if data else None
        if size is None:
            unread = True
            continue
        _check_size(size[0], size[1], i)
        total += size[0] * size[1]
        _check_total(total, len(datas))
    if not unread:  # every size known and within the limits: decode them together
        return map_images(lambda item: _decode(item[1], item[0]), list(enumerate(datas)))
    # Headers Pillow does not read (formats only OpenCV decodes) count as they decode.
    out, total = [], 0
    for i, data in enumerate(datas):
        out.append(_decode(data, i))  # headers checked above
        total += out[-1].shape[0] * out[-1].shape[1]
        _check_total(total, len(datas))
    return out


def _check_total(total: int, n: int) -> None:
    if total > MAX_BATCH_PIXELS:
        raise InvalidInputError(
            f"the {n} images hold more than {MAX_BATCH_PIXELS} pixels together, more than allowed per request: send "
            "fewer or smaller images per request"
        )


def _check_size(width: int, height: int, index: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise InvalidInputError(f"image {index}: {width}x{height} is larger than allowed ({MAX_IMAGE_PIXELS} pixels)")


def decode_image(data: bytes, index: int = 0) -> Image:
    """Decode one encoded image (PNG, JPEG, BMP, WebP, ...) to (H, W, 3) uint8 BGR; one larger than
    ``MAX_IMAGE_PIXELS`` is refused from its header, before it is decoded, where Pillow reads the header.

    Args:
        data: the encoded bytes.
        index: the image's position in its request, named in errors.

    Raises:
        InvalidInputError: empty or undecodable bytes, or an image larger than allowed.
    """
    size = image_size(data, index) if data else None
    if size is not None:
        _check_size(size[0], size[1], index)
    return _decode(data, index)


def _decode(data: bytes, index: int) -> Image:
    """:func:`decode_image` once the header, where Pillow reads one, has been checked."""
    if not data:
        raise InvalidInputError(f"image {index}: expected encoded image bytes, got 0 bytes")
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise InvalidInputError(f"image {index}: cannot be decoded: {exc}") from exc
    if img is None or img.ndim != 3 or img.size == 0:
        raise InvalidInputError(f"image {index}: {len(data)} bytes do not decode as an image (PNG, JPEG, ...)")
    _check_size(img.shape[1], img.shape[0], index)
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
