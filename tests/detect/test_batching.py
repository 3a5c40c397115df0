"""Cross-request batching: concurrent requests share forward passes and get their own results back."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from prelabel.detect.base import DetectOptions, Image
from prelabel.detect.batching import BatchingDetector
from prelabel.errors import InvalidInputError, ResourceExhaustedError
from prelabel.types import Detections


class RecordingDetector:
    """Returns one box per image whose x1 encodes the image's fill value, and records batch sizes."""

    name = "rec"
    task = "detect"
    class_names: Sequence[str] = ("a",)
    device = "cpu"

    def __init__(self, delay_s: float = 0.02) -> None:
        self.batches: list[int] = []
        self.delay_s = delay_s
        self.threads: set[str] = set()

    def detect(self, images: Sequence[Image], options: DetectOptions | None = None) -> list[Detections]:
        self.batches.append(len(images))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        out = []
        for img in images:
            v = float(img[0, 0, 0])
            out.append(Detections(np.array([[v, 0, v + 1, 1]]), np.array([0.9]), np.array([0])))
        return out

    def warmup(self) -> None:
        pass


def _img(v: int) -> np.ndarray:
    return np.full((8, 8, 3), v, np.uint8)


def test_concurrent_requests_share_batches_and_get_their_own_results() -> None:
    backend = RecordingDetector()
    det = BatchingDetector(backend, max_batch=8, max_delay_ms=30)
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda v: det.detect([_img(v), _img(v + 100)]), range(8)))
        for v, res in enumerate(results):
            assert [float(r.xyxy[0, 0]) for r in res] == [v, v + 100]
        assert sum(backend.batches) == 16
        assert max(backend.batches) > 2  # requests were merged
        assert all(b <= 8 for b in backend.batches)
        assert len(backend.threads) == 1  # one worker owns the model
    finally:
        det.close()


def test_large_request_is_split_into_max_batch_chunks() -> None:
    backend = RecordingDetector(delay_s=0)
    det = BatchingDetector(backend, max_batch=4, max_delay_ms=0)
    try:
        res = det.detect([_img(i) for i in range(10)])
        assert [float(r.xyxy[0, 0]) for r in res] == list(range(10))
        assert backend.batches == [4, 4, 2]
    finally:
        det.close()


def test_different_options_are_not_mixed() -> None:
    backend = RecordingDetector()
    det = BatchingDetector(backend, max_batch=8, max_delay_ms=20)
    try:
        f1 = det.submit([_img(1)], DetectOptions(conf=0.3))
        f2 = det.submit([_img(2)], DetectOptions(conf=0.5))
        f1.result(5), f2.result(5)
        assert backend.batches == [1, 1]
    finally:
        det.close()


def test_bad_image_rejected_before_queueing_and_queue_bound() -> None:
    backend = RecordingDetector(delay_s=0.3)
    det = BatchingDetector(backend, max_batch=1, max_delay_ms=0, max_queued_images=2)
    try:
        with pytest.raises(InvalidInputError, match="image 0"):
            det.detect([np.zeros((4, 4), np.uint8)])
        futures = [det.submit([_img(0)], DetectOptions())]
        deadline = time.monotonic() + 5
        while not backend.batches and time.monotonic() < deadline:  # wait until the worker runs it
            time.sleep(0.01)
        futures += [det.submit([_img(i)], DetectOptions()) for i in (1, 2)]  # fills the queue (2 images)
        with pytest.raises(ResourceExhaustedError, match="already queued"):
            det.submit([_img(9)], DetectOptions())
        for f in futures:
            f.result(10)
    finally:
        det.close()


def test_a_failing_request_does_not_fail_its_batch_mates() -> None:
    class Picky(RecordingDetector):
        def detect(self, images: Sequence[Image], options: DetectOptions | None = None) -> list[Detections]:
            if any(int(img[0, 0, 0]) == 13 for img in images):
                raise RuntimeError("unlucky image")
            return super().detect(images, options)

    det = BatchingDetector(Picky(delay_s=0.01), max_batch=8, max_delay_ms=50)
    try:
        good = det.submit([_img(1)], DetectOptions())
        bad = det.submit([_img(13)], DetectOptions())
        assert float(good.result(5)[0].xyxy[0, 0]) == 1
        with pytest.raises(RuntimeError, match="unlucky"):
            bad.result(5)
    finally:
        det.close()


def test_images_of_other_shapes_do_not_share_a_forward_pass() -> None:
    """A mixed-shape batch is letterboxed to a common square where an image alone gets its own smallest rectangle:
    an image's detections changed with the sizes of other callers' images. Each pass now holds one shape, and every
    request still gets its own results, in order."""
    shapes: list[set[tuple[int, ...]]] = []

    class ShapeRecorder(RecordingDetector):
        def detect(self, images: Sequence[Image], options: DetectOptions | None = None) -> list[Detections]:
            shapes.append({img.shape for img in images})
            return super().detect(images, options)

    backend = ShapeRecorder()
    det = BatchingDetector(backend, max_batch=8, max_delay_ms=50)
    try:
        wide = [np.full((8, 16, 3), v, np.uint8) for v in (1, 2)]
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(det.detect, [_img(10 + k), wide[k % 2], _img(20 + k)]) for k in range(4)]
            results = [f.result(10) for f in futures]
        for k, res in enumerate(results):
            assert [float(r.xyxy[0, 0]) for r in res] == [10 + k, 1 + k % 2, 20 + k]
        assert shapes and all(len(s) == 1 for s in shapes), shapes
        assert sum(backend.batches) == 12
    finally:
        det.close()
