"""Encoded images: their size is checked from the header before anything is decoded."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from prelabel import images
from prelabel.errors import InvalidInputError


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` (signature, IHDR, IEND; no pixel data)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("decoded an image its header already ruled out")

    monkeypatch.setattr(images.cv2, "imdecode", refuse)


def test_an_oversized_image_is_refused_from_its_header(no_decoding: None) -> None:
    assert images.image_size(_png_header(12000, 12000)) == (12000, 12000)
    with pytest.raises(InvalidInputError, match=r"image 3: 12000x12000 is larger than allowed"):
        images.decode_image(_png_header(12000, 12000), 3)
    with pytest.raises(InvalidInputError, match=r"image 2: larger than allowed"):  # Pillow's own bomb check
        images.decode_images([_png_header(10, 10), _png_header(9, 9), _png_header(20000, 20000)])


def test_a_request_too_large_together_is_refused_before_decoding(no_decoding: None) -> None:
    side = 8000  # each allowed alone (64M pixels), 9 of them together are not
    with pytest.raises(InvalidInputError, match="the 9 images hold more than 530841600 pixels together"):
        images.decode_images([_png_header(side, side)] * 9)


def test_images_within_the_limits_decode() -> None:
    img = np.random.default_rng(0).integers(0, 255, (24, 32, 3), np.uint8)
    png = cv2.imencode(".png", img)[1].tobytes()
    (back,) = images.decode_images([png])
    np.testing.assert_array_equal(back, img)
    with pytest.raises(InvalidInputError, match="image 1: 14 bytes do not decode"):
        images.decode_images([png, b"not an image.."])


def test_images_only_opencv_reads_count_as_they_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Radiance HDR: Pillow reads no header of it, OpenCV decodes it; the request's total still holds."""
    hdr = cv2.imencode(".hdr", np.zeros((16, 16, 3), np.float32))[1].tobytes()
    assert images.image_size(hdr) is None
    assert images.decode_images([hdr])[0].shape == (16, 16, 3)
    monkeypatch.setattr(images, "MAX_BATCH_PIXELS", 16 * 16 * 2)
    with pytest.raises(InvalidInputError, match="3 images hold more than 512 pixels"):
        images.decode_images([hdr] * 3)


def test_a_batch_decodes_in_order_and_names_its_first_bad_image() -> None:
    """A batch decodes on several threads (its decoding took as long as a GPU's inference); the images come back in
    the order sent, and a bad one is named as before: the first in order."""
    import cv2

    from prelabel.images import decode_images

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (48 + i, 64, 3), dtype=np.uint8) for i in range(12)]
    datas = [cv2.imencode(".png", img)[1].tobytes() for img in images]
    assert all(np.array_equal(a, b) for a, b in zip(decode_images(datas), images, strict=True))
    broken = [*datas[:3], datas[3][:40], datas[4], datas[5][:30], *datas[6:]]  # images 3 and 5 cut short
    with pytest.raises(InvalidInputError, match=r"^image 3: "):
        decode_images(broken)


def test_a_batch_decodes_while_the_interpreter_shuts_down() -> None:
    """After the thread pools' exit hook has run (an atexit handler, a daemon thread), submitting to the shared
    codec pool raised RuntimeError; the batch now decodes on the calling thread."""
    import subprocess
    import sys

    code = (
        "import atexit, cv2, numpy as np\n"
        "from prelabel.images import decode_images, map_images\n"
        "data = cv2.imencode('.png', np.zeros((8, 8, 3), np.uint8))[1].tobytes()\n"
        "map_images(len, [b'a', b'b'])  # the pool exists before shutdown\n"
        "def late():\n"
        "    print(len(decode_images([data] * 4)))\n"
        "atexit.register(late)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "4"


def test_an_undecodable_image_never_reaches_ultralytics_package_installer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ultralytics replaces Pillow's Image.open with one that runs its installer (pip install pi-heif) whenever
    Pillow cannot identify a file: a client's undecodable bytes had the server run pip where it was online."""
    import ultralytics.utils.checks as checks
    import ultralytics.utils.patches  # noqa: F401 - applies the patch, as importing ultralytics does

    from prelabel.images import image_size

    asked: list[object] = []
    monkeypatch.setattr(checks, "check_requirements", lambda *a, **k: asked.append(a) or True)
    assert image_size(b"this is not an image") is None
    assert asked == []
    png = cv2.imencode(".png", np.zeros((5, 7, 3), np.uint8))[1].tobytes()
    assert image_size(png) == (7, 5)  # headers Pillow reads are still read
