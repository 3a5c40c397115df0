"""Cross-request batching: frames of concurrent requests share one forward pass.

A single worker thread owns the wrapped detector (Ultralytics models are not thread-safe). It takes the oldest
request, then waits up to ``max_delay_ms`` for more requests with the same options until ``max_batch`` images are
collected (only while requests have been arriving together: after a batch of one request it does not wait), runs
one batched inference per image shape (so that an image is letterboxed as it is alone, whoever shares its batch), and
hands each request its slice. A request larger than ``max_batch`` runs alone in chunks.
The queue is bounded in images; past it, :class:`ResourceExhaustedError`.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from prelabel.detect.base import DetectOptions, Detector, Image
from prelabel.errors import InvalidInputError, ResourceExhaustedError, UnavailableError
from prelabel.images import check_images
from prelabel.types import Detections

log = logging.getLogger(__name__)


@dataclass
class _Request:
    images: list[Image]
    options: DetectOptions
    future: Future[list[Detections]] = field(default_factory=Future)


class BatchingDetector:
    """Thread-safe front of a :class:`Detector` that batches concurrent calls.

    Args:
        detector: the backend; only this object's worker thread calls it.
        max_batch: most images per forward pass.
        max_delay_ms: longest the first request of a batch waits for company.
        max_queued_images: bound on images waiting; past it ``detect`` raises ResourceExhaustedError.
    """

    def __init__(
        self, detector: Detector, max_batch: int = 8, max_delay_ms: float = 5.0, max_queued_images: int = 512
    ) -> None:
        if max_batch <= 0:
            raise InvalidInputError(f"max_batch must be positive, got {max_batch}")
        self.detector = detector
        self.name = detector.name
        self.task = detector.task
        self.class_names = detector.class_names
        self.device = detector.device
        self.max_batch = max_batch
        self.max_delay_s = max_delay_ms / 1000.0
        self.max_queued_images = max_queued_images
        self._pending: collections.deque[_Request] = collections.deque()
        self._queued_images = 0
        self._cv = threading.Condition()
        self._closed = False
        self.batches_run = 0
        self._last_batch_requests = 2  # assume company until a batch shows otherwise
        self._thread = threading.Thread(target=self._run, name=f"batcher-{detector.name}", daemon=True)
        self._thread.start()

    def warmup(self) -> None:
        """Warm the wrapped detector (on this worker's thread, so CUDA contexts live where inference runs)."""
        self.submit([np.zeros((64, 64, 3), np.uint8)], DetectOptions()).result()
        self.detector.warmup()

    def detect(self, images: Sequence[Image], options: DetectOptions | None = None) -> list[Detections]:
        """Blocking batched detection; see :meth:`Detector.detect`."""
        return self.submit(images, options or DetectOptions()).result()

    def submit(self, images: Sequence[Image], options: DetectOptions) -> Future[list[Detections]]:
        """Queue a request; the future resolves to one :class:`Detections` per image.

        Raises:
            InvalidInputError: an image is not (H, W, 3) uint8.
            ResourceExhaustedError: the queue is full.
            UnavailableError: the batcher is closed.
        """
        check_images(images, allow_empty_batch=True)
        req = _Request(list(images), options)
        if not req.images:
            req.future.set_result([])
            return req.future
        with self._cv:
            if self._closed:
                raise UnavailableError(f"detector {self.name!r} is shutting down")
            if self._queued_images and self._queued_images + len(req.images) > self.max_queued_images:
                raise ResourceExhaustedError(
                    f"detector {self.name!r}: {self._queued_images} images already queued (limit "
                    f"{self.max_queued_images})"
                )
            self._pending.append(req)
            self._queued_images += len(req.images)
            self._cv.notify()
        return req.future

    def close(self) -> None:
        """Stop the worker after the queued requests are served."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join(timeout=30)

    # -- worker

    def _take_batch(self) -> list[_Request] | None:
        with self._cv:
            while not self._pending:
                if self._closed:
                    return None
                self._cv.wait()
            first = self._pending.popleft()
            batch = [first]
            size = len(first.images)
            deadline = time.monotonic() + self.max_delay_s
            while size < self.max_batch:
                match = next((r for r in self._pending if r.options.batch_key == first.options.batch_key), None)
                if match is not None and size + len(match.images) <= self.max_batch:
                    self._pending.remove(match)
                    batch.append(match)
                    size += len(match.images)
                    continue
                if match is not None:  # would overflow the batch: it leads the next one
                    break
                remaining = deadline - time.monotonic()
                # Wait for company only when callers have been arriving together: a lone sequential caller
                # (the last batch served one request) would pay the delay for nothing.
                if remaining <= 0 or self._closed or self._last_batch_requests <= 1:
                    break
                self._cv.wait(remaining)
            self._queued_images -= size
            self._last_batch_requests = len(batch)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            try:
                self._serve(batch)
            except Exception as exc:  # isolate: a failing batch is retried request by request
                if len(batch) == 1:
                    batch[0].future.set_exception(exc)
                    continue
                for req in batch:
                    try:
                        self._serve([req])
                    except Exception as single_exc:
                        req.future.set_exception(single_exc)

    def _serve(self, batch: list[_Request]) -> None:
        images = [img for req in batch for img in req.images]
        options = batch[0].options
        # One forward pass per image shape: a batch of mixed shapes is letterboxed to a common square where an image
        # alone gets its own smallest rectangle, so an image's detections depended on who else was asking (a 640x360
        # frame lost a detection in 22 of 25 calls beside others' 200x360 images).
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, img in enumerate(images):
            by_shape.setdefault(tuple(img.shape), []).append(i)
        found: dict[int, Detections] = {}
        for idx in by_shape.values():
            for start in range(0, len(idx), self.max_batch):
                chunk = idx[start : start + self.max_batch]
                found.update(zip(chunk, self.detector.detect([images[i] for i in chunk], options), strict=True))
                self.batches_run += 1
        results = [found[i] for i in range(len(images))]
        offset = 0
        for req in batch:
            n = len(req.images)
            req.future.set_result(results[offset : offset + n])
            offset += n
